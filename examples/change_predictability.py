"""How predictable is an authority's year-to-year change in each outcome? (real panel)

    python examples/change_predictability.py --raw ../shared/data/raw

A forecast can beat "last year's rate" (the naive baseline of examples/out_of_sample.py) only
if something known at the time predicts the change from last year. Per outcome, with
r_jt = log(y_jt / pop_jt) and the change d_jt = r_jt - r_j,t-1 taken relative to that year's
mean change over authorities (common shifts are the year effects' business):

- ``corr_prev_change``: corr(d_jt, d_j,t-1). Negative: a rise tends to be followed by a fall,
  i.e. part of each year's count is transient noise around a level that a model can estimate.
  Near zero: the series is a random walk and last year's value is the best point forecast.
- ``corr_dev_from_own_mean``: corr(d_jt, r_j,t-1 - mean_{s<t} r_js). Negative: rates revert
  towards the authority's own level (what an AR(1) LA-year term with rho < 1 exploits).
- ``sd_change``: SD of d_jt (log scale); ``excess_kurtosis``: its excess kurtosis
  m4 / m2^2 - 3 (0 for a normal; large values mean a few authorities move far more than the
  typical one, so a single spread fitted to all of them is too wide in the middle);
  ``r2_lagged``: R^2 of d_jt on both predictors (least
  squares over the years before ``--test-year``), and ``sd_change_test`` / ``sd_resid_test``: the
  test year's change SD before and after that regression.

Writes ``<results>/predictability.csv`` and ``.md``, and ``<results>/spread_by_year.csv`` and
``.md``: per outcome and year, ``mad_change`` = median |d_jt| over authorities, with the slope of
log(mad_change) on the year (``log_spread_per_year``: the change in the log spread of the
changes per year, what ``la_year = "ar1_t_sd_trend"`` estimates as ``sd_trend_la_year``;
``docs/methods.md`` 3g).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

import csc_bayes
from csc_bayes.fits import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("cpp", "cin", "s47", "referrals", "cla")


def changes(panel: pd.DataFrame, outcome: str, first_year: int) -> pd.DataFrame:
    """One row per authority-year t >= first_year: d (centred), d_prev (centred), dev."""
    rate = np.log(
        panel.pivot(index="la_code", columns="year", values=outcome).astype(float)
        / panel.pivot(index="la_code", columns="year", values="population").astype(float)
    )
    change = rate.diff(axis=1)
    rows = []
    for t in [c for c in rate.columns if c >= first_year]:
        rows.append(
            pd.DataFrame(
                {
                    "year": t,
                    "d": change[t],
                    "d_prev": change[t - 1],
                    "dev": rate[t - 1] - rate.loc[:, : t - 1].mean(axis=1),
                }
            )
        )
    out = pd.concat(rows).replace([np.inf, -np.inf], np.nan).dropna()
    for col in ("d", "d_prev"):  # relative to the year's mean change
        out[col] = out[col] - out.groupby("year")[col].transform("mean")
    return out


def summarise(panel: pd.DataFrame, outcome: str, test_year: int) -> dict[str, float | str]:
    data = changes(panel, outcome, int(panel["year"].min()) + 2)
    train, test = data[data["year"] < test_year], data[data["year"] == test_year]
    design = np.column_stack([np.ones(len(train)), train["d_prev"], train["dev"]])
    coef, *_ = np.linalg.lstsq(design, train["d"], rcond=None)
    fitted = design @ coef
    r2 = 1 - np.var(train["d"] - fitted) / np.var(train["d"])
    test_design = np.column_stack([np.ones(len(test)), test["d_prev"], test["dev"]])
    return {
        "outcome": outcome,
        "n_train": len(train),
        "corr_prev_change": round(float(np.corrcoef(train["d"], train["d_prev"])[0, 1]), 3),
        "corr_dev_from_own_mean": round(float(np.corrcoef(train["d"], train["dev"])[0, 1]), 3),
        "sd_change": round(float(train["d"].std()), 4),
        "excess_kurtosis": round(float(stats.kurtosis(train["d"])), 1),
        "r2_lagged": round(float(r2), 3),
        "sd_change_test": round(float(test["d"].std()), 4),
        "sd_resid_test": round(float((test["d"] - test_design @ coef).std()), 4),
    }


def spread_by_year(panel: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Per year: the median absolute change over authorities, mad_t = median_j |d_jt|, and
    (on every row) the least-squares slope of log(mad_t) on t."""
    data = changes(panel, outcome, int(panel["year"].min()) + 1)
    mad = data.groupby("year")["d"].apply(lambda d: float(np.median(np.abs(d))))
    slope = float(np.polyfit(mad.index.to_numpy(float), np.log(mad.to_numpy()), 1)[0])
    return pd.DataFrame(
        {
            "outcome": outcome,
            "year": mad.index,
            "n_authorities": data.groupby("year").size().to_numpy(),
            "mad_change": mad.to_numpy().round(4),
            "log_spread_per_year": round(slope, 4),
        }
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "out_of_sample")
    parser.add_argument("--test-year", type=int, default=2024)
    args = parser.parse_args(argv)

    panel = csc_bayes.build_panel(args.raw)
    table = pd.DataFrame([summarise(panel, o, args.test_year) for o in OUTCOMES])
    args.results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results / "predictability.csv", table.to_csv(index=False))
    cols = list(table.columns)
    lines = [
        f"# Predictability of year-to-year changes (train: years before {args.test_year})",
        "",
        "Changes are log-rate changes relative to the year's mean change; see "
        "examples/change_predictability.py for the definitions.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)),
    ]
    write_text_atomic(args.results / "predictability.md", "\n".join(lines) + "\n")
    print(table.to_string(index=False))

    spread = pd.concat([spread_by_year(panel, o) for o in OUTCOMES], ignore_index=True)
    write_text_atomic(args.results / "spread_by_year.csv", spread.to_csv(index=False))
    wide = spread.pivot(index="year", columns="outcome", values="mad_change")[list(OUTCOMES)]
    slopes = spread.groupby("outcome")["log_spread_per_year"].first()[list(OUTCOMES)]
    lines = [
        "# Spread of the authorities' year-to-year changes, by year",
        "",
        "mad_change: the median over authorities of |change in log rate|, each change relative "
        "to the year's mean change (examples/change_predictability.py). Last row: the slope of "
        "log(mad_change) on the year, the change in the log spread per year.",
        "",
        "| year | " + " | ".join(OUTCOMES) + " |",
        "|" + "---|" * (len(OUTCOMES) + 1),
        *(
            f"| {year} | " + " | ".join(f"{v:.3f}" for v in row) + " |"
            for year, row in zip(wide.index, wide.to_numpy(), strict=True)
        ),
        "| log_spread_per_year | " + " | ".join(f"{v:+.3f}" for v in slopes) + " |",
    ]
    write_text_atomic(args.results / "spread_by_year.md", "\n".join(lines) + "\n")
    print(wide.to_string(float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
