"""Which of last year's ratios predict this year's change in each outcome? (real panel)

    python examples/leading_indicators.py --data panel.parquet      # or --raw ../shared/data/raw

A descriptive check before a leading indicator goes into a forecasting spec. For an outcome y
with log rate r_jt = log(y_jt / pop_jt), the change d_jt = r_jt - r_j,t-1 and an indicator
x_jt = log(a_jt / b_jt) (``log_ratio_<a>__<b>``, :mod:`csc_bayes.data.ratios`), least squares
over the authority-years t in ``--years`` (default 2015-2024) of

    d_jt = year_t + c1 dev_j,t-1 + c_w (x_j,t-1 - xbar_j) + c_b x_j,t-1 + e_jt

where year_t are year dummies (the common movement), dev_j,t-1 = r_j,t-1 - mean_s r_js (last
year's deviation from the authority's own level: what the AR(1) LA-year term already uses) and
xbar_j the authority's mean of x. c_w (``coef_within``) is how the next change moves with an
authority's own indicator above its usual level, c_b (``coef_level``) the rest. The table gives
them with their t statistics (ordinary least squares SEs: authority-years as independent,
optimistic) and the residual SD without and with the indicator (``sd_resid_base``,
``sd_resid``): the share of the change the indicator explains beyond the AR(1) part.

``momentum`` is the same regression with last year's change d_j,t-1 instead of x.

Writes ``<results>/leading_indicators.csv`` and ``.md`` (coefficients only, no authority's
numbers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import csc_bayes
from csc_bayes.backtest import markdown_table
from csc_bayes.data.ratios import log_ratio
from csc_bayes.fits import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("cpp", "cin", "s47", "referrals")
#: (numerator, denominator) of the candidate indicators
RATIOS = (
    ("icpc", "cpp"),
    ("s47", "cpp"),
    ("cin", "cpp"),
    ("referrals", "cin"),
    ("assessment_episodes", "cin"),
    ("s47", "cin"),
    ("s47", "referrals"),
    ("icpc", "s47"),
)


def ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients, t statistics and residuals of y on x (least squares)."""
    b, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ b
    s2 = resid @ resid / (len(y) - x.shape[1])
    se = np.sqrt(np.diag(np.linalg.pinv(x.T @ x)) * s2)
    return b, b / se, resid


def frame(panel: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Per authority-year: d, dev1 (last year's deviation from own mean), d1 (last change)."""
    p = panel.assign(la_code=panel["la_code"].astype(str)).sort_values(["la_code", "year"])
    p = p.reset_index(drop=True)
    rate = np.log(p[outcome].astype(float) / p["population"].astype(float))
    p["r"] = rate.replace([np.inf, -np.inf], np.nan)
    g = p.groupby("la_code")
    p["dev"] = p["r"] - g["r"].transform("mean")
    p["d"] = p["r"] - g["r"].shift(1)
    p["dev1"] = g["dev"].shift(1)
    p["d1"] = g["d"].shift(1)
    return p


def fit_row(p: pd.DataFrame, extra: list[str], years: tuple[int, int]) -> dict[str, float]:
    q = p[["d", "dev1", "year", *extra]].dropna()
    q = q[q["year"].between(*years)]
    dummies = pd.get_dummies(q["year"], drop_first=True, dtype=float).to_numpy()
    base_x = np.column_stack([np.ones(len(q)), q["dev1"].to_numpy(float), dummies])
    _, _, base_resid = ols(q["d"].to_numpy(float), base_x)
    x = np.column_stack([base_x[:, :2], q[extra].to_numpy(float), dummies])
    b, t, resid = ols(q["d"].to_numpy(float), x)
    out = {"n": len(q), "sd_resid_base": float(base_resid.std()), "sd_resid": float(resid.std())}
    for i, name in enumerate(extra):
        out[f"coef_{name}"], out[f"t_{name}"] = float(b[2 + i]), float(t[2 + i])
    return out


def table(panel: pd.DataFrame, years: tuple[int, int]) -> pd.DataFrame:
    rows = []
    for outcome in OUTCOMES:
        p = frame(panel, outcome)
        for a, b in RATIOS:
            if a not in p or b not in p:
                continue
            values, _ = log_ratio(p, a, b)
            p["x"] = values.astype(float)
            g = p.groupby("la_code")
            p["x1"] = g["x"].shift(1)
            p["within"] = p["x1"] - g["x1"].transform("mean")
            fitted = fit_row(p, ["within", "x1"], years)
            rows.append(
                {
                    "outcome": outcome,
                    "indicator": f"log({a} / {b}) in t-1",
                    "n": fitted["n"],
                    "coef_within": fitted["coef_within"],
                    "t_within": fitted["t_within"],
                    "coef_level": fitted["coef_x1"],
                    "t_level": fitted["t_x1"],
                    "sd_resid_base": fitted["sd_resid_base"],
                    "sd_resid": fitted["sd_resid"],
                }
            )
        fitted = fit_row(p, ["d1"], years)
        rows.append(
            {
                "outcome": outcome,
                "indicator": "momentum: d in t-1",
                "n": fitted["n"],
                "coef_within": fitted["coef_d1"],
                "t_within": fitted["t_d1"],
                "sd_resid_base": fitted["sd_resid_base"],
                "sd_resid": fitted["sd_resid"],
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a built panel (csc-bayes data build)")
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "forecast")
    parser.add_argument("--years", type=int, nargs=2, default=[2015, 2024])
    args = parser.parse_args(argv)
    panel = csc_bayes.load_panel(args.data) if args.data else csc_bayes.build_panel(args.raw)
    result = table(panel, tuple(args.years))
    args.results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results / "leading_indicators.csv", result.to_csv(index=False))
    lines = [
        "# Leading indicators: last year's ratios against this year's change",
        "",
        f"`examples/leading_indicators.py`, changes {args.years[0]}-{args.years[1]}: "
        "least squares of the change in the log rate on year dummies, last year's deviation "
        "from the authority's mean, and the indicator (within: its deviation from the "
        "authority's mean; level: the indicator). t: OLS t statistic (authority-years as "
        "independent, optimistic). sd_resid_base / sd_resid: residual SD without / with it.",
        "",
        *markdown_table(result),
    ]
    write_text_atomic(args.results / "leading_indicators.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
