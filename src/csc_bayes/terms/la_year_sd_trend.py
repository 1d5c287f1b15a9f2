"""The Student-t AR(1) LA-year deviation whose scale trends over the fitted years
(``la_year = "ar1_t_sd_trend"``).

The deviation of authority j in year t is a stationary Student-t AR(1) path u (the
``ar1_t`` term, :mod:`csc_bayes.terms.la_year_t`) times a scale that changes by a factor
exp(gamma) a year up to the last fitted year T and stays there after it:

    la_year[j, t] = w_t u[j, t],    w_t = exp(gamma (min(t, T) - T)),

with gamma = ``sd_trend_la_year`` (the change in the log SD per year). So ``sigma_la_year`` is
the SD of the deviation in the last fitted year, and in every year after it; the covariance
over years is sigma^2 w_t w_u rho^|t - u|, and the year-to-year changes shrink (gamma < 0) or
grow with the same factor. Why: the spread of the authorities' yearly changes has fallen since
2014 for some outcomes (the median absolute change in log CIN was 0.08-0.10 in 2014-2016 and
0.05-0.07 in 2020-2024; S47 0.14-0.17 and 0.11; CPP and CLA flat), and a term with one scale
fitted on every year gives the latest years, which a forecast continues, too wide an interval
(CIN's central 50% intervals covered 0.58 on the rolling origin 2019-2024, 0.62-0.70 in
2023-2024). ``docs/methods.md`` 3g.

A forecast carries the last fitted year's scale forward (w_t = 1 for t >= T): it does not
extrapolate the trend, so the forecast law is exactly the ``ar1_t`` term's with sigma the latest
year's SD. Prior: ``sd_trend_la_year ~ Normal(0, 0.1)`` (a factor e^(+-1) over ten years at one
prior SD). Built only for the Student-t term, the one the forecasting specs use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels
from csc_bayes.terms.la_year_t import LaYearAR1StudentT, ar1_t_logp, simulate_ar1_t

#: default prior of sd_trend_la_year, the change in the deviation's log SD per year
SD_TREND_LA_YEAR_PRIOR = {"mu": 0.0, "sigma": 0.1}


class LaYearAR1StudentTSdTrend(LaYearAR1StudentT):
    """Priors as the ``ar1_t`` term's, and ``sd_trend_la_year ~ Normal(0, 0.1)``."""

    values = ("ar1_t_sd_trend",)

    def parameters(self) -> tuple[str, ...]:
        return (*super().parameters(), "sd_trend_la_year")

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {
            **super().default_priors(scale),
            "sd_trend_la_year": prior("normal", **SD_TREND_LA_YEAR_PRIOR),
        }

    def parameter_rvs(self, ctx: BuildContext) -> tuple[Any, ...]:
        """(sigma_la_year, rho_la_year, nu_la_year, sd_trend_la_year)."""
        trend = prior_rv("sd_trend_la_year", ctx.priors["sd_trend_la_year"])
        return (*super().parameter_rvs(ctx), trend)

    @staticmethod
    def path_logp(x: Any, sigma: Any, rho: Any, nu: Any, trend: Any, years: np.ndarray) -> Any:
        """log density of x = w u: the ``ar1_t`` density of u = x / w, plus the Jacobian
        -sum_t log w_t (the last of ``years`` is the last fitted year, where w = 1)."""
        offsets = np.asarray(years, dtype=float) - float(np.max(years))
        log_w = trend * offsets
        return ar1_t_logp(x / np.exp(log_w), sigma, rho, nu, years) - log_w.sum()

    @staticmethod
    def simulate_paths(
        sigma: Any,
        rho: Any,
        nu: Any,
        trend: Any,
        years: np.ndarray,
        shape: tuple[int, ...],
        rng: Any,
    ) -> np.ndarray:
        """Paths of the term's law (numpy): ``ar1_t`` paths times w over ``years``."""
        offsets = np.asarray(years, dtype=float) - float(np.max(years))
        return simulate_ar1_t(sigma, rho, nu, years, shape, rng) * np.exp(trend * offsets)

    def _new(self, post: Any, code: str, year: int, new: NewLevels) -> np.ndarray:
        """The ``ar1_t`` term's draw of the standardised path u = la_year / w, times w_year."""
        trend, last = post.draws("sd_trend_la_year"), max(post.years)

        def scale(y: int) -> np.ndarray:
            return np.exp(trend * (min(y, last) - last))

        known = {y: x / scale(y) for y, x in self.known_path(post, code, new).items()}
        return scale(year) * self._new_given(post, known, year, new)

    def path_correlation(self, post: Any, years: Any) -> np.ndarray:
        """Per draw, w_t w_u rho^|t - u| over ``years`` (w as in the module docstring), the
        covariance over sigma^2 that ``explain``'s between-LA variance averages."""
        last = max(post.years)
        w = np.exp(post.draws("sd_trend_la_year")[:, None] * (np.asarray(years) - last))
        return super().path_correlation(post, years) * w[:, :, None] * w[:, None, :]

    def describe(self) -> tuple[str | None, str | None]:
        phrase, own = super().describe()
        return f"{phrase} and a scale that trends over the fitted years", own

    def describe_forecast(self, horizon: int) -> str | None:
        return f"{super().describe_forecast(horizon)} at the last fitted year's scale"
