"""Posterior predictions for a named authority (or all of them) and year.

Per draw s, for authority j in year t (definitions in ``docs/methods.md``):

    eta = log(population) + intercept + z . beta + la_effect_j + region_effect_r + year_effect_t
          (+ la_slope_j * z_slope) (+ la_trend_j * (t - year_centre) / 10) (+ la_year_jt)
    y ~ NegativeBinomial(mu = exp(eta), phi)  (gamma-Poisson mixture)   or   Poisson(exp(eta))

- a fitted year uses the fitted year effect; a year the model was not fitted to (the next
  reporting year) draws a new year effect from N(0, sigma_year), one per draw and year, shared
  by every authority (a common shock); with random-walk year effects (``year_effect = "rw1"``)
  from N(year_effect_last, sigma_year^2 h), h years after the last fitted year;
- an authority absent from the ``la`` coordinate (a new group) draws its la_effect from
  N(0, sigma_la) (and its slope from N(0, sigma_la_slope), its trend from
  N(0, sigma_la_trend)), once per draw;
- z = (x - covariate_mean) / covariate_sd from that year's panel row, else the latest earlier
  (or else latest) known value of the authority; population likewise unless given;
- the AR(1) LA-year term (``la_year`` in the posterior): a fitted authority in a fitted year
  uses its fitted la_year; in any other year, la_year is drawn from its Gaussian conditional
  given that authority's fitted la_year path (for the year after the data:
  N(rho^h la_year_last, sigma_la_year^2 (1 - rho^(2h))), h years ahead); a new authority draws
  its first year from the stationary N(0, sigma_la_year^2).

With exchangeable year effects (the default) a forecast's common level is the model's average
year; with random-walk year effects it is the last fitted year's. With an LA trend (``la_trend``
in the posterior) each authority's own linear trend is extrapolated; with an AR(1) LA-year term
each authority's latest deviation decays towards its level at rate rho. Several unfitted years
are drawn jointly: each one conditions on the fitted values and on the unfitted years already
drawn in the same call (the chain rule), so sums of counts over several forecast years carry the
correlation between those years.

:func:`predict` summarises the draws of :func:`predict_draws`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from csc_bayes.errors import AnswerError
from csc_bayes.excess import PER, _as_year
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.ordinal import require_count_fit
from csc_bayes.posterior import Posterior, reader
from csc_bayes.spec import LAG_COLUMN, with_derived_columns
from csc_bayes.terms import NewLevels, Rows
from csc_bayes.variance import DEFAULT_CI_PROB, check_ci_prob, interval

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit

KIND_OBSERVED, KIND_FORECAST, KIND_NEW_GROUP = "observed", "forecast", "new_group"
#: forecasts more than this many years after the last fitted year come with a note saying how
#: their interval was made (the model has no information about those years beyond its laws)
LONG_HORIZON = 3
_IDENTITY = ["la_code", "ons_code", "la_name", "region"]


def _candidates(post: Posterior) -> pd.DataFrame:
    """Authorities a user may name: the fitted ones, then any others in the fit's panel."""
    fitted = post.authorities
    panel = post.fit.panel[_IDENTITY].astype(str).drop_duplicates("la_code", keep="last")
    extra = panel[~panel["la_code"].isin(fitted["la_code"])]
    return pd.concat([fitted, extra], ignore_index=True)


def _default_years(post: Posterior, all_authorities: bool) -> list[int]:
    fitted = post.years
    later = sorted(int(y) for y in post.fit.panel["year"].unique() if int(y) > max(fitted))
    if all_authorities:
        return [later[0]] if later else [max(fitted)]
    return fitted + later[:1]


@dataclass(frozen=True)
class PredictiveDraws:
    """Per-draw predictions (draws first: shape (S, n)), one column per row of ``rows``.

    ``rows``: la_code, ons_code, la_name, region, year, kind (observed / forecast / new_group),
    population, observed (NaN where not observed). ``count``: posterior predictive counts;
    ``eta``: the latent log mean; ``expected``: the log expected count (expected need).
    ``carried_forward``: la_code, year, covariate, from_year for each covariate value of an
    unfitted row that the panel does not hold for that year and was carried forward from the
    latest earlier year (a forecast assumes it has not changed). ``notes``: what a user should
    know about these forecasts (a long horizon and how its interval was made). ``skipped``
    (with ``skip_unknown``): la_code and reason of each authority left out because one of its
    unfitted rows lacks an input (e.g. a lagged indicator before its first year).
    """

    rows: pd.DataFrame
    count: np.ndarray
    eta: np.ndarray
    expected: np.ndarray
    carried_forward: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()
    skipped: pd.DataFrame | None = None


