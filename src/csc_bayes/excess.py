"""Excess or shortfall of each authority relative to its expected need.

Expected need for authority-year i, per draw (definitions in ``docs/methods.md``):

    eta_expected[i] = log_exposure[i] + intercept + sum_{k in need covariates} X[i,k] beta[k]
                      + year_effect[year_i]  (+ region_effect[region_i] if region_as_need)

i.e. the LA's own effect (and random slope and LA trend, all in the ``la`` component of
:func:`~csc_bayes.linear_predictor.linear_predictor`, and the AR(1) ``la_year`` term) set to
zero and non-need covariates held at their average (z = 0). The excess ratio is exp(eta[i] -
eta_expected[i]), where eta is the full linear predictor of the posterior contract: the
authority's latent rate over its expected rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from csc_bayes.errors import AnswerError
from csc_bayes.fits import write_text_atomic
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.ordinal import require_count_fit
from csc_bayes.posterior import reader
from csc_bayes.terms.base import refuse_forecast_only
from csc_bayes.terms.family import count_interval_mean
from csc_bayes.variance import DEFAULT_CI_PROB, check_ci_prob, interval

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit

PER = 10_000  # rates are per 10,000 children
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def need_covariates(fit: Fit) -> list[str]:
    """The covariates of the spec's ``need`` block (in ``covariate`` order)."""
    post = reader(fit)
    members = {c for group in post.spec.need_groups.values() for c in group}
    return [c for c in post.covariates if c in members]


