"""The AR(1) LA-year deviation with heavy-tailed year-to-year changes (``la_year = "ar1_t"``).

The same term as :mod:`csc_bayes.terms.la_year` (posterior name ``la_year``, centred over
authorities in every year, marginal SD ``sigma_la_year``, lag-one correlation ``rho_la_year``),
but each year's innovation is a Student-t with ``nu_la_year`` degrees of freedom scaled to the
Gaussian term's variance:

    x_t = rho^d x_(t-1) + e_t,    e_t = sigma sqrt(1 - rho^(2d)) sqrt((nu - 2) / nu) T_nu,

with d the gap in calendar years and T_nu a standard Student-t; the first fitted year is
x_0 = sigma sqrt((nu - 2) / nu) T_nu. So the covariance over years is exactly the Gaussian
AR(1)'s, sigma^2 rho^|t - u| (``explain``'s variance formulas are unchanged), while a few large
changes no longer widen every authority's interval: CIN's year-to-year changes have excess
kurtosis 5 (``examples/change_predictability.py``), and the Gaussian term's central 50%
intervals covered 0.60-0.66 on the backtest. (With a gap, d > 1, the sum of d innovations is
approximated by one t innovation with the same variance; the first year's marginal by a t with
the stationary variance.)

Prior: ``nu_la_year - 2 ~ Gamma(2, 0.1)`` (the ``[priors]`` entry ``nu_la_year`` sets the law of
nu - 2, so nu > 2 and the variance is finite; Gamma(2, 0.1) is Juárez & Steel's (2010) prior on
the degrees of freedom, shifted). The model samples ``nu_la_year_excess`` = nu - 2 and reports
``nu_la_year``.

New rows: a year after the authority's known path (fitted years and those already drawn) is
drawn by running the t innovations forward from the last known year (the forecast's own law);
a new authority's first year from the stationary scaled t; a year before or between known
years from the Gaussian conditional (the mean is the best linear predictor either way).

A forecast's innovations are bounded: each standardised change z = sqrt((nu - 2) / nu) T_nu is
drawn from the t *conditioned on* |z| <= ``FORECAST_Z_MAX`` (10 standard deviations of the
year's change; a draw beyond it is drawn again). Without the bound a count forecast would have
no mean: E[exp(c T_nu)] is infinite for every nu, so a single draw among thousands can be
10^9 children (one authority, CIN 2024, a refit with nu between 2.8 and 5) and the predictive mean
and the CRPS are then meaningless. The bound is wider than any change in the panel (the largest
year-to-year change of any authority, 2013-2024, is 4.8-6.9 standard deviations of the changes,
by outcome; ``docs/methods.md`` 3g) and removes a probability below 7 x 10^-4 for any nu
(1.5 x 10^-4 at nu = 4); the fitted likelihood and simulated panels (``simulate_ar1_t``) keep
the unbounded t.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.errors import SpecError
from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels
from csc_bayes.terms.la_year import LaYearAR1

#: default prior of nu_la_year - 2 (Juárez & Steel 2010, shifted so that nu > 2)
NU_LA_YEAR_PRIOR = {"alpha": 2.0, "beta": 0.1}
#: a forecast's standardised yearly change is drawn from the t conditioned on |z| <= this
FORECAST_Z_MAX = 10.0


class LaYearAR1StudentT(LaYearAR1):
    """Priors as the Gaussian term's, and ``nu_la_year - 2 ~ Gamma(2, 0.1)``."""

    values = ("ar1_t",)

    def parameters(self) -> tuple[str, ...]:
        return (*super().parameters(), "nu_la_year")

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {**super().default_priors(scale), "nu_la_year": prior("gamma", **NU_LA_YEAR_PRIOR)}

    def parameter_rvs(self, ctx: BuildContext) -> tuple[Any, ...]:
        """(sigma_la_year, rho_la_year, nu_la_year); nu is sampled as nu - 2."""
        import pymc as pm

        excess = prior_rv("nu_la_year_excess", ctx.priors["nu_la_year"])
        return (*super().parameter_rvs(ctx), pm.Deterministic("nu_la_year", 2.0 + excess))

    @staticmethod
    def path_logp(x: Any, sigma: Any, rho: Any, nu: Any, years: np.ndarray) -> Any:
        return ar1_t_logp(x, sigma, rho, nu, years)

    @staticmethod
    def simulate_paths(
        sigma: Any, rho: Any, nu: Any, years: np.ndarray, shape: tuple[int, ...], rng: Any
    ) -> np.ndarray:
        return simulate_ar1_t(sigma, rho, nu, years, shape, rng)

    def textbook_deviation(self, *params: Any) -> Any:
        raise SpecError(
            f"{self.spec.source}: la_year = 'ar1_t' is built only in the hierarchical "
            "parameterisation (the default)"
        )

    def _new_given(
        self, post: Any, known: dict[int, np.ndarray], year: int, new: NewLevels
    ) -> np.ndarray:
        sigma, rho, nu = (post.draws(n) for n in ("sigma_la_year", "rho_la_year", "nu_la_year"))
        t_scale = np.sqrt((nu - 2.0) / nu)
        if not known:  # a new authority's first year: the stationary law
            return sigma * t_scale * bounded_t(nu, new.rng)
        last = max(known)
        if year > last:  # forward, one calendar year at a time, with bounded t innovations
            x = known[last]
            step = sigma * np.sqrt(1.0 - rho**2) * t_scale
            for _ in range(year - last):
                x = rho * x + step * bounded_t(nu, new.rng)
            return x
        return super()._new_given(post, known, year, new)

    def describe(self) -> tuple[str | None, str | None]:
        phrase, own = super().describe()
        return f"{phrase}, with heavy-tailed (Student-t) year-to-year changes", own

    def describe_forecast(self, horizon: int) -> str | None:
        return (
            f"each authority's latest deviation decays towards its own level by rho^{horizon}, "
            f"with {horizon} heavy-tailed (Student-t) yearly changes"
        )


