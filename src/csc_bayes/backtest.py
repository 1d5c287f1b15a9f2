"""Rolling-origin backtests of forecasts: refit on the past, forecast the next years, score.

For each *origin* t (the test year) and horizon h, the spec is refitted on the years up to
``L = t - h`` (its ``years`` replaced; every outcome and flow after L is masked in the panel the
refit sees, so nothing after L can reach it) and year t is forecast for every authority with an
observed count there, with :func:`csc_bayes.predict.predict_draws`. One refit serves every
(t, h) with ``t - h = L``: every year from L + 1 to its furthest origin is drawn in ONE
``predict_draws`` call, so they are drawn jointly (each year conditions on the ones before it).

Each forecast is scored per authority j with observed y_j (``docs/methods.md``, section 3e):

- CRPS (Gneiting & Raftery 2007) from S draws Y_1..Y_S,
  ``CRPS_j = mean_s |Y_s - y_j| - 0.5 mean_{s,s'} |Y_s - Y_s'|`` (:func:`crps_from_draws`);
- the absolute error of the predictive median;
- whether y_j lies in the central 50% and 90% intervals (:func:`covered`).

and against baselines fitted on the same training years:

- ``naive``: last training year's rate times year t's population,
  ``m_j = y_j,L * pop_j,t / pop_j,L``, with NB(mean m_j, phi) draws, phi the maximum-likelihood
  concentration of the same h-step rule over the pairs of training years h apart
  (:func:`naive_forecast`, :func:`naive_concentration`);
- ``naive_trend``: the naive mean times the national rate's latest growth carried forward,
  ``m_j * (R_L / R_(L-1))^h``, R_s = sum_j y_js / sum_j pop_js over the authorities with a count
  in both years, with its own ML concentration;
- ``naive_poisson`` (optional): Poisson(m_j).

The same scores are given for each region's and England's total, each method's draws summed
draw by draw over the authorities every method forecast (:func:`aggregate_scores`).

:func:`summarise` gives the mean scores per origin and horizon on the authorities every method
forecast, with the paired difference model - baseline and its standard error over authorities;
:func:`pool` averages them over origins, with the standard error of the mean difference from its
spread between origins (it then includes the national shock every authority shares in a year).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from csc_bayes.batch import Task, TaskOutcome, _progress_bar, run_tasks
from csc_bayes.errors import AnswerError, TaskFailedError

#: central interval levels scored
LEVELS = (0.5, 0.9)
#: baselines a backtest can score, and the default set
BASELINES = ("naive", "naive_trend", "naive_poisson")
DEFAULT_BASELINES = ("naive", "naive_trend")
#: the per-origin and pooled mean scores
SCORES = ("coverage_50", "coverage_90", "mean_crps", "mean_crps_over_y", "mae_median")
_IDENTITY = ["la_code", "la_name", "region"]


#: the refit table of summary.md (fits.csv has every column)
REFIT_COLUMNS = [
    "fit", "train_first", "train_last", "gate_passed", "reused", "seconds", "sampling_seconds",
    "run",
]  # fmt: skip


# ====================================================================== scores
def crps_from_draws(samples: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of each column's predictive draws: ``samples`` (S, n), ``y`` (n,); lower is better.

    ``mean_s |Y_s - y| - 0.5 mean_{s,s'} |Y_s - Y_s'|``, the second term from the sorted draws as
    ``(1/S^2) sum_i (2i - S - 1) Y_(i)`` (O(S log S) instead of O(S^2)).
    """
    s = np.sort(np.asarray(samples, dtype=float), axis=0)
    y = np.asarray(y, dtype=float)
    n_draws = s.shape[0]
    first = np.abs(s - y[None, :]).mean(axis=0)
    weights = 2 * np.arange(1, n_draws + 1) - n_draws - 1
    spread = (weights[:, None] * s).sum(axis=0) / n_draws**2  # = 0.5 E|Y - Y'|
    return first - spread


def covered(samples: np.ndarray, y: np.ndarray, level: float) -> np.ndarray:
    """Whether each y lies in its column's central ``level`` interval (ends included), the
    ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the draws (linear interpolation)."""
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return (y >= lo) & (y <= hi)


