"""The authority intercept: ``la_effect[j] ~ N(0, sigma_la)``, each authority's own level.

Hierarchical parameterisation (hierarchical centring): each authority's log-rate level
``la_theta ~ Normal(la_mean, sigma_la)`` with ``la_mean = intercept + region_effect[r] +
Xbar[la] . beta``; ``la_effect = la_theta - la_mean`` (deterministic). Two other terms change
how the level is sampled: an LA trend samples the level at the authority's mean fitted year
(``la_shift``), and the AR(1) LA-year term, which centres its own per-year levels on
``la_theta``, makes it non-centred (``la_mean + sigma_la * la_z``). Textbook parameterisation:
``la_effect = sigma_la * la_z``. A new authority draws N(0, sigma_la), once per draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term

#: order in which the per-authority parts of ``la_mean`` are added
LA_MEAN_ORDER = ("intercept", "region", "covariates")


class LaIntercept(Term):
    """Prior ``sigma_la ~ HalfNormal(s)``."""

    name = "la"
    own = True
    between_la = True
    order = 40

    def parameters(self) -> tuple[str, ...]:
        return ("sigma_la",)

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"sigma_la": prior("halfnormal", sigma=scale.s)}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm

        sigma = prior_rv("sigma_la", ctx.priors["sigma_la"])
        la_idx = ctx.tensors["la_idx"]
        if not ctx.hierarchical:
            z = pm.Normal("la_z", 0.0, 1.0, dims="la")
            effect = pm.Deterministic("la_effect", sigma * z, dims="la")
            ctx.eta["la"] = effect[la_idx]
            return
        parts = [ctx.la_mean[k] for k in LA_MEAN_ORDER if k in ctx.la_mean]
        la_mean = parts[0]
        for part in parts[1:]:
            la_mean = la_mean + part
        if ctx.la_level_noncentred:
            z = pm.Normal("la_z", 0.0, 1.0, dims="la")
            la_theta = la_mean + sigma * z
        elif ctx.la_shift:
            # sampled: the level at the authority's mean fitted year (a shift by another
            # parameter has unit Jacobian); for an authority with few fitted years level and
            # trend are then nearly uncorrelated, where la_theta itself sat on a narrow ridge
            shift = sum(ctx.la_shift[1:], ctx.la_shift[0])
            la_mid = pm.Normal("la_theta", mu=la_mean + shift, sigma=sigma, dims="la")
            la_theta = la_mid - shift
        else:
            la_theta = pm.Normal("la_theta", mu=la_mean, sigma=sigma, dims="la")
        pm.Deterministic("la_effect", la_theta - la_mean, dims="la")
        ctx.tensors["la_theta"] = la_theta
        ctx.eta["la"] = la_theta[la_idx]

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        return {"la": per_authority(post, "la_effect", "sigma_la", self.name, rows, new)}

    def batch_sd(self, post: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        finite = post.draws("la_effect").std(axis=1, ddof=1)
        return {"la": (finite, post.draws("sigma_la"))}

    def expected_between_la_variance(self, post: Any) -> np.ndarray:
        return post.draws("sigma_la") ** 2

    @property
    def intercept_for(self) -> str | None:
        return "authority"

    def describe(self) -> tuple[str | None, str | None]:
        return None, "the authority's own effect"


def per_authority(
    post: Any, variable: str, sigma: str, term: str, rows: Rows, new: NewLevels
) -> np.ndarray:
    """(draws, rows): a fitted authority's ``variable``; a new one's draw from N(0, sigma)."""
    values = post.draws(variable)
    out = np.empty((post.n_draws, len(rows)))
    positions = {code: j for j, code in enumerate(post.la_codes)}
    for code in dict.fromkeys(rows.la_code):
        cols = rows.la_code == code
        if code in positions:
            out[:, cols] = values[:, positions[code], None]
        else:
            scale = post.draws(sigma)
            out[:, cols] = new.once(term, code, lambda s=scale: new.rng.normal(0.0, s))[:, None]
    return out


def la_means_of(values: np.ndarray, la_idx: np.ndarray, n_la: int) -> np.ndarray:
    """Mean over each authority's fitted rows of a per-row array (n,) -> (authorities seen,)."""
    counts = np.bincount(la_idx, minlength=n_la)
    seen = counts > 0
    return np.bincount(la_idx, weights=values, minlength=n_la)[seen] / counts[seen]
