"""An existing Dask cluster, for real: scheduler and workers started as separate processes.

The fixture starts ``dask scheduler`` and ``dask worker`` (the ``distributed`` command-line
tools) on 127.0.0.1, the worker in a different working directory and with an environment set up
for parallel chains (``XLA_FLAGS`` and ``JAX_NUM_CPU_DEVICES`` naming 4 devices), as a user's
shell might be. The tests check that ``batch``, ``sbc`` and ``compare --kfold`` run there as they
do on the local cluster: same outcomes, relative paths meaning the caller's directory, one JAX
device per worker, the dashboard announced, and an open client reused. Everything started is
killed at teardown.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import pytest

import csc_bayes
from csc_bayes import batch
from csc_bayes.batch import Task, dask_client, run_plan, run_tasks

distributed = pytest.importorskip("distributed")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

SRC = Path(csc_bayes.__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
START_TIMEOUT = 90  # seconds for the scheduler file to appear and the workers to register
#: what a shell set up for parallel chains exports; the tasks must not be misled by it
PARALLEL_CHAINS_ENV = {
    "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    "JAX_NUM_CPU_DEVICES": "4",
}


# ---------------------------------------------------------------------------- the cluster
@dataclass
class External:
    address: str
    scheduler_file: Path
    dashboard: str | None
    worker_cwd: Path
    worker_pids: list[int]


def _dask(command: str) -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    if exe.is_file():
        return [str(exe), command]
    return [sys.executable, "-m", f"distributed.cli.dask_{command}"]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group we started, SIGKILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def external_cluster(
    root: Path, *, workers: int = 1, dashboard: bool = True, worker_env: dict | None = None
) -> Iterator[External]:
    """``dask scheduler`` + ``dask worker --nworkers N --nthreads 1``, as separate processes."""
    root.mkdir(parents=True, exist_ok=True)
    scheduler_file = root / "scheduler.json"
    worker_cwd = root / "worker-cwd"
    worker_cwd.mkdir(exist_ok=True)
    # the scheduler and the workers import what the client sends: this checkout's csc_bayes,
    # and this file's task functions (a consistent environment, as Dask requires)
    path = [str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    board = ["--dashboard-address", "127.0.0.1:0"]  # the HTTP server runs even without one
    board += [] if dashboard else ["--no-dashboard"]
    scheduler_args = ["--host", "127.0.0.1", "--port", "0", *board]
    scheduler_args += ["--scheduler-file", str(scheduler_file)]
    worker_args = ["--scheduler-file", str(scheduler_file), "--host", "127.0.0.1"]
    worker_args += ["--nworkers", str(workers), "--nthreads", "1", "--no-dashboard"]
    worker_args += ["--local-directory", str(root / "worker-space")]
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        log = open(root / "scheduler.log", "w")  # noqa: SIM115 - closed in finally
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [*_dask("scheduler"), *scheduler_args],
                cwd=root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed at teardown
            )
        )
        info = _wait_for_file(scheduler_file, procs[0], root / "scheduler.log")
        if workers:
            log = open(root / "worker.log", "w")  # noqa: SIM115 - closed in finally
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [*_dask("worker"), *worker_args],
                    cwd=worker_cwd,
                    env={**env, **(worker_env or {})},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        with distributed.Client(info["address"], timeout=30) as client:
            if workers:
                client.wait_for_workers(workers, timeout=START_TIMEOUT)
            pids = sorted(client.run(os.getpid).values())
        port = info.get("services", {}).get("dashboard")
        yield External(
            address=info["address"],
            scheduler_file=scheduler_file,
            dashboard=f"http://127.0.0.1:{port}/status" if port else None,
            worker_cwd=worker_cwd,
            worker_pids=pids,
        )
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for log in logs:
            log.close()


def _wait_for_file(path: Path, proc: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            info = json.loads(path.read_text())
            if info.get("address"):
                return info
        time.sleep(0.2)
    raise TimeoutError(f"no scheduler file after {START_TIMEOUT} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[External]:
    root = tmp_path_factory.mktemp("external-cluster")
    with external_cluster(root, worker_env=PARALLEL_CHAINS_ENV) as ext:
        yield ext


@pytest.fixture
def caller(tmp_path, monkeypatch) -> Path:
    """The caller's working directory (the workers' is elsewhere)."""
    here = tmp_path / "caller"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


# ---------------------------------------------------------------------------- light tasks
def square(x: int) -> tuple[int, int]:
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * x, os.getpid()


def touch(out: str, folder: Path, key: str) -> dict[str, str]:
    """Write one file into each of two folders given relative by the caller."""
    for base in (Path(out), folder):
        (base / key).mkdir(parents=True, exist_ok=True)
        (base / key / "done").write_text(key)
    return {"cwd": os.getcwd(), "out": out, "folder": str(folder)}


def jax_state() -> dict:
    import jax

    return {
        "devices": jax.local_device_count(),
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
        "JAX_NUM_CPU_DEVICES": os.environ.get("JAX_NUM_CPU_DEVICES"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


#: what the note says of a scheduler started with a dashboard (Dask's needs Bokeh)
DASHBOARD = (
    "dashboard: {link}"
    if importlib.util.find_spec("bokeh")
    else "no dashboard (Dask's dashboard needs Bokeh installed with the scheduler)"
)

LIGHT = [Task(f"sq{i}", square, {"x": x}) for i, x in enumerate([3, 1, -2, 7])]


def _summary(outcomes) -> list[tuple]:
    return [
        (o.key, o.status, o.value[0] if o.value else None, (o.error or "").splitlines()[-1:])
        for o in outcomes
    ]


def test_light_tasks_give_the_same_outcomes_as_the_local_cluster(cluster, capfd):
    external = run_tasks(LIGHT, scheduler=cluster.address, progress=False)
    err = capfd.readouterr().err
    assert f"connected to the Dask scheduler at {cluster.address} (1 worker); " in err
    assert DASHBOARD.format(link=cluster.dashboard) in err

    local = run_tasks(LIGHT, n_workers=1, progress=False)
    err = capfd.readouterr().err
    assert "started a local Dask cluster at tcp://127.0.0.1:" in err
    assert DASHBOARD.format(link="http://127.0.0.1:") in err

    print("ERR", external[0].error)
    assert _summary(external) == _summary(local)
    assert [o.status for o in external] == ["done", "done", "failed", "done"]
    assert "negative input -2" in external[2].error
    # they ran on the worker processes started by the fixture
    assert {o.value[1] for o in external if o.value} <= set(cluster.worker_pids)


def test_scheduler_file_is_accepted(cluster, capfd):
    outcomes = run_tasks(LIGHT[:1], scheduler=cluster.scheduler_file, progress=False)
    assert outcomes[0].value[0] == 9
    assert f"connected to the Dask scheduler at {cluster.address}" in capfd.readouterr().err


def test_relative_paths_mean_the_callers_directory(cluster, caller):
    tasks = [
        Task(
            f"k{i}",
            touch,
            {"out": "rel/out", "folder": Path("rel/folder"), "key": f"k{i}"},
            lock_dir=Path("rel/locks"),
        )
        for i in range(2)
    ]
    outcomes = run_tasks(tasks, scheduler=cluster.address, progress=False)
    assert [o.status for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    for o in outcomes:
        assert o.value["cwd"] == str(cluster.worker_cwd)  # the worker really is elsewhere
        assert o.value["out"] == str(caller / "rel/out")
        assert o.value["folder"] == str(caller / "rel/folder")
        assert (caller / "rel/out" / o.key / "done").is_file()
        assert (caller / "rel/folder" / o.key / "done").is_file()
        assert (caller / "rel/locks" / f"{o.key}.lock").is_file()
    assert not (cluster.worker_cwd / "rel").exists()


def test_task_paths_are_made_absolute_keeping_their_type(tmp_path):
    task = Task(
        "t",
        touch,
        {"out": "a/../b", "folder": Path("c"), "key": "k", "fits_dir": None, "url": "s3://x"},
        lock_dir=Path("locks"),
    )
    done = task.absolute(tmp_path)
    assert done.kwargs == {
        "out": str(tmp_path / "b"),
        "folder": tmp_path / "c",
        "key": "k",
        "fits_dir": None,
        "url": "s3://x",
    }
    assert done.lock_dir == tmp_path / "locks"
    assert Task("u", touch, {"out": "/abs/x"}).absolute(tmp_path).kwargs["out"] == "/abs/x"


def test_worker_gets_one_jax_device_despite_its_environment(cluster):
    """The worker was started with 4 devices asked for; the task's own settings win."""
    state = run_tasks([Task("jax", jax_state)], scheduler=cluster.address, progress=False)[0]
    assert state.status == "done", state.error
    assert state.value["devices"] == 1
    assert state.value["XLA_FLAGS"].endswith("--xla_force_host_platform_device_count=1")
    assert state.value["JAX_NUM_CPU_DEVICES"] == "1"
    assert state.value["OMP_NUM_THREADS"] == "1"


