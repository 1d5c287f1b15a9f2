"""Out-of-sample check on the real panel: fit the years up to 2023, forecast 2024 for everyone.

    python examples/out_of_sample.py --raw ../shared/data/raw              # CPP and CLA
    python examples/out_of_sample.py --raw ../shared/data/raw --models cpp_need --quick
    python examples/out_of_sample.py --raw ../shared/data/raw --models cla_need_ar --append
    python examples/out_of_sample.py --models cpp_need_ar cla_need_ar --windows full \
        --test-years 2021 2022 2023 2024 --results results/out_of_sample/backtest

The last form is a rolling-origin backtest: for each test year t the spec is refitted on the
years up to t - 1 and scored on t, with the naive baseline recalibrated on the same years;
``pooled.md`` there averages the per-year scores.

This script is a thin caller of ``csc_bayes.backtest`` (``csc-bayes backtest``), which refits,
forecasts and scores; the script adds its training windows (``--windows``), the naive Poisson
rows and its own table layout (``results/out_of_sample/``). For new work use the command:
``csc-bayes backtest cpp_need_ar --data panel.parquet --origins 2021 2024 --horizon 1 2 3``.

For each model and training window the spec is refitted on the panel rows with year <= 2023
(the 2024 outcomes are never seen: ``years`` ends at 2023), then every authority's 2024 count
is forecast with its own predictive distribution. Per authority j with observed y_j:

- coverage: whether y_j lies in the central 50% and 90% predictive intervals;
- CRPS (Gneiting & Raftery 2007), from S predictive draws Y_1..Y_S:

      CRPS_j = mean_s |Y_s - y_j| - 0.5 mean_{s,s'} |Y_s - Y_s'|,

  the second term from the sorted draws as (1/S^2) sum_i (2i - S - 1) Y_(i). Lower is better;
  it is in children, so the mean over authorities is dominated by large authorities, and the
  table also gives the mean of CRPS_j / y_j (scaled) so small authorities count too.

Model draws are ``csc_bayes.predict.predict_draws(fit, authority="all", year=2024)`` on a refit
that never sees an outcome after 2023 (``csc_bayes.backtest.masked_panel``): the
package's own forecast for a year the model was not fitted to (docs/methods.md): per draw s, a
new common year effect d_s ~ N(0, sigma_year_s) (exchangeable years) or
d_s ~ N(year_effect_2023,s, sigma_year_s^2) (random-walk years, ``year_effect = "rw1"``),
eta_js = log(pop_j,2024) + intercept_s + z_j . beta_s + la_effect_js + region_effect_rs + d_s,
(+ la_trend_js * (2024 - year_centre) / 10 for a spec with ``la_trend``;
+ la_year_j,2024 ~ N(rho_s la_year_j,2023, sigma_la_year_s^2 (1 - rho_s^2)) for ``la_year``),
Y_js ~ NB(mu = exp(eta_js), phi_s) as a gamma-Poisson mixture; z_j from the 2024 covariates.

Baseline ("naive"): last year's rate times this year's population, m_j = y_j,2023 * pop_j,2024 /
pop_j,2023, with a negative binomial predictive distribution NB(mean m_j, phi_naive), where
phi_naive is the maximum-likelihood NB concentration of the same one-step-ahead rule over the
training years (every pair of consecutive years up to 2023). A Poisson(m_j) version is shown too.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import csc_bayes
from csc_bayes.backtest import BacktestResult, backtest, markdown_table, paired_difference, pool
from csc_bayes.fits import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
TEST_YEAR = 2024  # the check: fit up to 2023, forecast 2024
WINDOWS = ("full", "last4", "recent")
#: where the short-window spec variants live (see docs/real_data_results.md)
RECENT_SPECS = REPO / "results" / "out_of_sample"


@dataclasses.dataclass(frozen=True)
class Variant:
    """Spec ``spec`` (shipped name or TOML path) refitted on ``first``..``test_year - 1``,
    scored on ``test_year``."""

    spec: str
    first: int
    test_year: int
    label: str
    model: str
    window: str


def variants(
    models: list[str], test_year: int = TEST_YEAR, windows: tuple[str, ...] = WINDOWS
) -> list[Variant]:
    """Per model and window: ``full``, the spec's own first year to ``test_year - 1``;
    ``last4``, the last 4 years; ``recent``, where a ``<model>_recent.toml`` spec sits beside
    the results (a short window with its own priors and settings; not a shipped model until it
    passes the gate), that spec with its window moved so that it ends at ``test_year - 1``."""
    out, last = [], test_year - 1
    for m in models:
        first = csc_bayes.find_spec(m).years[0]
        if "full" in windows:
            out.append(Variant(m, first, test_year, f"{m} {first}-{last}", m, "full"))
        if "last4" in windows:
            label = f"{m} {test_year - 4}-{last} (last 4 years)"
            out.append(Variant(m, test_year - 4, test_year, label, m, "last4"))
        recent = RECENT_SPECS / f"{m}_recent.toml"
        if "recent" in windows and recent.is_file():
            lo, hi = csc_bayes.load_spec(recent).years
            start = lo - (hi - last)
            label = f"{recent.stem} {start}-{last}"
            out.append(Variant(str(recent), start, test_year, label, recent.stem, "recent"))
    return out


def window_of(v: Variant) -> int | None:
    """The backtest's training window: None (from the spec's first year) or its length."""
    return None if v.window == "full" else v.test_year - v.first


def score(name: str, rows: pd.DataFrame, extra: dict[str, Any]) -> dict[str, Any]:
    """One summary row from per-authority scores (``BacktestResult.scores`` rows of one
    method): coverage, mean CRPS, mean CRPS / y, mean absolute error of the median."""
    return {
        "forecast": name,
        **extra,
        "n_authorities": len(rows),
        "coverage_50": round(float(rows["covered_50"].mean()), 3),
        "coverage_90": round(float(rows["covered_90"].mean()), 3),
        "mean_crps": round(float(rows["crps"].mean()), 2),
        "mean_crps_over_y": round(float(rows["crps_over_y"].mean()), 4),
        "mae_median": round(float(rows["abs_error"].mean()), 2),
    }


def rows_of(result: BacktestResult, v: Variant) -> list[dict[str, Any]]:
    """The script's rows for one variant: the model on every fitted authority (and again on
    the authorities with a baseline, when they differ, with the paired difference), naive NB,
    naive Poisson."""
    scores = result.scores
    model = scores[(scores["method"] == result.info["model"]) & (scores["kind"] == "forecast")]
    naive = scores[scores["method"] == "naive"].set_index("la_code")
    poisson = scores[scores["method"] == "naive_poisson"]
    fit = result.fits.iloc[0]
    common = {
        "outcome": result.info["outcome"],
        "test_year": v.test_year,
        "window": v.window,
        "train": f"{v.first}-{v.test_year - 1}",
    }
    on_base = {**common, "subset": "authorities with a baseline"}
    rows = [
        score(v.label, model, {**common, "method": v.model, "subset": "all fitted authorities"})
        | {"gate_passed": bool(fit["gate_passed"]), "fit_wall_s": float(fit["seconds"])}
    ]
    matched = model[model["la_code"].isin(naive.index)]
    if len(matched) < len(model):  # the model again on the baseline's authorities
        rows.append(score(v.label, matched, {**on_base, "method": v.model}))
    diff, se = paired_difference(
        matched["crps"].to_numpy(), naive["crps"].loc[matched["la_code"]].to_numpy()
    )
    rows[-1] |= {"crps_minus_naive": round(diff, 2), "se_difference": round(se, 2)}
    naive_rows = naive.loc[matched["la_code"]].reset_index()
    phi = float(naive_rows["phi"].iloc[0])
    return [
        *rows,
        score(f"naive NB (phi={phi:.0f})", naive_rows, {**on_base, "method": "naive NB"}),
        score(
            "naive Poisson",
            poisson[poisson["la_code"].isin(matched["la_code"])],
            {**on_base, "method": "naive Poisson"},
        ),
    ]


def evaluate(
    panel: pd.DataFrame, v: Variant, fits_dir: Path, sampler: dict[str, Any], seed: int
) -> list[dict[str, Any]]:
    """Refit (or reuse) ``v``'s spec on its window and score its forecast of ``v.test_year``
    with :func:`csc_bayes.backtest.backtest`."""
    spec = csc_bayes.find_spec(v.spec)
    spec = dataclasses.replace(spec, years=(v.first, v.test_year - 1))  # first: the window's
    result = backtest(
        spec,
        data=panel,
        origins=[v.test_year],
        horizons=(1,),
        window=window_of(v),
        baselines=("naive", "naive_poisson"),
        fits_dir=fits_dir / "out_of_sample",
        seed=seed,
        workers=1,
        progress=False,
        **sampler,
    )
    return rows_of(result, v)


def earlier_rows(results: Path, rerun: set[str]) -> list[dict[str, Any]]:
    """Rows of ``results/summary.csv`` whose forecast was not re-run (``--append``).

    A model row and the baseline rows after it form one block; a block is kept unless its
    model row's label is in ``rerun``.
    """
    path = results / "summary.csv"
    if not path.is_file():
        return []
    kept, keep = [], True
    for row in pd.read_csv(path).to_dict(orient="records"):
        if not str(row["forecast"]).startswith("naive"):
            keep = row["forecast"] not in rerun
        if keep:
            kept.append(
                {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))}
            )
    return kept


def pooled(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per outcome, training window and method, the scores averaged over the test years
    (coverage and CRPS weighted by the number of authorities scored each year, the paired
    difference's SE between years: :func:`csc_bayes.backtest.pool`)."""
    table = pd.DataFrame(rows)
    if "test_year" not in table:
        return pd.DataFrame()
    table = table.dropna(subset=["test_year", "method"])
    # a model scored on all fitted authorities and again on those with a baseline: keep the
    # rows on the baseline's authorities, the ones the naive rows are scored on
    matched = table.duplicated(["outcome", "window", "method", "test_year"], keep="last")
    table = table[~matched].assign(origin=table["test_year"].astype(int), horizon=1)
    records = []
    for (outcome, window), group in table.groupby(["outcome", "window"], sort=False):
        averaged = pool(group).assign(outcome=outcome, window=window)
        records.append(averaged)
    if not records:
        return pd.DataFrame()
    out = pd.concat(records, ignore_index=True).rename(
        columns={"origins": "test_years", "se_minus_naive": "se_between_years"}
    )
    scores = ["coverage_50", "coverage_90", "mean_crps", "mean_crps_over_y", "mae_median"]
    out[scores] = out[scores].round(4)
    for column, digits in (("crps_minus_naive", 2), ("se_between_years", 2)):
        if column in out:
            out[column] = out[column].round(digits)
    columns = ["outcome", "window", "method", "test_years", *scores]
    return out[columns + [c for c in ("crps_minus_naive", "se_between_years") if c in out]]