def predict(
    fit: Fit,
    *,
    authority: str | int | Literal["all"],
    year: int | Sequence[int] | None = None,
    population: float | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    seed: int = 0,
    region_as_need: bool = False,
) -> pd.DataFrame:
    """Posterior predictive count and rate for one authority (or ``"all"``) and year(s).

    ``authority``: name (case- and punctuation-insensitive), ONS code or DfE number, resolved by
    :func:`csc_bayes.authorities.resolve_authority` (UnknownAuthorityError with suggestions).
    ``year``: default every fitted year plus the next panel year for one authority, and the next
    panel year (else the last fitted year) for ``"all"``. ``population`` replaces the panel's
    population in years without an observed count (forecasts, new authorities); observed years
    keep the population the model was fitted with, so observed and predicted rates agree.

    One row per authority and year: la_code, ons_code, la_name, region, year, kind
    (observed / forecast / new_group), population, observed, observed_rate, predicted_mean /
    median / lower / upper (count), rate_median / lower / upper (predicted rate per 10,000),
    expected_rate_median / lower / upper, excess_ratio_median / lower / upper.
    """
    require_count_fit(fit, "predict")
    check_ci_prob(ci_prob)
    pred = predict_draws(
        fit,
        authority=authority,
        year=year,
        population=population,
        seed=seed,
        region_as_need=region_as_need,
    )
    return _summary_table(pred, ci_prob, region_as_need=region_as_need)


def _summary_table(pred: PredictiveDraws, ci_prob: float, **attrs: Any) -> pd.DataFrame:
    """One :func:`_summary` row per column of ``pred``; settings, carried-forward values and
    notes in ``df.attrs``."""
    out = pd.DataFrame(
        [
            _summary(row, pred.count[:, k], pred.eta[:, k], pred.expected[:, k], ci_prob)
            for k, row in enumerate(pred.rows.to_dict(orient="records"))
        ]
    )
    out.attrs.update(
        ci_prob=ci_prob,
        rate_per=PER,
        carried_forward=pred.carried_forward.to_dict(orient="records"),
        notes=list(pred.notes),
        **attrs,
    )
    return out


def predict_draws(
    fit: Fit,
    *,
    authority: str | int | Literal["all"],
    year: int | Sequence[int] | None = None,
    population: float | None = None,
    seed: int = 0,
    region_as_need: bool = False,
    skip_unknown: bool = False,
) -> PredictiveDraws:
    """The posterior predictive draws behind :func:`predict` (same arguments, no ``ci_prob``).

    Use it to score forecasts (CRPS, coverage) or to sum counts over authorities: every row of
    one call shares the draws of new levels (one new year effect for all authorities; each
    authority's unfitted years drawn jointly), so sums carry their correlation.

    With ``skip_unknown`` (for ``authority="all"``, as the backtest uses it) an authority whose
    unfitted rows lack an input the panel cannot supply (no population at all; a lagged
    indicator of a year before the authority existed) is left out of the rows and listed in
    ``skipped`` with the reason, instead of failing the whole call.
    """
    require_count_fit(fit, "predict")
    if population is not None and not population > 0:
        raise AnswerError(f"population must be positive, got {population!r}")
    post = reader(fit)
    candidates = _candidates(post)
    everyone = isinstance(authority, str) and authority.strip().lower() == "all"
    if year is None:
        years = _default_years(post, everyone)
    elif isinstance(year, (list, tuple, np.ndarray, pd.Series)):
        years = [_as_year(y) for y in year]
    else:
        years = [_as_year(year)]
    first_fitted = min(post.years)
    too_early = [y for y in years if y < first_fitted]
    if too_early:
        raise AnswerError(f"year(s) {too_early} precede the first fitted year {first_fitted}")

    if everyone:
        panel_years = post.fit.panel[post.fit.panel["year"].isin(years)]
        chosen = candidates[
            candidates["la_code"].isin(post.la_codes)
            | candidates["la_code"].isin(panel_years["la_code"].astype(str))
        ]
        # an unfitted authority whose exposure the panel never gives (old Dorset 835 after
        # 2010) cannot be forecast: left out of "all" (naming it alone still raises)
        panel = post.fit.panel
        known = panel.loc[panel[post.spec.exposure].notna(), "la_code"].astype(str)
        chosen = chosen[chosen["la_code"].isin(post.la_codes) | chosen["la_code"].isin(known)]
    else:
        from csc_bayes.authorities import resolve_authority

        row = resolve_authority(authority, candidates)
        chosen = candidates[candidates["la_code"] == str(row["la_code"])]
    rows, inputs, carried, skipped = _rows(
        post, chosen.reset_index(drop=True), years, population, skip_unknown=skip_unknown
    )
    rng = np.random.default_rng(seed)
    family = next(t for t in post.terms if t.name == "family")
    phi = family.phi(post)
    phi = None if phi is None else phi[:, None]
    if any(t.conditions_on_outcome for t in post.terms):
        eta, expected, count = _draw_in_year_order(post, inputs, family, phi, rng, region_as_need)
    else:
        lp = linear_predictor(post, inputs, new=NewLevels(rng))
        eta = lp.eta
        count = family.draw(np.exp(eta), phi, rng)
        expected = lp.expected(region_as_need=region_as_need)
    return PredictiveDraws(
        rows=rows,
        count=count.astype(float),
        eta=eta,
        expected=expected,
        carried_forward=carried,
        notes=_horizon_notes(post, years),
        skipped=skipped if skip_unknown else None,
    )


