"""Region intercepts: ``region_effect[r] ~ N(0, sigma_region)``, sum-to-zero over regions.

Without ``region`` in the spec's random effects the model still writes ``region_effect`` (all
zeros) and ``sigma_region`` (0), so every answer works unchanged. A region the fit has not seen
draws a new effect from N(0, sigma_region), once per draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term


class RegionIntercept(Term):
    """Prior ``sigma_region ~ HalfNormal(s)``; non-centred ``sigma_region * region_z``."""

    name = "region"
    between_la = True
    order = 20

    @property
    def present(self) -> bool:
        return "region" in self.spec.random_effects

    def parameters(self) -> tuple[str, ...]:
        return ("sigma_region",) if self.present else ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"sigma_region": prior("halfnormal", sigma=scale.s)} if self.present else {}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        if not self.present:  # exactly zero, so the posterior contract keeps every name
            pm.Deterministic("sigma_region", pt.constant(0.0))
            pm.Deterministic("region_effect", pt.zeros(len(ctx.regions)), dims="region")
            return
        sigma = prior_rv("sigma_region", ctx.priors["sigma_region"])
        if ctx.hierarchical:  # sum-to-zero removes the ridge with the intercept
            z = pm.ZeroSumNormal("region_z", sigma=1.0, dims="region")
        else:
            z = pm.Normal("region_z", 0.0, 1.0, dims="region")
        effect = pm.Deterministic("region_effect", sigma * z, dims="region")
        if ctx.hierarchical:
            ctx.la_mean["region"] = effect[ctx.la_region_idx]  # per LA
        else:
            ctx.eta["region"] = effect[ctx.tensors["region_idx"]]

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        effect = post.draws("region_effect")
        out = np.empty((post.n_draws, len(rows)))
        for region in np.unique(rows.region):
            cols = rows.region == region
            if region in post.regions:
                out[:, cols] = effect[:, post.regions.index(region), None]
            else:
                sigma = post.draws("sigma_region")
                drawn = new.once(self.name, region, lambda s=sigma: new.rng.normal(0.0, s))
                out[:, cols] = drawn[:, None]
        return {"region": out}

    def need_components(self, *, region_as_need: bool) -> set[str]:
        return {"region"} if region_as_need else set()

    def batch_sd(self, post: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        finite = post.draws("region_effect").std(axis=1, ddof=1)
        return {"region": (finite, post.draws("sigma_region"))}

    def expected_between_la_variance(self, post: Any) -> np.ndarray:
        return post.draws("sigma_region") ** 2

    @property
    def intercept_for(self) -> str | None:
        return "region" if self.present else None
