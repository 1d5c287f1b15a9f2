"""Out-of-sample check on the real panel: fit the years up to 2023, forecast 2024 for everyone.

    python examples/out_of_sample.py --raw ../shared/data/raw              # CPP and CLA
    python examples/out_of_sample.py --raw ../shared/data/raw --models cpp_need --quick
    python examples/out_of_sample.py --raw ../shared/data/raw --models cla_need_ar --append
    python examples/out_of_sample.py --models cpp_need_ar cla_need_ar --windows full \
        --test-years 2021 2022 2023 2024 --results results/out_of_sample/backtest

The last form is a rolling-origin backtest: for each test year t the spec is refitted on the
years up to t - 1 and scored on t, with the naive baseline recalibrated on the same years;
``pooled.md`` there averages the per-year scores.

For each model and training window the spec is refitted on the panel rows with year <= 2023
(the 2024 outcomes are never seen: ``years`` ends at 2023), then every authority's 2024 count
is forecast with its own predictive distribution. Per authority j with observed y_j:

- coverage: whether y_j lies in the central 50% and 90% predictive intervals;
- CRPS (Gneiting & Raftery 2007), from S predictive draws Y_1..Y_S:

      CRPS_j = mean_s |Y_s - y_j| - 0.5 mean_{s,s'} |Y_s - Y_s'|,

  the second term from the sorted draws as (1/S^2) sum_i (2i - S - 1) Y_(i). Lower is better;
  it is in children, so the mean over authorities is dominated by large authorities, and the
  table also gives the mean of CRPS_j / y_j (scaled) so small authorities count too.

Model draws are ``csc_bayes.predict.predict_draws(fit, authority="all", year=2024)``: the
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
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

import csc_bayes
from csc_bayes.predict import predict_draws

REPO = Path(__file__).resolve().parents[1]
TEST_YEAR = 2024  # the check: fit up to 2023, forecast 2024
WINDOWS = ("full", "last4", "recent")
LEVELS = (0.5, 0.9)
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


def crps_from_draws(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS per column: ``samples`` is (S, n) predictive draws, ``y`` (n,) observed."""
    s = np.sort(samples, axis=0)
    n_draws = s.shape[0]
    first = np.abs(s - y[None, :]).mean(axis=0)
    weights = 2 * np.arange(1, n_draws + 1) - n_draws - 1
    spread = (weights[:, None] * s).sum(axis=0) / n_draws**2  # = 0.5 E|Y - Y'|
    return first - spread


def central(samples: np.ndarray, y: np.ndarray, level: float) -> np.ndarray:
    """Whether y lies in the central ``level`` interval of each column's draws."""
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return (y >= lo) & (y <= hi)


def model_draws(fit: csc_bayes.Fit, test: pd.DataFrame, year: int, seed: int) -> np.ndarray:
    """(S, n) predictive draws of the ``year`` counts of ``test`` (fitted authorities only)."""
    pred = predict_draws(fit, authority="all", year=year, seed=seed)
    columns = pd.Index(pred.rows["la_code"]).get_indexer(test["la_code"])
    if (columns < 0).any():
        raise ValueError("predict_draws returned no forecast for some test authorities")
    if not (pred.rows["kind"].iloc[columns] == "forecast").all():
        raise ValueError(f"{year} must be a forecast year for every test authority")
    return pred.count[:, columns]


def naive_baseline(
    panel: pd.DataFrame, outcome: str, first: int, test_year: int = TEST_YEAR
) -> tuple[pd.Series, float]:
    """Point forecast m per la_code for ``test_year`` and the ML NB concentration of the rule
    over the pairs of consecutive years from ``first`` to ``test_year - 1``."""
    wide_y = panel.pivot(index="la_code", columns="year", values=outcome).astype(float)
    wide_p = panel.pivot(index="la_code", columns="year", values="population").astype(float)

    def rule(t: int) -> tuple[pd.Series, pd.Series]:
        m = wide_y[t - 1] / wide_p[t - 1] * wide_p[t]
        return m, wide_y[t]

    pairs = [rule(t) for t in range(first + 1, test_year)]
    m = pd.concat([p[0] for p in pairs]).to_numpy()
    y = pd.concat([p[1] for p in pairs]).to_numpy()
    ok = np.isfinite(m) & np.isfinite(y) & (m > 0)
    m, y = m[ok], y[ok]

    def nll(log_phi: float) -> float:
        phi = np.exp(log_phi)
        return -stats.nbinom.logpmf(y, phi, phi / (phi + m)).sum()

    phi = float(np.exp(optimize.minimize_scalar(nll, bounds=(-2, 12), method="bounded").x))
    return rule(test_year)[0], phi


