"""Batch engine: plan validation, the grid, a 2-worker local cluster, killed workers, resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import cloudpickle
import pytest

from csc_bayes.batch import (
    PlanError,
    Task,
    dask_client,
    load_plan,
    parse_plan,
    run_plan,
    run_tasks,
)
from csc_bayes.fits import list_runs

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- plans
def _plan(tmp_path: Path, **extra) -> dict:
    return {"out": str(tmp_path / "fits"), "specs": ["cpp_need"], **extra}


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"speccs": ["cpp_need"]}, "'speccs'"),
        ({"specs": []}, "'specs'"),
        ({"specs": ["no_such_model"]}, "'specs'"),
        ({"outcomes": ["cpp", "foster"]}, "'outcomes'"),
        ({"years": [[2020]]}, "'years'"),
        ({"refit": "sometimes"}, "'refit'"),
        ({"data": {"seed": "zero"}}, "'data.seed'"),
        ({"data": {"colour": 1}}, "'data.colour'"),
        ({"sampler": {"draws": -5}}, "'sampler.draws'"),
        ({"sampler": {"thin": 2}}, "'sampler.thin'"),
        ({"sampler": {"draws": "plenty"}}, "'sampler.draws'"),
        ({"sampler": {"max_draws": 3000}}, "'sampler.max_draws'"),
    ],
)
def test_invalid_plans_name_the_key(tmp_path, change, named):
    with pytest.raises(PlanError, match=named):
        parse_plan(_plan(tmp_path, **change), source="plan.toml")


def test_a_plan_may_draw_to_target(tmp_path):
    sampler = {"draws": "auto", "block_draws": 250, "max_draws": 3000}
    plan = parse_plan(_plan(tmp_path, sampler=sampler))
    assert plan.sampler == sampler
    (spec,) = plan.model_specs()
    # what fit_task does with them on a worker
    settings = spec.with_sampler(**plan.sampler).sampler
    assert (settings.draws, settings.block_draws, settings.max_draws) == ("auto", 250, 3000)


def test_missing_plan_file_is_named(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        load_plan(tmp_path / "absent.toml")


def test_grid_is_specs_by_outcomes_by_windows(tmp_path):
    plan = parse_plan(
        _plan(
            tmp_path,
            specs=["cpp_need", "cpp_null"],
            outcomes=["cpp", "cla"],
            years=[[2016, 2019], [2020, 2023]],
        )
    )
    specs = plan.model_specs()
    assert len(specs) == 8
    names = {s.name for s in specs}
    assert "cla_need_2016-2019" in names and "cpp_null_2020-2023" in names
    cla = next(s for s in specs if s.name == "cla_need_2020-2023")
    assert cla.outcome == "cla" and cla.years == (2020, 2023)


def test_shipped_example_plans_are_valid():
    plans = sorted((REPO / "plans").glob("*.toml"))
    assert plans, "plans/ holds no example plan"
    for path in plans:
        assert load_plan(path).model_specs()


# ---------------------------------------------------------------------------- engine
def write_once(out: str, key: str, seconds: float) -> str:
    """A light task with fit's resume rule: reuse a finished result, else make one atomically."""
    folder = Path(out) / key
    folder.mkdir(parents=True, exist_ok=True)
    done = sorted(folder.glob("*.json"))
    if done:
        return done[0].name
    time.sleep(seconds)
    name = f"{uuid.uuid4().hex}.json"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps({"key": key, "pid": os.getpid()}))
    os.replace(tmp, folder / name)
    return name


