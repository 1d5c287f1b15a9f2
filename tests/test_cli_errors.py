"""How `csc-bayes` fails: one line on standard error, an exit code per kind of failure, outputs
checked before the work, and every command's --help ending with a worked example."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import pandas as pd
import pytest
from typer.testing import CliRunner

matplotlib.use("Agg")

from csc_bayes.cli import app
from csc_bayes.cli._common import EXAMPLES, ExitCode
from csc_bayes.fits import save_fit
from plots_helpers import make_fit

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "csc_bayes"


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int, *needles: str) -> None:
    """Exit ``code``; ``error: ...`` as one line on stderr naming every needle; no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert "error:" not in result.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return save_fit(make_fit(n_la=20, n_draws=40), tmp_path_factory.mktemp("fits"))


@pytest.fixture
def blocked(tmp_path) -> Path:
    """A path whose parent is a regular file: no one can write there, root included."""
    (tmp_path / "a_file").write_text("")
    return tmp_path / "a_file"


# ------------------------------------------------------------------ the exit-code table


def test_exit_codes_are_one_table_in_code_and_readme():
    from csc_bayes.diagnostics import GATE_FAILED_EXIT_CODE

    assert ExitCode.GATE_FAILED == GATE_FAILED_EXIT_CODE
    readme = (REPO / "README.md").read_text()
    for code in ExitCode:
        assert re.search(rf"^\| `?{int(code)}`? \|", readme, flags=re.M), f"README: exit {code}"


def test_every_exception_class_lives_in_errors_py():
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b) for b in node.bases}
                if any(b.endswith(("Error", "Exception")) for b in bases) or (
                    node.name.endswith(("Error", "Exception"))
                ):
                    elsewhere.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert not elsewhere, elsewhere
    # the old homes still export them
    from csc_bayes.batch import PlanError
    from csc_bayes.errors import PlanError as P2
    from csc_bayes.errors import UnknownBackendError as U2
    from csc_bayes.sampling import UnknownBackendError

    assert PlanError is P2 and UnknownBackendError is U2


