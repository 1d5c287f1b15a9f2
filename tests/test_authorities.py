"""The authority reference list and the resolver."""

from __future__ import annotations

import pandas as pd
import pytest

from csc_bayes.authorities import (
    authorities_in_year,
    normalise_name,
    reference_authorities,
    resolve_authorities,
    resolve_authority,
)
from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import UnknownAuthorityError


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return reference_authorities()


# --- the reference list ------------------------------------------------------------------------


def test_reference_list_is_clean(ref):
    assert ref["la_code"].is_unique and ref["ons_code"].is_unique
    assert set(ref["region"]) == set(REGIONS)
    assert str(ref["la_code"].dtype) == "string" and str(ref["last_year"].dtype) == "Int64"
    assert ref["ons_code"].str.fullmatch(r"E0[6-9]\d{6}|E10\d{6}").all()
    former = ref.loc[ref["last_year"].notna()]
    assert set(former["la_code"]) == {"835", "836", "837", "909", "928"}
    # every successor exists and starts the year after its predecessor's last year
    codes = ref.set_index("la_code")
    for _, row in former.iterrows():
        for succ in row["successors"].split(";"):
            assert codes.loc[succ, "first_year"] == row["last_year"] + 1, (row["la_code"], succ)


@pytest.mark.parametrize(("year", "count"), [(2015, 152), (2020, 151), (2022, 152), (2024, 153)])
def test_authorities_in_year_counts(year, count):
    # 150-153 children's services authorities a year, City of London and Isles of Scilly included
    assert len(authorities_in_year(year)) == count


def test_buckinghamshire_keeps_its_former_code(ref):
    bucks = ref.set_index("la_code").loc["825"]
    assert bucks["ons_code"] == "E06000060" and bucks["former_ons_codes"] == "E10000002"


# --- the resolver ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("Kingston upon Hull", "810"),
        ("Hull", "810"),
        ("kingston-upon-hull", "810"),
        ("KINGSTON UPON HULL, CITY OF", "810"),
        ("Bristol", "801"),
        ("City of Bristol", "801"),
        ("St Helens", "342"),
        ("St. Helens", "342"),
        ("Saint Helens", "342"),
        ("Bournemouth, Christchurch & Poole", "839"),
        ("Herefordshire", "884"),
        ("Durham", "840"),
        ("Bedford Borough", "822"),
        ("Telford & Wrekin", "894"),
        ("Stockton on Tees", "808"),
        ("City of London", "201"),
        ("Leeds", "383"),
        (383, "383"),
        ("383", "383"),
        (" 383 ", "383"),
        ("E08000035", "383"),
        ("e08000035", "383"),
        ("E10000002", "825"),  # Buckinghamshire's code before 2020-21
        ("E06000048", "929"),  # Northumberland's code before 2013
        ("Dorset", "838"),  # the current Dorset, not the pre-2020 county (835)
        ("Northamptonshire", "928"),
    ],
)
def test_resolves(ref, query, code):
    assert resolve_authority(query, ref)["la_code"] == code


def test_misspelling_suggests_the_closest(ref):
    with pytest.raises(UnknownAuthorityError, match=r"did you mean 383 Leeds") as err:
        resolve_authority("Leds", ref)
    assert isinstance(err.value, KeyError)  # callers can catch it as a lookup failure


def test_ambiguous_partial_name_lists_candidates(ref):
    with pytest.raises(UnknownAuthorityError, match="ambiguous") as err:
        resolve_authority("Kingston", ref)
    assert "810 Kingston upon Hull, City of" in str(err.value)
    assert "314 Kingston upon Thames" in str(err.value)


def test_partial_name_ambiguous_among_current_authorities(ref):
    current = authorities_in_year(2024)
    with pytest.raises(UnknownAuthorityError, match=r"940 North Northamptonshire.*941 West"):
        resolve_authority("Northamptonshire", current)


def test_region_name_is_not_an_authority(ref):
    with pytest.raises(UnknownAuthorityError, match="region"):
        resolve_authority("London", ref)


def test_unknown_codes(ref):
    with pytest.raises(UnknownAuthorityError, match="DfE LA number 999"):
        resolve_authority(999, ref)
    with pytest.raises(UnknownAuthorityError, match="ONS code E08999999"):
        resolve_authority("e08999999", ref)
    with pytest.raises(UnknownAuthorityError, match="no authority matches 'Atlantis'"):
        resolve_authority("Atlantis", ref)


def test_former_code_resolves_without_a_former_codes_column(ref):
    # a fit's authorities and an excess table have la_code / ons_code / la_name only: former
    # codes come from the reference list by DfE number
    fitted = ref[["la_code", "ons_code", "la_name"]]
    assert resolve_authority("E06000060", fitted)["la_code"] == "825"
    assert resolve_authority("E10000002", fitted)["la_code"] == "825"
    assert resolve_authority("e06000048", fitted)["la_code"] == "929"