def score(name: str, samples: np.ndarray, y: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
    """One summary row: coverage at LEVELS, mean CRPS, mean CRPS / y, mean absolute error."""
    crps = crps_from_draws(samples, y)
    row: dict[str, Any] = {"forecast": name, **extra, "n_authorities": len(y)}
    for level in LEVELS:
        row[f"coverage_{int(level * 100)}"] = round(float(central(samples, y, level).mean()), 3)
    row["mean_crps"] = round(float(crps.mean()), 2)
    row["mean_crps_over_y"] = round(float((crps / np.maximum(y, 1)).mean()), 4)
    row["mae_median"] = round(float(np.abs(np.median(samples, axis=0) - y).mean()), 2)
    return row


def evaluate(
    panel: pd.DataFrame, v: Variant, fits_dir: Path, sampler: dict[str, Any], seed: int
) -> list[dict[str, Any]]:
    spec = dataclasses.replace(csc_bayes.find_spec(v.spec), years=(v.first, v.test_year - 1))
    started = time.perf_counter()
    fit = csc_bayes.fit(spec, data=panel, out=fits_dir / "out_of_sample", progress=False, **sampler)
    wall = time.perf_counter() - started
    outcome = spec.outcome
    fitted = [str(c) for c in fit.idata["posterior"]["la"].values]
    test = panel[(panel["year"] == v.test_year) & panel[outcome].notna()]
    test = test.dropna(subset=list(spec.covariates))
    test = test[test["la_code"].isin(fitted)].reset_index(drop=True)
    y = test[outcome].to_numpy(float)

    samples = model_draws(fit, test, v.test_year, seed)

    base, phi = naive_baseline(panel, outcome, v.first, v.test_year)
    m = base.reindex(test["la_code"]).to_numpy(float)
    has_base = np.isfinite(m) & (m > 0)
    rng = np.random.default_rng(seed + 1)
    S = samples.shape[0]
    nb = rng.negative_binomial(phi, phi / (phi + m[has_base]), size=(S, has_base.sum()))
    pois = rng.poisson(m[has_base], size=(S, has_base.sum()))

    gate = fit.metadata["diagnostics"]
    common = {
        "outcome": outcome,
        "test_year": v.test_year,
        "window": v.window,
        "train": f"{v.first}-{v.test_year - 1}",
    }
    on_base = {**common, "subset": "authorities with a baseline"}
    rows = [
        score(
            v.label, samples, y, {**common, "method": v.model, "subset": "all fitted authorities"}
        )
        | {
            "gate_passed": gate["passed"],
            "fit_wall_s": round(wall, 1),
        }
    ]
    if not has_base.all():  # the model again on the baseline's authorities, for a fair match
        rows.append(
            score(v.label, samples[:, has_base], y[has_base], {**on_base, "method": v.model})
        )
    rows[-1] |= paired_difference(samples[:, has_base], nb.astype(float), y[has_base])
    return [
        *rows,
        score(
            f"naive NB (phi={phi:.0f})",
            nb.astype(float),
            y[has_base],
            {**on_base, "method": "naive NB"},
        ),
        score(
            "naive Poisson", pois.astype(float), y[has_base], {**on_base, "method": "naive Poisson"}
        ),
    ]


def paired_difference(model: np.ndarray, naive: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Mean over authorities of CRPS_model,j - CRPS_naive,j (negative: the model is better) and
    its standard error sd_j(difference) / sqrt(n): authorities as independent replicates,
    which ignores that they share the year's national shock."""
    diff = crps_from_draws(model, y) - crps_from_draws(naive, y)
    return {
        "crps_minus_naive": round(float(diff.mean()), 2),
        "se_difference": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 2),
    }


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
    (coverage and CRPS weighted by the number of authorities scored each year)."""
    table = pd.DataFrame(rows)
    if "test_year" not in table:
        return pd.DataFrame()
    table = table.dropna(subset=["test_year", "method"])
    # a model scored on all fitted authorities and again on those with a baseline: keep the
    # rows on the baseline's authorities, the ones the naive rows are scored on
    matched = table.duplicated(["outcome", "window", "method", "test_year"], keep="last")
    table = table[~matched]
    scores = ["coverage_50", "coverage_90", "mean_crps", "mean_crps_over_y", "mae_median"]

    def average(group: pd.DataFrame) -> dict[str, Any]:
        w = group["n_authorities"].to_numpy(float)
        out: dict[str, Any] = {c: round(float(np.average(group[c], weights=w)), 4) for c in scores}
        if "crps_minus_naive" in group and group["crps_minus_naive"].notna().all():
            # the year's mean difference is one replicate per year: its SE comes from how much
            # it varies between years, which includes the national shock the authorities share
            diff = group["crps_minus_naive"].to_numpy(float)
            out["crps_minus_naive"] = round(float(np.average(diff, weights=w)), 2)
            if len(diff) > 1:
                out["se_between_years"] = round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 2)
        return out

    keys = ["outcome", "window", "method"]
    records = []
    for key, group in table.groupby(keys, sort=False):
        years = sorted(int(y) for y in group["test_year"])
        records.append(
            dict(zip(keys, key, strict=True))
            | {"test_years": f"{years[0]}-{years[-1]} ({len(years)})"}
            | average(group)
        )
    return pd.DataFrame(records)


def markdown(table: pd.DataFrame, cols: list[str]) -> list[str]:
    """A markdown table of ``cols`` (a value missing from a row, e.g. an older run's, is blank)."""

    def cell(value: Any) -> str:
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)

    return [
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in table.to_dict("records")),
    ]


def write(rows: list[dict[str, Any]], results: Path, note: str, test_years: list[int]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(results / "summary.csv", index=False)
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
    (results / "summary.md").write_text("\n".join(lines) + "\n")
    if len(test_years) > 1:
        average = pooled(rows)
        average.to_csv(results / "pooled.csv", index=False)
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
        (results / "pooled.md").write_text("\n".join(body) + "\n")


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
