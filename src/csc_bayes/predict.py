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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from csc_bayes.excess import PER, expected_terms
from csc_bayes.variance import (
    DEFAULT_CI_PROB,
    authorities,
    check_ci_prob,
    constant,
    covariate_names,
    draws,
    has_variable,
    interval,
    random_slope_name,
)

KIND_OBSERVED, KIND_FORECAST, KIND_NEW_GROUP = "observed", "forecast", "new_group"
_IDENTITY = ["la_code", "ons_code", "la_name", "region"]


def _candidates(fit: Any) -> pd.DataFrame:
    """Authorities a user may name: the fitted ones, then any others in the fit's panel."""
    fitted = authorities(fit)
    panel = fit.panel[_IDENTITY].astype(str).drop_duplicates("la_code", keep="last")
    extra = panel[~panel["la_code"].isin(fitted["la_code"])]
    return pd.concat([fitted, extra], ignore_index=True)


def _latest(rows: pd.DataFrame, column: str, year: int) -> float:
    """The authority's value of ``column`` in ``year``, else the latest earlier, else latest."""
    known = rows.loc[rows[column].notna(), ["year", column]]  # rows are sorted by year
    if known.empty:
        raise ValueError(f"no known {column} for authority {rows['la_code'].iloc[0]}")
    same = known[known["year"] == year]
    if not same.empty:
        return float(same[column].iloc[0])
    earlier = known[known["year"] < year]
    return float((earlier if not earlier.empty else known)[column].iloc[-1])


def _default_years(fit: Any, all_authorities: bool) -> list[int]:
    fitted = [int(y) for y in fit.idata["posterior"]["year"].values]
    later = sorted(int(y) for y in fit.panel["year"].unique() if int(y) > max(fitted))
    if all_authorities:
        return [later[0]] if later else [max(fitted)]
    return fitted + later[:1]


@dataclass(frozen=True)
class PredictiveDraws:
    """Per-draw predictions (draws first: shape (S, n)), one column per row of ``rows``.

    ``rows``: la_code, ons_code, la_name, region, year, kind (observed / forecast / new_group),
    population, observed (NaN where not observed). ``count``: posterior predictive counts;
    ``eta``: the latent log mean; ``expected``: the log expected count (expected need).
    """

    rows: pd.DataFrame
    count: np.ndarray
    eta: np.ndarray
    expected: np.ndarray