def test_made_up_codes_do_not_borrow_the_reference_codes():
    # DfE number 825 with an ONS code that is not Buckinghamshire's: no former codes added
    table = pd.DataFrame({"la_code": ["825"], "ons_code": ["E06999999"], "la_name": ["Test"]})
    with pytest.raises(UnknownAuthorityError, match="ONS code E10000002"):
        resolve_authority("E10000002", table)


@pytest.mark.parametrize(("query", "code"), [("BCP", "839"), ("B&NES", "800"), ("BaNES", "800")])
def test_short_names_in_common_use(ref, query, code):
    assert resolve_authority(query, authorities_in_year(2024))["la_code"] == code


def test_authority_known_but_not_among_the_candidates_is_said_so():
    current = authorities_in_year(2024)[["la_code", "ons_code", "la_name", "region"]]
    # Dorset's county code before 2019-20: its area is now Dorset and BCP
    with pytest.raises(UnknownAuthorityError, match=r"835 Dorset.*until 2019.*838 Dorset.*839"):
        resolve_authority("E10000009", current)
    two = current[current["la_code"].isin(["383", "380"])]
    with pytest.raises(UnknownAuthorityError, match=r"810 Kingston upon Hull.*not among the 2"):
        resolve_authority("Hull", two)


def test_resolve_among_a_fits_authorities_only():
    fitted = pd.DataFrame(
        {
            "la_code": ["383", "380"],
            "ons_code": ["E08000035", "E08000032"],
            "la_name": ["Leeds", "Bradford"],
        }
    )
    assert resolve_authorities(["bradford", 383, "E08000035"], fitted) == ["380", "383", "383"]
    with pytest.raises(UnknownAuthorityError, match="did you mean 383 Leeds"):
        resolve_authority("Leeeds", fitted)
    with pytest.raises(UnknownAuthorityError):
        resolve_authority("Wakefield", fitted)


def test_normalise_name():
    assert normalise_name("Kingston-upon-Hull, City of") == "kingston upon hull"
    assert normalise_name("Herefordshire, County of") == "herefordshire"
    assert normalise_name("Brighton & Hove") == normalise_name("Brighton and Hove")
    assert normalise_name("City of London") == "city of london"


# --- validation of the hand-written list against the official files ----------------------------


@pytest.mark.realdata
def test_reference_matches_dfe_la_code_list(raw_dir, ref):
    """Every LA in LAIT's code list is in the reference with its region and (normalised) name."""
    lait = pd.read_excel(raw_dir / "dfe_lait" / "la_code_list.xlsx", dtype=str)
    lait = lait.loc[lait["Type"].notna()]  # England and region rows have no type
    assert len(lait) > 150
    by_code = ref.set_index("la_code")
    for _, row in lait.iterrows():
        code = row["LA Number"].strip()
        assert code in by_code.index, f"{code} {row['LA Name']} missing from the reference"
        ours = by_code.loc[code]
        region = "London" if "London" in row["Region"] else row["Region"]
        assert ours["region"] == region, code
        name = row["LA Name"].replace("(Pre LG)", "").strip()  # LAIT marks pre-reorganisation units
        same = normalise_name(name) == normalise_name(ours["la_name"])
        assert same or resolve_authority(name, ref)["la_code"] == code, (code, name)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "file",
    [
        "b1_children_in_need_2013_to_2025.csv",
        "d5_cpps_at31march_by_duration_2013_to_2025.csv",
        "ons_mid-year_population_estimates_2012_to_2024.csv",
    ],
)
def test_reference_matches_ees_codes_names_regions_and_years(raw_dir, ref, file):
    """LA rows of an EES file: DfE number, ONS code (current or former), exact name, region and
    reporting years agree with the reference, and every authority alive in a year reports."""
    cols = [
        "time_period",
        "geographic_level",
        "region_name",
        "old_la_code",
        "new_la_code",
        "la_name",
    ]
    ees = pd.read_csv(raw_dir / "dfe_csc_outcomes_enablers" / file, dtype=str, usecols=cols)
    ees = ees.loc[ees["geographic_level"] == "Local authority"]
    ees["year"] = ees["time_period"].str[:4].astype(int)
    if file.startswith("ons_"):
        ees["year"] += 1  # mid-(t-1) estimates serve reporting year t
    by_code = ref.set_index("la_code")
    for key, rows in ees.groupby(["old_la_code", "new_la_code", "la_name", "region_name"]):
        code, ons, name, region = key
        assert code in by_code.index, f"{code} {name} ({file}) missing from the reference"
        ours = by_code.loc[code]
        known = {ours["ons_code"], *filter(None, ours["former_ons_codes"].split(";"))}
        assert ons in known, (code, ons, known)
        assert name == ours["la_name"], (code, name, ours["la_name"])
        assert ("London" if "London" in region else region) == ours["region"], code
        last = ours["last_year"] if pd.notna(ours["last_year"]) else 9999
        assert ours["first_year"] <= rows["year"].min() and rows["year"].max() <= last, code
    for year, rows in ees.groupby("year"):
        expected = set(authorities_in_year(int(year), reference=ref)["la_code"])
        assert set(rows["old_la_code"]) == expected, (file, year)
