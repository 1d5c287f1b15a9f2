"""How far below the naive rule's error can a point forecast from the published data go?

    python examples/forecast_ceiling.py --data panel.parquet     # or --raw ../shared/data/raw

Issue 14 asks for a mean absolute error at most 0.9x the naive rule's (last year's rate x this
year's population). This script bounds what any forecast that is linear in the history and
the leading indicators can reach, on the same test years as the backtest (2019-2024).

For outcome y of authority j, r_jt = log(y_jt / pop_jt), the change d_jt = r_jt - r_j,t-1 and
the forecast of the count yhat_jt = exp(r_j,t-1 + dhat_jt) pop_jt; the naive rule is dhat = 0.
dhat_jt is linear in what is known in t-1:

    x_j,t-1 = (1, dev_j,t-1, d_j,t-1, d_j,t-2, z_j,t-1 ...)

dev_j,t-1 = r_j,t-1 - mean_{s<t} r_js (last year's deviation from the authority's own level),
d_j,t-1 and d_j,t-2 (the last two changes), and the ``--indicators`` z: last year's log ratios
(``log_ratio_<a>__<b>``, :mod:`csc_bayes.data.ratios`) that the panel has for every authority.
The coefficients minimise the forecast's absolute error in children, sum_j |yhat_jt - y_jt|,
approximately: a least-absolute-deviation fit of d_jt weighted by the naive forecast
exp(r_j,t-1) pop_jt (an error of e on the log scale costs about yhat |e| children). Three fits:

- ``trend_oracle``: dhat = the test year's own weighted median change over authorities (the
  naive rule with the national change known in advance);
- ``past``: coefficients from the years before t only: an honest forecast, the
  non-Bayesian counterpart of the AR(1) specs;
- ``oracle``: coefficients fitted to the test year t itself: the best linear forecast with
  these predictors *in hindsight* (the national change and every coefficient known, and
  overfitted to the test year). No honest forecast from the same predictors beats it.

``mae_ratio`` = sum |yhat - y| / sum |naive - y| pooled over the test years; an ``oracle`` ratio
above 0.9 means that no forecast linear in these predictors reaches the target. Writes
``<results>/mae_ceiling.csv`` (per outcome and test year) and ``mae_ceiling.md`` (pooled).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linprog

import csc_bayes
from csc_bayes.backtest import markdown_table
from csc_bayes.data.ratios import log_ratio
from csc_bayes.fits import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("cpp", "cin", "cla", "s47", "referrals")
#: (numerator, denominator) of the candidate indicators: those of examples/leading_indicators.py
#: with data from 2013, and the care flows relative to the stock
INDICATORS = (
    ("icpc", "cpp"),
    ("cin", "cpp"),
    ("s47", "cin"),
    ("referrals", "cin"),
    ("s47", "referrals"),
    ("cla_started", "cla"),
    ("cla_ceased", "cla"),
)
HISTORY = ("dev1", "d1", "d2")


def weighted_lad(y: np.ndarray, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """b minimising sum_i weight_i |y_i - x_i b| (linear programme: y - x b = u - v; u, v >= 0)."""
    n, k = x.shape
    cost = np.concatenate([np.zeros(2 * k), weight, weight])
    equality = np.hstack([x, -x, np.eye(n), -np.eye(n)])
    solved = linprog(cost, A_eq=equality, b_eq=y, bounds=(0, None), method="highs")
    if not solved.success:
        raise RuntimeError(f"least-absolute-deviation fit failed: {solved.message}")
    return solved.x[:k] - solved.x[k : 2 * k]


def frame(panel: pd.DataFrame, outcome: str, indicators: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per authority-year: y, the naive forecast, d, dev1, d1, d2 and lagged indicators.

    dev1 uses the authority's mean log rate over the years before t only (no look-ahead)."""
    p = panel.assign(la_code=panel["la_code"].astype(str)).sort_values(["la_code", "year"])
    p = p.reset_index(drop=True)
    p["r"] = np.log(p[outcome].astype(float) / p["population"].astype(float))
    p["r"] = p["r"].replace([np.inf, -np.inf], np.nan)
    g = p.groupby("la_code")
    p["r1"] = g["r"].shift(1)
    p["d"] = p["r"] - p["r1"]
    p["d1"] = g["d"].shift(1)
    p["d2"] = g["d"].shift(2)
    past_mean = g["r"].transform(lambda r: r.expanding().mean().shift(1))
    p["dev1"] = p["r1"] - past_mean
    p["naive"] = np.exp(p["r1"]) * p["population"].astype(float)
    p["y"] = p[outcome].astype(float)
    for a, b in indicators:
        values, _ = log_ratio(p, a, b)
        p[f"z_{a}__{b}"] = (
            pd.Series(values, index=p.index).astype(float).groupby(p["la_code"]).shift(1)
        )
    return p