def score_draws(samples: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """One row per column of ``samples`` (S, n): the forecast's mean, median and interval ends,
    and its scores against ``y``: ``crps``, ``crps_over_y`` (CRPS / max(y, 1)), ``abs_error``
    (of the median) and ``covered_50`` / ``covered_90``."""
    samples = np.asarray(samples, dtype=float)
    y = np.asarray(y, dtype=float)
    crps = crps_from_draws(samples, y)
    median = np.median(samples, axis=0)
    out: dict[str, Any] = {"mean": samples.mean(axis=0), "median": median}
    for level in LEVELS:
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
        pct = round(level * 100)
        out[f"lower_{pct}"], out[f"upper_{pct}"] = lo, hi
    out |= {"crps": crps, "crps_over_y": crps / np.maximum(y, 1), "abs_error": np.abs(median - y)}
    for level in LEVELS:
        out[f"covered_{round(level * 100)}"] = covered(samples, y, level)
    return pd.DataFrame(out)


def paired_difference(crps_a: np.ndarray, crps_b: np.ndarray) -> tuple[float, float]:
    """Mean over authorities of ``crps_a - crps_b`` (negative: a is better) and its standard
    error sd(difference) / sqrt(n), authorities as independent replicates (optimistic: they
    share the year's national shock; :func:`pool` gives the SE between years)."""
    diff = np.asarray(crps_a, dtype=float) - np.asarray(crps_b, dtype=float)
    if len(diff) == 0:
        return float("nan"), float("nan")
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    return float(diff.mean()), se


def aggregate_scores(
    draws: dict[str, tuple[np.ndarray, np.ndarray]], observed: pd.Series, region: pd.Series
) -> pd.DataFrame:
    """Scores of sums over authorities, per region and for England, one row per method and area.

    ``draws``: method -> (la_codes, draws (S, n)); ``observed`` and ``region`` indexed by
    la_code. Each method's draws are summed draw by draw over the authorities *every* method
    forecast, ``T_s = sum_j Y_js``, and scored against ``sum_j y_j`` (:func:`score_draws`). So a
    sum's spread is what the method's joint draws imply: the model's authorities share the
    year's common shock, while the naive rules' draws are independent between authorities.
    Besides :func:`score_draws`' columns, ``rel_error = (median(T) - sum_j y_j) / sum_j y_j``,
    the signed relative error of the sum's median (positive: too high).
    """
    common = sorted(set.intersection(*(set(codes) for codes, _ in draws.values())))
    if not common:
        return pd.DataFrame()
    regions = region.loc[common].to_numpy(str)
    areas = [("england", "England", np.ones(len(common), dtype=bool))]
    areas += [("region", r, regions == r) for r in sorted(set(regions))]
    y = observed.loc[common].to_numpy(float)
    totals = np.array([y[mask].sum() for *_, mask in areas])
    frames = []
    for method, (codes, samples) in draws.items():
        mine = np.asarray(samples, dtype=float)[:, pd.Index(codes).get_indexer(common)]
        sums = np.stack([mine[:, mask].sum(axis=1) for *_, mask in areas], axis=1)
        frames.append(
            score_draws(sums, totals).assign(
                method=method,
                level=[level for level, _, _ in areas],
                area=[area for _, area, _ in areas],
                n_authorities=[int(mask.sum()) for *_, mask in areas],
                observed=totals,
                rel_error=(np.median(sums, axis=0) - totals) / totals,
            )
        )
    return pd.concat(frames, ignore_index=True)


# ====================================================================== naive baselines
def _wide(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    frame = panel.assign(la_code=panel["la_code"].astype(str))
    return frame.pivot(index="la_code", columns="year", values=column).astype(float)


def national_growth(
    panel: pd.DataFrame, outcome: str, year: int, *, exposure: str = "population"
) -> float:
    """R_year / R_(year-1): the national rate's ratio of ``year`` to the year before, with
    R_s = sum_j y_js / sum_j pop_js over the authorities with a count and a population in both
    years (so that an authority missing from one year does not move the rate)."""
    y, pop = _wide(panel, outcome), _wide(panel, exposure)
    if year not in y or year - 1 not in y:
        return float("nan")
    both = (y[[year - 1, year]].notna() & pop[[year - 1, year]].notna()).all(axis=1)
    if not both.any():
        return float("nan")
    rate = {s: y.loc[both, s].sum() / pop.loc[both, s].sum() for s in (year - 1, year)}
    return float(rate[year] / rate[year - 1])


def naive_forecast(
    panel: pd.DataFrame,
    outcome: str,
    *,
    last: int,
    year: int,
    trend: bool = False,
    exposure: str = "population",
) -> pd.Series:
    """Naive mean forecast of ``year`` from the data up to ``last``, per la_code.

    ``m_j = y_j,last / pop_j,last * pop_j,year`` (last year's rate times this year's
    population); with ``trend``, times ``national_growth(last) ** (year - last)`` (the national
    rate's latest growth, carried forward). NaN where the authority has no count or population
    in ``last`` or no population in ``year``.
    """
    y, pop = _wide(panel, outcome), _wide(panel, exposure)
    if last not in y or year not in pop:
        return pd.Series(np.nan, index=y.index, name="naive")
    m = y[last] / pop[last] * pop[year]
    if trend:
        m = m * national_growth(panel, outcome, last, exposure=exposure) ** (year - last)
    return m.rename("naive")


def naive_concentration(
    panel: pd.DataFrame,
    outcome: str,
    *,
    first: int,
    last: int,
    horizon: int = 1,
    trend: bool = False,
    exposure: str = "population",
) -> float:
    """Maximum-likelihood NB concentration phi of the naive rule ``horizon`` years ahead over
    the training years: every target year s with ``s - horizon`` (and, with ``trend``,
    ``s - horizon - 1``) and s in ``first..last``, y_js ~ NB(mean m_js, phi) with Var = m + m^2/phi.
    Raises :class:`AnswerError` when the years hold no such pair."""
    start = first + horizon + int(trend)
    ms, ys = [], []
    wide_y = _wide(panel, outcome)
    for s in range(start, last + 1):
        if s not in wide_y:
            continue
        m = naive_forecast(panel, outcome, last=s - horizon, year=s, trend=trend, exposure=exposure)
        ms.append(m.to_numpy(float))
        ys.append(wide_y[s].reindex(m.index).to_numpy(float))
    m = np.concatenate(ms) if ms else np.zeros(0)
    y = np.concatenate(ys) if ys else np.zeros(0)
    ok = np.isfinite(m) & np.isfinite(y) & (m > 0)
    if not ok.any():
        rule = "naive rule with national trend" if trend else "naive rule"
        raise AnswerError(
            f"the training years {first}-{last} hold no authority with {outcome} in two years "
            f"{horizon} apart{' after a year with a national rate' if trend else ''}: the "
            f"{rule}'s concentration cannot be fitted (start the training years earlier)"
        )
    m, y = m[ok], y[ok]

    def nll(log_phi: float) -> float:
        phi = np.exp(log_phi)
        return -stats.nbinom.logpmf(y, phi, phi / (phi + m)).sum()

    return float(np.exp(optimize.minimize_scalar(nll, bounds=(-2, 12), method="bounded").x))


def baseline_draws(
    name: str,
    panel: pd.DataFrame,
    outcome: str,
    *,
    first: int,
    last: int,
    year: int,
    n_draws: int,
    rng: np.random.Generator,
    exposure: str = "population",
) -> tuple[pd.Series, np.ndarray, float]:
    """Draws of baseline ``name`` for ``year`` from the training years ``first..last``.

    Returns the mean forecast m per la_code (authorities with m > 0 only), its (n_draws, n)
    predictive draws and the NB concentration (NaN for ``naive_poisson``).
    """
    if name not in BASELINES:
        raise AnswerError(f"unknown baseline {name!r}; one of {list(BASELINES)}")
    trend = name == "naive_trend"
    h = year - last
    m = naive_forecast(panel, outcome, last=last, year=year, trend=trend, exposure=exposure)
    m = m[np.isfinite(m) & (m > 0)]
    values = m.to_numpy(float)
    if name == "naive_poisson":
        return m, rng.poisson(values, size=(n_draws, len(m))).astype(float), float("nan")
    phi = naive_concentration(
        panel, outcome, first=first, last=last, horizon=h, trend=trend, exposure=exposure
    )
    draws = rng.negative_binomial(phi, phi / (phi + values), size=(n_draws, len(m)))
    return m, draws.astype(float), phi


# ====================================================================== one refit
def masked_panel(panel: pd.DataFrame, outcomes: Iterable[str], last: int) -> pd.DataFrame:
    """``panel`` with every outcome after ``last`` missing (reason ``not_yet_published``): what
    was known at the end of year ``last``. Population and covariates are kept (forecasts take
    them as known)."""
    from csc_bayes.data.schema import MissingReason, missing_column

    out = panel.copy()
    later = out["year"].astype(int) > last
    for column in dict.fromkeys(outcomes):
        if column not in out:
            continue
        present = later & out[column].notna()
        out.loc[present, column] = pd.NA
        flag = missing_column(column)
        if flag in out:
            out.loc[present, flag] = str(MissingReason.NOT_YET_PUBLISHED)
    return out


def refit_spec(spec: Any, first: int, last: int) -> Any:
    """``spec`` fitted on ``first..last``, named ``<name>_<first>-<last>``."""
    return replace(spec, name=f"{spec.name}_{first}-{last}", years=(first, last))


def backtest_task(
    *,
    spec: Any,
    panel: pd.DataFrame,
    first: int,
    last: int,
    years: Sequence[int],
    baselines: Sequence[str],
    fits_dir: str | None,
    refit: str,
    seed: int,
    model_name: str,
) -> dict[str, Any]:
    """One refit on a worker: fit ``spec`` on ``first..last`` (outcomes after ``last`` masked),
    forecast ``last + 1 .. max(years)`` in one joint ``predict_draws`` call, score the model
    and the baselines in ``years``.

    Returns ``{"scores": per-authority DataFrame, "fit": a JSON-safe summary of the refit,
    "aggregates": the regional and England totals' scores}``.
    """
    from csc_bayes.data.flows import FLOWS
    from csc_bayes.data.schema import OUTCOMES
    from csc_bayes.fits import list_runs
    from csc_bayes.fitting import fit
    from csc_bayes.predict import predict_draws

    outcome = spec.outcome
    fitted_spec = refit_spec(spec, first, last)
    # the flows (ICPCs, CLA starts and ceased) are published with the outcomes: masked too
    training = masked_panel(panel, (*OUTCOMES, *FLOWS, outcome), last)
    before = {p.name for p in list_runs(Path(fits_dir) / fitted_spec.name)} if fits_dir else set()
    started = time.perf_counter()
    result = fit(fitted_spec, data=training, out=fits_dir, refit=refit, progress=False)
    seconds = time.perf_counter() - started
    meta = result.metadata
    years_fitted = [int(y) for y in meta.get("years_fitted", [])]
    if years_fitted and max(years_fitted) > last:  # the masking above makes this impossible
        raise AnswerError(f"refit to {last} fitted years {years_fitted}")

    # every year from last + 1 to the furthest target, drawn jointly and in order (the stock
    # term's year t rests on the count drawn for t - 1), then only the target years are scored;
    # an authority that cannot be forecast (no population in the panel, or a lagged indicator
    # from before it existed) is left out and counted; the naive rules cannot forecast it either
    ahead = list(range(last + 1, max(years) + 1))
    pred = predict_draws(result, authority="all", year=ahead, seed=seed, skip_unknown=True)
    if pred.rows.empty:
        reason = pred.skipped["reason"].iloc[0] if len(pred.skipped) else "no authority"
        raise AnswerError(
            f"{fitted_spec.name}: no authority could be forecast for {ahead} "
            f"({len(pred.skipped)} left out; the first: {reason})"
        )
    rows = pred.rows.assign(column=np.arange(len(pred.rows)))
    observed = panel[["la_code", "year", outcome]].assign(la_code=panel["la_code"].astype(str))
    observed = observed[observed[outcome].notna()]
    rng = np.random.default_rng([seed, last])
    frames, sums = [], []
    for year in years:
        here = rows[rows["year"] == year].merge(
            observed[observed["year"] == year][["la_code", outcome]], on="la_code", how="inner"
        )
        # a model that cannot forecast an authority (the stock term without last year's
        # count: a new authority) leaves NaN draws; it is scored where it forecast
        finite = np.isfinite(pred.count[:, here["column"].to_numpy()]).all(axis=0)
        here = here[finite].reset_index(drop=True)
        if here.empty:
            continue
        y = here[outcome].to_numpy(float)
        base = {"origin": year, "horizon": year - last, "train": f"{first}-{last}"}
        model_draws = pred.count[:, here["column"].to_numpy()]
        draws_by_method = {model_name: (here["la_code"].to_numpy(str), model_draws)}
        model = score_draws(model_draws, y)
        frames.append(
            pd.concat(
                [
                    here[[*_IDENTITY, "kind", "population"]].reset_index(drop=True),
                    model,
                ],
                axis=1,
            ).assign(**base, method=model_name, observed=y, phi=np.nan)
        )
        identity = here.set_index("la_code")[["la_name", "region", "population"]]
        y_by_code = pd.Series(y, index=here["la_code"].to_numpy())
        for name in baselines:
            m, draws, phi = baseline_draws(
                name,
                panel,
                outcome,
                first=first,
                last=last,
                year=year,
                n_draws=pred.count.shape[0],
                rng=rng,
                exposure=spec.exposure,
            )
            keep = m.index.isin(y_by_code.index)
            codes = m.index[keep]
            draws_by_method[name] = (codes.to_numpy(str), draws[:, keep])
            scored = score_draws(draws[:, keep], y_by_code.loc[codes].to_numpy())
            frames.append(
                pd.concat(
                    [
                        identity.loc[codes].reset_index(names="la_code"),
                        scored,
                    ],
                    axis=1,
                ).assign(
                    kind="baseline",
                    **base,
                    method=name,
                    observed=y_by_code.loc[codes].to_numpy(),
                    phi=phi,
                )
            )
        sums.append(aggregate_scores(draws_by_method, y_by_code, identity["region"]).assign(**base))
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    gate = meta.get("diagnostics", {})
    run = result.path
    summary = {
        "fit": fitted_spec.name,
        "train_first": first,
        "train_last": last,
        "years_fitted": years_fitted,
        "forecast_years": [int(y) for y in years],
        "n_authorities_fitted": int(meta.get("n_authorities", 0)),
        "gate_passed": bool(gate.get("passed", False)),
        "run": str(run) if run is not None else None,
        "reused": run is not None and run.name in before,
        "seconds": round(seconds, 1),
        # the refit's own sampling time, from its metadata: also for a reused refit
        "sampling_seconds": round(float(meta.get("timings", {}).get("sampling", float("nan"))), 1),
        "n_draws": int(pred.count.shape[0]),
        "not_forecast": " ".join(pred.skipped["la_code"]) if pred.skipped is not None else "",
    }
    aggregates = pd.concat(sums, ignore_index=True) if sums else pd.DataFrame()
    return {"scores": scores, "fit": summary, "aggregates": aggregates}


# ====================================================================== summaries
def _matched(group: pd.DataFrame) -> pd.DataFrame:
    """The rows of one (origin, horizon) whose authority every method forecast."""
    methods = group["method"].nunique()
    counts = group.groupby("la_code")["method"].nunique()
    return group[group["la_code"].isin(counts.index[counts == methods])]


def _means(rows: pd.DataFrame) -> dict[str, Any]:
    return {
        "n_authorities": len(rows),
        "coverage_50": float(rows["covered_50"].mean()),
        "coverage_90": float(rows["covered_90"].mean()),
        "mean_crps": float(rows["crps"].mean()),
        "mean_crps_over_y": float(rows["crps_over_y"].mean()),
        "mae_median": float(rows["abs_error"].mean()),
    }


def summarise(scores: pd.DataFrame, model: str) -> pd.DataFrame:
    """Mean scores per origin, horizon and method on the authorities every method forecast.

    The model's row also holds, per baseline b, ``crps_minus_<b>`` (mean over authorities of
    the model's CRPS minus b's; negative: the model is better) and ``se_minus_<b>`` (its SE
    over authorities, :func:`paired_difference`); ``n_model_only`` counts authorities the
    model forecast and some baseline could not (no count in the last training year), which
    are left out of every mean here (they stay in the per-authority scores).
    """
    records = []
    for (origin, horizon), group in scores.groupby(["origin", "horizon"], sort=True):
        matched = _matched(group)
        baselines = [m for m in group["method"].unique() if m != model]
        by_method = {m: rows.set_index("la_code") for m, rows in matched.groupby("method")}
        n_all = int((group["method"] == model).sum())
        for method in [model, *baselines]:
            if method not in by_method:
                continue
            rows = by_method[method]
            record: dict[str, Any] = {
                "origin": int(origin),
                "horizon": int(horizon),
                "train": str(rows["train"].iloc[0]),
                "method": method,
                **_means(rows),
                "phi": float(rows["phi"].iloc[0]),
            }
            if method == model:
                record["n_model_only"] = n_all - len(rows)
                for b in baselines:
                    other = by_method[b]["crps"].reindex(rows.index)
                    mean, se = paired_difference(rows["crps"].to_numpy(), other.to_numpy())
                    record[f"crps_minus_{b}"], record[f"se_minus_{b}"] = mean, se
            records.append(record)
    return pd.DataFrame(records)


def pool(summary: pd.DataFrame) -> pd.DataFrame:
    """Per horizon and method, the per-origin scores averaged over the origins, each weighted
    by the authorities it scored; ``crps_minus_<b>`` likewise, and ``se_minus_<b>`` the standard
    error of that mean from the spread of the per-origin differences between origins,
    sd_t(d_t) / sqrt(T) (NaN with one origin): each origin is one replicate, which counts the
    national shock all authorities share in a year."""
    if summary.empty:
        return pd.DataFrame()
    records = []
    diffs = [c for c in summary.columns if c.startswith("crps_minus_")]
    for (horizon, method), group in summary.groupby(["horizon", "method"], sort=False):
        w = group["n_authorities"].to_numpy(float)
        origins = sorted(int(t) for t in group["origin"])
        record: dict[str, Any] = {
            "horizon": int(horizon),
            "method": method,
            "origins": f"{origins[0]}-{origins[-1]} ({len(origins)})",
            "n_authorities": int(w.sum()),
        }
        record |= {c: float(np.average(group[c], weights=w)) for c in SCORES}
        for column in diffs:
            d = group[column].to_numpy(float)
            if np.isnan(d).all():
                continue
            se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
            record[column] = float(np.average(d, weights=w))
            record[column.replace("crps_minus_", "se_minus_")] = se
        records.append(record)
    return pd.DataFrame(records)


def pool_aggregates(aggregates: pd.DataFrame) -> pd.DataFrame:
    """Per horizon, level (region / england) and method, the mean scores of the sums over the
    origins and areas (:func:`_means`; ``n_sums``: areas x origins) and ``mean_rel_error``, the
    mean of :func:`aggregate_scores`' ``rel_error`` (the sums' bias, as a fraction)."""
    if aggregates.empty:
        return pd.DataFrame()
    records = []
    keys = ["horizon", "level", "method"]
    for (horizon, level, method), rows in aggregates.groupby(keys, sort=False):
        origins = sorted(int(t) for t in rows["origin"].unique())
        means = _means(rows)
        records.append(
            {
                "horizon": int(horizon),
                "level": level,
                "method": method,
                "origins": f"{origins[0]}-{origins[-1]} ({len(origins)})",
                "n_sums": means.pop("n_authorities"),
                **means,
                "mean_rel_error": float(rows["rel_error"].mean()),
            }
        )
    table = pd.DataFrame(records)
    baseline = table["method"].isin(BASELINES)  # the model's row first in each group
    return (
        table.assign(_baseline=baseline)
        .sort_values(["horizon", "level", "_baseline"], kind="stable")
        .drop(columns="_baseline")
        .reset_index(drop=True)
    )


def markdown_table(
    table: pd.DataFrame, columns: Sequence[str] | None = None, *, rounded: bool = True
) -> list[str]:
    """Lines of a markdown table of ``columns``: a missing or NaN value is blank; with
    ``rounded`` a float shows 4 significant digits (whole numbers from 10,000), else as it is."""
    columns = list(table.columns if columns is None else columns)

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if rounded and isinstance(value, (float, np.floating)):
            return f"{float(value):.4g}" if abs(value) < 10_000 else f"{float(value):.0f}"
        return str(value)

    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *(
            "| " + " | ".join(cell(r.get(c)) for c in columns) + " |"
            for r in table.to_dict("records")
        ),
    ]


# ====================================================================== the backtest
@dataclass
class BacktestResult:
    """A backtest's scores.

    Attributes:
        scores: one row per origin, horizon, method and authority: origin (the test year),
            horizon, train (training years), method (the model's name or a baseline), la_code,
            la_name, region, kind (forecast / new_group for the model; baseline), population,
            observed, mean, median, lower_50, upper_50, lower_90, upper_90, crps, crps_over_y,
            abs_error, covered_50, covered_90, phi (a baseline's NB concentration).
        summary: per origin, horizon and method (:func:`summarise`).
        pooled: per horizon and method over the origins (:func:`pool`).
        fits: one row per refit: its name, training years, the years it fitted (from its
            metadata), its forecast years, gate result, run folder, whether it was reused.
        info: the model, outcome, origins, horizons, baselines, seed, sampler settings.
        aggregates: one row per origin, horizon, method and area (each region, and England):
            the scores of the sum of the forecasts over the authorities every method forecast
            there (:func:`aggregate_scores`); pooled by :func:`pool_aggregates`.
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    pooled: pd.DataFrame
    fits: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    aggregates: pd.DataFrame = field(default_factory=pd.DataFrame)

    def markdown(self) -> str:
        """summary.md: the per-origin and pooled tables, the refits and how to read them."""
        model = self.info.get("model", "model")
        diff_cols = [c for c in self.summary.columns if c.startswith(("crps_minus_", "se_minus_"))]
        brief = ["n_authorities", *SCORES]
        origins = self.info.get("origins", [])
        pooled = list(self.pooled.columns)
        failed = self.fits[~self.fits["gate_passed"].astype(bool)] if len(self.fits) else []
        lines = [
            f"# Backtest of {model} ({self.info.get('outcome')}): origins "
            f"{', '.join(map(str, origins))}, horizons "
            f"{', '.join(map(str, self.info.get('horizons', [])))}",
            "",
            "Each origin t is forecast from a refit on the years up to t - h (outcomes after "
            "t - h never seen). Mean scores over the authorities every method forecast; CRPS "
            "and absolute error of the median in children (lower is better); coverage of the "
            "central 50% / 90% intervals. crps_minus_<b>: the model's mean CRPS minus "
            "baseline b's on the same authorities (negative: the model is better); se_minus_<b>: "
            "its standard error, per origin over authorities (independent replicates, "
            "optimistic), pooled between origins. Definitions: docs/methods.md, section 3e.",
            "",
            "## Pooled over origins",
            "",
            *markdown_table(
                self.pooled,
                ["horizon", "method", "origins", *brief, *(c for c in diff_cols if c in pooled)],
            ),
            "",
            "## Per origin",
            "",
            *markdown_table(
                self.summary,
                ["origin", "horizon", "train", "method", *brief, "phi", *diff_cols],
            ),
            "",
            "## Refits",
            "",
            *markdown_table(self.fits, REFIT_COLUMNS),
        ]
        sums = pool_aggregates(self.aggregates)
        if len(sums):
            lines += [
                "",
                "## Sums over authorities (each region, and England)",
                "",
                "Each method's draws summed draw by draw over the authorities every method "
                "forecast in the area, scored against the observed total, pooled over origins "
                "and areas (n_sums). The model's authorities share each year's common shock; "
                "the naive rules' draws are independent, so their sums are too narrow when "
                "the authorities move together.",
                "",
                *markdown_table(sums),
            ]
        if len(failed):
            lines += [
                "",
                f"{len(failed)} of {len(self.fits)} refits failed the convergence gate: their "
                "scores are shown but not to be trusted.",
            ]
        if self.info.get("synthetic"):
            lines += ["", "The panel is SYNTHETIC (csc_bayes.simulate)."]
        return "\n".join(lines) + "\n"

    def save(self, folder: str | Path) -> Path:
        """Write scores.csv, summary.csv, pooled.csv, aggregates.csv, pooled_sums.csv, fits.csv,
        summary.md and info.json."""
        from csc_bayes.excess import to_safe_csv
        from csc_bayes.fits import write_text_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        to_safe_csv(self.scores, folder / "scores.csv")  # holds authority names
        to_safe_csv(self.summary, folder / "summary.csv")
        to_safe_csv(self.pooled, folder / "pooled.csv")
        to_safe_csv(self.aggregates, folder / "aggregates.csv")  # observed totals: not for git
        to_safe_csv(pool_aggregates(self.aggregates), folder / "pooled_sums.csv")
        fits = self.fits.assign(
            years_fitted=[" ".join(map(str, y)) for y in self.fits["years_fitted"]],
            forecast_years=[" ".join(map(str, y)) for y in self.fits["forecast_years"]],
        )
        to_safe_csv(fits, folder / "fits.csv")
        write_text_atomic(folder / "summary.md", self.markdown())
        write_text_atomic(folder / "info.json", json.dumps(self.info, indent=2) + "\n")
        return folder


def origin_years(first: int, last: int) -> list[int]:
    """Every year from ``first`` to ``last`` (``--origins A B``)."""
    if last < first:
        raise AnswerError(f"origins {first} {last}: the last origin is before the first")
    return list(range(first, last + 1))


def backtest(
    spec: Any,
    *,
    data: pd.DataFrame | str | Path | None = None,
    origins: Iterable[int],
    horizons: Iterable[int] = (1,),
    window: int | None = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    fits_dir: str | Path | None = "fits/backtest",
    refit: str = "on_change",
    draws: int | str | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    progress: bool = True,
) -> BacktestResult:
    """Rolling-origin backtest of ``spec`` against the naive baselines (see the module).

    Args:
        spec: a ModelSpec, shipped model name, TOML path or formula (:func:`fitting.as_spec`).
        data: the panel (DataFrame or parquet path); None: the embedded synthetic panel.
        origins: the test years t.
        horizons: h = 1, 2, ...: each origin is forecast from a refit on the years up to t - h.
        window: None: train from the spec's first year (or the panel's first year with the
            outcome, if later); k: on the last k years only (a sliding window).
        baselines: some of :data:`BASELINES`.
        fits_dir: where the refits are saved (``<fits_dir>/<spec>_<first>-<last>/<run>``; a
            rerun reuses them with ``refit="on_change"``); None keeps them in memory.
        refit: ``on_change``, ``always`` or ``never`` (:func:`csc_bayes.fitting.fit`).
        draws, tune, chains: override the spec's sampler settings (``draws="auto"``: to the
            gate's targets, :func:`csc_bayes.fitting.fit`).
        seed: seed of the predictive and baseline draws.
        workers, scheduler, client: where the refits run (:func:`csc_bayes.batch.run_tasks`);
            ``workers=1`` without a scheduler or client runs them here, one after another.
    """
    from csc_bayes.fitting import as_spec, resolve_panel

    model = as_spec(spec)
    if model.ordinal:
        raise AnswerError(
            f"backtest scores forecasts of counts; {model.name!r} is an ordinal model of "
            f"{model.outcome!r} (family {model.family!r})"
        )
    overrides = {k: v for k, v in dict(draws=draws, tune=tune, chains=chains).items() if v}
    if overrides:
        model = model.with_sampler(**overrides)
    panel, synthetic = resolve_panel(data)
    origins = sorted({int(t) for t in origins})
    horizons = sorted({int(h) for h in horizons})
    if not origins:
        raise AnswerError("give at least one origin year")
    if not horizons or min(horizons) < 1:
        raise AnswerError(f"horizons must be whole years of 1 or more, got {horizons}")
    if window is not None and window < 2:
        raise AnswerError(f"window must be at least 2 years, got {window}")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise AnswerError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    if refit not in ("on_change", "always", "never"):
        raise AnswerError(f"refit must be on_change, always or never, got {refit!r}")
    outcome = model.outcome
    if outcome not in panel:
        raise AnswerError(f"the panel has no column {outcome!r}")
    observed_years = sorted(int(y) for y in panel.loc[panel[outcome].notna(), "year"].unique())
    if not observed_years:
        raise AnswerError(f"the panel has no observed {outcome}")
    missing = [t for t in origins if t not in observed_years]
    if missing:
        raise AnswerError(
            f"origin year(s) {missing} have no observed {outcome} to score; the panel has "
            f"{outcome} for {observed_years[0]}-{observed_years[-1]}"
        )
    earliest = max(model.years[0], observed_years[0])

    by_fit: dict[tuple[int, int], list[int]] = {}
    for t in origins:
        for h in horizons:
            last = t - h
            first = earliest if window is None else max(earliest, last - window + 1)
            needed = h + int("naive_trend" in baselines)
            if last - first < needed:
                raise AnswerError(
                    f"origin {t}, horizon {h}: the training years {first}-{last} are too few "
                    f"(the baselines need two years {needed} apart in them; the panel's "
                    f"{outcome} starts in {observed_years[0]})"
                )
            by_fit.setdefault((first, last), []).append(t)

    name = model.name
    out = None if fits_dir is None else str(fits_dir)
    tasks = [
        Task(
            key=f"{name}_{first}-{last}",
            func=backtest_task,
            kwargs={
                "spec": model,
                "panel": panel,
                "first": first,
                "last": last,
                "years": sorted(set(years)),
                "baselines": tuple(baselines),
                "fits_dir": out,
                "refit": refit,
                "seed": seed,
                "model_name": name,
            },
            lock_dir=None if fits_dir is None else Path(fits_dir) / ".locks",
        )
        for (first, last), years in sorted(by_fit.items())
    ]
    outcomes = _run(tasks, workers=workers, scheduler=scheduler, client=client, progress=progress)
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        raise TaskFailedError(
            f"{len(failed)} of {len(outcomes)} backtest refits failed: "
            + "; ".join(f"{o.key}: {_last_line(o.error)}" for o in failed)
        )
    scores = pd.concat([o.value["scores"] for o in outcomes], ignore_index=True)
    wanted = scores["horizon"].isin(horizons) & scores["origin"].isin(origins)
    scores = scores[wanted].sort_values(["origin", "horizon", "method", "la_code"], kind="stable")
    columns = ["origin", "horizon", "train", "method", *_IDENTITY, "kind", "population"]
    columns += ["observed", *[c for c in scores.columns if c not in columns and c != "observed"]]
    scores = scores[columns].reset_index(drop=True)
    summary = summarise(scores, name)
    aggregates = pd.concat([o.value["aggregates"] for o in outcomes], ignore_index=True)
    if len(aggregates):
        wanted = aggregates["horizon"].isin(horizons) & aggregates["origin"].isin(origins)
        aggregates = aggregates[wanted].sort_values(
            ["origin", "horizon", "method", "level", "area"], kind="stable"
        )
        first_columns = ["origin", "horizon", "train", "method", "level", "area"]
        aggregates = aggregates[
            [*first_columns, *(c for c in aggregates.columns if c not in first_columns)]
        ].reset_index(drop=True)
    fits = pd.DataFrame([o.value["fit"] for o in outcomes])
    info = {
        "model": name,
        "outcome": outcome,
        "formula": model.formula,
        "origins": origins,
        "horizons": horizons,
        "window": window,
        "baselines": list(baselines),
        "seed": seed,
        "sampler": model.sampler.as_dict(),
        "fits_dir": out,
        "synthetic": synthetic,
        "gate_failures": int((~fits["gate_passed"].astype(bool)).sum()),
    }
    return BacktestResult(scores, summary, pool(summary), fits, info, aggregates)


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _run(
    tasks: list[Task], *, workers: int | None, scheduler: str | None, client: Any, progress: bool
) -> list[TaskOutcome]:
    """The tasks on the batch engine, or here one after another (``workers=1``, no cluster)."""
    if client is not None or scheduler is not None or workers != 1:
        return run_tasks(
            tasks,
            scheduler=scheduler,
            n_workers=workers,
            client=client,
            progress=progress,
            description="backtest refits",
        )
    outcomes = []
    with _progress_bar(len(tasks), "backtest refits", enabled=progress) as advance:
        for task in tasks:
            started = time.perf_counter()
            try:
                value = task.func(**task.kwargs)
                seconds = time.perf_counter() - started
                outcomes.append(TaskOutcome(task.key, "done", value=value, seconds=seconds))
            except Exception as exc:  # reported like a worker's failure
                text = "".join(traceback.format_exception(exc, limit=-4)).strip()
                outcomes.append(TaskOutcome(task.key, "failed", error=text))
            advance()
    return outcomes


# ====================================================================== several outcomes' table
#: the forecasting targets a backtest is checked against (issue 14): the model's mean absolute
#: error of the median at most this fraction of the naive rule's ...
TARGET_MAE_RATIO = 0.9
#: ... its mean CRPS below the naive rule's, and its interval coverage inside these bands
TARGET_COVERAGE = {50: (0.45, 0.55), 90: (0.87, 0.93)}
#: the columns of :func:`forecast_table`
TABLE_COLUMNS = (
    "outcome",
    "model",
    "horizon",
    "origins",
    "n_forecasts",
    "mean_crps",
    "naive_crps",
    "crps_minus_naive",
    "se_minus_naive",
    "mae_median",
    "naive_mae",
    "mae_ratio",
    "coverage_50",
    "coverage_90",
    "gate_failures",
    "refits",
    "meets_mae",
    "meets_crps",
    "meets_coverage_50",
    "meets_coverage_90",
    "meets_all",
)


def read_backtest_summary(folder: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(pooled, info)`` of a saved backtest folder (:meth:`BacktestResult.save`): the
    summaries only, never the per-authority scores.

    Raises:
        AnswerError: the folder lacks ``pooled.csv`` or ``info.json``, or they are unreadable.
    """
    folder = Path(folder)
    missing = [f for f in ("pooled.csv", "info.json") if not (folder / f).is_file()]
    if missing:
        raise AnswerError(
            f"{folder} is not a saved backtest (csc-bayes backtest ... --out): no {missing}"
        )
    try:
        info = json.loads((folder / "info.json").read_text())
        pooled = pd.read_csv(folder / "pooled.csv")
    except (ValueError, OSError) as exc:
        raise AnswerError(f"cannot read the backtest in {folder}: {exc}") from exc
    needed = {"horizon", "method", "origins", "n_authorities", *SCORES}
    absent = sorted(needed - set(pooled.columns))
    if absent:
        raise AnswerError(f"{folder / 'pooled.csv'} lacks column(s) {absent}")
    for key in ("model", "outcome"):
        if key not in info:
            raise AnswerError(f"{folder / 'info.json'} has no {key!r}")
    return pooled, info


