"""A user's own columns (`--extra`): tables keyed by la_code or ons_code joined to the panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.cli import app
from csc_bayes.data import (
    add_extra,
    extra_summary,
    join_extra,
    load_panel,
    save_panel,
    validate_panel,
)
from csc_bayes.data.sources import sha256_file
from csc_bayes.errors import DataFileError, PanelValidationError
from csc_bayes.simulate import simulate_panel


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """A small synthetic panel on real DfE numbers: 40 authorities, 2019-2023."""
    full = simulate_panel(seed=5, first_year=2019, last_year=2023).panel
    keep = full["la_code"].isin([*full["la_code"].unique()[:36], "383", "825", "390", "838"])
    return validate_panel(full[keep])


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cell(panel: pd.DataFrame, la_code: str, year: int, column: str):
    row = panel.loc[(panel["la_code"] == la_code) & (panel["year"] == year), column]
    assert len(row) == 1
    return row.iloc[0]


def test_yearly_table_keyed_by_la_code(panel, tmp_path):
    path = write(
        tmp_path,
        "workforce.csv",
        "la_code,year,social_workers,caseload\n"
        "383,2020,100,15.5\n"
        "383,2021,110,c\n"
        "825,2021,1,200\n"  # 2021 is covered; Leeds 2022 is not in the table
        "383,2022,,12\n"
        "201,2021,5,1\n",  # City of London: not a panel unit, not joined (counted)
    )
    out = add_extra(panel, path)
    assert out["social_workers"].dtype == "Int64"  # whole numbers: usable as a count
    assert out["caseload"].dtype == "Float64"
    assert cell(out, "383", 2020, "social_workers") == 100
    assert pd.isna(cell(out, "383", 2020, "social_workers_missing"))
    assert cell(out, "383", 2021, "caseload_missing") == "suppressed"
    assert cell(out, "383", 2022, "social_workers_missing") == "not_available"  # empty cell
    # an authority-year the table lacks: missing with a reason, never 0, never a dropped row
    assert pd.isna(cell(out, "825", 2020, "social_workers"))
    assert cell(out, "825", 2020, "social_workers_missing") == "not_in_extra_table"
    assert cell(out, "390", 2021, "caseload_missing") == "not_in_extra_table"
    # a year the table has no row for at all: no source for it
    assert cell(out, "383", 2019, "social_workers_missing") == "no_source"
    assert len(out) == len(panel)
    (record,) = out.attrs["extra_files"]
    assert record["columns"] == ["social_workers", "caseload"]
    assert record["sha256"] == sha256_file(path) and record["file"] == str(path.resolve())
    assert record["key"] == "la_code" and record["yearly"] and record["unused_rows"] == 1
    summary = extra_summary(out).set_index("column")
    assert summary.loc["social_workers", "rows_not_joined"] == 1
    assert summary.loc["caseload", "with_value"] == 3


def test_static_table_keyed_by_ons_code_former_codes_resolve(panel, tmp_path):
    path = write(
        tmp_path,
        "rural.csv",
        "ons_code,la_name,rurality\n"
        "E10000002,Buckinghamshire (county code until 2020),3\n"  # former code of 825
        "e08000035,Leeds,1\n"  # case does not matter
        "E08000020,Gateshead (code until 2013),2\n",  # former code of 390
    )
    out = add_extra(panel, path)
    for code, value in (("825", 3), ("383", 1), ("390", 2)):
        rows = out.loc[out["la_code"] == code]
        assert (rows["rurality"] == value).all()  # the same value every year
        assert len(rows) == panel["year"].nunique()
        assert rows["rurality_missing"].isna().all()
    assert out["rurality"].dtype == "Int64"
    assert "la_name" not in out.attrs["extra_files"][0]["columns"]
    other = out.loc[~out["la_code"].isin(["825", "383", "390"])]
    assert other["rurality"].isna().all()
    assert (other["rurality_missing"] == "not_in_extra_table").all()


def test_parquet_table_with_nulls_keeps_integers(panel, tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame(
        {"la_code": [383, 825], "year": [2020, 2020], "count_x": [4.0, None], "share": [0.2, 0.5]}
    ).to_parquet(path)
    out = add_extra(panel, path)
    assert out["count_x"].dtype == "Int64" and cell(out, "383", 2020, "count_x") == 4
    assert cell(out, "825", 2020, "count_x_missing") == "not_available"
    assert cell(out, "825", 2020, "share") == 0.5


def test_both_keys_must_agree(panel, tmp_path):
    ok = write(tmp_path, "ok.csv", "la_code,ons_code,v\n825,E06000060,1\n383,,2\n")
    assert cell(add_extra(panel, ok), "825", 2019, "v") == 1
    bad = write(tmp_path, "bad.csv", "la_code,ons_code,v\n825,E06000060,1\n383,E08000036,2\n")
    with pytest.raises(DataFileError, match="not a code of authority 383") as err:
        add_extra(panel, bad)
    assert err.value.row == 3 and err.value.column == "ons_code"


def test_save_load_keeps_columns_and_their_provenance(panel, tmp_path):
    path = write(tmp_path, "x.csv", "la_code,year,v\n383,2020,7\n")
    out = add_extra(panel, path)
    back = load_panel(save_panel(out, tmp_path / "p.parquet"))
    pd.testing.assert_frame_equal(back, out)
    assert back.attrs["extra_files"] == out.attrs["extra_files"]
    assert back["v"].dtype == "Int64"
    # a second file adds to the record; the same columns again are a clash naming the first file
    other = write(tmp_path, "y.csv", "la_code,w\n383,1.5\n")
    both = add_extra(back, other)
    assert [r["columns"] for r in both.attrs["extra_files"]] == [["v"], ["w"]]
    with pytest.raises(DataFileError, match=r"already in the panel \(from extra file .*x\.csv"):
        add_extra(both, path)


def test_join_extra_checks_every_table_before_joining(panel, tmp_path):
    a = write(tmp_path, "a.csv", "la_code,year,v\n383,2020,7\n")
    b = write(tmp_path, "b.csv", "la_code,w\n383,1\n")
    out = join_extra(panel, [a, b])
    assert [r["columns"] for r in out.attrs["extra_files"]] == [["v"], ["w"]]
    again = write(tmp_path, "again.csv", "ons_code,v\nE08000035,1\n")
    with pytest.raises(DataFileError, match=r"'v' is already in the panel \(from extra file"):
        join_extra(panel, [a, again])
    assert "v" not in panel.columns and "extra_files" not in panel.attrs  # input untouched


def test_validation_applies_the_missing_value_rules_to_extra_columns(panel, tmp_path):
    out = add_extra(panel, write(tmp_path, "x.csv", "la_code,year,v\n383,2020,7\n"))
    broken = out.copy()
    broken.loc[broken["v"].notna(), "v_missing"] = "not_available"
    with pytest.raises(PanelValidationError, match="v has a value and a missing reason"):
        validate_panel(broken)
    broken = out.copy()
    broken["v_missing"] = broken["v_missing"].where(broken["v"].notna(), "made_up")
    with pytest.raises(PanelValidationError, match="unknown missing reason 'made_up'"):
        validate_panel(broken)
    broken = out.drop(columns="v_missing")
    with pytest.raises(PanelValidationError, match="'v_missing'"):
        validate_panel(broken)
    # a column dropped on purpose drops its provenance record too
    assert validate_panel(out.drop(columns=["v", "v_missing"])).attrs["extra_files"] == []


BAD = {
    # name: (file text, what the message must name)
    "unknown_la_code": (
        "la_code,year,v\n383,2020,1\n999,2020,2\n",
        ["matches no authority", "row 3", "'la_code'", "'999'"],
    ),
    "unknown_ons_code": (
        "ons_code,v\nE08000035,1\nE99999999,2\n",
        ["matches no authority", "row 3", "'ons_code'", "'E99999999'"],
    ),
    "duplicate_key": (
        "la_code,v\n383,1\n825,2\n383,3\n",
        ["duplicated key", "383", "rows [2, 4]", "row 4", "'la_code'"],
    ),
    "duplicate_key_year_via_former_code": (
        "ons_code,year,v\nE10000002,2020,1\nE06000060,2020,2\n",
        ["duplicated key", "825", "2020", "row 3", "'ons_code'", "'E06000060'"],
    ),
    "non_numeric_cell": (
        "la_code,year,v\n383,2020,1\n383,2021,#VALUE!\n",
        ["unrecognised value", "row 3", "column 'v'", "'#VALUE!'"],
    ),
    "clash_with_panel_column": (
        "la_code,year,cpp\n383,2020,1\n",
        ["'cpp' is already in the panel", "row 1", "column 'cpp'"],
    ),
    "clash_with_missing_companion": (
        "la_code,year,idaci_missing\n383,2020,1\n",
        ["reserved", "row 1", "column 'idaci_missing'"],
    ),
    "not_an_identifier": (
        "la_code,year,social workers\n383,2020,1\n",
        ["not a valid identifier", "row 1", "column 'social workers'"],
    ),
    "starts_with_digit": (
        "la_code,2nd_measure\n383,1\n",
        ["not a valid identifier", "column '2nd_measure'"],
    ),
    "bad_year": (
        "la_code,year,v\n383,2020,1\n383,2021-22,2\n",
        ["4-digit reporting year", "row 3", "column 'year'", "'2021-22'"],
    ),
    "no_key": ("authority,v\nLeeds,1\n", ["needs a key column", "'la_code'", "'ons_code'"]),
    "semicolons": (
        "la_code;year;v\n383;2020;1\n",
        ["not comma-separated", "semicolons", "UTF-8"],
    ),
    "short_row": (
        "la_code,year,v\n383,2020,1\n825,2020\n383,2021,3\n",
        ["2 fields but the header has 3", "row 3", "'825,2020'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_table_is_an_error_naming_file_row_column_value(panel, tmp_path, case):
    text, expected = BAD[case]
    path = write(tmp_path, f"{case}.csv", text)
    with pytest.raises(DataFileError) as err:
        add_extra(panel, path)
    message = str(err.value)
    assert f"{case}.csv" in message
    for part in expected:
        assert part in message, (part, message)


@pytest.fixture(scope="module")
def saved_panel(panel, tmp_path_factory) -> Path:
    return save_panel(panel, tmp_path_factory.mktemp("saved") / "panel.parquet")


def test_cli_join_adds_columns_to_a_saved_panel(saved_panel, tmp_path):
    a = write(tmp_path, "a.csv", "la_code,year,v\n383,2020,7\n")
    b = write(tmp_path, "b.csv", "ons_code,w\nE10000002,0.5\n")
    out = tmp_path / "with_extra.parquet"
    args = ["data", "join", str(saved_panel), "--extra", str(a), "--extra", str(b)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Your own columns" in result.output and "not_in_extra_table" in result.output
    panel = load_panel(out)
    assert cell(panel, "383", 2020, "v") == 7 and cell(panel, "825", 2023, "w") == 0.5
    assert [r["columns"] for r in panel.attrs["extra_files"]] == [["v"], ["w"]]


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_join_bad_table_exits_nonzero_with_the_message_and_no_traceback(
    saved_panel, tmp_path, case
):
    text, expected = BAD[case]
    path = write(tmp_path, f"{case}.csv", text)
    out = tmp_path / "out.parquet"
    args = ["data", "join", str(saved_panel), "--extra", str(path), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error:")
    assert f"{case}.csv" in result.stderr
    for part in expected:
        assert part in result.stderr, (part, result.stderr)
    assert not out.exists()


# ------------------------------------------------------------------ with the official files


@pytest.fixture(scope="module")
def extra_tables(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("extra")
    yearly = write(
        folder,
        "yearly.csv",
        "la_code,year,caseworkers\n383,2023,250\n383,2024,260\n942,2024,40\n909,2024,1\n",
    )
    static = write(folder, "static.csv", "ons_code,rural_share\nE10000002,0.4\nE10000009,0.6\n")
    return [yearly, static]


@pytest.fixture(scope="module")
def built_with_extra(raw_dir, extra_tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "panel.parquet"
    args = ["data", "build", "--raw", str(raw_dir), "--out", str(out)]
    for path in extra_tables:
        args += ["--extra", str(path)]
    return CliRunner().invoke(app, args), out


@pytest.mark.realdata
def test_cli_build_with_extra_tables(built_with_extra, extra_tables):
    result, out = built_with_extra
    assert result.exit_code == 0, result.output
    assert "Your own columns" in result.output
    missing_table = result.output.split("Missing cells by column")[1].split("Excluded")[0]
    assert "rural_share" in missing_table and "not_in_extra_table" in missing_table
    panel = load_panel(out)
    assert cell(panel, "383", 2024, "caseworkers") == 260
    assert cell(panel, "942", 2024, "caseworkers") == 40  # Cumberland, from 2024
    assert cell(panel, "383", 2022, "caseworkers_missing") == "no_source"
    assert cell(panel, "825", 2024, "caseworkers_missing") == "not_in_extra_table"
    assert panel["caseworkers"].dtype == "Int64"
    # Cumbria 909 ended in 2023: its 2024 row is not joined (nor an error), and counted
    record = panel.attrs["extra_files"][0]
    assert record["unused_rows"] == 1 and record["sha256"] == sha256_file(extra_tables[0])
    bucks = panel.loc[panel["la_code"] == "825"]
    assert (bucks["rural_share"] == 0.4).all() and len(bucks) == 16  # static, 2010-2025
    old_dorset = panel.loc[panel["la_code"] == "835"]
    assert (old_dorset["rural_share"] == 0.6).all()  # E10000009: former Dorset county
    new_dorset = panel.loc[panel["la_code"] == "838"]
    assert (new_dorset["rural_share_missing"] == "not_in_extra_table").all()


@pytest.mark.realdata
def test_cli_build_bad_extra_fails_before_reading_official_files(raw_dir, tmp_path):
    bad = write(tmp_path, "bad.csv", "la_code,year,v\n383,2020,1\n383,2020,2\n")
    out = tmp_path / "p.parquet"
    args = ["data", "build", "--raw", str(raw_dir), "--out", str(out), "--extra", str(bad)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "bad.csv" in result.stderr and "row 3" in result.stderr and "'383'" in result.stderr
    assert not out.exists()