def test_year_errors(test: pd.DataFrame, train: pd.DataFrame, predictors: list[str]) -> dict:
    """Summed absolute errors in children of the naive rule and the three forecasts of one year."""

    def design(q: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.ones(len(q)), q[predictors].to_numpy(float)])

    def abs_error(change: np.ndarray) -> float:
        forecast = test["naive"].to_numpy() * np.exp(change)
        return float(np.abs(forecast - test["y"].to_numpy()).sum())

    d, weight = test["d"].to_numpy(), test["naive"].to_numpy()
    median = weighted_lad(d, np.ones((len(test), 1)), weight)[0]
    past = weighted_lad(train["d"].to_numpy(), design(train), train["naive"].to_numpy())
    oracle = weighted_lad(d, design(test), weight)
    return {
        "test_year": int(test["year"].iloc[0]),
        "n_authorities": len(test),
        "predictors": " ".join(predictors),
        "naive_abs_error": abs_error(np.zeros(len(test))),
        "trend_oracle": abs_error(np.full(len(test), median)),
        "past": abs_error(design(test) @ past),
        "oracle": abs_error(design(test) @ oracle),
    }


def ceiling_table(
    panel: pd.DataFrame,
    test_years: tuple[int, int] = (2019, 2024),
    first_year: int = 2013,
    outcomes: tuple[str, ...] = OUTCOMES,
) -> pd.DataFrame:
    """Per outcome and test year: the naive MAE and the three forecasts' MAE ratios (module doc)."""
    panel = panel[panel["year"] >= first_year]
    rows = []
    for outcome in outcomes:
        if outcome not in panel:
            continue
        usable = [(a, b) for a, b in INDICATORS if outcome in (a, b) and a in panel and b in panel]
        p = frame(panel, outcome, usable)
        predictors = [*HISTORY, *(f"z_{a}__{b}" for a, b in usable)]
        p = p.dropna(subset=["y", "naive", "d", *predictors])
        p = p[p["naive"] > 0]
        for t in range(test_years[0], test_years[1] + 1):
            test, train = p[p["year"] == t], p[p["year"] < t]
            if not test.empty and not train.empty:
                rows.append({"outcome": outcome, **test_year_errors(test, train, predictors)})
    return pd.DataFrame(rows)


def pooled(per_year: pd.DataFrame) -> pd.DataFrame:
    """mae_ratio per outcome: summed absolute errors over the test years / the naive rule's."""
    sums = per_year.groupby("outcome", sort=False)[
        ["naive_abs_error", "trend_oracle", "past", "oracle"]
    ].sum()
    out = sums[["trend_oracle", "past", "oracle"]].div(sums["naive_abs_error"], axis=0)
    out.columns = [f"mae_ratio_{c}" for c in out.columns]
    years = per_year.groupby("outcome", sort=False)["test_year"].agg(["min", "max"])
    out.insert(0, "test_years", years["min"].astype(str) + "-" + years["max"].astype(str))
    out.insert(1, "n_forecasts", per_year.groupby("outcome", sort=False)["n_authorities"].sum())
    out["naive_mae"] = sums["naive_abs_error"] / out["n_forecasts"]
    out["hindsight_reaches_0_9"] = np.where(out["mae_ratio_oracle"] <= 0.9, "yes", "no")
    return out.reset_index()


def per_year_ratios(per_year: pd.DataFrame) -> pd.DataFrame:
    """The per-year table with each forecast's error as a ratio to the naive rule's."""
    out = per_year.drop(columns="predictors").copy()
    for column in ("trend_oracle", "past", "oracle"):
        out[column] = out[column] / out["naive_abs_error"]
    out["naive_abs_error"] = out["naive_abs_error"] / out["n_authorities"]
    return out.rename(columns={"naive_abs_error": "naive_mae"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a built panel (csc-bayes data build)")
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "forecast")
    parser.add_argument("--test-years", type=int, nargs=2, default=[2019, 2024])
    args = parser.parse_args(argv)
    panel = csc_bayes.load_panel(args.data) if args.data else csc_bayes.build_panel(args.raw)
    per_year = ceiling_table(panel, tuple(args.test_years))
    table = pooled(per_year)
    predictors = per_year.groupby("outcome", sort=False)["predictors"].first()
    lines = [
        "# How low can a forecast's absolute error go? The naive rule against the best linear "
        "forecast",
        "",
        f"`examples/forecast_ceiling.py`, test years {args.test_years[0]}-{args.test_years[1]} "
        "(each forecast from year t-1). mae_ratio = the forecast's summed absolute error in "
        "children / the naive rule's. trend_oracle: the naive rule times the test year's own "
        "median change (known in hindsight); past: a least-absolute-deviation forecast fitted "
        "on the years before t; oracle: the same predictors with coefficients fitted to the "
        "test year itself (hindsight: no honest forecast from these predictors beats it). "
        "hindsight_reaches_0_9: whether even the oracle gets to issue 14's MAE target of 0.9.",
        "",
        *markdown_table(table),
        "",
        "Predictors (known in t-1): dev1 = last year's log rate minus the authority's mean "
        "over the years before; d1, d2 = the last two changes in the log rate; z_<a>__<b> = "
        "last year's log(a / b).",
        "",
        *(f"- {outcome}: {names}" for outcome, names in predictors.items()),
        "",
        "## Per test year (ratios to the naive rule's absolute error)",
        "",
        *markdown_table(per_year_ratios(per_year)),
    ]
    args.results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results / "mae_ceiling.md", "\n".join(lines) + "\n")
    write_text_atomic(args.results / "mae_ceiling.csv", per_year.to_csv(index=False))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
