"""The AR(1) LA-year term with Student-t changes (``la_year = "ar1_t"``, terms/la_year_t.py):
one new module, and the spec, formula, model, answers and forecasts take it as they take the
Gaussian term."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytensor.tensor as pt
import pytest
from scipy import stats

import csc_bayes
from csc_bayes.errors import SpecError
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.posterior import Posterior
from csc_bayes.spec import ModelSpec, find_spec
from csc_bayes.terms import NewLevels
from csc_bayes.terms.la_year_t import (
    FORECAST_Z_MAX,
    ar1_t_logp,
    bounded_t,
    simulate_ar1_t,
)
from test_la_year import FIRST, LAST, _ar1_panel, rows_at


def test_logp_is_the_markov_factorisation_of_scaled_t_changes():
    years = np.array([2016.0, 2017.0, 2019.0, 2020.0])  # a gap: lag 2 into 2019
    sigma, rho, nu = 0.3, 0.7, 5.0
    x = np.random.default_rng(0).normal(0, 0.3, (3, 4))
    as64 = [pt.constant(v, dtype="float64") for v in (sigma, rho, nu)]
    ours = ar1_t_logp(pt.as_tensor(x), *as64, years).eval()
    c = np.sqrt((nu - 2) / nu)
    expected = stats.t.logpdf(x[:, 0], nu, scale=sigma * c)
    for t in range(1, 4):
        d = years[t] - years[t - 1]
        step = sigma * np.sqrt(1 - rho ** (2 * d)) * c
        expected = expected + stats.t.logpdf(x[:, t], nu, loc=rho**d * x[:, t - 1], scale=step)
    np.testing.assert_allclose(ours, expected, rtol=1e-10)


def test_paths_have_the_gaussian_terms_covariance_and_heavier_tails():
    years = np.array([2016.0, 2017.0, 2019.0])
    paths = simulate_ar1_t(0.4, 0.7, 4.5, years, (200_000, 3), np.random.default_rng(1))
    model = 0.4**2 * 0.7 ** np.abs(np.subtract.outer(years, years))
    np.testing.assert_allclose(np.cov(paths.T), model, atol=0.006)
    change = paths[:, 1] - 0.7 * paths[:, 0]
    assert stats.kurtosis(change) > 1.0  # a Gaussian change has excess kurtosis 0


def test_a_forecast_change_is_the_t_within_its_bound_and_never_beyond():
    # nu near 2: the unbounded t puts draws far beyond 10 SDs (a count forecast with no mean)
    nu = np.full(200_000, 2.2)
    scale = np.sqrt((nu - 2.0) / nu)
    free = np.random.default_rng(5).standard_t(nu)
    assert (np.abs(scale * free) > FORECAST_Z_MAX).sum() > 20
    bounded = bounded_t(nu, np.random.default_rng(5))
    assert np.abs(scale * bounded).max() <= FORECAST_Z_MAX
    inside = np.abs(scale * free) <= FORECAST_Z_MAX
    np.testing.assert_array_equal(bounded[inside], free[inside])  # only those beyond are redrawn
    # a typical nu: the same draws as the unbounded t, and the shape of nu is kept
    nu = np.full(1000, 6.0)
    same = np.random.default_rng(2).standard_t(nu)
    np.testing.assert_array_equal(bounded_t(nu, np.random.default_rng(2)), same)
    assert np.shape(bounded_t(np.float64(5.0), np.random.default_rng(0))) == ()


def test_spec_formula_and_priors():
    spec = find_spec("cin_need_ar").with_options(la_year="ar1_t")
    assert spec.la_year == "ar1_t" and "ar1_t(year | la)" in spec.formula
    assert ModelSpec.from_formula(spec.formula, family="poisson").la_year == "ar1_t"
    assert spec.parameters[-1] == "nu_la_year"
    assert spec.null_spec().la_year == "ar1_t"
    again = spec.with_priors({"nu_la_year": {"alpha": 4.0}})
    assert again.priors["nu_la_year"].kwargs == {"alpha": 4.0}
    with pytest.raises(SpecError, match=r"expected one of \['ar1', 'ar1_t', 'ar1_t_sd_trend'\]"):
        find_spec("cin_need_ar").with_options(la_year="ar2")


@pytest.fixture(scope="module")
def t_fit():
    panel, truth = _ar1_panel()
    spec = find_spec("cla_need_ar").with_options(la_year="ar1_t")
    spec = dataclasses.replace(spec, name="cla_ar_t_test", years=(FIRST, LAST))
    spec = spec.with_sampler(draws=200, tune=200, chains=2)
    return panel, truth, csc_bayes.fit(spec, data=panel, out=None, progress=False)


def test_fit_answers_and_forecast_steps(t_fit):
    panel, truth, fit = t_fit
    post = Posterior.of(fit)
    assert np.isfinite(post.draws("nu_la_year")).all() and (post.draws("nu_la_year") > 2).all()
    assert "la_level" in fit.idata["posterior"].attrs["csc_bayes_not_gated"]
    rows = csc_bayes.explain_variance(fit).to_frame().set_index(["measure", "component"])
    assert ("share", "la_year") in rows.index
    assert len(csc_bayes.excess(fit)) == panel["la_code"].nunique()
    # a forecast step is the AR(1) decay plus a unit-variance t change, per draw
    code = str(truth.index[0])
    lp = linear_predictor(fit, rows_at(fit, [(code, LAST + 1)]), new=NewLevels(0))
    rho, sigma = post.draws("rho_la_year"), post.draws("sigma_la_year")
    last = post.draws("la_year")[:, post.la_codes.index(code), -1]
    change = (lp.components["la_year"][:, 0] - rho * last) / (sigma * np.sqrt(1 - rho**2))
    assert abs(np.median(change)) < 0.2 and 0.8 < np.std(change) < 1.3
    pred = csc_bayes.predict(fit, authority=code, year=LAST + 1)
    assert pred["kind"].tolist() == ["forecast"] and pred["predicted_median"].iloc[0] > 0
    from csc_bayes.report import methods_html

    assert "Student-t" in methods_html(fit.spec)
