"""The AR(1) LA-year term (``la_year = "ar1"``, with random-walk year effects as in the shipped
``*_need_ar`` specs): recovered on a panel whose authorities drift as an AR(1); every answer
includes it; a forecast decays each authority's latest deviation at rate rho and starts from the
last year's common level; a new authority in cross-validation gets a new AR(1) path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import csc_bayes
from csc_bayes.compare import heldout_lpd
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.posterior import Posterior
from csc_bayes.predict import predict_draws
from csc_bayes.simulate import simulate_panel
from csc_bayes.terms import NewLevels, Rows
from csc_bayes.terms.la_year import ar1_conditional
from csc_bayes.terms.year import walk_conditional
from csc_bayes.variance import superpopulation_between_la_variance

FIRST, LAST = 2014, 2023
RHO, SIGMA = 0.8, 0.3


def draws(fit, name):
    return Posterior.of(fit).draws(name)


def rows_at(fit, pairs):
    """Rows for (la_code, year) pairs (covariates at their mean, unit exposure)."""
    post = Posterior.of(fit)
    codes = [c for c, _ in pairs]
    region = post.regions[0]
    return Rows(
        la_code=np.array(codes),
        region=np.array([region] * len(pairs)),
        year=np.array([y for _, y in pairs]),
        X=np.zeros((len(pairs), len(post.covariates))),
        log_exposure=np.zeros(len(pairs)),
    )


def _ar1_panel() -> tuple[pd.DataFrame, pd.DataFrame]:
    """26 authorities, 2014-2024; log rate = LA level + AR(1) path (rho 0.8, marginal SD 0.3);
    Poisson counts. Returns the panel and the true AR path (la_code x year)."""
    panel = simulate_panel(seed=5, first_year=FIRST, last_year=LAST + 1, forecast_year=False).panel
    codes = sorted(panel["la_code"].astype(str).unique())[::6][:26]  # across regions
    panel = panel[panel["la_code"].astype(str).isin(codes)].copy()
    rng = np.random.default_rng(7)
    years = np.arange(FIRST, LAST + 2)
    path = np.empty((len(codes), len(years)))
    path[:, 0] = rng.normal(0.0, SIGMA, len(codes))
    for t in range(1, len(years)):
        innovation = rng.normal(0.0, SIGMA * np.sqrt(1 - RHO**2), len(codes))
        path[:, t] = RHO * path[:, t - 1] + innovation
    truth = pd.DataFrame(path, index=codes, columns=years)
    level = pd.Series(rng.normal(0.0, 0.3, len(codes)), index=codes)
    code = panel["la_code"].astype(str)
    ar = truth.stack().reindex(list(zip(code, panel["year"], strict=True))).to_numpy()
    log_rate = np.log(60 / 10_000) + code.map(level).to_numpy(float) + ar
    panel["cla"] = pd.array(
        np.random.default_rng(8).poisson(panel["population"].to_numpy(float) * np.exp(log_rate)),
        dtype="Int64",
    )
    panel["cla_missing"] = None
    return panel.reset_index(drop=True), truth


@pytest.fixture(scope="module")
def ar_case():
    panel, truth = _ar1_panel()
    spec = csc_bayes.find_spec("cla_need_ar").with_sampler(draws=200, tune=200, chains=2)
    spec = dataclasses.replace(spec, name="cla_ar_test", years=(FIRST, LAST))
    assert spec.la_year == "ar1" and "ar1(year | la)" in spec.formula
    fit = csc_bayes.fit(spec, data=panel, out=None, progress=False)
    return panel, truth, fit


def test_ar1_term_is_recovered_and_in_every_answer(ar_case):
    _panel, truth, fit = ar_case
    post = fit.idata["posterior"]
    rho = float(post["rho_la_year"].median())
    sigma = float(post["sigma_la_year"].median())
    assert 0.55 < rho < 0.95, rho
    assert 0.18 < sigma < 0.5, sigma
    # the fitted paths track the true ones (up to each LA's level, which la_effect carries)
    fitted = post["la_year"].median(("chain", "draw")).to_pandas()
    true = truth.loc[fitted.index, fitted.columns]
    within = lambda df: (df.T - df.mean(axis=1)).T.to_numpy().ravel()  # noqa: E731
    assert np.corrcoef(within(fitted), within(true))[0, 1] > 0.9

    result = csc_bayes.explain_variance(fit)
    rows = result.to_frame().set_index(["measure", "component"])
    for measure in ("share", "finite_sd", "superpopulation_sd"):
        assert (measure, "la_year") in rows.index
    np.testing.assert_allclose(result.shares.sum("component"), 1.0)
    # excess: expected need leaves the LA's own AR deviation out, so within one authority the
    # log excess ratio moves with its AR path
    table = csc_bayes.excess(fit, year="all").set_index(["la_code", "year"])
    code = truth.index[0]
    log_ratio = np.log(table.loc[code, "excess_ratio_median"])
    assert np.corrcoef(log_ratio, truth.loc[code, log_ratio.index])[0, 1] > 0.8


def test_forecast_decays_the_latest_deviation_at_rate_rho(ar_case):
    panel, _truth, fit = ar_case
    post = Posterior.of(fit)
    rho, sigma = draws(fit, "rho_la_year"), draws(fit, "sigma_la_year")
    for h in (1, 3):
        weights, sd = ar1_conditional(post, LAST + h, tuple(post.years))
        expected = np.zeros_like(weights)
        expected[:, -1] = rho**h  # Markov: only the last fitted year matters ahead of the data
        np.testing.assert_allclose(weights, expected, atol=1e-8)
        np.testing.assert_allclose(sd, sigma * np.sqrt(1 - rho ** (2 * h)), rtol=1e-8)

    # random-walk year effects: the next years start from the last fitted year's effect
    assert fit.spec.year_effect == "rw1"
    year_effect, sigma_year = draws(fit, "year_effect"), draws(fit, "sigma_year")
    known = dict(zip(post.years, year_effect.T, strict=True))
    mean, sd = walk_conditional(LAST + 2, known, sigma_year)
    np.testing.assert_allclose(mean, year_effect[:, -1])
    np.testing.assert_allclose(sd, sigma_year * np.sqrt(2))
    # pretend LAST - 1 was a gap in the fitted years: the Brownian bridge between its neighbours
    del known[LAST - 1]
    mean, sd = walk_conditional(LAST - 1, known, sigma_year)
    np.testing.assert_allclose(mean, (year_effect[:, -3] + year_effect[:, -1]) / 2)
    np.testing.assert_allclose(sd, sigma_year * np.sqrt(0.5))

    # the forecast of the next year beats the same model without the AR term (known truth)
    pred = predict_draws(fit, authority="all", year=LAST + 1, seed=1)
    assert set(pred.rows["kind"]) == {"forecast"}
    plain_spec = dataclasses.replace(
        fit.spec.with_options(la_year=None, year_effect="iid"), name="cla_plain_test"
    )
    plain = csc_bayes.fit(plain_spec, data=panel, out=None, progress=False)
    plain_pred = predict_draws(plain, authority="all", year=LAST + 1, seed=1)
    observed = (panel[panel["year"] == LAST + 1].set_index("la_code")["cla"].astype(float)).loc[
        pred.rows["la_code"]
    ]
    error_ar = np.abs(np.median(pred.count, axis=0) - observed.to_numpy()).mean()
    error_plain = np.abs(np.median(plain_pred.count, axis=0) - observed.to_numpy()).mean()
    assert error_ar < 0.8 * error_plain, (error_ar, error_plain)


def test_several_unfitted_years_are_drawn_jointly(ar_case):
    """Each unfitted year conditions on the years already drawn: the step between two forecast
    years has the model's one-step law (drawn independently, its SD would be ~1.6 and ~1.7
    times too large), in either order, for fitted and new authorities and the year effects."""
    _panel, truth, fit = ar_case
    rho, sigma = draws(fit, "rho_la_year"), draws(fit, "sigma_la_year")
    step_sd = sigma * np.sqrt(1 - rho**2)

    def standard(values):
        return float(np.mean(values)), float(np.std(values))

    code = str(truth.index[0])
    # asked for in reverse order: the evaluation draws unfitted years earliest first
    pairs = [(code, LAST + 2), (code, LAST + 1), ("E99999999", LAST + 2), ("E99999999", LAST + 1)]
    lp = linear_predictor(fit, rows_at(fit, pairs), new=NewLevels(3))
    second, first, new2, new1 = lp.components["la_year"].T
    mean, sd = standard((second - rho * first) / step_sd)
    assert abs(mean) < 0.2 and 0.85 < sd < 1.15, (mean, sd)
    assert 0.85 < np.std(new1 / sigma) < 1.15
    mean, sd = standard((new2 - rho * new1) / step_sd)
    assert abs(mean) < 0.2 and 0.85 < sd < 1.15, (mean, sd)

    sigma_year = draws(fit, "sigma_year")
    w_last = draws(fit, "year_effect")[:, -1]
    w2, w1 = lp.components["year"][:, 0], lp.components["year"][:, 1]
    assert 0.85 < np.std((w1 - w_last) / sigma_year) < 1.15  # one step on
    mean, sd = standard((w2 - w1) / sigma_year)  # and one more, given the first
    assert abs(mean) < 0.2 and 0.85 < sd < 1.15, (mean, sd)


def test_superpopulation_between_la_variance_counts_the_ar1_term(ar_case):
    """sigma_la^2 + sigma_region^2 + sigma_la_year^2 Var(mean of a unit AR(1) path over the
    fitted years), the last checked against simulated paths for a few draws."""
    _panel, _truth, fit = ar_case
    total = superpopulation_between_la_variance(fit)
    base = draws(fit, "sigma_la") ** 2 + draws(fit, "sigma_region") ** 2
    rho, sigma = draws(fit, "rho_la_year"), draws(fit, "sigma_la_year")
    rng = np.random.default_rng(11)
    n_years = LAST - FIRST + 1  # every test authority is fitted in every year
    for s in (0, 50, 100):
        paths = np.empty((20_000, n_years))
        paths[:, 0] = rng.standard_normal(20_000)
        for t in range(1, n_years):
            innovation = np.sqrt(1 - rho[s] ** 2) * rng.standard_normal(20_000)
            paths[:, t] = rho[s] * paths[:, t - 1] + innovation
        simulated = base[s] + sigma[s] ** 2 * paths.mean(axis=1).var()
        assert total[s] == pytest.approx(simulated, rel=0.03)
    assert (total > base).all()


def test_new_authority_ar1_paths_have_the_model_covariance(ar_case):
    """A new authority's path over years with a gap (lag 2 between the last two) has, per draw,
    covariance sigma^2 rho^|t - u|: averaged over draws, E[x_t x_u / sigma^2] = E[rho^|t - u|]."""
    _panel, _truth, fit = ar_case
    years = [FIRST, FIRST + 1, FIRST + 3]
    pairs = [(f"new#{m}", y) for m in range(150) for y in years]
    lp = linear_predictor(fit, rows_at(fit, pairs), new=NewLevels(0))
    rho, sigma = draws(fit, "rho_la_year"), draws(fit, "sigma_la_year")
    x = lp.components["la_year"].reshape(len(rho), 150, 3) / sigma[:, None, None]
    empirical = np.einsum("smt,smu->tu", x, x) / (x.shape[0] * x.shape[1])
    lags = np.abs(np.subtract.outer(years, years))
    model = (rho[:, None, None] ** lags[None]).mean(axis=0)
    np.testing.assert_allclose(empirical, model, atol=0.04)


def test_heldout_authority_gets_a_finite_new_group_density(ar_case):
    _panel, _, fit = ar_case
    fitted = set(fit.idata["posterior"]["la"].values.astype(str))
    others = simulate_panel(seed=5, first_year=FIRST, last_year=LAST, forecast_year=False).panel
    unseen = others[~others["la_code"].astype(str).isin(fitted)]
    rows = unseen[unseen["la_code"] == unseen["la_code"].iloc[0]]
    lpd = heldout_lpd(fit, rows, outcome="cla", seed=0)
    assert len(lpd) == 1 and np.isfinite(lpd.iloc[0])