def _per_year_rank(ratio: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Per draw, rank of each row's excess ratio within its year (1 = highest)."""
    ranks = np.empty(ratio.shape, dtype=np.int64)
    for year in np.unique(years):
        cols = np.flatnonzero(years == year)
        order = np.argsort(-ratio[:, cols], axis=1, kind="stable")
        r = np.empty_like(order)
        np.put_along_axis(r, order, np.arange(1, len(cols) + 1)[None, :], axis=1)
        ranks[:, cols] = r
    return ranks


@dataclass(frozen=True)
class ExcessDraws:
    """Per-draw excess quantities for the selected fitted rows (draws first: shape (S, n)).

    ``rows`` identifies the columns: la_code, ons_code, la_name, region, year, population,
    observed. ``latent_count`` = exp(eta), ``expected_count`` = exp(eta_expected),
    ``ratio`` = their quotient, ``rank`` = rank of ``ratio`` within its year (1 = highest).
    """

    rows: pd.DataFrame
    latent_count: np.ndarray
    expected_count: np.ndarray
    ratio: np.ndarray
    rank: np.ndarray


def excess_draws(
    fit: Fit, *, year: int | Literal["all"] | None = None, region_as_need: bool = False
) -> ExcessDraws:
    """The draws behind :func:`excess` for ``year`` (None: last fitted year; "all")."""
    require_count_fit(fit, "excess")
    post = reader(fit)
    refuse_forecast_only(post.terms, post.fit.spec.name, "excess")
    fitted_years = post.years
    year_of_obs = post.fitted_rows.year
    if year is None:
        keep = year_of_obs == max(fitted_years)
    elif isinstance(year, str) and year == "all":
        keep = np.ones(len(year_of_obs), dtype=bool)
    elif _as_year(year) in fitted_years:
        keep = year_of_obs == _as_year(year)
    else:
        raise AnswerError(
            f"year {year!r} was not fitted (fitted years: {fitted_years}); "
            "use csc_bayes.predict for a year after the data"
        )
    lp = linear_predictor(post)
    eta = lp.eta[:, keep]
    eta_expected = lp.expected(region_as_need=region_as_need)[:, keep]
    ratio = np.exp(eta - eta_expected)
    who = post.authorities.iloc[post.la_idx[keep]].reset_index(drop=True)
    rows = who.assign(
        year=year_of_obs[keep],
        population=np.round(np.exp(lp.log_exposure[keep])).astype(np.int64),
        observed=post.observed[keep],
    )
    if post.censored.any():
        rows = _with_censored_columns(rows, post, lp.eta, keep)
    return ExcessDraws(
        rows=rows,
        latent_count=np.exp(eta),
        expected_count=np.exp(eta_expected),
        ratio=ratio,
        rank=_per_year_rank(ratio, year_of_obs[keep]),
    )


def _with_censored_columns(
    rows: pd.DataFrame, post: Any, eta: np.ndarray, keep: np.ndarray
) -> pd.DataFrame:
    """For a fit with interval-censored rows: ``censored``, ``observed_lower`` /
    ``observed_upper`` (the known range; the count itself for an observed row) and
    ``observed_imputed``, the posterior mean of the count given its range,

        E[y | lo <= y <= hi, data] = mean_s  sum_k k p(k | mu_s, phi_s) / sum_k p(k | mu_s, phi_s)

    over draws s and k = lo..hi
    (the count itself for an observed row). ``observed`` stays NaN for a censored row."""
    lower, upper = post.bounds
    censored = post.censored[keep]
    imputed = post.observed[keep].copy()
    if censored.any():
        family = next(t for t in post.terms if t.name == "family")
        phi = family.phi(post)
        cols = np.flatnonzero(keep)[censored]
        mu = np.exp(eta[:, cols])
        phi_c = None if phi is None else np.broadcast_to(phi[:, None], mu.shape)
        imputed[censored] = count_interval_mean(lower[cols], upper[cols], mu, phi_c).mean(axis=0)
    return rows.assign(
        censored=censored,
        observed_lower=lower[keep],
        observed_upper=upper[keep],
        observed_imputed=imputed,
    )


def _as_year(year: Any) -> int:
    """A year as an int; anything else is an :class:`AnswerError` naming it."""
    if isinstance(year, bool) or not isinstance(year, (int, np.integer, str)):
        raise AnswerError(f"year must be a whole number such as 2024, got {year!r}")
    try:
        return int(year)
    except ValueError:
        raise AnswerError(f"year must be a whole number such as 2024, got {year!r}") from None


def excess(
    fit: Fit,
    *,
    year: int | Literal["all"] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    region_as_need: bool = False,
) -> pd.DataFrame:
    """One row per fitted authority for ``year`` (default the last fitted year; "all" = every
    fitted year) with its expected need and its excess or shortfall.

    Columns: la_code, ons_code, la_name, region, year, population, observed, observed_rate;
    expected_count_* and expected_rate_* (median, lower, upper); excess_ratio_median,
    excess_ratio_lower50 / upper50 (50% interval), excess_ratio_lower / upper (ci_prob
    interval); excess_children_* (latent mean count exp(eta) - expected count exp(eta_expected));
    p_excess = P(ratio > 1), p_excess_10pct = P(ratio > 1.1); rank_median, rank_lower,
    rank_upper (ranks by excess ratio within a year, 1 = highest, per draw). Rates are per
    10,000 children. A fit with interval-censored rows (suppressed counts of known range) adds
    ``censored``, ``observed_lower``, ``observed_upper`` and ``observed_imputed`` (the
    posterior mean of the count given its range); ``observed`` is NaN for a censored row.
    Sorted by year, then excess_ratio_median highest first; ``df.attrs`` records the settings.
    """
    require_count_fit(fit, "excess")
    check_ci_prob(ci_prob)
    d = excess_draws(fit, year=year, region_as_need=region_as_need)
    out = _excess_table(d, ci_prob)
    out.attrs.update(
        ci_prob=ci_prob,
        region_as_need=region_as_need,
        need_covariates=need_covariates(fit),
        outcome=fit.spec.outcome,
        rate_per=PER,
    )
    return out


def _excess_table(d: ExcessDraws, ci_prob: float) -> pd.DataFrame:
    """The summary columns of :func:`excess` from its draws, sorted by year then ratio."""
    out = d.rows.copy()
    population = out["population"].to_numpy(dtype=float)
    out["observed_rate"] = out["observed"] / population * PER
    _add_summary(out, "expected_count", d.expected_count, ci_prob)
    _add_summary(out, "expected_rate", d.expected_count / population[None, :] * PER, ci_prob)
    out["excess_ratio_median"] = np.median(d.ratio, axis=0)
    out["excess_ratio_lower50"], out["excess_ratio_upper50"] = interval(d.ratio, 0.5)
    out["excess_ratio_lower"], out["excess_ratio_upper"] = interval(d.ratio, ci_prob)
    _add_summary(out, "excess_children", d.latent_count - d.expected_count, ci_prob)
    out["p_excess"] = (d.ratio > 1).mean(axis=0)
    out["p_excess_10pct"] = (d.ratio > 1.1).mean(axis=0)
    out["rank_median"] = np.median(d.rank, axis=0)
    rank_lo, rank_hi = interval(d.rank, ci_prob)
    out["rank_lower"], out["rank_upper"] = np.floor(rank_lo), np.ceil(rank_hi)
    out = out.sort_values(["year", "excess_ratio_median"], ascending=[True, False])
    return out.reset_index(drop=True)


def neighbour_excess(
    fit: Fit,
    *,
    authority: str | int,
    neighbours: list[str],
    year: int | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    region_as_need: bool = False,
) -> pd.DataFrame:
    """An authority beside its statistical neighbours: :func:`excess` rows for the group, with
    the rank of each within the group (1 = highest excess ratio), computed per draw.

    ``neighbours``: DfE numbers (e.g. ``csc_bayes.data.neighbours.statistical_neighbours``);
    those the fit does not hold in ``year`` are listed in ``df.attrs["not_fitted"]``. Columns:
    those of :func:`excess` plus ``is_authority``, ``group_rank_median``, ``group_rank_lower``,
    ``group_rank_upper``; sorted by group rank.
    """
    from csc_bayes.authorities import resolve_authority

    check_ci_prob(ci_prob)
    if isinstance(year, str):
        raise AnswerError(f"neighbours are compared within one year, not {year!r}")
    d = excess_draws(fit, year=year, region_as_need=region_as_need)
    me = str(resolve_authority(authority, reader(fit).authorities)["la_code"])
    group = [me, *(str(n) for n in neighbours if str(n) != me)]
    codes = d.rows["la_code"].astype(str).to_numpy()
    cols = [int(np.flatnonzero(codes == c)[0]) for c in group if c in set(codes)]
    ranks = _per_year_rank(d.ratio[:, cols], np.zeros(len(cols), dtype=int))
    table = _excess_table(
        ExcessDraws(
            rows=d.rows.iloc[cols].reset_index(drop=True),
            latent_count=d.latent_count[:, cols],
            expected_count=d.expected_count[:, cols],
            ratio=d.ratio[:, cols],
            rank=d.rank[:, cols],
        ),
        ci_prob,
    )
    order = table["la_code"].astype(str).map({c: k for k, c in enumerate(codes[cols])})
    ranks = ranks[:, order.to_numpy()]  # the table is sorted by ratio: align the group ranks
    table["is_authority"] = table["la_code"].astype(str) == me
    table["group_rank_median"] = np.median(ranks, axis=0)
    lo, hi = interval(ranks, ci_prob)
    table["group_rank_lower"], table["group_rank_upper"] = np.floor(lo), np.ceil(hi)
    table = table.sort_values("group_rank_median", kind="stable").reset_index(drop=True)
    table.attrs.update(
        ci_prob=ci_prob, authority=me, not_fitted=[c for c in group if c not in set(codes)]
    )
    return table


def _add_summary(frame: pd.DataFrame, name: str, values: np.ndarray, ci_prob: float) -> None:
    """Add ``<name>_median``, ``<name>_lower``, ``<name>_upper`` from draws (S, n)."""
    frame[f"{name}_median"] = np.median(values, axis=0)
    frame[f"{name}_lower"], frame[f"{name}_upper"] = interval(values, ci_prob)


def _safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def safe_csv_text(df: pd.DataFrame) -> str:
    """``df`` as CSV text (RFC 4180 line ends) that a spreadsheet opens safely.

    Text cells (and column names) starting with = + - @ tab or carriage return get a leading
    ``'`` so that they are shown, not evaluated; numeric columns are written unchanged.
    """
    safe = df.copy()
    safe.columns = [_safe_cell(str(c)) for c in safe.columns]
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col]) and not pd.api.types.is_bool_dtype(
            safe[col]
        ):
            safe[col] = safe[col].map(_safe_cell, na_action="ignore")
    return safe.to_csv(index=False, lineterminator="\r\n")


def to_safe_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write :func:`safe_csv_text` of ``df`` to ``path`` atomically; return the path.

    The file is written to a temporary file in the same folder and moved into place with
    os.replace, so a crash never leaves a half-written file under ``path``.
    """
    target = Path(path)
    write_text_atomic(target, safe_csv_text(df))
    return target
