"""Covariates of the panel: IoD 2019 deprivation, Census 2021 ethnicity, s251 spend per child.

Fast tests write tiny files in the documented layout to ``tmp_path``; ``realdata`` tests read
the official files once per session and check values against the source read here directly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from csc_bayes.data import deprivation, ethnicity, spending
from csc_bayes.data.covariates import covariates_for, normalise_name
from csc_bayes.data.schema import COVARIATES, MissingReason, missing_column
from csc_bayes.errors import DataFileError

WHITE_BRITISH = ethnicity.WHITE_BRITISH

# --------------------------------------------------------------------------- synthetic files


def _write_iod(path: Path, rows: list[tuple[str, str, object, object]], *, sheets=("IMD", "IDACI")):
    """rows: (code, name, imd score, idaci score)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    code, name = deprivation.CODE_COLUMN, deprivation.NAME_COLUMN
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"Notes": ["synthetic"]}).to_excel(writer, sheet_name="Notes", index=False)
        if "IMD" in sheets:
            pd.DataFrame(
                {
                    code: [r[0] for r in rows],
                    name: [r[1] for r in rows],
                    "IMD - Average rank ": range(len(rows)),
                    "IMD - Average score ": [r[2] for r in rows],
                }
            ).to_excel(writer, sheet_name="IMD", index=False)
        if "IDACI" in sheets:
            pd.DataFrame(
                {
                    code: ["E06000039" if r[0] == "E0600003" else r[0] for r in rows],
                    name: [r[1] for r in rows],
                    "IDACI - Average score ": [r[3] for r in rows],
                }
            ).to_excel(writer, sheet_name="IDACI", index=False)


def _write_ethnicity(path: Path, counts: dict[tuple[str, str], tuple[object, object]]):
    """counts: (code, name) -> (White British, all other groups together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for (code, name), (white, other) in counts.items():
        rows.append((code, name, "-8", "Does not apply", 0))
        rows.append((code, name, "13", WHITE_BRITISH, white))
        rows.append((code, name, "17", "White: Other White", other))
    pd.DataFrame(
        rows,
        columns=[
            ethnicity.CODE_COLUMN,
            ethnicity.NAME_COLUMN,
            ethnicity.GROUP_CODE_COLUMN,
            ethnicity.GROUP_COLUMN,
            ethnicity.COUNT_COLUMN,
        ],
    ).to_csv(path, index=False)


def _write_lait(path: Path, values: dict[tuple[str, str, int], str]):
    """values: (indicator, finance year, LA number) -> published text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "Short Desc": [k[0] for k in values],
            "Data item": "x",
            "Years": [k[1] for k in values],
            "LA and Regions": "somewhere",
            "Values": list(values.values()),
            "LA Number": [float(k[2]) for k in values],
            "Region": "NA",
        }
    ).to_parquet(path)


def _lait_year(la: int, finance_year: str, parts: tuple[str, str, str, str]):
    return {
        (ind, finance_year, la): v
        for ind, v in zip(spending.LAIT_INDICATORS.values(), parts, strict=True)
    }


def _write_s251(path: Path, la: str, totals: tuple[object, object, object, object], *, numbered):
    """One authority's four blocks plus an unrelated line, descriptions as the 2012-14 files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "Total Children Looked After",
        "Other children's and families services",
        "Total  Safeguarding Children and Young Peoples Services",
        "Total Family Support Services",
        "Youth Justice",
    ]
    rows = [
        (la, "Somewhere", n + 1, f"{n + 1} {d}" if numbered else d, v)
        for n, (d, v) in enumerate(zip(lines, [*totals, 999], strict=True))
    ]
    frame = pd.DataFrame(
        rows, columns=["LA", "LA Name", "LineNumber", "CYPServiceDescription", "TotalExpenditure"]
    )
    frame.to_csv(path, index=False, encoding="cp1252")


def _write_population(path: Path, rows: list[tuple[int, str, str]]):
    """rows: (mid-year, DfE number, 0-17 estimate as published)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "time_period": [r[0] for r in rows],
            "geographic_level": "Local authority",
            "old_la_code": [r[1] for r in rows],
            "population_estimate": [r[2] for r in rows],
        }
    ).to_csv(path, index=False)


