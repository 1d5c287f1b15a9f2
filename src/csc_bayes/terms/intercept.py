"""The global intercept: the log rate of an average authority-year at average covariates.

An ordinal family (cumulative logit) has no free intercept: its cutpoints are the intercepts,
and one more would not be identified, so ``intercept`` is the constant 0 there (still written,
so every fit has the names of the posterior contract).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term


class Intercept(Term):
    """``intercept ~ Normal(pooled log rate, 2.5 s)`` (data-scaled default).

    In the hierarchical parameterisation it is the mean of the LA levels (``la_mean``); in the
    textbook one it enters eta directly.
    """

    name = "intercept"
    order = 0

    @property
    def fixed_at_zero(self) -> bool:
        """True for an ordinal family, whose cutpoints take the intercept's place."""
        from csc_bayes.terms.family import ORDINAL_FAMILIES

        return self.spec.family in ORDINAL_FAMILIES

    def parameters(self) -> tuple[str, ...]:
        return () if self.fixed_at_zero else ("intercept",)

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        if self.fixed_at_zero:
            return {}
        return {"intercept": prior("normal", mu=scale.pooled, sigma=2.5 * scale.s)}

    def build(self, ctx: BuildContext) -> None:
        if self.fixed_at_zero:
            import pymc as pm
            import pytensor.tensor as pt

            intercept = pm.Deterministic("intercept", pt.constant(0.0))
        else:
            intercept = prior_rv("intercept", ctx.priors["intercept"])
        ctx.tensors["intercept"] = intercept
        if ctx.hierarchical:
            ctx.la_mean["intercept"] = intercept
        else:
            ctx.eta["intercept"] = intercept

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        draws = post.draws("intercept")
        return {"intercept": np.broadcast_to(draws[:, None], (len(draws), len(rows)))}