def _draw_in_year_order(
    post: Posterior,
    inputs: Rows,
    family: Any,
    phi: np.ndarray | None,
    rng: np.random.Generator,
    region_as_need: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eta, expected, count) when a term's year t rests on the outcome of year t - 1 (the
    stock term): the years one at a time in order, sharing one :class:`NewLevels`, each year's
    drawn counts recorded for the next (so t+1..t+h are drawn jointly, per draw). A row the
    term cannot forecast (no count in the year before: a new authority) stays NaN."""
    new = NewLevels(rng)
    shape = (post.n_draws, len(inputs))
    eta, expected, count = np.empty(shape), np.empty(shape), np.empty(shape)
    for year in sorted(set(inputs.year.tolist())):
        idx = np.flatnonzero(inputs.year == year)
        sub = Rows(
            la_code=inputs.la_code[idx],
            region=inputs.region[idx],
            year=inputs.year[idx],
            X=inputs.X[idx],
            log_exposure=inputs.log_exposure[idx],
        )
        lp = linear_predictor(post, sub, new=new)
        eta[:, idx] = lp.eta
        expected[:, idx] = lp.expected(region_as_need=region_as_need)
        # NaN: no count last year to start from; -inf (a stock drawn as 0) is a mean of 0
        ok = ~np.isnan(lp.eta).any(axis=0)
        drawn = np.full((post.n_draws, len(idx)), np.nan)
        drawn[:, ok] = family.draw(np.exp(lp.eta[:, ok]), phi, rng)
        count[:, idx] = drawn
        for k in idx:
            new.record_outcome(str(inputs.la_code[k]), int(year), count[:, k])
    return eta, expected, count


def _horizon_notes(post: Posterior, years: list[int]) -> tuple[str, ...]:
    """A note when a year lies more than :data:`LONG_HORIZON` years after the last fitted one:
    the horizon and how each term made the interval (``Term.describe_forecast``)."""
    last = max(post.years)
    horizon = max(years) - last
    if horizon <= LONG_HORIZON:
        return ()
    how = [t.describe_forecast(horizon) for t in post.terms]
    how = [h for h in how if h] or ["the model's terms carry no change beyond the last year"]
    note = (
        f"{max(years)} is {horizon} years after the last fitted year {last}: the forecast rests "
        f"on the model's laws alone ({'; '.join(how)}), with covariates carried forward where "
        "the panel lacks them; its interval widens accordingly, but does not allow for changes "
        "the model does not describe"
    )
    warnings.warn(note, UserWarning, stacklevel=3)
    return (note,)


def _rows(
    post: Posterior,
    chosen: pd.DataFrame,
    years: list[int],
    population: float | None,
    *,
    skip_unknown: bool = False,
) -> tuple[pd.DataFrame, Rows, pd.DataFrame, pd.DataFrame]:
    """The output rows (authority-major), the model inputs of each, and carried-forward values.

    A fitted row takes its standardised covariates, exposure and observed count exactly as
    fitted. Any other row takes the panel's values for that authority and year; a covariate the
    panel lacks for the year is carried forward from the authority's latest earlier value (else
    its latest; ``lag_<x>_<k>`` only beyond the last year x is published,
    :func:`_covariate_value`); the population likewise unless ``population`` is given. With
    ``skip_unknown`` an authority with such an error is left out (all its years) and listed in
    the fourth frame (la_code, reason).
    """
    fitted = {
        (code, year): k for k, (code, year) in enumerate(zip(*_fitted_keys(post), strict=True))
    }
    panel = with_derived_columns(
        post.fit.panel, post.covariates, post.spec.years, scales=post.scales
    )
    panel = panel.assign(la_code=panel["la_code"].astype(str)).sort_values("year")
    by_authority = {str(code): rows for code, rows in panel.groupby("la_code")}
    published = _last_published(panel, post.covariates)
    table, X, log_exposure, carried, skipped = [], [], [], [], []
    for who in chosen.to_dict(orient="records"):
        code = str(who["la_code"])
        try:
            own = _authority_rows(post, who, years, population, fitted, by_authority, published)
        except AnswerError as exc:
            if not skip_unknown:
                raise
            skipped.append((code, str(exc)))
            continue
        for row, z, log_pop, moved in own:
            table.append(row)
            X.append(z)
            log_exposure.append(log_pop)
            carried.extend(moved)
    frame = pd.DataFrame(table, columns=[*_IDENTITY, "year", "kind", "population", "observed"])
    n = len(frame)
    inputs = Rows(
        la_code=frame["la_code"].to_numpy(str) if n else np.zeros(0, str),
        region=frame["region"].to_numpy(str) if n else np.zeros(0, str),
        year=frame["year"].to_numpy(int) if n else np.zeros(0, int),
        X=np.array(X).reshape(n, len(post.covariates)),
        log_exposure=np.array(log_exposure, dtype=float),
    )
    carried_frame = pd.DataFrame(carried, columns=["la_code", "year", "covariate", "from_year"])
    return frame, inputs, carried_frame, pd.DataFrame(skipped, columns=["la_code", "reason"])


def _authority_rows(
    post: Posterior,
    who: dict[str, Any],
    years: list[int],
    population: float | None,
    fitted: dict[tuple[str, int], int],
    by_authority: dict[str, pd.DataFrame],
    published: dict[str, int | None],
) -> list[tuple[dict[str, Any], np.ndarray, float, list[tuple[str, int, str, int]]]]:
    """One authority's rows of :func:`_rows`: (output row, standardised X, log exposure,
    carried-forward records) per year; raises :class:`AnswerError` when an input is unknown."""
    code = str(who["la_code"])
    fitted_rows = post.fitted_rows
    out = []
    for year in years:
        carried: list[tuple[str, int, str, int]] = []
        k = fitted.get((code, year))
        if k is not None:
            z = fitted_rows.X[k]
            pop = float(np.exp(fitted_rows.log_exposure[k]))
            observed = float(post.observed[k])
        else:
            rows = by_authority.get(code)
            if rows is None:
                raise AnswerError(f"authority {code} has no rows in the fit's panel")
            raw = []
            for cov in post.covariates:
                value, source_year = _covariate_value(rows, cov, year, published)
                raw.append(value)
                if source_year != year:
                    carried.append((code, year, cov, source_year))
            z = post.standardise(np.array([raw]))[0]
            pop = _latest(rows, post.spec.exposure, year)[0]
            observed = np.nan
        if population is not None and k is None:  # a user's figure: rows not fitted
            pop = float(population)
        if code not in post.la_codes:
            kind = KIND_NEW_GROUP
        elif year in post.years:
            kind = KIND_OBSERVED
        else:
            kind = KIND_FORECAST
        row = {
            **{c: str(who[c]) for c in _IDENTITY},
            "year": year,
            "kind": kind,
            "population": pop,
            "observed": observed,
        }
        out.append((row, z, float(np.log(pop)), carried))
    return out


def _fitted_keys(post: Posterior) -> tuple[np.ndarray, np.ndarray]:
    rows = post.fitted_rows
    return rows.la_code.astype(str), rows.year.astype(int)


def _latest(rows: pd.DataFrame, column: str, year: int) -> tuple[float, int]:
    """The authority's value of ``column`` in ``year``, else the latest earlier, else latest;
    with the year it comes from."""
    known = rows.loc[rows[column].notna(), ["year", column]]  # rows are sorted by year
    if known.empty:
        raise AnswerError(f"no known {column} for authority {rows['la_code'].iloc[0]}")
    same = known[known["year"] == year]
    if not same.empty:
        return float(same[column].iloc[0]), year
    earlier = known[known["year"] < year]
    source = (earlier if not earlier.empty else known).iloc[-1]
    return float(source[column]), int(source["year"])


def _covariate_value(
    rows: pd.DataFrame, covariate: str, year: int, published: dict[str, int | None]
) -> tuple[float, int]:
    """A covariate of one authority for ``year``, with the year whose value it is.

    ``lag(x, k)`` is x in year - k. When year - k is after the last year the panel publishes x
    for any authority (``published[x]``: a forecast more than k years ahead) the lag is carried
    forward from the authority's latest x, x in year s, reported as the lag's value of year
    s + k; a gap in an authority's published x stays an error. Anything else: :func:`_latest`.
    """
    lag = LAG_COLUMN.match(covariate)
    if lag is None:
        return _latest(rows, covariate, year)
    column, k = lag["column"], int(lag["k"])
    source = rows.loc[rows["year"] == year - k, column].dropna()
    if not source.empty:
        return float(source.iloc[0]), year
    last = published.get(column)
    known = rows.loc[rows[column].notna(), ["year", column]]  # rows are sorted by year
    if last is not None and year - k > last and not known.empty:
        return float(known[column].iloc[-1]), int(known["year"].iloc[-1]) + k
    raise AnswerError(
        f"lag({column}, {k}) in {year} needs {column} in {year - k}, which the panel does not "
        f"hold for authority {rows['la_code'].iloc[0]}"
    )


def _last_published(panel: pd.DataFrame, covariates: Sequence[str]) -> dict[str, int | None]:
    """For each lagged covariate ``lag(x, k)``: the last year the panel holds x for any
    authority (None if never)."""
    out: dict[str, int | None] = {}
    for covariate in covariates:
        lag = LAG_COLUMN.match(covariate)
        if lag is not None:
            years = panel.loc[panel[lag["column"]].notna(), "year"]
            out[lag["column"]] = int(years.max()) if len(years) else None
    return out


def _summary(
    row: dict[str, Any], y: np.ndarray, eta: np.ndarray, expected: np.ndarray, ci_prob: float
) -> dict[str, Any]:
    """One output row of :func:`predict` from the draws of one authority and year."""
    pop = row["population"]
    rate = y / pop * PER
    expected_rate = np.exp(expected) / pop * PER
    ratio = np.exp(eta - expected)
    return {
        **row,
        "observed_rate": row["observed"] / pop * PER,
        "predicted_mean": float(y.mean()),
        **_median_and_interval("predicted", y, ci_prob),
        **_median_and_interval("rate", rate, ci_prob),
        **_median_and_interval("expected_rate", expected_rate, ci_prob),
        **_median_and_interval("excess_ratio", ratio, ci_prob),
    }


def _median_and_interval(name: str, values: np.ndarray, ci_prob: float) -> dict[str, float]:
    """``<name>_median``, ``<name>_lower``, ``<name>_upper`` of one row's draws."""
    lo, hi = interval(values, ci_prob)
    return {
        f"{name}_median": float(np.median(values)),
        f"{name}_lower": float(lo),
        f"{name}_upper": float(hi),
    }