def test_killed_worker_loses_no_task_and_duplicates_none(tmp_path):
    out = tmp_path / "light"
    tasks = [
        Task(f"t{i}", write_once, {"out": str(out), "key": f"t{i}", "seconds": 1.0}, tmp_path)
        for i in range(8)
    ]
    with dask_client(n_workers=2) as client:
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2

        def kill_one_worker_mid_batch() -> None:
            deadline = time.monotonic() + 60
            while not list(out.glob("*/*.json")) and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(pids[0], signal.SIGKILL)

        killer = threading.Thread(target=kill_one_worker_mid_batch)
        killer.start()
        outcomes = run_tasks(tasks, client=client, progress=False)
        killer.join()
        assert pids[0] not in client.run(os.getpid).values(), "the worker was not killed"

    assert [o.status for o in outcomes] == ["done"] * 8
    for i, o in enumerate(outcomes):
        files = list((out / f"t{i}").glob("*.json"))
        assert [f.name for f in files] == [o.value]  # exactly one result per task


def test_failed_task_is_reported_and_others_finish(tmp_path):
    def boom() -> None:
        raise RuntimeError("no panel for this task")

    tasks = [
        Task("ok", write_once, {"out": str(tmp_path), "key": "ok", "seconds": 0.0}),
        Task("bad", boom),
    ]
    outcomes = run_tasks(tasks, n_workers=1, progress=False)
    assert outcomes[0].status == "done"
    assert outcomes[1].status == "failed" and "no panel for this task" in outcomes[1].error


def test_repeated_task_keys_are_refused():
    with pytest.raises(ValueError, match="repeated"):
        run_tasks([Task("a", print), Task("a", print)], progress=False)


# ---------------------------------------------------------------------------- real fits
SMALL_PLAN = """
out = "{out}"
specs = ["cpp_need", "cpp_null"]
years = [[2019, 2021], [2022, 2024]]
[data]
source = "synthetic"
authorities = 12
first_year = 2019
last_year = 2024
[sampler]
draws = 60
tune = 60
chains = 1
"""


@pytest.mark.slow  # ~1 min of real fits in a killed subprocess (the killed-worker test is fast)
def test_plan_killed_mid_batch_resumes_with_one_run_per_task(tmp_path):
    """SIGKILL a running batch (driver and workers), re-run it: every task has exactly one run."""
    out = tmp_path / "fits"
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(SMALL_PLAN.format(out=out))
    code = (
        "from csc_bayes.batch import run_plan; "
        f"run_plan({str(plan_file)!r}, n_workers=2, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        start_new_session=True,  # its own process group: the driver and the cluster it starts
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def finished() -> dict[str, str]:
        """task -> run of the completed saves; a save in progress is a hidden .partial folder"""
        return {
            m.parent.parent.name: m.parent.name
            for m in out.glob("*/*/metadata.json")
            if not m.parent.name.startswith(".")
        }

    try:
        deadline = time.monotonic() + 300
        while not finished() and time.monotonic() < deadline:
            time.sleep(0.2)
            assert proc.poll() is None, "the batch ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished_before = finished()
    assert 1 <= len(finished_before) < 4, "kill the batch mid-way, after one fit and before all"

    result = run_plan(plan_file, n_workers=2, progress=False)
    assert result.ok, result.table
    assert sorted(result.table["task"]) == sorted(
        ["cpp_need_2019-2021", "cpp_need_2022-2024", "cpp_null_2019-2021", "cpp_null_2022-2024"]
    )
    for task in result.table.itertuples():
        runs = list_runs(out / task.task)
        assert len(runs) == 1, f"{task.task}: {len(runs)} runs"
        assert task.run == str(runs[0])
        assert task.reused == (task.task in finished_before)
        if task.task in finished_before:
            assert runs[0].name == finished_before[task.task]

    again = run_plan(plan_file, n_workers=1, progress=False)
    assert again.table["reused"].all()
    assert all(len(list_runs(out / t)) == 1 for t in again.table["task"])


def test_cli_names_the_bad_plan_key(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('out = "fits"\nspecs = ["cpp_need"]\n[sampler]\nthin = 2\n')
    done = subprocess.run(
        [sys.executable, "-c", "from csc_bayes.cli import main; main()", "batch", str(plan)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1  # a domain error (cli._common.ExitCode.ERROR)
    assert "unknown key 'sampler.thin'" in done.stderr and str(plan) in done.stderr
