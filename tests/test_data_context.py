"""Context columns (poverty, factors at assessment, workforce, Ofsted, spend per child in need,
flows) and statistical neighbours, checked against the source files read here directly."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest

from csc_bayes.data import build_panel_report, validate_panel
from csc_bayes.data.context import CONTEXT_COLUMNS, COUNTS, LABELS
from csc_bayes.data.flows import FLOWS
from csc_bayes.data.inspections import JUDGEMENTS
from csc_bayes.data.neighbours import neighbour_table, statistical_neighbours
from csc_bayes.data.poverty import reporting_year_of_fy
from csc_bayes.data.schema import MissingReason, missing_column, required_columns
from csc_bayes.data.sources import FILES
from csc_bayes.errors import DataFileError, UnknownAuthorityError

REASONS = {r.value for r in MissingReason}


# --------------------------------------------------------------------------- no real data


def test_financial_year_is_the_reporting_year_it_ends_in():
    assert reporting_year_of_fy("2014/15") == (2015, False)
    assert reporting_year_of_fy("2021/22 (p)") == (2022, True)
    with pytest.raises(ValueError):
        reporting_year_of_fy("2014/16")


def test_neighbours_file_errors_name_row_and_value(tmp_path):
    folder = tmp_path / "dfe_csc_outcomes_enablers"
    folder.mkdir()
    header = "old_la_code,la_name,region_ind,region_name," + ",".join(
        f"SN_{k},SN_{k}P" for k in range(1, 11)
    )
    good = ",".join(f"{c},Close" for c in (373, 841, 381, 351, 808, 350, 831, 392, 382, 344))
    path = folder / "sn_model_2025_wide.csv"
    path.write_text(f"{header}\n383,Leeds,9,Y,{good}\n", encoding="utf-8")
    assert statistical_neighbours(383, tmp_path)[:2] == ["373", "841"]
    path.write_text(f"{header}\n383,Leeds,9,Y,{good.replace('841', '999')}\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"row 2.*SN_2.*'999'"):
        statistical_neighbours(383, tmp_path)
    with pytest.raises(UnknownAuthorityError, match="'390'"):
        path.write_text(f"{header}\n383,Leeds,9,Y,{good}\n", encoding="utf-8")
        statistical_neighbours(390, tmp_path)


# --------------------------------------------------------------------------- real data

pytestmark_real = pytest.mark.realdata


@pytest.fixture(scope="module")
def built(real_build):
    return real_build  # one build of the official files per test session (conftest)


@pytest.fixture(scope="module")
def panel(built):
    return built[0]


def cell(panel: pd.DataFrame, la_code: str, year: int, column: str):
    row = panel.loc[(panel["la_code"] == la_code) & (panel["year"] == year), column]
    assert len(row) == 1, f"expected one row for {la_code} {year}"
    return row.iloc[0]


def text(raw_dir, key: str) -> pd.DataFrame:
    """An EES file as text, read directly (not through csc_bayes)."""
    return pd.read_csv(raw_dir / FILES[key], dtype=str, keep_default_na=False, encoding="utf-8-sig")


@pytestmark_real
def test_every_context_column_has_a_reason_when_missing(panel):
    for name in CONTEXT_COLUMNS:
        assert name in panel.columns and missing_column(name) in panel.columns, name
        assert str(panel[name].dtype) == ("Int64" if name in COUNTS else "Float64"), name
        values, reasons = panel[name], panel[missing_column(name)]
        assert (values.isna() == reasons.notna()).all(), name
        assert set(reasons.dropna()) <= REASONS, name
        assert not (values.fillna(1) < 0).any(), name
        assert values.notna().sum() > 800, name  # about 150 authorities x at least 6 years
    for label, code in LABELS.items():
        assert (panel[label].isna() == panel[code].isna()).all()
    validate_panel(panel)


@pytestmark_real
def test_existing_columns_are_unchanged(panel, raw_dir):
    plain, _ = build_panel_report(raw_dir, context=False)
    assert list(plain.columns) == required_columns()
    pd.testing.assert_frame_equal(panel[required_columns()], plain)


@pytestmark_real
def test_rates_are_proportions(panel):
    rates = [c for c in CONTEXT_COLUMNS if c.endswith("_rate")]
    assert "low_income_rate" in rates and "sw_turnover_rate" in rates
    for name in rates:
        assert panel[name].dropna().between(0, 1).all(), name


# ----------------------------------------------------------------- child poverty (DWP)


def _dwp_counts(raw_dir) -> dict[str, list[str]]:
    with open(raw_dir / FILES["dwp_low_income"], encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return {r[0]: r[1:17:2] for r in rows[2:]}  # FY 2014/15 .. 2021/22, annotations skipped


@pytestmark_real
def test_low_income_named_values(panel, raw_dir):
    counts = _dwp_counts(raw_dir)
    # Leeds, FY 2014/15 = reporting year 2015, and its under-16 population in the rda extract
    assert cell(panel, "383", 2015, "low_income_children") == int(counts["Leeds"][0]) == 30146
    assert cell(panel, "383", 2015, "low_income_rate") == pytest.approx(30146 / 145893)
    # Northamptonshire 928 (to 2021) = North + West Northamptonshire (their 2021 districts)
    north, west = counts["North Northamptonshire"], counts["West Northamptonshire"]
    for i, year in enumerate(range(2015, 2022)):
        assert cell(panel, "928", year, "low_income_children") == int(north[i]) + int(west[i])
    assert cell(panel, "940", 2022, "low_income_children") == int(north[7])
    # Cumbria 909 = its six districts, abolished in 2023 (mapped by hand)
    six = ["Allerdale", "Barrow-in-Furness", "Carlisle", "Copeland", "Eden", "South Lakeland"]
    assert cell(panel, "909", 2019, "low_income_children") == sum(int(counts[d][4]) for d in six)
    seven = ["Craven", "Hambleton", "Harrogate", "Richmondshire", "Ryedale", "Scarborough"]
    seven.append("Selby")
    assert cell(panel, "815", 2022, "low_income_children") == sum(int(counts[d][7]) for d in seven)


@pytestmark_real
def test_low_income_years_and_reasons(panel):
    for la in ("835", "836", "837"):  # 2021 boundaries: Christchurch is in BCP
        for year in range(2015, 2020):
            assert cell(panel, la, year, "low_income_children_missing") == "not_available"
    for year in (2010, 2014, 2023, 2025):
        assert cell(panel, "383", year, "low_income_rate_missing") == "no_source"
    present = panel.loc[panel["year"].between(2015, 2022)]
    missing = present.loc[present["low_income_rate"].isna(), "la_code"]
    assert set(missing) == {"835", "836", "837"}


@pytestmark_real
def test_low_income_sums_to_the_files_england_total(panel, raw_dir):
    """Panel authorities + City of London + Isles of Scilly = the file's English districts."""
    rda = pd.read_csv(raw_dir / FILES["dwp_low_income_rda"])
    english = rda[rda["ltla21_code"].str.startswith("E")]
    names = set(english["ltla21_name"])
    assert len(names) == 309
    counts = _dwp_counts(raw_dir)
    excluded = {"City of London", "Isles of Scilly"}
    for i, year in enumerate(range(2015, 2023)):
        england = sum(int(counts[n][i]) for n in names)
        if year <= 2020:  # the rda extract (codes, not names) agrees
            rda_year = english.loc[english["year"] == year, "children_low_income_abs"].sum()
            assert england == rda_year
        rows = panel.loc[panel["year"] == year, "low_income_children"]
        outside = set(excluded)
        if year <= 2019:  # Dorset 835, Poole 836, Bournemouth 837 missing: 2021 districts
            outside |= {"Dorset", "Bournemouth, Christchurch and Poole"}
        total = int(rows.sum()) + sum(int(counts[n][i]) for n in outside)
        assert total == england, year
    # the UK total row: districts + unknown, within Stat-Xplore's cell perturbation
    uk = sum(int(v[0]) for n, v in counts.items() if n not in ("Unknown", "Total"))
    assert abs(uk - int(counts["Total"][0])) <= 0.0001 * uk