#: what :func:`aggregate_draws` can sum over
AGGREGATES = ("region", "england")


def aggregate_draws(draws: PredictiveDraws, by: Literal["region", "england"]) -> PredictiveDraws:
    """Sum the predictive draws over authorities, per draw: one column per region and year
    (``by="region"``) or per year (``"england"``).

    Every column of ``draws`` is summed, so pass only the authorities that make up the total
    (:func:`predict_aggregate` keeps those that exist in each year). Summing per draw keeps the
    correlation between authorities (their shared year shock and parameters), so the
    aggregate's interval is right; adding the authorities' interval ends would not be.
    ``count`` is the sum of counts, ``eta`` and ``expected`` the log of the sums of exp(eta)
    and exp(expected) (the total's mean count and expected need given the parameters). Rows:
    la_code and ons_code empty, la_name the region (or "England"), region (or "England"),
    year, kind (the authorities' kind, or "mixed"), population and observed summed (observed
    NaN unless every authority's count is observed), n_authorities.
    """
    if by not in AGGREGATES:
        raise AnswerError(f"aggregate by one of {list(AGGREGATES)}, got {by!r}")
    rows = draws.rows.reset_index(drop=True)
    area = rows["region"].astype(str) if by == "region" else pd.Series("England", index=rows.index)
    keys = pd.DataFrame({"area": area, "year": rows["year"].astype(int)})
    out_rows, count, eta, expected = [], [], [], []
    for (name, year), group in keys.groupby(["area", "year"], sort=True):
        columns = group.index.to_numpy()
        members = rows.loc[columns]
        kinds = members["kind"].unique()
        observed = members["observed"].to_numpy(float)
        out_rows.append(
            {
                "la_code": "",
                "ons_code": "",
                "la_name": str(name),
                "region": str(name),
                "year": int(year),
                "kind": str(kinds[0]) if len(kinds) == 1 else "mixed",
                "population": float(members["population"].sum()),
                "observed": float(observed.sum()) if np.isfinite(observed).all() else np.nan,
                "n_authorities": len(columns),
            }
        )
        count.append(draws.count[:, columns].sum(axis=1))
        eta.append(np.logaddexp.reduce(draws.eta[:, columns], axis=1))
        expected.append(np.logaddexp.reduce(draws.expected[:, columns], axis=1))
    n = draws.count.shape[0]

    def stacked(parts: list[np.ndarray]) -> np.ndarray:
        return np.column_stack(parts) if parts else np.zeros((n, 0))

    return PredictiveDraws(
        rows=pd.DataFrame(out_rows),
        count=stacked(count),
        eta=stacked(eta),
        expected=stacked(expected),
        carried_forward=draws.carried_forward,
        notes=draws.notes,
    )