def test_a_domain_error_through_the_console_script_is_one_line_exit_1():
    exe = Path(sys.executable).with_name("csc-bayes")
    cmd = [sys.executable, "-c", "from csc_bayes.cli import main; main()"]
    done = subprocess.run(
        [*cmd, "fit", "cpp_nead"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert exe.name == "csc-bayes"
    assert done.returncode == ExitCode.ERROR, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: no model named")
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ outputs


def test_excess_to_an_unwritable_path_fails_before_the_work_with_exit_4(run, blocked):
    out = blocked / "excess.csv"
    result = invoke("excess", run, "--out", out)
    assert_one_line_error(result, ExitCode.OUTPUT, str(out), "not a folder")
    into_folder = invoke("excess", run, "--out", blocked.parent)
    assert_one_line_error(into_folder, ExitCode.OUTPUT, str(blocked.parent), "is a folder")


def test_excess_year_banana_is_a_usage_error_naming_the_value(run):
    result = invoke("excess", run, "--year", "banana")
    assert result.exit_code == ExitCode.USAGE
    assert "'banana' is not a year" in result.output and "Traceback" not in result.output
    assert "invalid literal" not in result.output


def test_excess_unfitted_year_is_a_domain_error(run):
    result = invoke("excess", run, "--year", "2031")
    assert_one_line_error(result, ExitCode.ERROR, "2031")


@pytest.mark.parametrize("command", ["excess", "explain", "predict"])
def test_table_commands_write_parquet_with_out_and_data_only_on_stdout(run, tmp_path, command):
    out = tmp_path / f"{command}.parquet"
    extra = {"explain": ["--no-null"], "predict": ["--authority", "all"], "excess": []}[command]
    result = invoke(command, run, *extra, "--format", "parquet", "--out", out)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) > 0
    assert result.stdout == ""  # the data went to the file
    assert f"wrote {out}" in result.stderr
    without = invoke(command, run, *extra, "--format", "parquet")
    assert without.exit_code == ExitCode.USAGE and "--out" in without.output


def test_excess_json_and_csv_on_stdout_have_no_messages_mixed_in(run):
    result = invoke("excess", run, "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 20


def test_excess_table_with_out_infers_the_file_format_from_the_suffix(run, tmp_path):
    out = tmp_path / "x.json"
    result = invoke("excess", run, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())) == 20
    assert "excess_ratio_median" in result.stdout  # the brief table is still shown


def test_plot_unknown_suffix_and_unwritable_path_exit_4(run, tmp_path, blocked):
    bmp = tmp_path / "x.bmp"
    result = invoke("plot", "caterpillar", run, "-o", bmp)
    assert_one_line_error(result, ExitCode.OUTPUT, str(bmp), "'.bmp'", ".png")
    assert not bmp.exists()
    out = blocked / "x.png"
    result = invoke("plot", "caterpillar", run, "-o", out)
    assert_one_line_error(result, ExitCode.OUTPUT, str(out), "not a folder")


def test_plot_bad_request_is_one_line_exit_1(run, tmp_path):
    result = invoke("plot", "trend", run, "-o", tmp_path / "t.png")
    assert_one_line_error(result, ExitCode.ERROR, "authority")


def test_save_figure_names_the_path_and_the_reason(blocked):
    import matplotlib.pyplot as plt

    from csc_bayes.errors import OutputError
    from csc_bayes.plots import save_figure

    fig = plt.figure()
    try:
        with pytest.raises(OutputError, match=re.escape(str(blocked / "f.png"))):
            save_figure(fig, blocked / "f.png")
    finally:
        plt.close(fig)


def test_report_to_an_unwritable_path_exits_4(run, blocked):
    out = blocked / "r.html"
    result = invoke("report", run, "-o", out)
    assert_one_line_error(result, ExitCode.OUTPUT, str(out))


def test_report_on_a_failed_fit_exits_3(tmp_path):
    failed = save_fit(make_fit(n_la=12, n_draws=20, passed=False), tmp_path / "fits")
    result = invoke("report", failed, "-o", tmp_path / "r.html")
    assert_one_line_error(result, ExitCode.GATE_FAILED, "convergence gate")


def test_data_build_unwritable_out_exits_4(monkeypatch, blocked, tmp_path):
    """The write is the shared save_panel; cli/data.py is not involved in the error handling."""
    import csc_bayes.data
    from csc_bayes.simulate import simulate_panel

    panel = simulate_panel(first_year=2021, last_year=2023).panel
    monkeypatch.setattr(csc_bayes.data, "build_panel_report", lambda raw: (panel, None))
    out = blocked / "panel.parquet"
    result = invoke("data", "build", "--raw", tmp_path, "--out", out)
    assert_one_line_error(result, ExitCode.OUTPUT, "a_file")


# ------------------------------------------------------------------ checks and plans


def test_sbc_that_rejects_uniformity_exits_5(monkeypatch):
    import csc_bayes.sbc

    tests = pd.DataFrame({"quantity": ["sigma_la", "phi"], "p_value": [0.5, 1e-6]})
    tests["passed"] = [True, False]
    fake = SimpleNamespace(
        tests=tests, passed=False, info={"fitted_spec": "cpp_need", "sims_done": 10}
    )
    monkeypatch.setattr(csc_bayes.sbc, "run_sbc", lambda *a, **k: fake)
    result = invoke("sbc", "cpp_need", "--sims", "10")
    assert_one_line_error(result, ExitCode.CHECK_FAILED, "uniformity", "phi")
    assert "sigma_la" in result.stdout  # the tests table is data

    monkeypatch.setattr(csc_bayes.sbc, "run_sbc", lambda *a, **k: SimpleNamespace(
        tests=tests.assign(passed=True), passed=True, info=fake.info))  # fmt: skip
    assert invoke("sbc", "cpp_need", "--sims", "10").exit_code == 0


def test_sbc_engine_option_reaches_run_sbc_and_is_checked(monkeypatch):
    import csc_bayes.sbc

    seen = {}
    tests = pd.DataFrame({"quantity": ["phi"], "p_value": [0.5], "passed": [True]})

    def fake(*args, **kwargs):
        seen.update(kwargs)
        return SimpleNamespace(
            tests=tests, passed=True, info={"fitted_spec": "cpp_need", "sims_done": 2}
        )

    monkeypatch.setattr(csc_bayes.sbc, "run_sbc", fake)
    assert invoke("sbc", "cpp_need", "--sims", "2", "--engine", "compiled").exit_code == 0
    assert seen["engine"] == "compiled"
    assert invoke("sbc", "cpp_need", "--sims", "2").exit_code == 0
    assert seen["engine"] == "fit"
    result = invoke("sbc", "cpp_need", "--sims", "2", "--engine", "fast")
    assert result.exit_code == 2 and "fast" in result.output


def test_a_plan_with_years_outside_the_data_fails_before_any_worker(monkeypatch, tmp_path):
    import csc_bayes.batch

    def no_workers(*args, **kwargs):
        raise AssertionError("workers were started")

    monkeypatch.setattr(csc_bayes.batch, "run_tasks", no_workers)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'out = "fits"\nspecs = ["cpp_need"]\nyears = [[2018, 2020], [2030, 2031]]\n'
        "[data]\nauthorities = 10\nfirst_year = 2018\nlast_year = 2023\n"
    )
    result = invoke("batch", plan)
    assert_one_line_error(result, ExitCode.ERROR, str(plan), "[2030, 2031]", "2018-2024")

    plan.write_text(
        'out = "fits"\nspecs = ["cpp_need"]\nyears = [[2024, 2024]]\n'
        "[data]\nauthorities = 10\nfirst_year = 2018\nlast_year = 2023\n"
    )  # 2024 is in the panel with population only (for forecasts): nothing to fit
    result = invoke("batch", plan)
    assert_one_line_error(result, ExitCode.ERROR, str(plan), "no cpp data", "2018-2023")


# ------------------------------------------------------------------ help


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


def test_every_command_help_ends_with_a_worked_example():
    import typer.main

    names = sorted(_commands(typer.main.get_command(app)))
    assert names == sorted(EXAMPLES)
    for name in names:
        result = invoke(*name.split(), "--help")
        assert result.exit_code == 0, result.output
        text = result.stdout.rstrip()
        assert "Example:" in text, (name, text[-300:])
        tail = " ".join(text.rsplit("Example:", 1)[1].split())  # rich may wrap a long example
        assert tail == EXAMPLES[name], (name, tail)


@pytest.mark.parametrize(
    "message",
    [
        "2 of 5 K-fold refits failed: m-fold0: ValueError: boom",
        "1 of 2 compiled K-fold tasks failed: m-folds1: ValueError: boom",
    ],
)
def test_failed_kfold_tasks_end_in_one_line(monkeypatch, run, message):
    """Either engine's failed K-fold tasks: exit 1 with one line naming the tasks, no traceback."""
    import csc_bayes.compare
    from csc_bayes.errors import TaskFailedError

    def failing(*args, **kwargs):
        raise TaskFailedError(message)

    monkeypatch.setattr(csc_bayes.compare, "compare_fits", failing)
    result = invoke("compare", run, run, "--kfold", "2")
    assert_one_line_error(result, ExitCode.ERROR, message.split(":")[0], "ValueError: boom")