@pytest.fixture
def tiny_raw(tmp_path: Path) -> Path:
    """A raw folder with every file covariates_for reads, for two authorities and Cumbria."""
    _write_iod(
        tmp_path / deprivation.IOD_FILE,
        [
            ("E08000035", "Leeds", 27.301, 0.2),
            ("E0600003", "Slough", 22.965, 0.147),
            ("E10000006", "Cumbria", 21.261, 0.138),
            ("E10000002", "Buckinghamshire", 10.052, 0.085),
        ],
    )
    _write_ethnicity(
        tmp_path / ethnicity.ETHNICITY_FILE,
        {
            ("E08000035", "Leeds"): (600, 200),
            ("E06000039", "Slough"): (100, 300),
            ("E06000063", "Cumberland"): (90, 10),
            ("E06000064", "Westmorland and Furness"): (190, 10),
            ("E06000060", "Buckinghamshire"): (70, 30),
        },
    )
    _write_lait(
        tmp_path / spending.LAIT_FILE,
        {
            **_lait_year(383, "2016-17 (OT)", ("100", "50", "30", "20")),
            **_lait_year(871, "2016-17 (OT)", ("10", "-", "3", "2")),
        },
    )
    _write_lait(
        tmp_path / spending.LAIT_2015_FILE,
        {
            **_lait_year(383, "2015-16 (OT)", ("1E2", "50", "30", "20")),
            **_lait_year(383, "2016-17 (OT)", ("1", "1", "1", "1")),  # superseded by the newer
        },
    )
    _write_s251(tmp_path / spending.S251_FILES[2013], "383", (80, 40, 20, 10), numbered=True)
    _write_s251(tmp_path / spending.S251_FILES[2014], "383", (90, 40, 20, 10), numbered=False)
    _write_population(
        tmp_path / spending.POPULATION_FILE,
        [
            (2012, "383", "10"),
            (2013, "383", "10"),
            (2015, "383", "20"),
            (2016, "383", "40"),
            (2016, "871", "5"),
        ],
    )
    return tmp_path


def _units(rows: list[tuple[str, str, str, int]], index=None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["la_code", "ons_code", "la_name", "year"])
    if index is not None:
        frame.index = index
    return frame


# --------------------------------------------------------------------------- fast unit tests


def test_interface_keeps_rows_index_and_order_and_types(tiny_raw: Path):
    units = _units(
        [
            ("383", "E08000035", "Leeds", 2017),
            ("871", "E06000039", "Slough", 2012),
            ("383", "E08000035", "Leeds", 2013),
        ],
        index=[30, 10, 20],
    )
    out = covariates_for(units, tiny_raw)
    assert list(out.index) == [30, 10, 20]
    assert list(out.columns) == [*COVARIATES, *(missing_column(c) for c in COVARIATES)]
    for name in COVARIATES:
        assert out[name].dtype == "Float64"
        assert out[missing_column(name)].dtype == "string"
    assert out["imd"].tolist() == [27.301, 22.965, 27.301]


def test_spend_per_child_is_sum_of_four_blocks_over_mid_year_population(tiny_raw: Path):
    units = _units([("383", "E08000035", "Leeds", y) for y in (2013, 2014, 2015, 2016, 2017)])
    out = covariates_for(units, tiny_raw)
    # 2013: s251 2012-13 (80+40+20+10)/pop mid-2012 (10); 2014: (90+40+20+10)/10;
    # 2016: LAIT 2015-16 (100+50+30+20)/pop mid-2015 (20); 2017: newest LAIT (200)/40
    assert out["spend_per_child"].tolist()[:2] == [15.0, 16.0]
    assert pd.isna(out["spend_per_child"].iloc[2])
    assert out["spend_per_child_missing"].iloc[2] == MissingReason.NO_SOURCE
    assert out["spend_per_child"].tolist()[3:] == [10.0, 5.0]
    assert out["spend_per_child_missing"].isna().tolist() == [True, True, False, True, True]


def test_spend_missing_block_or_population_gets_a_reason_not_zero(tiny_raw: Path):
    units = _units([("871", "E06000039", "Slough", 2017), ("383", "E08000035", "Leeds", 2015)])
    out = covariates_for(units, tiny_raw)
    assert out["spend_per_child"].isna().all()
    assert out["spend_per_child_missing"].tolist() == ["not_available", "no_source"]


