"""Suppressed counts and their known range (``<count>_lower`` / ``<count>_upper``).

A suppressed cell gets a range only when its marker has a documented one
(``markers.SUPPRESSED_RANGES``). The official files' markers have none: EES ``c`` and SFR ``x``
both include secondary suppression. The real-data tests check, per kind of file, that every
suppressed cell stays without a range, and show on the 2010 SFR file that an ``x`` can hide a
count above 5.
"""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from csc_bayes.data import markers
from csc_bayes.data.schema import MissingReason, bounds_columns, validate_panel
from csc_bayes.errors import PanelValidationError
from csc_bayes.simulate import simulate_panel, suppress_small_counts

SUPPRESSED = MissingReason.SUPPRESSED.value


# ----------------------------------------------------------------------------- markers


def test_no_marker_of_the_official_files_has_a_range():
    assert markers.SUPPRESSED_RANGES == {"ees": {}, "sfr": {}, "lait": {}}


def test_a_documented_range_reaches_the_suppressed_cells_only(monkeypatch):
    monkeypatch.setitem(markers.SUPPRESSED_RANGES, "sfr", {"x": (1, 5)})
    values = pd.Series(["12", "x", "[x]", "..", "0", "c"])
    _, reasons = markers.parse_numbers(values, file="f.csv", column="n")
    lower, upper = markers.suppressed_bounds(values, reasons, source="sfr")
    assert lower.tolist() == [pd.NA, 1, 1, pd.NA, pd.NA, pd.NA]
    assert upper.tolist() == [pd.NA, 5, 5, pd.NA, pd.NA, pd.NA]
    assert str(lower.dtype) == "Int64"
    with pytest.raises(ValueError, match="unknown source kind 'nope'"):
        markers.suppressed_bounds(values, reasons, source="nope")


def test_an_sfr_file_carries_a_documented_range_into_its_measure(tmp_path, monkeypatch):
    from csc_bayes.data.sfr import read_sfr_column

    path = tmp_path / "sfr.csv"
    rows = [
        ["geog_l", "geog_c", "geog_n", "N"],
        ["National", "921", "England", "100"],
        ["LA", "201", "City of London", "x"],
        ["LA", "202", "Camden", "95"],
    ]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    plain = read_sfr_column(path, "N", year=2012, name="cla").las
    assert plain["reason"].tolist() == [SUPPRESSED, pd.NA]
    assert plain["lower"].isna().all() and plain["upper"].isna().all()

    monkeypatch.setitem(markers.SUPPRESSED_RANGES, "sfr", {"x": (1, 5)})
    las = read_sfr_column(path, "N", year=2012, name="cla").las.set_index("la_code")
    assert (las.loc["201", "lower"], las.loc["201", "upper"]) == (1, 5)
    assert pd.isna(las.loc["202", "lower"]) and las.loc["202", "value"] == 95


# ----------------------------------------------------------------------------- panel


@pytest.fixture(scope="module")
def suppressed_panel():
    panel = simulate_panel(seed=3, first_year=2020, last_year=2022, suppress_below=1).panel
    panel = panel[panel["la_code"].isin(sorted(panel["la_code"].unique())[:12])].copy()
    panel["cpp"] = panel["cpp"].where(panel["cpp"].isna(), panel["cpp"] % 9)  # small counts
    return suppress_small_counts(panel.reset_index(drop=True), below=6, known_range=True)


def test_simulated_suppression_records_its_range(suppressed_panel):
    p = validate_panel(suppressed_panel)
    lo, hi = bounds_columns("cpp")
    small = p["cpp_missing"].eq(SUPPRESSED).fillna(False)
    assert small.sum() > 0
    assert (p.loc[small, lo] == 1).all() and (p.loc[small, hi] == 5).all()
    assert p.loc[~small, [lo, hi]].isna().all().all()
    assert p.loc[p["cpp"].notna(), "cpp"].isin([0, *range(6, 9)]).all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, i: p.drop(columns="cpp_upper"), "needs its partner 'cpp_upper'"),
        (lambda p, i: p.assign(cpp_lower=p["cpp_lower"].mask(i, 6)), "cpp_lower is above"),
        (lambda p, i: p.assign(cpp_upper=p["cpp_upper"].mask(i, pd.NA)), "one bound without"),
        (lambda p, i: p.assign(cpp_lower=p["cpp_lower"].mask(i, -1)), "cpp_lower is negative"),
    ],
)
def test_a_bad_range_is_an_error_naming_the_authority(suppressed_panel, change, message):
    first = suppressed_panel["cpp_lower"].notna() & ~suppressed_panel["cpp_lower"].notna().shift(
        1, fill_value=False
    )
    first &= first.cumsum() == 1
    with pytest.raises(PanelValidationError, match=message):
        validate_panel(change(suppressed_panel, first))


def test_a_range_beside_a_published_count_is_an_error(suppressed_panel):
    p = suppressed_panel.copy()
    published = p.index[p["cpp"].notna()][0]
    p.loc[published, ["cpp_lower", "cpp_upper"]] = [1, 5]
    code = p.loc[published, "la_code"]
    with pytest.raises(PanelValidationError, match=f"cpp is not suppressed for {code}"):
        validate_panel(p)


# ----------------------------------------------------------------------------- real files


def test_ees_c_cells_are_suppressed_without_a_range(raw_dir):
    """EES ``c``: 1 to 5, or any count under secondary suppression: no range."""
    from csc_bayes.data.outcomes import read_outcome

    for name in ("cpp", "s47"):
        las = read_outcome(raw_dir, name).las
        suppressed = las["reason"].eq(SUPPRESSED).fillna(False)
        assert suppressed.sum() > 0, name
        assert las["lower"].isna().all() and las["upper"].isna().all()


def test_sfr_x_cells_are_suppressed_without_a_range(raw_dir):
    """SFR ``x`` is described as 1-5, yet Kensington and Chelsea's 2010 totals of children
    starting and ceasing care are ``x`` while published parts of them exceed 5 (secondary
    suppression): so ``x`` has no range, and no ``x`` cell gets one."""
    from csc_bayes.data.flows import read_cla_flow

    for name in ("cla_started", "cla_ceased"):
        sfr_2010 = read_cla_flow(raw_dir, name)[0]
        assert sfr_2010.las["year"].eq(2010).all()
        suppressed = sfr_2010.las["reason"].eq(SUPPRESSED).fillna(False)
        assert suppressed.sum() > 0
        assert sfr_2010.las["lower"].isna().all()

    for file, total in [("SFR27_2010_Started.csv", "StartTotal_2010"),
                        ("SFR27_2010_Ceased.csv", "CeasedTotal_2010")]:  # fmt: skip
        with (raw_dir / "goodair_csc" / "cla_2010_2017" / file).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        row = next(r for r in rows if r["geog_c"].strip() == "207")
        parts = [
            float(v) for k, v in row.items() if k.endswith("_2010") and k != total and v.isdigit()
        ]
        assert row[total].strip() == "x" and max(parts) > 5, file


def test_lait_dashes_are_not_available_without_a_range(raw_dir):
    from csc_bayes.data.cla_history import read_cla_lait

    las = read_cla_lait(raw_dir).las
    assert not las["reason"].eq(SUPPRESSED).fillna(False).any()
    assert las["lower"].isna().all() and las["upper"].isna().all()


def test_the_built_panel_has_no_range_columns(real_build):
    panel, _ = real_build
    assert not [c for c in panel.columns if c.endswith(("_lower", "_upper"))]
    assert np.isin(panel["cpp_missing"].dropna().unique(), [r.value for r in MissingReason]).all()
