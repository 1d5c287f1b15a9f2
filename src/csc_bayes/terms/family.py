"""The outcome's distribution given the linear predictor: negative binomial or Poisson.

    y ~ NegativeBinomial(mu = exp(eta), alpha = phi)   (Var(y) = mu + mu^2 / phi)
    y ~ Poisson(mu = exp(eta))

The family owns ``phi`` (its prior ``Gamma(2, 0.02)``: mean 100, 90% interval about (18, 237)),
the likelihood, the pointwise log density, predictive draws (the negative binomial as a
gamma-Poisson mixture) and the observation-level variance that ``explain`` reports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, Term

FAMILIES = ("negative_binomial", "poisson")
#: default phi prior: Gamma(2, 0.02), mean 100, 90% interval about (18, 237)
PHI_PRIOR = {"alpha": 2.0, "beta": 0.02}


class Family(Term):
    """The likelihood of the outcome (``spec.family``)."""

    name = "family"
    order = 99

    @property
    def negative_binomial(self) -> bool:
        return self.spec.family == "negative_binomial"

    def parameters(self) -> tuple[str, ...]:
        return ("phi",) if self.negative_binomial else ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"phi": prior("gamma", **PHI_PRIOR)} if self.negative_binomial else {}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        y = ctx.data[self.spec.outcome].to_numpy(dtype=np.int64)
        mu = pt.exp(ctx.tensors["eta"])
        if self.negative_binomial:
            phi = prior_rv("phi", ctx.priors["phi"])
            pm.NegativeBinomial("y", mu=mu, alpha=phi, observed=y, dims="obs")
        else:
            pm.Poisson("y", mu=mu, observed=y, dims="obs")

    # ------------------------------------------------------------------------- posterior
    def phi(self, post: Any) -> np.ndarray | None:
        """Draws of phi (None for Poisson)."""
        return post.draws("phi") if self.negative_binomial else None

    def log_pmf(self, y: np.ndarray, mu: np.ndarray, phi: np.ndarray | None) -> np.ndarray:
        """log NB(y | mu, phi), or log Poisson(y | mu) when phi is None (broadcasting)."""
        return count_log_pmf(y, mu, phi)

    def draw(self, mu: np.ndarray, phi: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
        """Predictive counts for means ``mu`` (phi broadcast against mu)."""
        if phi is None:
            return rng.poisson(mu)
        return rng.poisson(rng.gamma(phi, mu / phi))

    def variance(self, mu: np.ndarray, phi: np.ndarray | None) -> np.ndarray:
        """Var(y | mu): mu + mu^2 / phi, or mu."""
        return mu if phi is None else mu + mu**2 / phi

    def residual_variances(self, post: Any, eta: np.ndarray) -> dict[str, np.ndarray]:
        """Observation-level variance on the latent log scale, per draw.

        ``overdispersion`` (negative binomial only): trigamma(phi), the variance of log G for the
        gamma mixing variable G ~ Gamma(phi, phi). ``poisson_noise``: the lognormal
        approximation of Poisson sampling variance, mean over fitted rows of log(1 + 1/mu_i)
        with mu_i = exp(eta_i) (Nakagawa, Johnson & Schielzeth 2017).
        """
        out: dict[str, np.ndarray] = {}
        if self.negative_binomial:
            out["overdispersion"] = special.polygamma(1, post.draws("phi"))
        out["poisson_noise"] = np.log1p(np.exp(-eta)).mean(axis=1)
        return out

    def describe(self) -> tuple[str | None, str | None]:
        return ("negative binomial" if self.negative_binomial else "Poisson"), None


def count_log_pmf(y: np.ndarray, mu: np.ndarray, phi: np.ndarray | None) -> np.ndarray:
    """log NB(y | mu, phi) (Var = mu + mu^2/phi), or log Poisson(y | mu) when phi is None."""
    if phi is None:
        return y * np.log(mu) - mu - special.gammaln(y + 1)
    return (
        special.gammaln(y + phi)
        - special.gammaln(phi)
        - special.gammaln(y + 1)
        + phi * np.log(phi / (mu + phi))
        + y * np.log(mu / (mu + phi))
    )
