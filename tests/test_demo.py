"""The README's first command: `csc-bayes demo` on the embedded synthetic panel (quick mode)."""

from __future__ import annotations

from typer.testing import CliRunner

from csc_bayes.cli import app


def test_demo_quick_runs_the_whole_pipeline_and_says_synthetic(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count("SYNTHETIC DATA") >= 2  # said at the start and again at the end
    assert "cpp ~ idaci + ethnic_minority_share + offset(log(population))" in out
    assert "Convergence gate: FAILED" in out  # 2 chains x 300 draws cannot pass, and says so
    for heading in ("Variance explained", "Highest excess", "Largest shortfall", "Leeds"):
        assert heading in out
    assert (tmp_path / "caterpillar.png").stat().st_size > 10_000
    report = (tmp_path / "report.html").read_text()
    assert "SYNTHETIC DATA" in report
    runs = list((tmp_path / "fits" / "cpp_need").iterdir())
    assert len(runs) == 1 and (runs[0] / "posterior.nc").is_file()
    assert list((tmp_path / "fits" / "cpp_null").iterdir())  # the null model for comparison

    again = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert len(list((tmp_path / "fits" / "cpp_need").iterdir())) == 1  # reused, not refitted
