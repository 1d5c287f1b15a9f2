"""The log-likelihood and replicated outcomes that a fit stores come from the one linear
predictor; the log-likelihood equals PyMC's for every family and term, and the replicated
counts have the model's mean and variance."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from csc_bayes.model import build_model
from csc_bayes.pointwise import pointwise_groups
from csc_bayes.spec import find_spec
from equivalence import prior_fit, small_panel


@pytest.fixture(scope="module")
def panel():
    return small_panel()


@pytest.mark.parametrize("name", ["cpp_need_spending", "cpp_need_ar", "cla_need_trend"])
def test_log_likelihood_equals_pymcs(name, panel):
    spec = find_spec(name)
    fit = prior_fit(spec, panel, draws=20)
    ours, _ = pointwise_groups(fit, seed=0)
    model = build_model(spec, panel).model
    theirs = pm.compute_log_likelihood(
        fit.idata, model=model, extend_inferencedata=False, progressbar=False
    )
    np.testing.assert_allclose(ours["y"].values, theirs["y"].values, rtol=1e-9, atol=1e-9)
    assert ours["y"].dims == ("chain", "draw", "obs")


def test_replicated_counts_have_the_models_mean_and_variance(panel):
    """Per draw, E[y_rep] = mu and Var[y_rep] = mu + mu^2 / phi (NB): checked over rows with
    a z-score of the summed replicated counts."""
    from csc_bayes.linear_predictor import linear_predictor
    from csc_bayes.posterior import Posterior

    fit = prior_fit(find_spec("cpp_need"), panel, draws=200)
    _, replicated = pointwise_groups(fit, seed=1)
    post = Posterior.of(fit)
    mu = np.exp(linear_predictor(post).eta)
    phi = post.draws("phi")[:, None]
    y = replicated["y"].values.reshape(mu.shape)
    z = (y - mu).sum(axis=1) / np.sqrt((mu + mu**2 / phi).sum(axis=1))
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2
