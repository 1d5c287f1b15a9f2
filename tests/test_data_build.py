"""The panel built from the official files, checked against values the tests read themselves."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.data import load_panel, save_panel
from csc_bayes.data.flows import FLOWS
from csc_bayes.data.schema import OUTCOMES, REGIONS
from csc_bayes.data.sources import FILES
from csc_bayes.errors import PanelValidationError

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="session")
def built(real_build):
    return real_build  # one build of the official files per test session (conftest)


@pytest.fixture(scope="session")
def panel(built):
    return built[0]


def source(raw_dir, key: str) -> pd.DataFrame:
    """A source file as text, read directly (not through csc_bayes)."""
    return pd.read_csv(raw_dir / FILES[key], dtype=str, keep_default_na=False, encoding="utf-8-sig")


def cell(panel: pd.DataFrame, la_code: str, year: int, column: str):
    row = panel.loc[(panel["la_code"] == la_code) & (panel["year"] == year)]
    assert len(row) == 1, f"expected one row for {la_code} {year}"
    return row[column].iloc[0]


def test_cla_rates_match_published_rate_per_10000(panel, raw_dir):
    new = source(raw_dir, "cla_ees_2025")
    old = source(raw_dir, "cla_ees_2023").rename(columns={"population_count": "population_type"})
    pub = pd.concat([old[old["time_period"].isin(["2019", "2020"])], new])
    pub = pub[
        pub["geographic_level"].eq("Local authority")
        & pub["population_type"].str.contains("31 March")
        & pub["rate_per_10000"].str.fullmatch(r"\d+")
    ]
    pub = pub.assign(
        year=pub["time_period"].astype(int),
        la_code=pub["old_la_code"],
        published=pub["rate_per_10000"].astype(float),
    )[["la_code", "year", "published"]]
    m = panel.merge(pub, on=["la_code", "year"])
    m = m[m["cla"].notna() & m["population"].notna()]
    rate = m["cla"].astype(float) / m["population"].astype(float) * 10_000
    agree = (rate - m["published"]).abs() <= 0.5 + 1e-9  # published rates are whole numbers
    assert len(m) >= 850  # about 150 authorities x 6 years (2019-2024)
    assert agree.mean() >= 0.95, m.loc[~agree.to_numpy()].head()


def test_la_sums_reconcile_with_national_totals(built, raw_dir):
    recon = built[1].reconciliation
    assert set(recon["measure"]) == {*OUTCOMES, "population", *FLOWS}  # flows: data/flows.py
    assert not (recon["status"] == "differs").any(), recon[recon["status"] == "differs"]
    # an independent check of one complete year, read straight from the file
    b1 = source(raw_dir, "cin")
    y16 = b1[b1["time_period"] == "2016"]
    la_sum = y16.loc[y16["geographic_level"] == "Local authority", "At31_episodes"].astype(int)
    national = int(y16.loc[y16["geographic_level"] == "National", "At31_episodes"].iloc[0])
    row = recon[(recon["measure"] == "cin") & (recon["year"] == 2016)].iloc[0]
    assert row["la_sum"] == la_sum.sum() and row["national"] == national
    assert abs(la_sum.sum() - national) <= 10 + 0.0005 * national
    assert row["status"] == "agrees"


def test_leeds_matches_the_source_files(panel, raw_dir):
    for key, column, panel_col in [
        ("cin", "At31_episodes", "cin"),
        ("cpp", "CPP_At31", "cpp"),
        ("s47", "Section47", "s47"),
        ("referrals", "referral_count", "referrals"),
    ]:
        f = source(raw_dir, key)
        leeds = f[(f["old_la_code"] == "383") & (f["geographic_level"] == "Local authority")]
        for year in (2013, 2019, 2024):
            expected = int(leeds.loc[leeds["time_period"] == str(year), column].iloc[0])
            assert cell(panel, "383", year, panel_col) == expected
    pop = source(raw_dir, "population")
    expected = int(
        pop.loc[
            (pop["old_la_code"] == "383") & (pop["time_period"] == "2023"), "population_estimate"
        ].iloc[0]
    )
    assert cell(panel, "383", 2024, "population") == expected  # mid-2023 -> year 2024
    sfr = source(raw_dir, "sfr_2010")
    row = sfr[sfr["geog_c"] == "383"].iloc[0]
    assert cell(panel, "383", 2010, "cla") == int(row["MarTotal_2010"])
    assert cell(panel, "383", 2010, "population") == int(row["Mid2009Pop0-17"])


def test_hackney_2021_2022_missing_with_reason(panel, raw_dir):
    b1 = source(raw_dir, "cin")
    assert set(
        b1.loc[
            (b1["old_la_code"] == "204") & b1["time_period"].isin(["2021", "2022"]), "At31_episodes"
        ]
    ) == {"x"}
    for year in (2021, 2022):
        for col in ("cin", "cpp", "s47"):
            assert pd.isna(cell(panel, "204", year, col))
            assert cell(panel, "204", year, f"{col}_missing") == "not_available"
        assert cell(panel, "204", year, "cla") > 0  # CLA is a different return


def test_buckinghamshire_continuous_across_code_change(panel, raw_dir):
    bucks = panel[panel["la_code"] == "825"].set_index("year")
    assert bucks.index.tolist() == list(range(2010, 2026))
    assert bucks.loc[2013, "ons_code"] == "E10000002" and bucks.loc[2024, "ons_code"] == "E06000060"
    sfr = source(raw_dir, "sfr_2016")
    assert bucks.loc[2016, "cla"] == int(sfr.loc[sfr["geog_c"] == "825", "CLA_Mar2016"].iloc[0])
    assert bucks.loc[2010:2024, "cla"].notna().all()


def test_boundary_changes_give_each_unit_its_years(panel):
    years = panel.groupby("la_code")["year"].agg(["min", "max"])
    assert tuple(years.loc["909"]) == (2010, 2023)  # Cumbria
    assert tuple(years.loc["942"]) == (2024, 2025)  # Cumberland
    assert tuple(years.loc["943"]) == (2024, 2025)  # Westmorland and Furness
    assert tuple(years.loc["928"]) == (2010, 2021)  # Northamptonshire
    assert tuple(years.loc["940"]) == (2022, 2025)
    for old in ("835", "836", "837"):
        assert tuple(years.loc[old]) == (2010, 2019)
    for new in ("838", "839"):
        assert tuple(years.loc[new]) == (2020, 2025)


def test_cumberland_2024_matches_source(panel, raw_dir):
    b1 = source(raw_dir, "cin")
    expected = int(
        b1.loc[(b1["old_la_code"] == "942") & (b1["time_period"] == "2024"), "At31_episodes"].iloc[
            0
        ]
    )
    assert cell(panel, "942", 2024, "cin") == expected
    lait = pd.read_parquet(raw_dir / FILES["lait"])
    cumbria = lait[
        (lait["Short Desc"] == "LACnum") & (lait["Years"] == "2018") & (lait["LA Number"] == 909)
    ]
    assert cell(panel, "909", 2018, "cla") == int(cumbria["Values"].iloc[0])


def test_coverage(panel, built):
    for outcome in OUTCOMES:
        per_year = panel[panel[outcome].notna()].groupby("year").size()
        for year in range(2013, 2025):
            assert per_year.get(year, 0) >= 145, (outcome, year)
    cla = panel[panel["cla"].notna() & panel["population"].notna()].groupby("year").size()
    assert cla.loc[2010] >= 145
    assert set(panel["region"]) == set(REGIONS)
    y2025 = panel[panel["year"] == 2025]
    assert len(y2025) >= 150 and y2025["population"].notna().all()
    for outcome in OUTCOMES:
        assert (y2025[f"{outcome}_missing"] == "not_yet_published").all()
    y2011 = panel[panel["year"] == 2011]
    assert (y2011["population_missing"] == "no_source").all()
    assert (y2011["cin_missing"] == "no_source").all()
    coverage = built[1].coverage.set_index("year")
    assert coverage.loc[2024, "cin"] == per_year_count(panel, "cin", 2024)


def per_year_count(panel, col, year):
    return int(panel.loc[panel["year"] == year, col].notna().sum())


def test_city_of_london_and_scilly_excluded_and_reported(panel, built):
    assert not panel["la_code"].isin(["201", "420"]).any()
    excluded = built[1].excluded.set_index("la_code")
    assert excluded.loc["201", "la_name"] == "City of London"
    assert excluded.loc["420", "la_name"] == "Isles of Scilly"


def test_save_load_round_trip_and_validation(panel, tmp_path):
    path = save_panel(panel, tmp_path / "panel.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["panel.parquet"]  # no temp file left
    back = load_panel(path)
    pd.testing.assert_frame_equal(back, panel)
    broken = panel.copy()
    broken.loc[0, "cin_missing"] = pd.NA
    broken.loc[0, "cin"] = pd.NA
    broken.to_parquet(tmp_path / "broken.parquet")
    with pytest.raises(PanelValidationError, match="cin is missing without a reason"):
        load_panel(tmp_path / "broken.parquet")


def test_cli_build_writes_panel_and_prints_summary(raw_dir, tmp_path):
    from csc_bayes.cli import app

    out = tmp_path / "p.parquet"
    result = CliRunner().invoke(app, ["data", "build", "--raw", str(raw_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = load_panel(out)
    assert len(saved) > 2000
    # the sha256 of every official file read is in the panel's metadata
    hashes = saved.attrs["raw_files"]
    assert set(hashes) == set(FILES.values())
    for name in (FILES["cpp"], FILES["lait"], FILES["iod"]):
        assert hashes[name] == hashlib.sha256((raw_dir / name).read_bytes()).hexdigest()
    for text in (
        "Authorities with a value",
        "not_yet_published",
        "City of London",
        "Isles of Scilly",
        "national total",
    ):
        assert text in result.output


def test_cli_names_missing_file(tmp_path):
    from csc_bayes.cli import app

    result = CliRunner().invoke(app, ["data", "build", "--raw", str(tmp_path)])
    assert result.exit_code == 1
    assert "b1_children_in_need_2013_to_2025.csv" in result.stderr
    assert "Traceback" not in result.output


def test_lagged_columns_on_the_built_panel(panel):
    from csc_bayes.data import lagged

    values, reasons = lagged(panel, "cpp", 1)

    def at(series, code, year):
        return series[(panel["la_code"] == code) & (panel["year"] == year)].iloc[0]

    assert at(values, "383", 2014) == cell(panel, "383", 2013, "cpp")
    assert at(reasons, "383", 2014) is pd.NA
    assert at(reasons, "383", 2013) == "no_source"  # CPP 2012 has no source file
    assert at(reasons, "383", 2010) == "before_first_year"
    assert at(reasons, "942", 2024) == "before_first_year"  # Cumberland starts in 2024
    assert at(reasons, "204", 2022) == "not_available"  # Hackney 2021: x in the file
    assert not (values == 0).any()
