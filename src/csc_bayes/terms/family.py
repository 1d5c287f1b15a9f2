"""The outcome's distribution given the linear predictor: negative binomial, Poisson, or
cumulative logit (ordered categories).

    y ~ NegativeBinomial(mu = exp(eta), alpha = phi)   (Var(y) = mu + mu^2 / phi)
    y ~ Poisson(mu = exp(eta))
    P(y <= k) = logistic(c_k - eta),  k = 1..K-1,  c_1 < ... < c_(K-1)   (cumulative logit)

The family owns ``phi`` (its prior ``Gamma(2, 0.02)``: mean 100, 90% interval about (18, 237)),
the likelihood, the pointwise log density, predictive draws (the negative binomial as a
gamma-Poisson mixture) and the observation-level variance that ``explain`` reports.

A suppressed count known only to lie in ``[lo, hi]`` (``terms/censoring.py``) contributes

    log P(lo <= y <= hi) = log(F(hi) - F(lo - 1)) = logsumexp_{k=lo..hi} log p(k | mu, phi)

(:func:`count_log_interval`); the model then holds the bounds as ``y_lower`` / ``y_upper``.

The cumulative-logit (proportional-odds) family (McCullagh 1980; Agresti 2010; Bürkner & Vuorre
2019) is for an ordered category coded 1..K (``ilacs_overall``: 1 Outstanding .. 4 Inadequate):
a higher eta moves probability towards the higher categories, so a coefficient is a log
cumulative odds ratio, the same for every split of the scale. It owns the ordered ``cutpoints``
(dims ``cutpoint``, named ``"1|2"``, ``"2|3"``, ...; prior: independent ``Normal(0, 2.5)`` on the
logit scale restricted to c_1 < ... < c_(K-1), i.e. the order statistics of K-1 such draws)
and has no exposure and no free intercept (the cutpoints are the intercepts: the model fixes
``intercept`` at 0). K is the number of levels the data layer gives the outcome column
(:data:`csc_bayes.data.judgements.ORDERED_COLUMNS`), else the largest code fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from csc_bayes.data.judgements import outcome_categories
from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, Term

#: the families of a count (with an exposure) and of an ordered category
COUNT_FAMILIES = ("negative_binomial", "poisson")
ORDINAL_FAMILIES = ("cumulative_logit",)
FAMILIES = (*COUNT_FAMILIES, *ORDINAL_FAMILIES)
#: default phi prior: Gamma(2, 0.02), mean 100, 90% interval about (18, 237)
PHI_PRIOR = {"alpha": 2.0, "beta": 0.02}
#: default cutpoint prior (logit scale), before the ordering c_1 < ... < c_(K-1)
CUTPOINT_PRIOR = {"mu": 0.0, "sigma": 2.5}


def cutpoint_names(k: int) -> list[str]:
    """The ``cutpoint`` coordinate for K categories: ``["1|2", "2|3", ..., "K-1|K"]``."""
    return [f"{j}|{j + 1}" for j in range(1, k)]


class Family(Term):
    """The likelihood of the outcome (``spec.family``)."""

    name = "family"
    order = 99

    @property
    def negative_binomial(self) -> bool:
        return self.spec.family == "negative_binomial"

    @property
    def ordinal(self) -> bool:
        return self.spec.family in ORDINAL_FAMILIES

    def parameters(self) -> tuple[str, ...]:
        if self.ordinal:
            return ("cutpoints",)
        return ("phi",) if self.negative_binomial else ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        if self.ordinal:
            return {"cutpoints": prior("normal", **CUTPOINT_PRIOR)}
        return {"phi": prior("gamma", **PHI_PRIOR)} if self.negative_binomial else {}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        if self.ordinal:
            self._build_ordinal(ctx, ctx.data[self.spec.outcome].to_numpy(dtype=np.int64))
            return
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

    def _build_ordinal(self, ctx: BuildContext, y: np.ndarray) -> None:
        """Ordered cutpoints and ``y ~ cumulative logit(eta, cutpoints)`` on codes 1..K.

        The likelihood is PyMC's ``OrderedLogistic`` of ``y - 1`` (it counts from 0), so that
        ``observed_data`` keeps the codes as published."""
        import pymc as pm
        from pymc.distributions.transforms import ordered

        k = len(outcome_categories(self.spec.outcome, y))
        model = pm.modelcontext(None)
        model.add_coord("cutpoint", cutpoint_names(k))
        cutpoints = prior_rv(
            "cutpoints",
            ctx.priors["cutpoints"],
            transform=ordered,
            initval=np.linspace(-1.5, 1.5, k - 1),
            dims="cutpoint",
        )

        def logp(value: Any, eta: Any, cut: Any) -> Any:
            return pm.logp(pm.OrderedLogistic.dist(eta=eta, cutpoints=cut), value - 1)

        def random(eta: Any, cut: Any, rng: Any = None, size: Any = None) -> np.ndarray:
            eta = np.asarray(eta, dtype=float)
            eta = np.broadcast_to(eta, size) if size is not None else eta
            cut = np.broadcast_to(cut, (*eta.shape, cut.shape[-1]))
            cumulative = special.expit(cut - eta[..., None])
            return 1 + (rng.uniform(size=eta.shape)[..., None] > cumulative).sum(axis=-1)

        pm.CustomDist(
            "y",
            ctx.tensors["eta"],
            cutpoints,
            logp=logp,
            random=random,
            dtype="int64",
            signature="(),(k)->()",
            observed=y,
            dims="obs",
        )

    # ------------------------------------------------------------------------- posterior
    def cutpoints(self, post: Any) -> np.ndarray:
        """Draws of the cutpoints, (draws, K - 1) (ordinal family only)."""
        return post.draws("cutpoints")

    def category_probabilities(self, eta: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
        """P(y = k | eta) for k = 1..K, shape (*eta.shape, K); ``cutpoints`` (draws, K - 1)
        with eta (draws, rows)::

            P(y <= k) = logistic(c_k - eta),  P(y = k) = P(y <= k) - P(y <= k - 1)
        """
        return ordinal_probabilities(eta, cutpoints)

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
        if self.ordinal:
            return "cumulative logit (proportional odds)", None
        return ("negative binomial" if self.negative_binomial else "Poisson"), None


def ordinal_probabilities(eta: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
    """P(y = k) for k = 1..K under the cumulative logit: eta (draws, rows), cutpoints
    (draws, K - 1) -> (draws, rows, K). ``P(y <= k) = logistic(c_k - eta)``."""
    cumulative = special.expit(cutpoints[:, None, :] - eta[:, :, None])
    shape = (*cumulative.shape[:-1], 1)
    full = np.concatenate([np.zeros(shape), cumulative, np.ones(shape)], axis=-1)
    return np.diff(full, axis=-1)


def ordinal_log_pmf(y: np.ndarray, eta: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
    """log P(y | eta, cutpoints) for codes y in 1..K: y (rows,), eta (draws, rows), cutpoints
    (draws, K - 1) -> (draws, rows)."""
    p = ordinal_probabilities(eta, cutpoints)
    codes = np.asarray(y, dtype=np.int64) - 1
    picked = np.take_along_axis(p, np.broadcast_to(codes, eta.shape)[:, :, None], axis=-1)
    return np.log(picked[:, :, 0])


def ordinal_draw(eta: np.ndarray, cutpoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One predictive code (1..K) per draw and row: the number of cumulative probabilities
    below a uniform, plus one."""
    cumulative = special.expit(cutpoints[:, None, :] - eta[:, :, None])
    u = rng.uniform(size=eta.shape)
    return 1 + (u[:, :, None] > cumulative).sum(axis=-1)


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