@pytestmark_real
def test_low_income_denominator_after_2020_carries_the_2020_share(panel, raw_dir):
    pop = text(raw_dir, "population")
    pop = pop[pop["geographic_level"] == "Local authority"]
    leeds = pop[pop["old_la_code"] == "383"].set_index("time_period")["population_estimate"]
    share = 153600 / int(leeds["2020"])  # rda under-16s of FY 2019/20 over mid-2020 0-17
    expected = 45815 / (share * int(leeds["2021"]))
    assert cell(panel, "383", 2021, "low_income_rate") == pytest.approx(expected)


# ----------------------------------------------------------------- factors at assessment


@pytestmark_real
def test_assessment_factors_leeds_and_england(panel, raw_dir):
    c3 = text(raw_dir, "assessment_factors")
    leeds = c3[(c3["old_la_code"] == "383") & (c3["time_period"] == "2024")].iloc[0]
    episodes = int(leeds["Episodes_with_assessment_factor"])
    assert cell(panel, "383", 2024, "assessment_episodes") == episodes == 8986
    for name, column in [
        ("domestic_abuse_parent_rate", "Domestic_Abuse_parent"),
        ("mental_health_parent_rate", "Mental_Health_parent"),
        ("drug_misuse_parent_rate", "Drug_Misuse_parent"),
        ("alcohol_misuse_parent_rate", "Alcohol_Misuse_parent"),
    ]:
        assert cell(panel, "383", 2024, name) == pytest.approx(int(leeds[column]) / episodes)
    mentions = sum(int(leeds[f"Domestic_Abuse_{w}"]) for w in ("child", "parent", "person"))
    assert cell(panel, "383", 2024, "domestic_abuse_mentions_rate") == pytest.approx(
        mentions / episodes
    )
    # England: authorities (with City of London and Scilly from the file) vs the national row
    national = c3[c3["geographic_level"] == "National"].set_index("time_period")
    las = c3[(c3["geographic_level"] == "Local authority")]
    for year in range(2018, 2025):
        nat = int(national.loc[str(year), "Episodes_with_assessment_factor"])
        ours = panel.loc[panel["year"] == year, "assessment_episodes"]
        small = las[(las["time_period"] == str(year)) & las["old_la_code"].isin(["201", "420"])]
        small = pd.to_numeric(small["Episodes_with_assessment_factor"], errors="coerce").sum()
        total = int(ours.sum()) + int(small)
        tolerance = 10 + 0.0005 * nat
        if ours.notna().all():
            assert abs(total - nat) <= tolerance, year
        else:  # a missing authority: the sum falls short, never over
            assert total - nat <= tolerance, year


