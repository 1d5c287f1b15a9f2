"""`csc-bayes fit`, `models` and `priors` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from csc_bayes.cli import app
from csc_bayes.data import save_panel
from csc_bayes.diagnostics import GATE_FAILED_EXIT_CODE
from csc_bayes.errors import FitIntegrityError
from csc_bayes.simulate import simulate_panel


def small_panel(tmp_path):
    panel = simulate_panel(seed=3, first_year=2019, last_year=2023).panel
    keep = panel["la_code"].isin(panel["la_code"].unique()[:30])
    return save_panel(panel[keep], tmp_path / "panel.parquet")


def test_fit_saves_reports_the_gate_and_reuses_on_rerun(tmp_path):
    panel = small_panel(tmp_path)
    args = ["fit", "cpp_need", "--data", str(panel), "--out", str(tmp_path / "fits"),
            "--draws", "60", "--tune", "60", "--chains", "2", "--no-progress"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    # 2 chains x 60 draws cannot pass the gate: a distinct exit status, and the reason shown
    assert first.exit_code == GATE_FAILED_EXIT_CODE, first.output
    assert "TOO_FEW_CHAINS" in first.output and "FAIL" in first.output
    assert "cpp ~ idaci + ethnic_minority_share" in first.output
    (run,) = (tmp_path / "fits" / "cpp_need").iterdir()
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["sampler"]["draws"] == 60 and meta["diagnostics"]["passed"] is False
    assert meta["n_authorities"] == 30 and meta["synthetic"] is True

    again = CliRunner().invoke(app, args)
    assert again.exit_code == GATE_FAILED_EXIT_CODE
    assert [p.name for p in (tmp_path / "fits" / "cpp_need").iterdir()] == [run.name]

    never = CliRunner().invoke(app, [*args, "--refit", "never", "--seed", "99"])
    assert never.exit_code == 1 and isinstance(never.exception.error, FitIntegrityError)
    assert "refit='never'" in never.stderr and "Traceback" not in never.output


def test_unknown_model_exits_1_and_lists_the_shipped_ones():
    exe = Path(sys.executable).with_name("csc-bayes")
    result = subprocess.run([exe, "fit", "cpp_nead"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1  # a domain error (cli._common.ExitCode.ERROR)
    assert "no model named 'cpp_nead'" in result.stderr and "cpp_need_spending" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_and_priors_list_what_a_user_can_choose():
    models = CliRunner().invoke(app, ["models"])
    assert models.exit_code == 0 and "cpp_need_spending" in models.output
    priors = CliRunner().invoke(app, ["priors", "cpp_need"])
    assert priors.exit_code == 0
    for name in ("intercept", "sigma_la", "phi", "SYNTHETIC"):
        assert name in priors.output


def test_cli_fit_takes_max_treedepth(tmp_path):
    panel = small_panel(tmp_path)
    args = ["fit", "cpp_need", "--data", str(panel), "--out", str(tmp_path / "fits"),
            "--draws", "20", "--tune", "20", "--chains", "1", "--max-treedepth", "3",
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == GATE_FAILED_EXIT_CODE, result.output
    (run,) = (tmp_path / "fits" / "cpp_need").iterdir()
    assert json.loads((run / "metadata.json").read_text())["sampler"]["max_treedepth"] == 3


def test_spec_max_treedepth_reaches_the_sampler_and_the_metadata(tmp_path):
    import csc_bayes

    spec = csc_bayes.find_spec("cpp_need").with_sampler(
        max_treedepth=2, draws=30, tune=30, chains=1
    )
    fit = csc_bayes.fit(spec, data=small_panel(tmp_path), out=None, progress=False)
    assert fit.metadata["sampler"]["max_treedepth"] == 2
    depth = fit.idata["sample_stats"]["tree_depth"].values
    assert depth.max() <= 2
    assert fit.idata["sample_stats"]["reached_max_treedepth"].values.any()


def test_tables_sent_to_a_file_or_pipe_are_not_cut_to_80_columns(capsys):
    import pandas as pd

    from csc_bayes.cli._common import OutputFormat, emit_frame

    columns = [f"a_rather_long_column_name_{i}" for i in range(8)]
    emit_frame(pd.DataFrame([range(8)], columns=columns), OutputFormat.table, title="wide")
    out = capsys.readouterr().out
    assert all(name in out for name in columns), out
    assert "…" not in out


def test_cli_fit_parses_draws_auto_and_the_cap(monkeypatch):
    import csc_bayes

    seen: dict = {}

    def fake_fit(spec, **kwargs):  # stands in for sampling: only what the command passes
        seen.update(kwargs)
        raise FitIntegrityError("stopped here by the test")

    monkeypatch.setattr(csc_bayes, "fit", fake_fit)
    args = ["fit", "cpp_need", "--draws", "AUTO", "--max-draws", "600", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "stopped here by the test" in result.stderr
    assert seen["draws"] == "auto" and seen["max_draws"] == 600
    CliRunner().invoke(app, ["fit", "cpp_need", "--draws", "250", "--no-progress"])
    assert seen["draws"] == 250 and seen["max_draws"] is None
    bad = CliRunner().invoke(app, ["fit", "cpp_need", "--draws", "lots"])
    assert bad.exit_code == 2 and "'auto'" in bad.output and "--draws" in bad.output