def forecast_table(folders: Sequence[str | Path], *, baseline: str = "naive") -> pd.DataFrame:
    """One row per backtest folder and horizon: the model's pooled scores next to ``baseline``'s
    and whether they meet the forecasting targets.

    With the pooled means over origins and authorities (:func:`pool`):
    ``mae_ratio = MAE_model / MAE_baseline`` (MAE: mean absolute error of the predictive median),
    ``meets_mae``: mae_ratio <= :data:`TARGET_MAE_RATIO`; ``meets_crps``: the mean CRPS is
    below the baseline's (``crps_minus_<baseline>`` < 0, ``se_minus_<baseline>`` its SE between
    origins); ``meets_coverage_<p>``: the central p% interval's coverage inside
    :data:`TARGET_COVERAGE`; ``meets_all``: all four.

    Raises:
        AnswerError: no folder, a folder that is not a saved backtest, or one without the
            baseline's scores.
    """
    if not folders:
        raise AnswerError("give at least one saved backtest folder")
    records = []
    for folder in folders:
        pooled, info = read_backtest_summary(folder)
        model = str(info["model"])
        refits = _refits(Path(folder))
        for horizon, group in pooled.groupby("horizon", sort=True):
            rows = group.set_index("method")
            if model not in rows.index or baseline not in rows.index:
                raise AnswerError(
                    f"{Path(folder) / 'pooled.csv'} has no row for "
                    f"{model if model not in rows.index else baseline!r} at horizon {horizon}"
                )
            m, b = rows.loc[model], rows.loc[baseline]
            ratio = float(m["mae_median"] / b["mae_median"])
            diff = float(m.get(f"crps_minus_{baseline}", m["mean_crps"] - b["mean_crps"]))
            record: dict[str, Any] = {
                "outcome": info["outcome"],
                "model": model,
                "horizon": int(horizon),
                "origins": m["origins"],
                "n_forecasts": int(m["n_authorities"]),
                "mean_crps": float(m["mean_crps"]),
                "naive_crps": float(b["mean_crps"]),
                "crps_minus_naive": diff,
                "se_minus_naive": float(m.get(f"se_minus_{baseline}", float("nan"))),
                "mae_median": float(m["mae_median"]),
                "naive_mae": float(b["mae_median"]),
                "mae_ratio": ratio,
                "coverage_50": float(m["coverage_50"]),
                "coverage_90": float(m["coverage_90"]),
                "gate_failures": info.get("gate_failures"),
                "refits": refits,
                "meets_mae": ratio <= TARGET_MAE_RATIO,
                "meets_crps": diff < 0,
            }
            for level, (lo, hi) in TARGET_COVERAGE.items():
                value = record[f"coverage_{level}"]
                record[f"meets_coverage_{level}"] = bool(lo <= value <= hi)
            record["meets_all"] = all(
                record[k]
                for k in ("meets_mae", "meets_crps", "meets_coverage_50", "meets_coverage_90")
            )
            records.append(record)
    table = pd.DataFrame(records, columns=list(TABLE_COLUMNS))
    if baseline != "naive":
        table = table.rename(
            columns={
                "naive_crps": f"{baseline}_crps",
                "crps_minus_naive": f"crps_minus_{baseline}",
                "se_minus_naive": f"se_minus_{baseline}",
                "naive_mae": f"{baseline}_mae",
            }
        )
    return table