def test_slough_code_misprint_is_repaired(tiny_raw: Path):
    iod = deprivation.read_iod(tiny_raw / deprivation.IOD_FILE)
    slough = iod.set_index("code").loc["E06000039"]
    assert (slough["name"], slough["imd"], slough["idaci"]) == ("Slough", 22.965, 0.147)
    assert "E0600003" not in set(iod["code"])


def test_other_malformed_code_is_an_error(tmp_path: Path):
    path = tmp_path / "iod.xlsx"
    _write_iod(path, [("E0800003", "Leeds", 27.3, 0.2)])
    with pytest.raises(DataFileError, match=r"malformed ONS code for 'Leeds'.*row 2.*E0800003"):
        deprivation.read_iod(path)


def test_missing_sheet_names_file_and_sheet(tmp_path: Path):
    path = tmp_path / "iod_no_idaci.xlsx"
    _write_iod(path, [("E08000035", "Leeds", 27.3, 0.2)], sheets=("IMD",))
    with pytest.raises(DataFileError, match=r"sheet 'IDACI' not found.*iod_no_idaci\.xlsx"):
        deprivation.read_iod(path)


def test_missing_column_names_file_sheet_and_column(tmp_path: Path):
    path = tmp_path / "iod_bad_column.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame(
            {deprivation.CODE_COLUMN: ["E08000035"], deprivation.NAME_COLUMN: ["Leeds"]}
        ).to_excel(writer, sheet_name="IMD", index=False)
    with pytest.raises(DataFileError, match=r"iod_bad_column\.xlsx sheet IMD.*IMD - Average score"):
        deprivation.read_iod(path)


def test_unknown_marker_in_a_score_names_row_and_value(tmp_path: Path):
    path = tmp_path / "iod_junk.xlsx"
    _write_iod(path, [("E08000035", "Leeds", 27.3, 0.2), ("E06000001", "Hartlepool", "#REF!", 0.3)])
    with pytest.raises(DataFileError, match=r"row 3.*IMD - Average score.*'#REF!'"):
        deprivation.read_iod(path)


def test_unknown_marker_in_lait_values_names_record_and_value(tmp_path: Path):
    path = tmp_path / "lait.parquet"
    _write_lait(path, _lait_year(383, "2016-17 (OT)", ("100", "50", "#VALUE!", "20")))
    with pytest.raises(DataFileError, match=r"lait\.parquet, row 3, column 'Values'.*#VALUE!"):
        spending.read_lait_finance(path)


def test_unknown_marker_in_census_count_names_row(tmp_path: Path):
    path = tmp_path / "eth.csv"
    _write_ethnicity(path, {("E08000035", "Leeds"): (600, "lots")})
    with pytest.raises(DataFileError, match=r"eth\.csv, row 4, column 'Observation'.*'lots'"):
        ethnicity.read_ethnicity(path)


def test_census_missing_column_names_it(tmp_path: Path):
    path = tmp_path / "eth.csv"
    pd.DataFrame({"code": ["E08000035"], "Observation": [1]}).to_csv(path, index=False)
    with pytest.raises(DataFileError, match=r"eth\.csv.*2023 Upper tier local authorities Code"):
        ethnicity.read_ethnicity(path)


def test_s251_lines_found_by_description_and_missing_line_is_an_error(tmp_path: Path):
    good = tmp_path / "ok.csv"
    _write_s251(good, "383", (80, 40, 20, 10), numbered=True)
    got = spending.read_s251_outturn(good, year=2013).set_index("component")["value"]
    assert got.to_dict() == {
        "looked_after": 80,
        "other_children_family": 40,
        "safeguarding": 20,
        "family_support": 10,
    }
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(good, encoding="cp1252")
    frame[frame["CYPServiceDescription"] != "4 Total Family Support Services"].to_csv(bad)
    with pytest.raises(DataFileError, match=r"authority 383 lacks one of the s251 lines.*bad\.csv"):
        spending.read_s251_outturn(bad, year=2013)


def test_reporting_year_of_finance_year():
    assert spending.reporting_year("2016-17 (OT)") == 2017
    with pytest.raises(ValueError, match="2016-18"):
        spending.reporting_year("2016-18 (OT)")