def markdown(table: pd.DataFrame, cols: list[str]) -> list[str]:
    """A markdown table of ``cols`` (a value missing from a row, e.g. an older run's, is blank)."""
    return markdown_table(table, cols, rounded=False)


def write(rows: list[dict[str, Any]], results: Path, note: str, test_years: list[int]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    write_text_atomic(results / "summary.csv", table.to_csv(index=False))
    cols = [
        "forecast",
        "outcome",
        *(["test_year"] if len(test_years) > 1 else []),
        "train",
        "subset",
        "n_authorities",
        "coverage_50",
        "coverage_90",
        "mean_crps",
        "mean_crps_over_y",
        "mae_median",
        "crps_minus_naive",
        "se_difference",
    ]
    if len(test_years) == 1:
        title = f"forecast {test_years[0]} from fits to years up to {test_years[0] - 1}"
    else:
        title = (
            f"rolling origin, test years {', '.join(map(str, test_years))}: each forecast from "
            "a fit to the years before it"
        )
    lines = [
        f"# Out-of-sample check: {title}",
        "",
        note,
        "",
        *markdown(table, cols),
        "",
        "Model fits (first row of each model): gate, fit wall time (near 0 when a saved fit "
        "was reused):",
        "",
        *(
            f"- {r['forecast']}: gate passed={r['gate_passed']}, {r['fit_wall_s']} s"
            for r in rows
            if "gate_passed" in r
        ),
    ]
    write_text_atomic(results / "summary.md", "\n".join(lines) + "\n")
    if len(test_years) > 1:
        average = pooled(rows)
        write_text_atomic(results / "pooled.csv", average.to_csv(index=False))
        body = [
            "# Rolling-origin scores averaged over the test years "
            f"({', '.join(map(str, test_years))})",
            "",
            "Weighted by the authorities scored each year; models on the naive baseline's "
            "authorities. crps_minus_naive: the model's mean CRPS minus the naive NB's on the "
            "same authorities (negative: the model is better); se_between_years: its standard "
            "error from the spread of the per-year differences. Per-year rows: summary.md.",
            "",
            *markdown(average, list(average.columns)),
        ]
        write_text_atomic(results / "pooled.md", "\n".join(body) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--fits", type=Path, default=REPO / "fits" / "realdata")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "out_of_sample")
    parser.add_argument("--models", nargs="*", default=["cpp_need", "cla_need"])
    parser.add_argument("--quick", action="store_true", help="2 chains x 300 draws (smoke run)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--test-years",
        type=int,
        nargs="+",
        default=[TEST_YEAR],
        help="forecast each of these years from a fit to the years before it (rolling origin)",
    )
    parser.add_argument(
        "--windows", nargs="+", choices=WINDOWS, default=list(WINDOWS), help="training windows"
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the rows of earlier runs in the results table (models not re-run here)",
    )
    args = parser.parse_args(argv)

    panel = csc_bayes.build_panel(args.raw)
    sampler = {"draws": 300, "tune": 300, "chains": 2} if args.quick else {}
    todo = [v for t in args.test_years for v in variants(args.models, t, tuple(args.windows))]
    rows = earlier_rows(args.results, {v.label for v in todo}) if args.append else []
    for v in todo:
        rows += evaluate(panel, v, args.fits, sampler, args.seed)
        print(pd.DataFrame(rows).iloc[-3:, :11].to_string(index=False), flush=True)
        note = (
            "Sampler: "
            + ("--quick (2 x 300 + 300)" if args.quick else "the spec's defaults")
            + ". Intervals are central; CRPS in children (lower is better); "
            "mean_crps_over_y = mean of CRPS_j / y_j. Rows marked 'authorities with a "
            "baseline' (shown only when they differ from all fitted authorities) drop authorities "
            "with no previous-year count. crps_minus_naive: mean over authorities of the "
            "model's CRPS minus the naive NB's (negative: the model is better), se_difference "
            "its standard error with authorities as independent replicates (optimistic: they "
            "share the year's national shock)."
        )
        if args.append:
            rerun = ", ".join(v.label for v in todo)
            note += f" Appended run: re-ran {rerun}; the other rows are from earlier runs."
        write(rows, args.results, note, args.test_years)


if __name__ == "__main__":
    main()
