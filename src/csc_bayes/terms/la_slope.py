"""A random slope by authority on one covariate: ``la_slope[j] * X[i, k]``.

``la_slope ~ N(0, sigma_la_slope)`` (non-centred), independent of the LA intercept (lme4's
``(1 + x || la)``). Part of the authority's own deviation (component ``la``). A new authority
draws its slope from N(0, sigma_la_slope).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from csc_bayes.errors import SpecError
from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term
from csc_bayes.terms.covariates import group_means
from csc_bayes.terms.la import la_means_of, per_authority


class LaSlope(Term):
    """Prior ``sigma_la_slope ~ HalfNormal(s)``; the covariate is ``spec.random_slope``."""

    name = "la_slope"
    component = "la"
    own = True
    between_la = True
    order = 41
    key = "random_slope"
    in_null_model = False  # a slope on a covariate; the null model has none

    @classmethod
    def parse_key(cls, value: Any, *, source: str, model: dict[str, Any]) -> Any:
        if value is None:
            return None
        if not isinstance(value, str) or value not in model["covariates"]:
            raise SpecError(
                f"{source}: key 'random_slope' = {value!r} is not one of the model's covariates "
                f"{model['covariates']}"
            )
        return value

    @property
    def covariate(self) -> str:
        return str(self.option)

    def parameters(self) -> tuple[str, ...]:
        return ("sigma_la_slope",)

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"sigma_la_slope": prior("halfnormal", sigma=scale.s)}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm

        k = ctx.covariates.index(self.covariate)
        x = ctx.X[:, k]
        within = x - group_means(x[:, None], ctx.la_idx, ctx.la_idx.max() + 1)[ctx.la_idx, 0]
        if np.allclose(within, 0.0):
            warnings.warn(
                f"{self.spec.source}: random_slope {self.covariate!r} does not vary within any LA "
                "over the fitted years, so la_slope is identified only through its prior "
                "(it is confounded with la_effect)",
                stacklevel=4,
            )
        sigma = prior_rv("sigma_la_slope", ctx.priors["sigma_la_slope"])
        z = pm.Normal("la_slope_z", 0.0, 1.0, dims="la")
        slope = pm.Deterministic("la_slope", sigma * z, dims="la")
        ctx.eta["la_slope"] = slope[ctx.tensors["la_idx"]] * ctx.tensors["X"][:, k]

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        slope = per_authority(post, "la_slope", "sigma_la_slope", self.name, rows, new)
        return {"la": slope * rows.X[:, post.covariates.index(self.covariate)][None, :]}

    def batch_sd(self, post: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        finite = post.draws("la_slope").std(axis=1, ddof=1)
        return {"la_slope": (finite, post.draws("sigma_la_slope"))}

    def expected_between_la_variance(self, post: Any) -> np.ndarray:
        """sigma_la_slope^2 mean_j xbar_j^2, xbar_j: authority j's mean of the covariate."""
        x = post.fitted_rows.X[:, post.covariates.index(self.covariate)]
        xbar = la_means_of(x, post.la_idx, len(post.la_codes))
        return post.draws("sigma_la_slope") ** 2 * float(np.mean(xbar**2))

    def describe(self) -> tuple[str | None, str | None]:
        return f"a random slope on {self.covariate} by authority", "its slope"
