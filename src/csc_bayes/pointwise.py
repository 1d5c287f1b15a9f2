"""Per fitted row and posterior draw: the log-likelihood and a replicated outcome.

Both come from the one linear predictor (:mod:`csc_bayes.linear_predictor`) and the family
(``terms/family.py``) in a few vectorised numpy operations, instead of recompiling the model
in PyMC after sampling (which took ~35% of a default fit's wall time)::

    log_likelihood[s, i] = log p(y_i | mu = exp(eta[s, i]), phi[s])
                           or, for a row censored to [lo_i, hi_i] (terms/censoring.py),
                           log P(lo_i <= y <= hi_i | mu, phi)
    y_rep[s, i] ~ NegativeBinomial(exp(eta[s, i]), phi[s])   (gamma-Poisson mixture)
                  or Poisson(exp(eta[s, i]))

and for an ordered category (cumulative logit, codes 1..K, cutpoints c[s])::

    log_likelihood[s, i] = log(logistic(c[s, y_i] - eta[s, i])
                               - logistic(c[s, y_i - 1] - eta[s, i]))
    y_rep[s, i] = 1 + #{k : u[s, i] > logistic(c[s, k] - eta[s, i])},  u ~ Uniform(0, 1)

(with c[s, 0] = -inf and c[s, K] = +inf).

They are the ``log_likelihood`` and ``posterior_predictive`` groups of a fit (``y`` on ``obs``,
the posterior contract); the log-likelihood equals PyMC's to rounding (tested). A censored row's
replicated outcome is a draw of the count itself (not restricted to its interval), as for
any other row: the data a replication would produce before suppression.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.posterior import reader
from csc_bayes.terms.family import ordinal_draw, ordinal_log_pmf

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit


def pointwise_groups(fit: Fit, *, seed: Any = 0) -> tuple[xr.Dataset, xr.Dataset]:
    """(log_likelihood, posterior_predictive) datasets of ``fit``'s fitted rows, each holding
    ``y`` with dims (chain, draw, obs); the replicated outcomes are drawn with ``seed``."""
    post = reader(fit)
    family = next(t for t in post.terms if t.name == "family")
    eta = linear_predictor(post).eta  # (draws, obs)
    if family.ordinal:
        cutpoints = family.cutpoints(post)
        loglik = ordinal_log_pmf(post.observed, eta, cutpoints)
        replicated = ordinal_draw(eta, cutpoints, np.random.default_rng(seed)).astype(np.int64)
    else:
        mu = np.exp(eta)
        phi = family.phi(post)
        phi = None if phi is None else phi[:, None]
        lower, upper = post.bounds
        loglik = family.log_density(post.observed, mu, phi, lower, upper)
        replicated = family.draw(mu, phi, np.random.default_rng(seed)).astype(np.int64)
    posterior = fit.idata["posterior"]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    coords = {
        "chain": posterior["chain"].values,
        "draw": posterior["draw"].values,
        "obs": fit.idata["observed_data"]["obs"].values,
    }

    def group(values: np.ndarray) -> xr.Dataset:
        shaped = values.reshape(chains, draws, -1)
        return xr.Dataset({"y": (("chain", "draw", "obs"), shaped)}, coords=coords)

    return group(loglik), group(replicated)