# ----------------------------------------------------------------- workforce and Ofsted


@pytestmark_real
def test_workforce_census_of_30_september_serves_the_next_reporting_year(panel, raw_dir):
    csww = text(raw_dir, "workforce")
    leeds = csww[csww["old_la_code"] == "383"].set_index("time_period")
    for census in ("2017", "2024"):
        year = int(census) + 1
        for name, column, divisor in [
            ("sw_turnover_rate", "turnover_rate_fte", 100),
            ("sw_agency_rate", "agency_rate_fte", 100),
            ("sw_vacancy_rate", "vacancy_rate_fte", 100),
            ("sw_caseload", "caseload_fte", 1),
        ]:
            expected = float(leeds.loc[census, column]) / divisor
            assert cell(panel, "383", year, name) == pytest.approx(expected), (name, year)
    assert cell(panel, "383", 2025, "sw_turnover_rate") == pytest.approx(0.09)
    assert cell(panel, "383", 2017, "sw_turnover_rate_missing") == "no_source"
    # joint returns go to both authorities; boundaries at 30 Sept T are those of year T + 1
    for year in range(2018, 2026):
        assert cell(panel, "314", year, "sw_caseload") == cell(panel, "318", year, "sw_caseload")
    assert pd.notna(cell(panel, "835", 2019, "sw_caseload"))  # census 2018: old Dorset
    assert pd.notna(cell(panel, "838", 2020, "sw_caseload"))  # census 2019: new Dorset
    assert pd.notna(cell(panel, "942", 2024, "sw_caseload"))  # census 2023: Cumberland
    assert cell(panel, "940", 2022, "sw_turnover_rate") == cell(
        panel, "941", 2022, "sw_turnover_rate"
    )


@pytestmark_real
def test_ilacs_judgement_in_force_at_31_march(panel):
    assert cell(panel, "383", 2017, "ilacs_overall_missing") == "no_source"
    assert cell(panel, "383", 2018, "ilacs_overall_missing") == "not_yet_inspected"
    assert cell(panel, "383", 2019, "ilacs_overall") == 1  # published 18 December 2018
    assert cell(panel, "383", 2019, "ilacs_overall_label") == "Outstanding"
    for year in (2020, 2021):  # BCP, created 2019, first judged (Inadequate) February 2022
        assert cell(panel, "839", year, "ilacs_overall_missing") == "not_yet_inspected"
    assert cell(panel, "839", 2022, "ilacs_overall") == 4
    assert cell(panel, "839", 2025, "ilacs_overall") == 2  # Good, published 29 January 2025
    assert cell(panel, "825", 2025, "ilacs_overall") == 3  # May 2025 not yet in force
    coded = panel.dropna(subset=["ilacs_overall"])
    assert (
        coded["ilacs_overall"].astype(int) == coded["ilacs_overall_label"].map(JUDGEMENTS)
    ).all()
    assert coded["ilacs_overall"].between(1, 4).all()
    in_force_2025 = panel.loc[panel["year"] == 2025, "ilacs_overall"]
    assert in_force_2025.notna().sum() >= 148


