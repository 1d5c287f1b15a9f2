"""examples/out_of_sample.py: the scoring, the naive baseline and the rolling-origin pooling.

The real-data runs themselves are long (results/out_of_sample/); these check the arithmetic
the published tables rest on, on small made-up inputs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def oos():
    spec = importlib.util.spec_from_file_location(
        "out_of_sample", REPO / "examples" / "out_of_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["out_of_sample"] = module
    spec.loader.exec_module(module)
    return module


def test_crps_from_draws_equals_the_pairwise_definition(oos):
    rng = np.random.default_rng(1)
    samples = rng.poisson(30, size=(200, 3)).astype(float)
    y = np.array([25.0, 30.0, 41.0])
    by_definition = np.abs(samples - y).mean(axis=0) - 0.5 * np.abs(
        samples[:, None, :] - samples[None, :, :]
    ).mean(axis=(0, 1))
    np.testing.assert_allclose(oos.crps_from_draws(samples, y), by_definition, rtol=1e-12)


def test_crps_of_a_point_forecast_is_the_absolute_error(oos):
    samples = np.full((50, 2), 10.0)
    np.testing.assert_allclose(oos.crps_from_draws(samples, np.array([7.0, 10.0])), [3.0, 0.0])


def test_naive_baseline_uses_only_years_before_the_test_year(oos):
    """m = y_(t-1) * pop_t / pop_(t-1); phi from pairs inside first..t-1 only."""
    rows = []
    for la, base in (("A", 100.0), ("B", 400.0)):
        for year in range(2015, 2022):
            pop = 1000.0 * (1 + 0.01 * (year - 2015))
            rows.append({"la_code": la, "year": year, "population": pop, "cla": base + year - 2015})
    panel = pd.DataFrame(rows)
    m, _ = oos.naive_baseline(panel, "cla", 2015, test_year=2019)
    assert m["A"] == pytest.approx(103.0 * 1040.0 / 1030.0)
    # a wild value in a year after the test year must not change the fitted concentration
    wild = panel.copy()
    wild.loc[(wild["la_code"] == "A") & (wild["year"] == 2021), "cla"] = 5000.0
    assert oos.naive_baseline(wild, "cla", 2015, 2019)[1] == pytest.approx(
        oos.naive_baseline(panel, "cla", 2015, 2019)[1]
    )


def test_variants_end_each_window_the_year_before_the_test_year(oos):
    full, last4 = oos.variants(["cpp_need"], test_year=2022, windows=("full", "last4"))
    assert (full.first, full.test_year, full.window) == (2013, 2022, "full")
    assert full.label == "cpp_need 2013-2021"
    assert (last4.first, last4.window) == (2018, "last4")
    assert oos.variants(["cpp_need"], 2022, ("last4",)) == [last4]


def test_pooled_weights_each_year_by_authorities_scored(oos):
    def row(method, year, n, crps, cov50, subset="authorities with a baseline"):
        return {
            "forecast": f"{method} {year}",
            "outcome": "cpp",
            "test_year": year,
            "window": "full",
            "method": method,
            "subset": subset,
            "n_authorities": n,
            "coverage_50": cov50,
            "coverage_90": 0.9,
            "mean_crps": crps,
            "mean_crps_over_y": 0.1,
            "mae_median": 1.0,
        }

    rows = [
        row("m", 2021, 100, 10.0, 0.4, "all fitted authorities"),
        row("m", 2021, 90, 12.0, 0.5) | {"crps_minus_naive": 1.0},  # on the baseline's: used
        row("naive NB", 2021, 90, 11.0, 0.5),
        row("m", 2022, 30, 20.0, 0.7) | {"crps_minus_naive": 1.0},
        row("naive NB", 2022, 30, 19.0, 0.7),
    ]
    table = oos.pooled(rows).set_index("method")
    assert table.loc["m", "crps_minus_naive"] == pytest.approx(1.0)
    assert table.loc["m", "se_between_years"] == pytest.approx(0.0)
    assert np.isnan(table.loc["naive NB", "crps_minus_naive"])
    assert table.loc["m", "mean_crps"] == pytest.approx((90 * 12.0 + 30 * 20.0) / 120)
    assert table.loc["m", "coverage_50"] == pytest.approx((90 * 0.5 + 30 * 0.7) / 120)
    assert table.loc["naive NB", "test_years"] == "2021-2022 (2)"


def test_markdown_leaves_a_missing_value_blank(oos):
    table = pd.DataFrame([{"a": 1, "b": 2.5}, {"a": 2}])
    assert oos.markdown(table, ["a", "b"])[2:] == ["| 1 | 2.5 |", "| 2 |  |"]


def test_paired_difference_is_model_minus_naive_with_its_standard_error(oos):
    rng = np.random.default_rng(2)
    y = rng.poisson(100, size=40).astype(float)
    naive = rng.poisson(100, size=(300, 40)).astype(float)
    same = oos.paired_difference(naive, naive, y)
    assert same == {"crps_minus_naive": 0.0, "se_difference": 0.0}
    sharp = np.repeat(y[None, :], 300, axis=0)  # a perfect point forecast: CRPS 0
    better = oos.paired_difference(sharp, naive, y)
    expected = -oos.crps_from_draws(naive, y)
    assert better["crps_minus_naive"] == pytest.approx(expected.mean(), abs=0.01)
    assert better["se_difference"] == pytest.approx(expected.std(ddof=1) / np.sqrt(40), abs=0.01)