def _refits(folder: Path) -> int | None:
    """How many refits a saved backtest ran (rows of its fits.csv), or None without one."""
    path = folder / "fits.csv"
    return len(pd.read_csv(path)) if path.is_file() else None


def forecast_table_markdown(table: pd.DataFrame, *, baseline: str = "naive") -> str:
    """The table of :func:`forecast_table` as markdown, with the targets it checks."""
    lo50, hi50 = TARGET_COVERAGE[50]
    lo90, hi90 = TARGET_COVERAGE[90]
    shown = table.copy()
    for column in [c for c in shown.columns if c.startswith("meets_")]:
        shown[column] = shown[column].map({True: "yes", False: "**no**"})
    columns = [c for c in shown.columns if c != "refits"]
    lines = [
        f"# Forecast backtests against the {baseline} rule",
        "",
        "Pooled over the origins (each the test year, forecast from a refit on the years before "
        "it) and the authorities every method forecast. CRPS and MAE (mean absolute error of "
        "the predictive median) in children; coverage of the central 50% / 90% intervals. "
        f"Targets: mae_ratio = MAE / {baseline} MAE <= {TARGET_MAE_RATIO}; mean CRPS below "
        f"the {baseline} rule's; coverage 50% in [{lo50}, {hi50}], 90% in [{lo90}, {hi90}]. "
        f"se_minus_{baseline}: the SE of the CRPS difference between origins. "
        "gate_failures: refits that missed the convergence gate. Definitions: "
        "docs/methods.md, section 3e.",
        "",
        *markdown_table(shown, columns),
    ]
    return "\n".join(lines) + "\n"