@pytestmark_real
def test_spend_per_child_in_need(panel):
    both = panel.dropna(subset=["spend_per_cin", "spend_per_child", "population", "cin"])
    assert len(both) > 1200
    implied = both["spend_per_child"] * both["population"] / both["cin"]
    assert ((both["spend_per_cin"] - implied).abs() <= 1e-6 * implied).all()
    assert cell(panel, "204", 2021, "spend_per_cin_missing") == "not_available"  # Hackney CIN
    assert cell(panel, "850", 2024, "spend_per_cin_missing") == "low_reliability"  # Hampshire
    assert cell(panel, "383", 2015, "spend_per_cin_missing") == "no_source"
    median = panel.loc[panel["year"] == 2024, "spend_per_cin"].median()
    assert 20_000 < median < 60_000


# ----------------------------------------------------------------- flows


@pytestmark_real
def test_flows_leeds_and_national_totals(panel, built, raw_dir):
    c4 = text(raw_dir, "s47")
    leeds = c4[(c4["old_la_code"] == "383")].set_index("time_period")
    for year in (2013, 2024):
        assert cell(panel, "383", year, "icpc") == int(leeds.loc[str(year), "ICPC"])
    assert cell(panel, "383", 2018, "cla_started") == 421  # LAIT LACnum_Start
    assert cell(panel, "383", 2024, "cla_started") == 557  # EES 2025 release
    assert cell(panel, "383", 2024, "cla_ceased") == 478
    sfr = text(raw_dir, "sfr_started_2015")
    assert cell(panel, "383", 2015, "cla_started") == int(
        sfr.loc[sfr["geog_c"] == "383", "CLA_started2014"].iloc[0]
    )
    for name in FLOWS:
        assert cell(panel, "383", 2025, missing_column(name)) == "not_yet_published"
    recon = built[1].reconciliation
    flows = recon[recon["measure"].isin(FLOWS)]
    assert set(flows.loc[flows["measure"] == "cla_started", "year"]) == set(range(2010, 2025))
    assert set(flows.loc[flows["measure"] == "icpc", "year"]) == set(range(2013, 2025))
    assert not (flows["status"] == "differs").any(), flows[flows["status"] == "differs"]
    complete = flows[flows["status"] == "agrees"]
    assert len(complete) >= 5 and (complete["difference"].abs() <= complete["tolerance"]).all()


@pytestmark_real
def test_lagged_flow_is_a_leading_indicator(panel):
    from csc_bayes.data import lagged

    values, reasons = lagged(panel, "cla_started", 1)
    leeds = (panel["la_code"] == "383").to_numpy()
    years = panel.loc[leeds, "year"].to_numpy()
    got = dict(zip(years, values.to_numpy()[leeds], strict=True))
    assert got[2025] == 557 and got[2019] == 421
    assert reasons.to_numpy()[leeds][years == 2010][0] == "before_first_year"


# ----------------------------------------------------------------- statistical neighbours


@pytestmark_real
def test_leeds_statistical_neighbours_as_the_files_list_them(raw_dir):
    assert statistical_neighbours("383", raw_dir) == [
        "851", "882", "373", "826", "382", "355", "801", "852", "306", "839"
    ]  # fmt: skip
    assert statistical_neighbours(383, raw_dir, release=2021) == [
        "373", "841", "381", "351", "808", "350", "831", "392", "382", "344"
    ]  # fmt: skip
    assert len(statistical_neighbours("928", raw_dir, release=2021)) == 10  # "Old SNs"
    with pytest.raises(UnknownAuthorityError):
        statistical_neighbours("928", raw_dir)  # not in the 2025 model


