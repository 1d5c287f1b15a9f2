"""A year whose sum over authorities no longer matches the published national total stops the
build, naming the file, column, year, both totals and the tolerance; documented differences
(``reconcile.KNOWN_DIFFERENCES``) are kept only while they stay what was documented."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.cli import app
from csc_bayes.data import build_panel
from csc_bayes.data import reconcile as rec
from csc_bayes.data.outcomes import Measure
from csc_bayes.data.sources import FILES
from csc_bayes.errors import DataFileError

CIN = FILES["cin"]


def measure(values: list[float | None], national: float, *, year: int = 2016) -> Measure:
    """A measure of one year: authority values (None: missing) and the national total."""
    las = pd.DataFrame(
        {
            "la_code": [str(300 + i) for i in range(len(values))],
            "year": year,
            "value": pd.array(values, dtype="Float64"),
        }
    )
    nat = pd.DataFrame({"year": [year], "value": [national]})
    return Measure("cin", f"/some/raw/{CIN}", "At31_episodes", las, nat)


# ---------------------------------------------------------------- without the official files


def test_statuses_and_the_tolerance():
    assert rec.reconcile(measure([500, 500], 1000))["status"].item() == "agrees"
    assert rec.reconcile(measure([500, 510.0], 1000))["status"].item() == "agrees"  # 10 + 0.5
    assert rec.reconcile(measure([500, 511.0], 1000))["status"].item() == "differs"
    assert rec.reconcile(measure([500, None], 1000))["status"].item() == "missing cells"
    assert rec.reconcile(measure([1500, None], 1000))["status"].item() == "differs"


def test_a_year_that_differs_is_an_error_naming_file_column_year_totals_tolerance():
    recon = rec.reconcile(measure([500, 5000], 1000))
    with pytest.raises(DataFileError) as info:
        rec.check_reconciliation(recon)
    message = str(info.value)
    assert CIN in message and "'At31_episodes'" in message and "cin" in message
    assert "in 2016" in message and "the authorities sum to 5,500" in message
    assert "the national total is 1,000" in message and "tolerance 10" in message
    assert "\n" not in message
    rec.check_reconciliation(rec.reconcile(measure([500, 500], 1000)))  # agrees: no error


def test_a_documented_difference_is_kept_only_while_it_is_the_documented_one(monkeypatch):
    known = rec.KnownDifference(CIN, "At31_episodes", 2016, 4500.0, "a documented revision")
    monkeypatch.setattr(rec, "KNOWN_DIFFERENCES", (known,))
    recon = rec.reconcile(measure([500, 5000], 1000))
    assert recon["status"].item() == "differs" and recon["note"].item() == known.reason
    rec.check_reconciliation(recon)  # documented: the build goes on
    changed = rec.reconcile(measure([500, 9000], 1000))  # the same year, a new discrepancy
    assert pd.isna(changed["note"].item())
    with pytest.raises(DataFileError, match="the authorities sum to 9,500"):
        rec.check_reconciliation(changed)


def test_the_current_files_need_no_documented_differences():
    assert rec.KNOWN_DIFFERENCES == ()  # if one is added, docs/data.md lists it


# ---------------------------------------------------------------- the official files


def leeds_2016(raw_dir: Path) -> tuple[list[bytes], int, int]:
    """The CIN file's lines, the index of Leeds's 2016 row and its At31_episodes field."""
    text = (raw_dir / CIN).read_bytes().splitlines(keepends=True)
    col = text[0].decode("utf-8-sig").strip().split(",").index("At31_episodes")
    for i, line in enumerate(text):
        if line.startswith(b"2016,") and b",383,E08000035,Leeds," in line:
            return text, i, col
    raise AssertionError("Leeds 2016 not found")


def damaged_cin(raw_dir: Path, tmp_path: Path, new_value) -> tuple[Path, int]:
    """A raw folder of links to the real files, but Leeds's 2016 CIN count is ``new_value``;
    returns the folder and the count it replaced."""
    text, i, col = leeds_2016(raw_dir)
    fields = text[i].decode().rstrip("\r\n").split(",")
    old = int(fields[col])
    fields[col] = str(new_value(old))
    text[i] = (",".join(fields) + "\n").encode()
    root = tmp_path / "raw"
    for name in set(FILES.values()):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == CIN:
            target.write_bytes(b"".join(text))
        else:
            target.symlink_to(raw_dir / name)
    return root, old


@pytest.mark.realdata
def test_the_real_files_reconcile(real_build):
    recon = real_build[1].reconciliation
    assert not (recon["status"] == "differs").any(), recon[recon["status"] == "differs"]
    assert len(real_build[0]) > 2000  # the build went through


@pytest.mark.realdata
def test_a_count_with_an_extra_digit_fails_the_cli_build(raw_dir, tmp_path, real_build):
    raw, old = damaged_cin(raw_dir, tmp_path, lambda v: v * 10)  # 5711 -> 57110
    recon = real_build[1].reconciliation
    real = recon[(recon["measure"] == "cin") & (recon["year"] == 2016)].iloc[0]
    assert real["status"] == "agrees"
    out = tmp_path / "panel.parquet"
    result = CliRunner().invoke(app, ["data", "build", "--raw", str(raw), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert not out.exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    message = errors[0]
    la_sum = int(real["la_sum"]) + 9 * old
    assert CIN in message and "'At31_episodes'" in message and "in 2016" in message
    assert f"the authorities sum to {la_sum:,}" in message
    assert f"the national total is {float(real['national']):,.0f}" in message
    assert f"tolerance {float(real['tolerance']):,.0f}" in message


@pytest.mark.realdata
def test_a_count_cut_by_a_digit_fails_build_panel(raw_dir, tmp_path):
    raw, _ = damaged_cin(raw_dir, tmp_path, lambda v: v // 10)  # 5711 -> 571
    with pytest.raises(DataFileError, match=r"cin: .* in 2016.*difference -5,1[0-9][0-9]"):
        build_panel(raw)
