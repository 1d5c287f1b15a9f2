"""log_ratio(panel, a, b): log(a / b) per authority-year, or why not; derived in specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csc_bayes.data import validate_panel
from csc_bayes.data.ratios import add_log_ratio, log_ratio, log_ratio_name, parse_log_ratio_name
from csc_bayes.simulate import simulate_panel
from csc_bayes.spec import with_derived_columns


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    """Two authorities 2019-2024; Leeds 2020 cpp suppressed, Leeds 2021 s47 zero."""
    full = simulate_panel(seed=2, first_year=2019, last_year=2023).panel
    small = full[full["la_code"].isin(["383", "825"])].copy()
    leeds = small["la_code"] == "383"
    small.loc[leeds & (small["year"] == 2020), ["cpp", "cpp_missing"]] = [pd.NA, "suppressed"]
    small.loc[leeds & (small["year"] == 2021), "s47"] = 0
    return validate_panel(small).reset_index(drop=True)


def cell(series: pd.Series, panel: pd.DataFrame, la_code: str, year: int):
    return series[(panel["la_code"] == la_code) & (panel["year"] == year)].iloc[0]


def test_names_round_trip_and_refuse_ambiguity():
    assert log_ratio_name("s47", "cin") == "log_ratio_s47__cin"
    assert parse_log_ratio_name("log_ratio_s47__cin") == ("s47", "cin")
    assert parse_log_ratio_name("log_ratio_low_income_rate__cpp") == ("low_income_rate", "cpp")
    assert parse_log_ratio_name("lag_log_ratio_s47__cin_1") is None
    assert parse_log_ratio_name("log_ratio_s47") is None
    with pytest.raises(ValueError, match="__"):
        log_ratio_name("a__b", "cin")


def test_value_is_the_log_of_the_quotient_in_the_same_row(panel):
    values, reasons = log_ratio(panel, "s47", "cpp")
    assert values.dtype == "Float64" and values.index.equals(panel.index)
    for code, year in (("825", 2019), ("825", 2023), ("383", 2022)):
        s47, cpp = cell(panel["s47"], panel, code, year), cell(panel["cpp"], panel, code, year)
        assert cell(values, panel, code, year) == pytest.approx(np.log(s47 / cpp))
        assert pd.isna(cell(reasons, panel, code, year))


def test_missing_and_zero_carry_a_reason_never_a_number(panel):
    values, reasons = log_ratio(panel, "s47", "cpp")
    # the denominator suppressed: its own reason
    assert pd.isna(cell(values, panel, "383", 2020))
    assert cell(reasons, panel, "383", 2020) == "suppressed"
    # a zero count: the log is undefined
    assert pd.isna(cell(values, panel, "383", 2021))
    assert cell(reasons, panel, "383", 2021) == "zero_in_ratio"
    # the forecast year: outcomes not yet published
    assert cell(reasons, panel, "825", 2024) == "not_yet_published"
    assert np.isfinite(values.dropna().to_numpy(float)).all()
    assert (values.isna() == reasons.notna()).all()


def test_bad_input_is_named(panel):
    with pytest.raises(ValueError, match="no column 'icpc'"):
        log_ratio(panel, "icpc", "cpp")
    broken = panel.copy()
    broken.loc[0, "cin"] = pd.NA  # missing without a reason
    broken.loc[0, "cin_missing"] = pd.NA
    with pytest.raises(ValueError, match=r"authority .* without a reason"):
        log_ratio(broken, "cin", "cpp")
    with pytest.raises(ValueError, match="already"):
        add_log_ratio(add_log_ratio(panel, "s47", "cpp"), "s47", "cpp")


def test_a_spec_derives_the_lag_of_a_ratio_with_its_reasons(panel):
    out = with_derived_columns(panel, ["lag_log_ratio_s47__cpp_1"], (2019, 2023))
    values, reasons = out["lag_log_ratio_s47__cpp_1"], out["lag_log_ratio_s47__cpp_1_missing"]
    ratio = np.log(cell(panel["s47"], panel, "825", 2022) / cell(panel["cpp"], panel, "825", 2022))
    assert cell(values, out, "825", 2023) == pytest.approx(ratio)
    # the lag keeps the reason of the year it reads
    assert cell(reasons, out, "383", 2021) == "suppressed"
    assert cell(reasons, out, "383", 2022) == "zero_in_ratio"
    assert cell(reasons, out, "383", 2019) == "before_first_year"
    # the forecast year reads the last published year
    assert pd.notna(cell(values, out, "825", 2024))
