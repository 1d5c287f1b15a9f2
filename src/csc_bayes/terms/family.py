"""The outcome's distribution given the linear predictor: negative binomial or Poisson.

    y ~ NegativeBinomial(mu = exp(eta), alpha = phi)   (Var(y) = mu + mu^2 / phi)
    y ~ Poisson(mu = exp(eta))

The family owns ``phi`` (its prior ``Gamma(2, 0.02)``: mean 100, 90% interval about (18, 237)),
the likelihood, the pointwise log density, predictive draws (the negative binomial as a
gamma-Poisson mixture) and the observation-level variance that ``explain`` reports.

A suppressed count known only to lie in ``[lo, hi]`` (``terms/censoring.py``) contributes

    log P(lo <= y <= hi) = log(F(hi) - F(lo - 1)) = logsumexp_{k=lo..hi} log p(k | mu, phi)

(:func:`count_log_interval`); the model then holds the bounds as ``y_lower`` / ``y_upper``.
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

        mu = pt.exp(ctx.tensors["eta"])
        phi = prior_rv("phi", ctx.priors["phi"]) if self.negative_binomial else None
        bounds = ctx.tensors.get("y_bounds")
        if bounds is not None:  # some rows are interval-censored (terms/censoring.py)
            self._build_censored(mu, phi, *bounds)
            return
        y = ctx.data[self.spec.outcome].to_numpy(dtype=np.int64)
        if self.negative_binomial:
            pm.NegativeBinomial("y", mu=mu, alpha=phi, observed=y, dims="obs")
        else:
            pm.Poisson("y", mu=mu, observed=y, dims="obs")

    def _build_censored(self, mu: Any, phi: Any, lower: np.ndarray, upper: np.ndarray) -> None:
        """``y`` on ``obs`` with the interval likelihood at the censored rows.

        Its observed value at a censored row is a placeholder (the lower bound) that the
        density never reads; :func:`csc_bayes.model.attach_coords` writes NaN there in the
        fit's ``observed_data``.
        """
        import pymc as pm
        import pytensor.tensor as pt

        censored = np.flatnonzero(lower != upper)
        width = int((upper[censored] - lower[censored]).max()) + 1
        ks = lower[censored][:, None] + np.arange(width)[None, :]  # (n_censored, width)
        inside = ks <= upper[censored][:, None]
        negative_binomial = self.negative_binomial

        def dist(mu_: Any, *rest: Any) -> Any:
            if negative_binomial:
                return pm.NegativeBinomial.dist(mu=mu_, alpha=rest[0])
            return pm.Poisson.dist(mu=mu_)

        def logp(value: Any, mu_: Any, *rest: Any) -> Any:
            exact = pm.logp(dist(mu_, *rest), value)
            terms = pm.logp(dist(mu_[censored][:, None], *rest), ks)
            terms = pt.switch(inside, terms, -np.inf)
            return pt.set_subtensor(exact[censored], pt.logsumexp(terms, axis=1))

        def random(mu_: Any, *rest: Any, rng: Any = None, size: Any = None) -> np.ndarray:
            """The count itself (prior predictive), before any suppression."""
            if negative_binomial:
                return rng.poisson(rng.gamma(rest[0], mu_ / rest[0], size=size))
            return rng.poisson(mu_, size=size)

        params = (mu, phi) if negative_binomial else (mu,)
        pm.CustomDist(
            "y", *params, logp=logp, random=random, observed=lower, dtype="int64", dims="obs"
        )

    # ------------------------------------------------------------------------- posterior
    def phi(self, post: Any) -> np.ndarray | None:
        """Draws of phi (None for Poisson)."""
        return post.draws("phi") if self.negative_binomial else None

    def log_pmf(self, y: np.ndarray, mu: np.ndarray, phi: np.ndarray | None) -> np.ndarray:
        """log NB(y | mu, phi), or log Poisson(y | mu) when phi is None (broadcasting)."""
        return count_log_pmf(y, mu, phi)

    def log_density(
        self,
        y: np.ndarray,
        mu: np.ndarray,
        phi: np.ndarray | None,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> np.ndarray:
        """log p(y | mu, phi) per element; where ``y`` is NaN and ``lower`` / ``upper`` are set,
        the interval probability log P(lower <= y <= upper) (:func:`count_log_interval`).

        ``y``, ``lower``, ``upper`` index the last axis of ``mu`` (rows); ``phi`` broadcasts
        against ``mu``. A row with neither a count nor bounds gives NaN.
        """
        y = np.asarray(y, dtype=float)
        censored = np.isnan(y)
        if lower is not None and upper is not None:
            censored &= ~np.isnan(np.asarray(lower, dtype=float))
        else:
            censored &= False
        out = count_log_pmf(np.where(censored, 0.0, y), mu, phi)
        if censored.any():
            cols = np.flatnonzero(censored)
            mu_c = np.take(mu, cols, axis=-1)
            phi_c = None if phi is None else np.broadcast_to(phi, np.shape(mu))[..., cols]
            out = np.array(out, dtype=float, copy=True)
            lo = np.asarray(lower, dtype=float)[cols]
            hi = np.asarray(upper, dtype=float)[cols]
            out[..., cols] = count_log_interval(lo, hi, mu_c, phi_c)
        return out

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


def _interval_terms(
    lower: np.ndarray, upper: np.ndarray, mu: np.ndarray, phi: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(k, log p(k | mu, phi)) for k = lower..upper of each row (last axis), -inf past upper."""
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    width = int((upper - lower).max()) + 1 if lower.size else 1
    ks = lower[:, None] + np.arange(width)[None, :]  # (rows, width)
    inside = ks <= upper[:, None]
    mu_ = np.asarray(mu, dtype=float)[..., None]
    phi_ = None if phi is None else np.asarray(phi, dtype=float)[..., None]
    terms = count_log_pmf(np.where(inside, ks, 0.0), mu_, phi_)
    return ks, np.where(inside, terms, -np.inf)


def count_log_interval(
    lower: np.ndarray, upper: np.ndarray, mu: np.ndarray, phi: np.ndarray | None
) -> np.ndarray:
    """log P(lower <= y <= upper | mu, phi) = log sum_{k=lower}^{upper} p(k | mu, phi), with p
    the negative binomial (Poisson when phi is None) of :func:`count_log_pmf`.

    ``lower`` and ``upper`` (whole numbers, lower <= upper) index the last axis of ``mu``;
    ``phi`` broadcasts against ``mu``. Equal to log(F(upper) - F(lower - 1)) for the CDF F.
    """
    _, terms = _interval_terms(lower, upper, mu, phi)
    return special.logsumexp(terms, axis=-1)


def count_interval_mean(
    lower: np.ndarray, upper: np.ndarray, mu: np.ndarray, phi: np.ndarray | None
) -> np.ndarray:
    """E[y | lower <= y <= upper, mu, phi]: the mean of the count's law restricted to its
    interval, sum_k k p(k) / sum_k p(k) over k = lower..upper (shapes as
    :func:`count_log_interval`)."""
    ks, terms = _interval_terms(lower, upper, mu, phi)
    weights = np.exp(terms - special.logsumexp(terms, axis=-1, keepdims=True))
    return (weights * ks).sum(axis=-1)