@pytestmark_real
def test_lait_copy_of_the_2025_neighbours_agrees(raw_dir):
    lait = pd.read_excel(raw_dir / "dfe_lait" / "sn_may_2025.xlsx", header=2)
    table = neighbour_table(raw_dir)
    assert table["la_code"].nunique() == 153
    sn = [c for c in lait.columns if str(c).startswith("SN") and not str(c).startswith("SNP")]
    for code, group in table.groupby("la_code"):
        row = lait.loc[lait["LA num"] == int(code), sn]
        assert len(row) == 1, code
        assert [str(int(v)) for v in row.iloc[0]] == group.sort_values("rank")["neighbour"].tolist()
    assert math.isclose(table.groupby("la_code").size().mean(), 10)


# ----------------------------------------------------------------- damaged context files


def raw_copy(raw_dir, tmp_path, damaged: dict[str, bytes]):
    """A raw folder linking every documented file to the real one, except ``damaged``."""
    root = tmp_path / "raw"
    for name in set(FILES.values()):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in damaged:
            target.write_bytes(damaged[name])
        else:
            target.symlink_to(raw_dir / name)
    return root


@pytestmark_real
def test_dwp_file_without_a_district_is_an_error_naming_it(raw_dir, tmp_path):
    from csc_bayes.data.poverty import read_low_income

    name = FILES["dwp_low_income"]
    lines = (raw_dir / name).read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(b'"Leeds"')]
    assert len(kept) == len(lines) - 1
    with pytest.raises(DataFileError, match=r"not in the file: Leeds"):
        read_low_income(raw_copy(raw_dir, tmp_path, {name: b"".join(kept)}))


@pytestmark_real
def test_dwp_file_cut_before_its_total_row_is_an_error(raw_dir, tmp_path):
    from csc_bayes.data.poverty import read_low_income

    name = FILES["dwp_low_income"]
    lines = (raw_dir / name).read_bytes().splitlines(keepends=True)
    with pytest.raises(DataFileError, match="no 'Total' row"):
        read_low_income(raw_copy(raw_dir, tmp_path, {name: b"".join(lines[:-1])}))


@pytestmark_real
def test_workforce_file_with_an_unknown_authority_names_row_and_value(raw_dir, tmp_path):
    from csc_bayes.data.workforce import workforce_table

    name = FILES["workforce"]
    lines = (raw_dir / name).read_bytes().splitlines(keepends=True)
    i = next(k for k, line in enumerate(lines) if b",383,E08000035,Leeds," in line)
    lines[i] = lines[i].replace(b",383,E08000035,", b",999,E08000035,")
    with pytest.raises(DataFileError, match=rf"row {i + 1}.*old_la_code.*'999'"):
        workforce_table(raw_copy(raw_dir, tmp_path, {name: b"".join(lines)}))


@pytestmark_real
def test_assessment_file_cut_short_misses_the_years_its_name_promises(raw_dir, tmp_path):
    from csc_bayes.data.assessment import assessment_table

    name = FILES["assessment_factors"]
    lines = (raw_dir / name).read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(b"2018,")]
    with pytest.raises(DataFileError, match="no authority rows for 2018"):
        assessment_table(raw_copy(raw_dir, tmp_path, {name: b"".join(kept)}))


@pytestmark_real
def test_every_workforce_and_assessment_value_is_the_files(panel, raw_dir):
    """Each authority-year value equals the file's cell, read here independently."""
    csww = text(raw_dir, "workforce")
    csww = csww[csww["geographic_level"] == "Local authority"]
    checked = 0
    for _, row in csww.iterrows():
        year = int(row["time_period"]) + 1
        for code in row["old_la_code"].split(" / "):
            if code in ("201", "420"):
                continue
            for name, column, divisor in [
                ("sw_turnover_rate", "turnover_rate_fte", 100),
                ("sw_caseload", "caseload_fte", 1),
            ]:
                got = cell(panel, code, year, name)
                try:
                    expected = float(row[column]) / divisor
                except ValueError:  # a marker
                    assert pd.isna(got)
                    continue
                assert got == pytest.approx(expected), (code, year, name)
                checked += 1
    assert checked > 2300
    c3 = text(raw_dir, "assessment_factors")
    c3 = c3[(c3["geographic_level"] == "Local authority") & ~c3["old_la_code"].isin(["201", "420"])]
    checked = 0
    for _, row in c3.iterrows():
        got = cell(panel, row["old_la_code"], int(row["time_period"]), "mental_health_parent_rate")
        try:
            expected = int(row["Mental_Health_parent"]) / int(
                row["Episodes_with_assessment_factor"]
            )
        except (ValueError, ZeroDivisionError):
            assert pd.isna(got)
            continue
        assert got == pytest.approx(expected)
        checked += 1
    assert checked > 1000
