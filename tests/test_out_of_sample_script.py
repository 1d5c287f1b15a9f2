"""examples/out_of_sample.py: its variants, its rows from a backtest's scores, the pooling.

The script is a thin caller of csc_bayes.backtest, whose scores and baselines are tested in
tests/test_backtest_scores.py and tests/test_backtest.py; the real-data runs themselves are long
(results/out_of_sample/). These check the script's own tables, on small made-up inputs.
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


def test_rows_of_a_backtest_keep_the_scripts_layout(oos):
    """The model on every fitted authority, again on those with a baseline (authority "c" has
    no previous-year count) with the paired difference, then naive NB and naive Poisson."""
    from csc_bayes.backtest import BacktestResult

    def rows(method, kind, crps, phi=np.nan):
        return [
            {
                "origin": 2024,
                "horizon": 1,
                "method": method,
                "la_code": code,
                "kind": kind,
                "crps": c,
                "crps_over_y": c / 100,
                "abs_error": 2 * c,
                "covered_50": True,
                "covered_90": True,
                "phi": phi,
            }
            for code, c in crps.items()
        ]

    scores = pd.DataFrame(
        rows("cpp_need_ar", "forecast", {"a": 1.0, "b": 3.0, "c": 50.0})
        + rows("cpp_need_ar", "new_group", {"d": 9.0})  # not a fitted authority: left out
        + rows("naive", "baseline", {"a": 2.0, "b": 6.0}, phi=17.2)
        + rows("naive_poisson", "baseline", {"a": 4.0, "b": 4.0})
    )
    fits = pd.DataFrame([{"gate_passed": True, "seconds": 12.5}])
    result = BacktestResult(
        scores, pd.DataFrame(), pd.DataFrame(), fits, {"model": "cpp_need_ar", "outcome": "cpp"}
    )
    v = oos.Variant("cpp_need_ar", 2013, 2024, "cpp_need_ar 2013-2023", "cpp_need_ar", "full")
    all_fitted, matched, naive, poisson = oos.rows_of(result, v)
    assert all_fitted["subset"] == "all fitted authorities" and all_fitted["n_authorities"] == 3
    assert all_fitted["mean_crps"] == pytest.approx(18.0) and all_fitted["gate_passed"]
    assert matched["n_authorities"] == 2 and matched["mean_crps"] == 2.0
    assert matched["crps_minus_naive"] == -2.0 and matched["se_difference"] == 1.0
    assert naive["forecast"] == "naive NB (phi=17)" and naive["mean_crps"] == 4.0
    assert poisson["method"] == "naive Poisson" and poisson["n_authorities"] == 2
    assert oos.window_of(v) is None
    assert oos.window_of(oos.variants(["cpp_need"], 2022, ("last4",))[0]) == 4