LIMIT = """
import logging, sys
logging.basicConfig(level=logging.WARNING)
import jax
{before}
from csc_bayes.batch import limit_threads
print(limit_threads(), jax.local_device_count())
"""


@pytest.mark.parametrize(
    ("before", "said", "devices"),
    [("", "configured", 1), ("jax.devices()", "started: 4 devices", 4)],
)
def test_limit_threads_with_jax_already_imported(before, said, devices):
    env = {**os.environ, **PARALLEL_CHAINS_ENV, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", LIMIT.format(before=before)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [*said.split(), str(devices)]
    assert ("backend started before csc_bayes could limit it" in done.stderr) == (devices > 1)


def test_scheduler_without_dashboard_or_workers_is_announced(tmp_path, capfd):
    with (
        external_cluster(tmp_path / "bare", workers=0, dashboard=False) as bare,
        dask_client(bare.address) as client,
    ):
        assert batch.dashboard_link(client) is None
    err = capfd.readouterr().err
    assert f"connected to the Dask scheduler at {bare.address}" in err
    assert "(no workers yet: tasks wait until one connects); no dashboard\n" in err


class FakeClient:
    """What :func:`batch.dashboard_link` asks of a client; the scheduler's code runs here."""

    dashboard_link = "http://127.0.0.1:1234/status"

    def run_on_scheduler(self, func):
        return func()


@pytest.mark.parametrize(
    ("loaded", "link"),
    [
        ("distributed.dashboard.scheduler", "http://127.0.0.1:1234/status"),
        ("distributed.http.scheduler.missing_bokeh", None),
        (None, None),
    ],
)
def test_dashboard_link_only_when_the_scheduler_serves_one(monkeypatch, loaded, link):
    for name in ("distributed.dashboard.scheduler", "distributed.http.scheduler.missing_bokeh"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    if loaded:
        monkeypatch.setitem(sys.modules, loaded, object())
    assert batch.dashboard_link(FakeClient()) == link


def test_unreachable_scheduler_is_named():
    import dask

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(OSError, match=f"cannot connect to the Dask scheduler at {address}"),
        dask_client(address),
    ):
        pass


# ---------------------------------------------------------------------------- one real fit
PLAN = """
out = "{out}"
specs = ["cpp_need"]
years = [[2021, 2024]]
[data]
source = "synthetic"
authorities = 12
first_year = 2021
last_year = 2024
[sampler]
draws = 50
tune = 50
chains = 1
"""


def _cli(*args: str):
    from typer.testing import CliRunner

    from csc_bayes.cli import app

    return CliRunner().invoke(app, list(args))


def test_batch_cli_on_the_cluster_then_an_open_client_is_reused(cluster, caller, monkeypatch):
    """``csc-bayes batch PLAN --scheduler ADDR`` with a relative ``out``; then every entry point
    given the open client uses it: no new cluster, no new connection."""
    (caller / "plan.toml").write_text(PLAN.format(out="fits"))
    done = _cli("batch", "plan.toml", "--scheduler", cluster.address)
    assert done.exit_code == 0, done.output
    assert f"connected to the Dask scheduler at {cluster.address}" in done.stderr
    assert DASHBOARD.format(link=cluster.dashboard) in done.stderr
    runs = sorted((caller / "fits" / "cpp_need_2021-2024").iterdir())
    assert len(runs) == 1 and (runs[0] / "metadata.json").is_file()
    assert not (cluster.worker_cwd / "fits").exists()

    from csc_bayes import compare, sbc
    from csc_bayes.errors import TaskFailedError

    def no_new_cluster(*args, **kwargs):
        raise AssertionError("a new cluster or connection was opened")

    with distributed.Client(cluster.address, timeout=30) as client:
        monkeypatch.setattr(batch, "dask_client", no_new_cluster)
        monkeypatch.setattr(distributed, "LocalCluster", no_new_cluster)

        light = run_tasks(LIGHT[:2], client=client, progress=False)
        assert [o.value[0] for o in light] == [9, 1]

        again = run_plan("plan.toml", client=client, progress=False)
        assert again.ok and again.n_workers == 1
        assert again.table["reused"].all()  # the CLI's run, found through the relative out
        assert again.table["run"].tolist() == [str(runs[0])]

        # run_sbc: the replicates' tasks run on the client (nothing saved: none finishes)
        with pytest.raises(TaskFailedError, match=r"no SBC replicate finished; .*: \[\]"):
            sbc.run_sbc(
                "cpp_need",
                sims=1,
                n_authorities=12,
                years=(2021, 2024),
                draws=50,
                tune=50,
                chains=1,
                n_ranks=9,
                fits_dir="sbc",
                saved_only=True,
                client=client,
                progress=False,
            )

        # compare_fits: the K-fold refits are handed to run_tasks with the client
        seen = {}

        def capture(tasks, **where):
            seen.update(where, keys=[t.key for t in tasks])
            raise KeyboardInterrupt  # stop before the refits: only the plumbing is checked

        monkeypatch.setattr(compare, "run_tasks", capture)
        with pytest.raises(KeyboardInterrupt):
            compare.compare_fits([runs[0]], kfold=2, client=client, progress=False)
        assert seen["client"] is client
        assert seen["keys"] == ["cpp_need_2021-2024-fold0", "cpp_need_2021-2024-fold1"]


def test_sbc_cli_on_the_cluster(cluster, caller):
    """``csc-bayes sbc --scheduler FILE`` reaches the cluster (``--saved-only``: no fit)."""
    done = _cli(
        "sbc",
        "cpp_need",
        "--sims",
        "1",
        "--saved-only",
        "--fits",
        "sbc",
        "--scheduler",
        str(cluster.scheduler_file),
    )
    assert done.exit_code == 1
    assert f"connected to the Dask scheduler at {cluster.address}" in done.stderr
    assert "no SBC replicate finished" in done.stderr


# ---------------------------------------------------------------------------- equivalence
def _run_digest(run: Path) -> dict:
    import xarray as xr

    from fit_helpers import tree_digest

    meta = json.loads((run / "metadata.json").read_text())
    tree = xr.open_datatree(run / "posterior.nc", engine="h5netcdf")
    try:
        digest = {k: v for k, v in tree_digest(tree).items() if k.startswith("/posterior/")}
    finally:
        tree.close()
    keep = ("spec_hash", "data_hash", "sampler_hash", "model_version")
    return {**{k: meta.get(k) for k in keep}, **digest}


@pytest.mark.slow  # 4 tiny fits
def test_batch_gives_the_same_fits_as_the_local_cluster(cluster, caller):
    plan = PLAN.replace('specs = ["cpp_need"]', 'specs = ["cpp_need", "cpp_null"]')
    (caller / "plan.toml").write_text(plan.format(out="fits"))
    done = _cli("batch", "plan.toml", "--scheduler", cluster.address)
    assert done.exit_code == 0, done.output
    (caller / "local.toml").write_text(plan.format(out=caller / "local"))
    local = run_plan(caller / "local.toml", n_workers=1, progress=False)
    assert local.ok, local.table
    for task in ("cpp_need_2021-2024", "cpp_null_2021-2024"):
        [ext] = (caller / "fits" / task).iterdir()
        [loc] = (caller / "local" / task).iterdir()
        assert _run_digest(ext) == _run_digest(loc), task
    assert not (cluster.worker_cwd / "fits").exists()


SBC_SMALL = dict(
    sims=2, seed=5, n_authorities=12, years=(2021, 2024), draws=50, tune=50, chains=1, n_ranks=9
)


@pytest.mark.slow  # 4 tiny fits
def test_sbc_gives_the_same_ranks_as_the_local_cluster(cluster, caller):
    from csc_bayes.sbc import run_sbc

    ext = run_sbc(
        "cpp_null", fits_dir="sbc", scheduler=cluster.address, progress=False, **SBC_SMALL
    )
    loc = run_sbc("cpp_null", fits_dir=caller / "local", n_workers=1, progress=False, **SBC_SMALL)
    assert ext.info["sims_done"] == 2
    assert ext.ranks.equals(loc.ranks)
    assert len(list((caller / "sbc").glob("*/*/metadata.json"))) == 2
    assert not (cluster.worker_cwd / "sbc").exists()


@pytest.mark.slow  # 5 tiny fits
def test_compare_kfold_gives_the_same_elpd_as_the_local_cluster(cluster, caller):
    from dataclasses import replace

    from csc_bayes.batch import DataSource
    from csc_bayes.compare import compare_fits
    from csc_bayes.fitting import fit
    from csc_bayes.spec import find_spec

    panel = DataSource(authorities=10, first_year=2022, last_year=2024, seed=4).load()
    spec = replace(find_spec("cpp_null"), years=(2022, 2024))
    base = fit(spec, data=panel, out=caller / "fits", draws=50, tune=50, chains=1, progress=False)
    done = _cli(
        "compare",
        str(base.path),
        "--kfold",
        "2",
        "--seed",
        "3",
        "--fits",
        "cv",
        "--format",
        "json",
        "--scheduler",
        cluster.address,
    )
    assert done.exit_code == 0, done.output
    assert f"connected to the Dask scheduler at {cluster.address}" in done.stderr
    ext = json.loads(done.stdout)
    loc = compare_fits(
        [base.path], kfold=2, seed=3, fits_dir=caller / "local", n_workers=1, progress=False
    )
    row = loc.table.iloc[0]
    assert ext[0]["elpd_kfold"] == pytest.approx(row["elpd_kfold"], rel=1e-9)
    assert ext[0]["se_kfold"] == pytest.approx(row["se_kfold"], rel=1e-9)
    assert len(list((caller / "cv").glob("*/*/metadata.json"))) == 2
    assert not (cluster.worker_cwd / "cv").exists()