def predict(
    fit: Any,
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
    check_ci_prob(ci_prob)
    pred = predict_draws(
        fit,
        authority=authority,
        year=year,
        population=population,
        seed=seed,
        region_as_need=region_as_need,
    )
    out = pd.DataFrame(
        [
            _summary(row, pred.count[:, k], pred.eta[:, k], pred.expected[:, k], ci_prob)
            for k, row in enumerate(pred.rows.to_dict(orient="records"))
        ]
    )
    out.attrs.update(ci_prob=ci_prob, region_as_need=region_as_need, rate_per=PER)
    return out


def predict_draws(
    fit: Any,
    *,
    authority: str | int | Literal["all"],
    year: int | Sequence[int] | None = None,
    population: float | None = None,
    seed: int = 0,
    region_as_need: bool = False,
) -> PredictiveDraws:
    """The posterior predictive draws behind :func:`predict` (same arguments, no ``ci_prob``).

    Use it to score forecasts (CRPS, coverage) or to sum counts over authorities.
    """
    if population is not None and not population > 0:
        raise ValueError(f"population must be positive, got {population!r}")
    candidates = _candidates(fit)
    everyone = isinstance(authority, str) and authority.strip().lower() == "all"
    if year is None:
        years = _default_years(fit, everyone)
    elif isinstance(year, (int, np.integer)):
        years = [int(year)]
    else:
        years = [int(y) for y in year]
    first_fitted = int(fit.idata["posterior"]["year"].values.min())
    too_early = [y for y in years if y < first_fitted]
    if too_early:
        raise ValueError(f"year(s) {too_early} precede the first fitted year {first_fitted}")

    if everyone:
        panel_years = fit.panel[fit.panel["year"].isin(years)]
        chosen = candidates[
            candidates["la_code"].isin(authorities(fit)["la_code"])
            | candidates["la_code"].isin(panel_years["la_code"].astype(str))
        ]
    else:
        from csc_bayes.authorities import resolve_authority

        row = resolve_authority(authority, candidates)
        chosen = candidates[candidates["la_code"] == str(row["la_code"])]
    return _Predictor(fit, seed=seed, region_as_need=region_as_need).draws(
        chosen.reset_index(drop=True), years, population
    )


class _Predictor:
    """Per-draw pieces shared by every row of one ``predict`` call."""

    def __init__(self, fit: Any, *, seed: int, region_as_need: bool) -> None:
        self.fit, self.region_as_need = fit, region_as_need
        self.rng = np.random.default_rng(seed)
        post = fit.idata["posterior"]
        self.covariates = covariate_names(fit)
        self.slope = random_slope_name(fit)
        self.la_codes = [str(c) for c in post["la"].values]
        self.regions = [str(r) for r in post["region"].values]
        self.years = [int(y) for y in post["year"].values]
        self.intercept = draws(fit, "intercept")
        self.S = len(self.intercept)
        self.beta = draws(fit, "beta") if self.covariates else np.zeros((self.S, 0))
        self.la_effect = draws(fit, "la_effect")
        self.region_effect = draws(fit, "region_effect")
        self.year_effect = draws(fit, "year_effect")
        self.phi = draws(fit, "phi") if has_variable(fit, "phi") else None
        self.la_slope = draws(fit, "la_slope") if self.slope else None
        self.la_trend = draws(fit, "la_trend") if has_variable(fit, "la_trend") else None
        self.year_centre = float(constant(fit, "year_centre")) if self.la_trend is not None else 0.0
        self.la_year = draws(fit, "la_year") if has_variable(fit, "la_year") else None
        self.ar_conditional: dict[tuple[int, tuple[int, ...]], tuple[np.ndarray, np.ndarray]] = {}
        #: la_year draws of unfitted years (and of new authorities), by la_code then year
        self.drawn_la_year: dict[str, dict[int, np.ndarray]] = {}
        self.X = constant(fit, "X").astype(float) if self.covariates else None
        self.log_exposure = constant(fit, "log_exposure").astype(float)
        self.y = np.asarray(fit.idata["observed_data"]["y"].values, dtype=float)
        if self.covariates:
            self.mean = constant(fit, "covariate_mean").astype(float)
            self.sd = constant(fit, "covariate_sd").astype(float)
        # fitted rows: (la_code, year) -> obs position, for exact X, exposure and observed y
        la_idx, year_idx = constant(fit, "la_idx").astype(int), constant(fit, "year_idx")
        self.obs = {
            (self.la_codes[i], self.years[int(t)]): k
            for k, (i, t) in enumerate(zip(la_idx, year_idx, strict=True))
        }
        panel = fit.panel.assign(la_code=fit.panel["la_code"].astype(str)).sort_values("year")
        self.panel_rows = {str(code): rows for code, rows in panel.groupby("la_code")}
        self.new_year: dict[int, np.ndarray] = {}
        self.new_la: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
        self.new_region: dict[str, np.ndarray] = {}

    # --- per-draw effects -------------------------------------------------------------------

    def _year(self, year: int) -> np.ndarray:
        if year in self.years:
            return self.year_effect[:, self.years.index(year)]
        if year not in self.new_year:  # one common shock per draw, shared by all authorities
            sigma = draws(self.fit, "sigma_year")
            if getattr(self.fit.spec, "year_effect", "iid") == "rw1":
                mean, sd = self._year_walk(year, sigma)
                self.new_year[year] = mean + sd * self.rng.standard_normal(len(sigma))
            else:
                self.new_year[year] = self.rng.normal(0.0, sigma)
        return self.new_year[year]

    def _year_walk(self, year: int, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Random-walk year effect of an unfitted year given the known walk, per draw.

        Known: the fitted years and the unfitted years already drawn in this call (the walk is
        Markov, so only the nearest known year on each side matters). After the last known year
        L: N(w_L, sigma^2 (year - L)). Between known years a < year < b: the Brownian bridge
        N(w_a + (w_b - w_a) (year - a) / (b - a), sigma^2 (year - a) (b - year) / (b - a)).
        """
        known = {**dict(zip(self.years, self.year_effect.T, strict=True)), **self.new_year}
        before = max(y for y in known if y < year)
        after = [y for y in known if y > year]
        w_a = known[before]
        if not after:
            return w_a, sigma * np.sqrt(year - before)
        b = min(after)
        w_b = known[b]
        frac = (year - before) / (b - before)
        return w_a + (w_b - w_a) * frac, sigma * np.sqrt(
            (year - before) * (b - year) / (b - before)
        )

    def _la(self, code: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Per draw: the authority's la_effect, la_slope (or None) and la_trend (or None)."""
        if code in self.la_codes:
            j = self.la_codes.index(code)
            slope = self.la_slope[:, j] if self.la_slope is not None else None
            trend = self.la_trend[:, j] if self.la_trend is not None else None
            return self.la_effect[:, j], slope, trend
        if code not in self.new_la:
            effect = self.rng.normal(0.0, draws(self.fit, "sigma_la"))
            slope = self.rng.normal(0.0, draws(self.fit, "sigma_la_slope")) if self.slope else None
            trend = (
                self.rng.normal(0.0, draws(self.fit, "sigma_la_trend"))
                if self.la_trend is not None
                else None
            )
            self.new_la[code] = (effect, slope, trend)
        return self.new_la[code]

    def _la_year(self, code: str, year: int) -> np.ndarray | None:
        """Per draw: the authority's AR(1) LA-year deviation in ``year`` (None without one).

        A fitted year returns the fitted value. Any other year is drawn from its Gaussian
        conditional given what is known of this authority's path: its fitted years (none for a
        new authority) and the years already drawn for it in this call, so that several
        unfitted years come out jointly distributed.
        """
        if self.la_year is None:
            return None
        known: dict[int, np.ndarray] = {}
        if code in self.la_codes:
            path = self.la_year[:, self.la_codes.index(code), :]  # (S, fitted years)
            if year in self.years:
                return path[:, self.years.index(year)]
            known = dict(zip(self.years, path.T, strict=True))
        drawn = self.drawn_la_year.setdefault(code, {})
        if year not in drawn:
            given = {**known, **drawn}
            if not given:  # a new authority's first year: the stationary distribution
                drawn[year] = self.rng.normal(0.0, draws(self.fit, "sigma_la_year"))
            else:
                years = tuple(sorted(given))
                weights, sd = self._ar_weights(year, years)
                values = np.stack([given[y] for y in years], axis=1)  # (S, known years)
                noise = sd * self.rng.standard_normal(len(sd))
                drawn[year] = (weights * values).sum(axis=1) + noise
        return drawn[year]

    def _ar_weights(
        self, year: int, given: tuple[int, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian conditioning of la_year[year] on the years ``given`` (default: fitted).

        With K[t, u] = sigma^2 rho^|t - u| over the given years and k[t] = sigma^2
        rho^|year - t|: mean = w . la_year_path with w = K^-1 k, variance = sigma^2 - w . k.
        """
        given = tuple(self.years) if given is None else given
        if (year, given) not in self.ar_conditional:
            from csc_bayes.model import ar1_correlation

            full = ar1_correlation(draws(self.fit, "rho_la_year"), [*given, year])
            corr, k = full[:, :-1, :-1], full[:, :-1, -1]  # (S, T, T), (S, T)
            sigma2 = draws(self.fit, "sigma_la_year") ** 2
            weights = np.linalg.solve(corr, k[:, :, None])[:, :, 0]
            var = sigma2 * np.clip(1.0 - (weights * k).sum(axis=1), 0.0, None)
            self.ar_conditional[(year, given)] = (weights, np.sqrt(var))
        return self.ar_conditional[(year, given)]

    def _region(self, region: str) -> np.ndarray:
        if region in self.regions:
            return self.region_effect[:, self.regions.index(region)]
        if region not in self.new_region:
            self.new_region[region] = self.rng.normal(0.0, draws(self.fit, "sigma_region"))
        return self.new_region[region]

    # --- inputs of one row ------------------------------------------------------------------

    def _inputs(
        self, code: str, year: int, population: float | None
    ) -> tuple[np.ndarray, float, float]:
        """Standardised covariates z, population and observed count (NaN) of one row."""
        key = (code, year)
        if key in self.obs:
            k = self.obs[key]
            z = self.X[k] if self.X is not None else np.zeros(0)
            pop = float(np.exp(self.log_exposure[k]))
            observed = float(self.y[k])
        else:
            rows = self.panel_rows.get(code)
            if rows is None:
                raise ValueError(f"authority {code} has no rows in the fit's panel")
            raw = np.array([_latest(rows, c, year) for c in self.covariates])
            z = (raw - self.mean) / self.sd if self.covariates else np.zeros(0)
            pop = _latest(rows, "population", year)
            observed = np.nan
        if population is not None and np.isnan(observed):  # a user's figure: unobserved years
            pop = float(population)
        return z, pop, observed

    # --- the table --------------------------------------------------------------------------

    def draws(
        self, chosen: pd.DataFrame, years: list[int], population: float | None
    ) -> PredictiveDraws:
        rows, counts, etas, expecteds = [], [], [], []
        for _, who in chosen.iterrows():
            code = str(who["la_code"])
            for year in years:
                row, count, eta, expected = self._row_draws(who, code, year, population)
                rows.append(row)
                counts.append(count)
                etas.append(eta)
                expecteds.append(expected)
        empty = np.zeros((self.S, 0))
        return PredictiveDraws(
            rows=pd.DataFrame(rows),
            count=np.stack(counts, axis=1) if counts else empty,
            eta=np.stack(etas, axis=1) if etas else empty,
            expected=np.stack(expecteds, axis=1) if expecteds else empty,
        )

    def _row_draws(
        self, who: pd.Series, code: str, year: int, population: float | None
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
        z, pop, observed = self._inputs(code, year, population)
        la, slope, trend = self._la(code)
        region = self._region(str(who["region"]))
        year_effect = self._year(year)
        linear = self.intercept + self.beta @ z + la + region + year_effect
        if slope is not None:
            linear = linear + slope * z[self.covariates.index(self.slope)]
        if trend is not None:  # the authority's own drift, for observed and forecast years alike
            linear = linear + trend * (year - self.year_centre) / 10.0
        la_year = self._la_year(code, year)
        if la_year is not None:
            linear = linear + la_year
        eta = np.log(pop) + linear
        expected = (
            np.log(pop)
            + expected_terms(
                self.fit,
                z[None, :],
                region=region[:, None] if self.region_as_need else None,
                year=year_effect[:, None],
            )[:, 0]
        )
        mu = np.exp(eta)
        if self.phi is not None:
            y = self.rng.poisson(self.rng.gamma(self.phi, mu / self.phi))
        else:
            y = self.rng.poisson(mu)
        if code not in self.la_codes:
            kind = KIND_NEW_GROUP
        elif year in self.years:
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
        return row, y.astype(float), eta, expected


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