def predict_aggregate(
    fit: Fit,
    *,
    by: Literal["region", "england"],
    year: int | Sequence[int] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    seed: int = 0,
    region_as_need: bool = False,
) -> pd.DataFrame:
    """:func:`predict` for the sum of every authority's count per region or for England.

    The draws of ``predict_draws(fit, authority="all", year=year)`` are summed per draw
    (:func:`aggregate_draws`) over the authorities that exist in each year: those with a row in
    the fit's panel for that year, or for a year beyond the panel, in its latest earlier year
    (an authority abolished by a boundary change is not counted after it went). Same columns as
    :func:`predict` (la_code and ons_code empty, la_name the region or "England") plus
    n_authorities; rates are per 10,000 children of the summed population.
    """
    check_ci_prob(ci_prob)
    pred = predict_draws(fit, authority="all", year=year, seed=seed, region_as_need=region_as_need)
    panel = fit.panel.assign(la_code=fit.panel["la_code"].astype(str))
    panel_years = sorted(int(y) for y in panel["year"].unique())
    exists = np.zeros(len(pred.rows), dtype=bool)
    for y in pred.rows["year"].unique():
        known = [p for p in panel_years if p <= int(y)] or panel_years[:1]
        alive = set(panel.loc[panel["year"] == known[-1], "la_code"])
        here = (pred.rows["year"] == y).to_numpy()
        exists |= here & pred.rows["la_code"].astype(str).isin(alive).to_numpy()
    kept = PredictiveDraws(
        rows=pred.rows[exists].reset_index(drop=True),
        count=pred.count[:, exists],
        eta=pred.eta[:, exists],
        expected=pred.expected[:, exists],
        carried_forward=pred.carried_forward,
        notes=pred.notes,
    )
    total = aggregate_draws(kept, by)
    return _summary_table(total, ci_prob, region_as_need=region_as_need, aggregate=by)