def save_forecast_table(
    folders: Sequence[str | Path], out: str | Path, *, baseline: str = "naive"
) -> pd.DataFrame:
    """:func:`forecast_table` of ``folders`` written to ``out``/forecast_table.csv and
    forecast_table.md (atomically); returns the table."""
    from csc_bayes.excess import to_safe_csv
    from csc_bayes.fits import write_text_atomic

    table = forecast_table(folders, baseline=baseline)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    to_safe_csv(table, out / "forecast_table.csv")
    write_text_atomic(out / "forecast_table.md", forecast_table_markdown(table, baseline=baseline))
    return table


# ====================================================================== two backtests, paired
def read_backtest_scores(folder: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(scores, info)`` of a saved backtest folder: the per-authority scores (scores.csv,
    every method) and info.json.

    Raises:
        AnswerError: the folder lacks scores.csv or info.json, or they are unreadable.
    """
    folder = Path(folder)
    _, info = read_backtest_summary(folder)
    path = folder / "scores.csv"
    if not path.is_file():
        raise AnswerError(f"{folder} has no scores.csv (its per-authority scores)")
    try:
        scores = pd.read_csv(path, dtype={"la_code": str})
    except (ValueError, OSError) as exc:
        raise AnswerError(f"cannot read {path}: {exc}") from exc
    absent = sorted({"origin", "horizon", "method", "la_code", "crps", "abs_error"} - set(scores))
    if absent:
        raise AnswerError(f"{path} lacks column(s) {absent}")
    return scores, info


def compare_backtests(
    folder_a: str | Path,
    folder_b: str | Path,
    *,
    baseline: str | None = "naive",
    by_origin: bool = False,
    names: tuple[str | None, str | None] = (None, None),
) -> pd.DataFrame:
    """Two saved backtests of the same outcome, scored on the same forecasts: per horizon,
    each model's pooled scores (and ``baseline``'s, from ``folder_a``) over the origins and
    authorities both forecast, with ``crps_minus_<b>`` = mean CRPS of A - mean CRPS of B
    (negative: A is better) and ``se_minus_<b>``, its SE from the spread of the per-origin
    differences, sd_t(d_t) / sqrt(T) (:func:`summarise`, :func:`pool`: each origin one
    replicate). ``by_origin``: one row per origin instead, the SE then between authorities,
    sd_j(d_j) / sqrt(n) (optimistic: they share the year's national shock). ``names``: the
    labels of the two models (None: the spec name; ``<name> (A)`` and ``<name> (B)`` when
    those are the same).

    Raises:
        AnswerError: a folder that is not a saved backtest with its scores, two outcomes, or
            no (origin, horizon) in common.
    """
    (scores_a, info_a), (scores_b, info_b) = map(read_backtest_scores, (folder_a, folder_b))
    if info_a["outcome"] != info_b["outcome"]:
        raise AnswerError(
            f"{folder_a} forecasts {info_a['outcome']!r} and {folder_b} {info_b['outcome']!r}: "
            "a paired comparison needs one outcome"
        )
    label_a, label_b = names[0] or str(info_a["model"]), names[1] or str(info_b["model"])
    if label_a == label_b:
        label_a, label_b = f"{label_a} (A)", f"{label_b} (B)"
    parts = [
        scores_a[scores_a["method"] == info_a["model"]].assign(method=label_a),
        scores_b[scores_b["method"] == info_b["model"]].assign(method=label_b),
    ]
    if baseline is not None:
        if baseline not in set(scores_a["method"]):
            raise AnswerError(f"{folder_a} has no scores of the baseline {baseline!r}")
        parts.append(scores_a[scores_a["method"] == baseline])
    keys = ["origin", "horizon"]
    common = parts[0][keys].drop_duplicates().merge(parts[1][keys].drop_duplicates())
    if common.empty:
        raise AnswerError(f"{folder_a} and {folder_b} share no origin and horizon")
    scores = pd.concat(parts, ignore_index=True).merge(common, on=keys)
    table = summarise(scores, label_a)
    if not by_origin:
        table = pool(table)
    keys = ["origin", "horizon", "method"] if by_origin else ["horizon", "method", "origins"]
    paired = [f"crps_minus_{label_b}", f"se_minus_{label_b}"]
    return table[[*keys, "n_authorities", *SCORES, *paired]]


#: the public name (``csc_bayes.run_backtest``): a function called like its module would be
#: hidden behind the module once it is imported (as ``excess`` and ``predict`` would be)
run_backtest = backtest
