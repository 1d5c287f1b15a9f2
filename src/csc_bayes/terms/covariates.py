"""Fixed effects of the covariates, grouped into named components within blocks.

``beta[k]`` is the effect of one SD of covariate k (covariates are standardised over the fitted
rows, ``X = (x - mean) / sd``); ``beta_per_unit = beta / sd`` per unit as published. Each
component (e.g. ``deprivation``) is one term of the linear predictor, ``X[:, c] . beta[c]``
over its covariates c, and one row of ``explain``'s variance shares. Components of the ``need``
block make up expected need; the others (``spending``) are held at their average there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term


def group_means(X: np.ndarray, idx: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of the rows of X within each group: ``Xbar[g] = mean(X[idx == g])``."""
    sums = np.zeros((n_groups, X.shape[1]))
    np.add.at(sums, idx, X)
    counts = np.bincount(idx, minlength=n_groups)[:, None]
    return sums / counts


class Covariates(Term):
    """All covariate components of a spec (``spec.groups``), in spec order.

    Prior: ``beta ~ Normal(0, s)`` per SD of a covariate; ``beta.<cov>`` overrides one.
    Hierarchical parameterisation: the authority's mean ``Xbar[la] . beta`` goes into the LA
    level's mean and eta sees the within-authority part ``(X - Xbar[la]) . beta``.
    """

    name = "covariates"
    order = 10

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        return self.spec.groups

    def parameters(self) -> tuple[str, ...]:
        covs = self.spec.covariates
        return ("beta", *(f"beta.{c}" for c in covs)) if covs else ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        beta = prior("normal", mu=0.0, sigma=scale.s)
        return {name: beta for name in self.parameters()}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        covs = ctx.covariates
        if not covs:  # empty, so that the posterior has the same names
            beta = pm.Deterministic("beta", pt.zeros((0,)), dims="covariate")
        else:
            per_cov = [ctx.priors[f"beta.{c}"] for c in covs]
            if len({p.dist for p in per_cov}) == 1:  # one vector variable
                params = {k: np.array([p.kwargs[k] for p in per_cov]) for k in per_cov[0].kwargs}
                beta = prior_rv("beta", Prior(per_cov[0].dist, ()), **params, dims="covariate")
            else:
                parts = [prior_rv(f"beta_{c}", p) for c, p in zip(covs, per_cov, strict=True)]
                beta = pm.Deterministic("beta", pt.stack(parts), dims="covariate")
        pm.Deterministic(
            "beta_per_unit", beta / ctx.tensors["covariate_sd_values"], dims="covariate"
        )
        ctx.tensors["beta"] = beta
        X = ctx.tensors["X"]
        if ctx.hierarchical:
            xbar = pt.constant(group_means(ctx.X, ctx.la_idx, len(ctx.la_codes)))
            ctx.la_mean["covariates"] = pt.dot(xbar, beta)
            ctx.eta["covariates"] = pt.dot(X - xbar[ctx.tensors["la_idx"]], beta)
        else:
            ctx.eta["covariates"] = pt.dot(X, beta)

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        covariates = post.covariates
        if not covariates:
            return {}
        beta = post.draws("beta")
        out = {}
        for group, members in self.groups.items():
            cols = [covariates.index(c) for c in members if c in covariates]
            if cols:
                out[group] = beta[:, cols] @ rows.X[:, cols].T
        return out

    def need_components(self, *, region_as_need: bool) -> set[str]:
        return set(self.spec.need_groups)
