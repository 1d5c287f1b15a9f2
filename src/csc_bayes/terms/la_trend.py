"""An LA-specific linear trend: ``la_trend[j] * year_c``, ``year_c = (year - year_centre) / 10``.

``la_trend ~ N(0, sigma_la_trend)`` per decade, non-centred and sum-to-zero over authorities (a
trend common to every authority is a linear trend in the year effects). ``year_centre`` is the
mean of the fitted years. Part of the authority's own deviation (component ``la``), for fitted
and forecast years alike; a new authority draws its trend from N(0, sigma_la_trend).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.errors import SpecError
from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term
from csc_bayes.terms.covariates import group_means
from csc_bayes.terms.la import la_means_of, per_authority

#: default sigma_la_trend prior: HalfNormal(0.5) on the log rate per decade; an authority's drift
#: relative to the common year effects is a priori within about +-1 log unit (a factor of e) per
#: decade for 95% of authorities; fixed, not data-scaled
LA_TREND_PRIOR = {"sigma": 0.5}


class LaTrend(Term):
    """Prior ``sigma_la_trend ~ HalfNormal(0.5)`` per decade (fixed, :data:`LA_TREND_PRIOR`)."""

    name = "la_trend"
    component = "la"
    own = True
    between_la = True
    order = 42
    key = "la_trend"
    default = False

    @classmethod
    def parse_key(cls, value: Any, *, source: str, model: dict[str, Any]) -> Any:
        if not isinstance(value, bool):
            raise SpecError(
                f"{source}: key 'la_trend' must be true or false, got {type(value).__name__} "
                f"{value!r}"
            )
        return value

    def parameters(self) -> tuple[str, ...]:
        return ("sigma_la_trend",)

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"sigma_la_trend": prior("halfnormal", **LA_TREND_PRIOR)}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        centre = float(ctx.years.mean())
        pm.Data("year_centre", centre)
        year_c_values = (ctx.data["year"].to_numpy(dtype=float) - centre) / 10.0
        year_c = pm.Data("year_c", year_c_values, dims="obs")
        sigma = prior_rv("sigma_la_trend", ctx.priors["sigma_la_trend"])
        if ctx.hierarchical:
            z = pm.ZeroSumNormal("la_trend_z", sigma=1.0, dims="la")
        else:
            z = pm.Normal("la_trend_z", 0.0, 1.0, dims="la")
        trend = pm.Deterministic("la_trend", sigma * z, dims="la")
        # the authority's mean year_c over its fitted rows (0 for one fitted in every year)
        mid_c = group_means(year_c_values[:, None], ctx.la_idx, len(ctx.la_codes))[:, 0]
        ctx.la_shift.append(trend * pt.constant(mid_c))
        ctx.eta["la_trend"] = trend[ctx.tensors["la_idx"]] * year_c

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        trend = per_authority(post, "la_trend", "sigma_la_trend", self.name, rows, new)
        return {"la": trend * year_c(post, rows.year)[None, :]}

    def batch_sd(self, post: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        finite = post.draws("la_trend").std(axis=1, ddof=1)
        return {"la_trend": (finite, post.draws("sigma_la_trend"))}

    def expected_between_la_variance(self, post: Any) -> np.ndarray:
        """sigma_la_trend^2 mean_j cbar_j^2, cbar_j: authority j's mean year_c."""
        cbar = la_means_of(post.constant("year_c").astype(float), post.la_idx, len(post.la_codes))
        return post.draws("sigma_la_trend") ** 2 * float(np.mean(cbar**2))

    def describe(self) -> tuple[str | None, str | None]:
        return "a linear trend per authority", "its trend"

    def describe_forecast(self, horizon: int) -> str | None:
        return f"each authority's own linear trend is extrapolated {horizon} year(s)"


def year_c(post: Any, years: np.ndarray) -> np.ndarray:
    """``(year - year_centre) / 10``: decades from the mean fitted year."""
    return (np.asarray(years, dtype=float) - float(post.constant("year_centre"))) / 10.0