def bounded_t(nu: np.ndarray, rng: Any, z_max: float = FORECAST_Z_MAX) -> np.ndarray:
    """One Student-t draw T_nu per draw of nu, given that the unit-variance change
    z = sqrt((nu - 2) / nu) T_nu has |z| <= z_max.

    Drawn as ``rng.standard_t(nu)``, then only the draws beyond the bound are drawn again (so
    within the bound the draws are those of the unbounded t)."""
    shape = np.shape(nu)
    nu = np.atleast_1d(np.asarray(nu, dtype=float))
    limit = z_max / np.sqrt((nu - 2.0) / nu)
    t = rng.standard_t(nu)
    beyond = np.abs(t) > limit
    while beyond.any():
        t[beyond] = rng.standard_t(nu[beyond])
        beyond = np.abs(t) > limit
    return t.reshape(shape)


def ar1_t_logp(x: Any, sigma: Any, rho: Any, nu: Any, years: np.ndarray) -> Any:
    """log density of each row of ``x`` (last axis: increasing ``years``), Markov factorised:
    x_0 and each x_t - rho^d x_(t-1) a scaled Student-t (see the module docstring)."""
    import pytensor.tensor as pt

    gaps = np.diff(np.asarray(years, dtype=float))
    decay = rho**gaps
    mean = pt.concatenate([pt.zeros_like(x[..., :1]), decay * x[..., :-1]], axis=-1)
    scale = (
        sigma * pt.concatenate([pt.ones((1,)), pt.sqrt(1.0 - decay**2)]) * pt.sqrt((nu - 2.0) / nu)
    )
    z = (x - mean) / scale
    log_norm = pt.gammaln((nu + 1.0) / 2.0) - pt.gammaln(nu / 2.0) - 0.5 * pt.log(nu * np.pi)
    return pt.sum(log_norm - pt.log(scale) - (nu + 1.0) / 2.0 * pt.log1p(z**2 / nu), axis=-1)


def simulate_ar1_t(
    sigma: Any, rho: Any, nu: Any, years: np.ndarray, shape: tuple[int, ...], rng: Any
) -> np.ndarray:
    """Paths of the term's law over ``years`` (numpy; ``shape`` ends with the years)."""
    years = np.asarray(years, dtype=float)
    t_scale = np.sqrt((nu - 2.0) / nu)
    out = np.empty(shape)
    out[..., 0] = sigma * t_scale * rng.standard_t(nu, size=shape[:-1])
    for t in range(1, len(years)):
        decay = rho ** (years[t] - years[t - 1])
        step = sigma * np.sqrt(1.0 - decay**2) * t_scale
        out[..., t] = decay * out[..., t - 1] + step * rng.standard_t(nu, size=shape[:-1])
    return out