def test_cumbria_share_adds_successor_counts(tiny_raw: Path):
    units = _units(
        [("909", "E10000006", "Cumbria", 2020), ("942", "E06000063", "Cumberland", 2024)]
    )
    out = covariates_for(units, tiny_raw)
    # Cumbria: (10 + 10) / (100 + 200), not the mean of 0.1 and 0.05
    assert out["ethnic_minority_share"].tolist() == pytest.approx([20 / 300, 10 / 100])
    # IoD has Cumbria only: Cumberland takes its predecessor's scores
    assert out["imd"].tolist() == [21.261, 21.261]


def test_code_changes_match_both_codes_and_names_are_a_fallback(tiny_raw: Path):
    units = _units(
        [
            ("825", "E10000002", "Buckinghamshire", 2019),
            ("825", "E06000060", "Buckinghamshire", 2021),
            ("871", pd.NA, "Slough", 2021),
        ]
    )
    out = covariates_for(units, tiny_raw)
    assert out["idaci"].tolist() == [0.085, 0.085, 0.147]
    assert out["ethnic_minority_share"].tolist() == pytest.approx([0.3, 0.3, 0.75])


def test_authority_no_source_covers_gets_a_reason(tiny_raw: Path):
    units = _units([("999", "E06009999", "Atlantis", 2017)])
    out = covariates_for(units, tiny_raw)
    for name in COVARIATES:
        assert pd.isna(out[name].iloc[0])
        assert out[missing_column(name)].iloc[0] == MissingReason.NOT_AVAILABLE


def test_missing_input_file_is_named(tiny_raw: Path):
    (tiny_raw / ethnicity.ETHNICITY_FILE).unlink()
    units = _units([("383", "E08000035", "Leeds", 2017)])
    with pytest.raises(DataFileError, match=r"ons-ethnic-population-la\.csv"):
        covariates_for(units, tiny_raw)


def test_units_without_required_column_is_an_error(tiny_raw: Path):
    with pytest.raises(DataFileError, match="ons_code"):
        covariates_for(
            pd.DataFrame({"la_code": ["383"], "la_name": ["Leeds"], "year": [2017]}), tiny_raw
        )


def test_normalise_name():
    assert normalise_name("Bristol, City of") == normalise_name("Bristol") == "bristol"
    assert normalise_name("St. Helens") == "st helens"
    assert normalise_name("Herefordshire, County of") == "herefordshire"


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="session")
def real_units(raw_dir: Path) -> pd.DataFrame:
    """Every authority-year 2013-2025 as the DfE population file lists it (mid-(t-1) -> t)."""
    pop = pd.read_csv(raw_dir / spending.POPULATION_FILE, dtype=str)
    pop = pop[pop["geographic_level"] == "Local authority"]
    return pd.DataFrame(
        {
            "la_code": pop["old_la_code"],
            "ons_code": pop["new_la_code"],
            "la_name": pop["la_name"],
            "year": pop["time_period"].astype(int) + 1,
        }
    ).reset_index(drop=True)


