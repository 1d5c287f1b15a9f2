"""lagged(panel, column, k): the value k years earlier for the same authority, or why not."""

from __future__ import annotations

import pandas as pd
import pytest

from csc_bayes.data import add_lagged, lagged, validate_panel
from csc_bayes.simulate import simulate_panel


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Three authorities 2019-2024 (2024: outcomes not yet published); 838 starts in 2021."""
    full = simulate_panel(seed=2, first_year=2019, last_year=2023).panel
    small = full[full["la_code"].isin(["383", "825", "838"])].copy()
    small = small[~((small["la_code"] == "838") & (small["year"] < 2021))]
    leeds_2020 = (small["la_code"] == "383") & (small["year"] == 2020)
    small.loc[leeds_2020, "cpp"] = pd.NA
    small.loc[leeds_2020, "cpp_missing"] = "suppressed"
    return validate_panel(small)


def at(series: pd.Series, panel: pd.DataFrame, la_code: str, year: int):
    mask = (panel["la_code"] == la_code) & (panel["year"] == year)
    return series[mask].iloc[0]


def test_value_k_years_earlier_for_the_same_authority(panel):
    values, reasons = lagged(panel, "cpp", 1)
    assert values.dtype == "Int64" and values.index.equals(panel.index)
    for code in ("383", "825"):
        for year in (2022, 2023):
            expected = at(panel["cpp"], panel, code, year - 1)
            assert at(values, panel, code, year) == expected
            assert pd.isna(at(reasons, panel, code, year))
    # the forecast year's lag is the last published value
    assert at(values, panel, "825", 2024) == at(panel["cpp"], panel, "825", 2023)
    two, _ = lagged(panel, "cpp", 2)
    assert at(two, panel, "825", 2023) == at(panel["cpp"], panel, "825", 2021)


def test_absent_earlier_values_carry_a_reason_never_zero(panel):
    values, reasons = lagged(panel, "cpp", 1)
    # before the authority's first year: the panel's 2019, and 838's first year 2021
    assert pd.isna(at(values, panel, "383", 2019))
    assert at(reasons, panel, "383", 2019) == "before_first_year"
    assert at(reasons, panel, "838", 2021) == "before_first_year"
    assert at(values, panel, "838", 2022) == at(panel["cpp"], panel, "838", 2021)
    # the earlier value is missing in the source: its own reason
    assert pd.isna(at(values, panel, "383", 2021))
    assert at(reasons, panel, "383", 2021) == "suppressed"
    assert not (values == 0).any()
    assert (values.isna() == reasons.notna()).all()


def test_a_gap_inside_an_authoritys_years_is_not_available(panel):
    gap = panel[~((panel["la_code"] == "825") & (panel["year"] == 2021))]
    values, reasons = lagged(gap, "cpp", 1)
    assert pd.isna(at(values, gap, "825", 2022))
    assert at(reasons, gap, "825", 2022) == "not_available"


def test_float_columns_and_add_lagged_validate(panel):
    out = add_lagged(panel, "idaci", 1)
    assert out["lag_idaci_1"].dtype == "Float64"
    assert at(out["lag_idaci_1_missing"], out, "383", 2019) == "before_first_year"
    checked = validate_panel(out)  # the lag follows the panel's missing-value rules
    again = add_lagged(checked, "lag_idaci_1", 1)  # a lag of a lag is a lag of 2
    pd.testing.assert_series_equal(
        again["lag_lag_idaci_1_1"], add_lagged(panel, "idaci", 2)["lag_idaci_2"], check_names=False
    )
    with pytest.raises(ValueError, match="already in the panel"):
        add_lagged(out, "idaci", 1)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_k_must_be_a_positive_whole_number(panel, k):
    with pytest.raises(ValueError, match="whole number of years >= 1"):
        lagged(panel, "cpp", k)


def test_unknown_column_or_duplicated_rows(panel):
    with pytest.raises(ValueError, match="lacks column"):
        lagged(panel, "nope", 1)
    with pytest.raises(ValueError, match="two rows for"):
        lagged(pd.concat([panel, panel.iloc[:1]]), "cpp", 1)
