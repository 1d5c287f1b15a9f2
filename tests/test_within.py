"""Between and within parts of a time-varying covariate (data/within.py): la_mean_<x> is the
authority's mean over the fitted years, la_dev_<x> the yearly deviation; a model with both
recovers a known within-authority and a known between-authority effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import csc_bayes
from csc_bayes.data.within import add_within, parse_within_name
from csc_bayes.simulate import default_authorities, simulate_panel

WITHIN, BETWEEN = 0.3, 0.8


def test_mean_over_the_fitted_years_and_deviation_with_reasons():
    panel = pd.DataFrame(
        {
            "la_code": ["1", "1", "1", "2", "2", "3"],
            "year": [2019, 2020, 2021, 2020, 2021, 2020],
            "x": pd.array([1.0, 3.0, 5.0, 2.0, None, None], dtype="Float64"),
            "x_missing": pd.array([None, None, None, None, "suppressed", "no_source"], "string"),
        }
    )
    out = add_within(panel, "x", (2020, 2021))  # 2019 is outside the window
    assert out["la_mean_x"].tolist()[:5] == [4.0, 4.0, 4.0, 2.0, 2.0]
    assert out["la_dev_x"].tolist()[:4] == [-3.0, -1.0, 1.0, 0.0]
    assert out.loc[4, "la_dev_x_missing"] == "suppressed"  # x's own reason, never 0
    assert pd.isna(out.loc[5, "la_mean_x"]) and out.loc[5, "la_mean_x_missing"] == "not_available"
    assert parse_within_name("la_dev_low_income_rate") == ("dev", "low_income_rate")


@pytest.fixture(scope="module")
def panel():
    """24 authorities 2016-2024, x = a_j + e_jt; log rate = 0.8 mean_j(x) + 0.3 dev_jt + u_j."""
    las = default_authorities(2024).groupby("region").head(3).reset_index(drop=True)
    panel = simulate_panel(first_year=2016, last_year=2024, seed=4, authorities=las).panel
    panel = panel[panel["year"] <= 2024].reset_index(drop=True)
    rng = np.random.default_rng(2)
    codes = panel["la_code"].astype(str)
    level = codes.map(dict(zip(codes.unique(), rng.normal(0, 1, codes.nunique()), strict=True)))
    panel["x"] = pd.array(level + rng.normal(0, 0.5, len(panel)), dtype="Float64")
    panel["x_missing"] = pd.array([None] * len(panel), dtype="string")
    x = panel["x"].astype(float)
    mean = x.groupby(codes).transform("mean")
    u = codes.map(dict(zip(codes.unique(), rng.normal(0, 0.1, codes.nunique()), strict=True)))
    log_rate = np.log(0.004) + BETWEEN * mean + WITHIN * (x - mean) + u
    mu = panel["population"].astype(float) * np.exp(log_rate)
    panel["cpp"] = pd.array(rng.poisson(mu), dtype="Int64")
    panel["cpp_missing"] = pd.array([None] * len(panel), dtype="string")
    return panel


def test_within_and_between_effects_are_recovered(panel):
    fit = csc_bayes.fit(
        "cpp ~ la_mean_x + la_dev_x + offset(log(population)) + (1|la) + (1|year)",
        data=panel,
        years=(2016, 2024),
        family="poisson",
        out=None,
        draws=300,
        tune=300,
        chains=2,
        progress=False,
    )
    per_unit = fit.idata["posterior"]["beta_per_unit"]
    for name, truth in (("la_dev_x", WITHIN), ("la_mean_x", BETWEEN)):
        lo, hi = per_unit.sel(covariate=name).quantile([0.02, 0.98]).values
        assert lo < truth < hi, (name, lo, hi)