@pytest.fixture(scope="session")
def real_covariates(real_units: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    return pd.concat([real_units, covariates_for(real_units, raw_dir)], axis=1)


@pytest.fixture(scope="session")
def iod_sheets(raw_dir: Path) -> dict[str, pd.DataFrame]:
    path = raw_dir / deprivation.IOD_FILE
    return {s: pd.read_excel(path, sheet_name=s) for s in ("IMD", "IDACI")}


def _source_score(sheets: dict[str, pd.DataFrame], sheet: str, name: str) -> float:
    frame = sheets[sheet]
    names = frame.iloc[:, 1].astype(str).str.strip()
    score = next(c for c in frame.columns if c.strip() == f"{sheet} - Average score")
    return float(frame.loc[names == name, score].iloc[0])


@pytest.mark.realdata
def test_real_slough_found_despite_misprint(real_covariates, iod_sheets):
    slough = real_covariates[(real_covariates["la_code"] == "871")]
    assert len(slough) > 10
    assert (slough["imd"] == _source_score(iod_sheets, "IMD", "Slough")).all()
    assert (slough["idaci"] == _source_score(iod_sheets, "IDACI", "Slough")).all()


@pytest.mark.realdata
def test_real_buckinghamshire_same_idaci_under_both_codes(raw_dir: Path, iod_sheets):
    units = _units(
        [
            ("825", "E10000002", "Buckinghamshire", 2019),
            ("825", "E06000060", "Buckinghamshire", 2021),
        ]
    )
    out = covariates_for(units, raw_dir)
    assert out["idaci"].tolist() == [_source_score(iod_sheets, "IDACI", "Buckinghamshire")] * 2
    assert out["ethnic_minority_share"].iloc[0] == out["ethnic_minority_share"].iloc[1]


@pytest.mark.realdata
def test_real_every_2024_authority_has_deprivation_and_ethnicity(real_covariates, iod_sheets):
    y2024 = real_covariates[real_covariates["year"] == 2024]
    assert 150 <= len(y2024) <= 155
    for name in ("idaci", "imd", "ethnic_minority_share"):
        assert y2024[name].notna().all(), y2024.loc[y2024[name].isna(), "la_name"].tolist()
        assert y2024[missing_column(name)].isna().all()
    by_name = y2024.set_index("la_name")
    for la in ("Leeds", "Cornwall", "Tower Hamlets", "Kent"):
        assert by_name.loc[la, "imd"] == _source_score(iod_sheets, "IMD", la)
        assert by_name.loc[la, "idaci"] == _source_score(iod_sheets, "IDACI", la)
    assert (
        0 < y2024["ethnic_minority_share"].min() < 0.1 < 0.6 < y2024["ethnic_minority_share"].max()
    )


@pytest.mark.realdata
def test_real_cumbria_share_is_cumberland_plus_westmorland_counts(real_covariates, raw_dir):
    census = pd.read_csv(raw_dir / ethnicity.ETHNICITY_FILE)
    census = census[census[ethnicity.GROUP_CODE_COLUMN] != -8]
    parts = census[census[ethnicity.NAME_COLUMN].isin(["Cumberland", "Westmorland and Furness"])]
    white = parts.loc[parts[ethnicity.GROUP_COLUMN] == WHITE_BRITISH, "Observation"].sum()
    total = parts["Observation"].sum()
    cumbria = real_covariates.loc[real_covariates["la_code"] == "909", "ethnic_minority_share"]
    assert len(cumbria) > 5
    assert cumbria.to_numpy() == pytest.approx((total - white) / total, rel=1e-12)


@pytest.mark.realdata
def test_real_spend_per_child_plausible_and_explained(real_covariates):
    spend = real_covariates["spend_per_child"]
    present = spend.notna()
    assert present.sum() > 1400
    # £ per child aged 0-17, cash: hundreds to a few thousand (City of London is the highest)
    assert spend[present].between(200, 7000).all()
    assert real_covariates.loc[~present, "spend_per_child_missing"].notna().all()
    assert (
        real_covariates.loc[real_covariates["year"] == 2015, "spend_per_child_missing"]
        == MissingReason.NO_SOURCE
    ).all()
    assert (
        real_covariates.loc[real_covariates["year"] == 2025, "spend_per_child_missing"]
        == MissingReason.NO_SOURCE
    ).all()


@pytest.mark.realdata
def test_real_spend_spot_check_against_lait_and_population(real_covariates, raw_dir):
    lait = pd.read_parquet(raw_dir / spending.LAIT_FILE)
    leeds = lait[
        (lait["LA Number"] == 383)
        & (lait["Years"] == "2018-19 (OT)")
        & lait["Short Desc"].isin(list(spending.LAIT_INDICATORS.values()))
    ]
    assert len(leeds) == 4
    pop = pd.read_csv(raw_dir / spending.POPULATION_FILE, dtype=str)
    children = float(
        pop.loc[
            (pop["old_la_code"] == "383") & (pop["time_period"] == "2018"), "population_estimate"
        ].iloc[0]
    )
    expected = leeds["Values"].astype(float).sum() / children
    got = real_covariates.loc[
        (real_covariates["la_code"] == "383") & (real_covariates["year"] == 2019), "spend_per_child"
    ]
    assert got.iloc[0] == pytest.approx(expected, rel=1e-12)
