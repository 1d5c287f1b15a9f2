"""The Student-t AR(1) LA-year term whose scale trends over the fitted years
(``la_year = "ar1_t_sd_trend"``, terms/la_year_sd_trend.py): its density and paths are the
``ar1_t`` term's times exp(gamma (t - T)); a fit finds a falling scale; a forecast continues
at the last fitted year's scale."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats

import csc_bayes
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.posterior import Posterior
from csc_bayes.simulate import simulate_panel
from csc_bayes.spec import ModelSpec, default_priors, find_spec
from csc_bayes.terms import NewLevels, Rows
from csc_bayes.terms.la_year_sd_trend import LaYearAR1StudentTSdTrend
from csc_bayes.terms.la_year_t import LaYearAR1StudentT, ar1_t_logp
from test_la_year import rows_at

FIRST, LAST = 2014, 2023
SIGMA, RHO, NU, TREND = 0.3, 0.6, 6.0, -0.12  # SD 0.3 in 2023, 0.3 e^1.08 = 0.88 in 2014


def test_logp_is_the_t_density_of_the_rescaled_path():
    years = np.array([2016.0, 2017.0, 2019.0, 2020.0])  # a gap: lag 2 into 2019
    sigma, rho, nu, trend = 0.3, 0.7, 5.0, -0.1
    x = np.random.default_rng(0).normal(0, 0.3, (3, 4))
    w = np.exp(trend * (years - 2020.0))
    as64 = [pt.constant(v, dtype="float64") for v in (sigma, rho, nu, trend)]
    ours = LaYearAR1StudentTSdTrend.path_logp(pt.as_tensor(x), *as64, years).eval()
    c = np.sqrt((nu - 2) / nu)
    u = x / w
    expected = stats.t.logpdf(u[:, 0], nu, scale=sigma * c) - np.log(w[0])
    for t in range(1, 4):
        d = years[t] - years[t - 1]
        step = sigma * np.sqrt(1 - rho ** (2 * d)) * c
        expected += stats.t.logpdf(u[:, t], nu, loc=rho**d * u[:, t - 1], scale=step)
        expected -= np.log(w[t])
    np.testing.assert_allclose(ours, expected, rtol=1e-10)
    # no trend: exactly the ar1_t term's density
    flat = LaYearAR1StudentTSdTrend.path_logp(pt.as_tensor(x), *as64[:3], 0.0, years).eval()
    np.testing.assert_allclose(flat, ar1_t_logp(pt.as_tensor(x), *as64[:3], years).eval())


def test_paths_have_the_scaled_ar1_covariance():
    years = np.array([2016.0, 2017.0, 2019.0])
    paths = LaYearAR1StudentTSdTrend.simulate_paths(
        0.4, 0.7, 6.0, -0.2, years, (200_000, 3), np.random.default_rng(1)
    )
    w = np.exp(-0.2 * (years - 2019.0))
    model = 0.4**2 * np.outer(w, w) * 0.7 ** np.abs(np.subtract.outer(years, years))
    np.testing.assert_allclose(np.cov(paths.T), model, rtol=0.03)


def test_spec_formula_and_priors():
    spec = find_spec("cpp_forecast").with_options(la_year="ar1_t_sd_trend")
    assert "ar1_t_sd_trend(year | la)" in spec.formula
    assert ModelSpec.from_formula(spec.formula, family="poisson").la_year == "ar1_t_sd_trend"
    assert spec.parameters[-2:] == ("nu_la_year", "sd_trend_la_year")
    defaults = default_priors(spec, simulate_panel(seed=1).panel).set_index("parameter")
    default = tuple(defaults.loc["sd_trend_la_year", ["dist", "params"]])
    assert default == ("normal", "mu=0, sigma=0.1")
    again = spec.with_priors({"sd_trend_la_year": {"sigma": 0.05}})
    assert again.priors["sd_trend_la_year"].kwargs == {"sigma": 0.05}


class _Posterior:
    """The parts of :class:`~csc_bayes.posterior.Posterior` the term reads: 400 draws of the
    parameters and of two authorities' paths over 2014-2023 (authority A has 2016-2023 only)."""

    def __init__(self, trend: float) -> None:
        rng = np.random.default_rng(11)
        self.n_draws, self.la_codes, self.years = 400, ["A", "B"], list(range(FIRST, LAST + 1))
        self._draws = {
            "sigma_la_year": rng.uniform(0.2, 0.4, 400),
            "rho_la_year": rng.uniform(0.4, 0.8, 400),
            "nu_la_year": rng.uniform(4.0, 8.0, 400),
            "sd_trend_la_year": np.full(400, trend),
            "la_year": rng.normal(0.0, 0.3, (400, 2, len(self.years))),
        }
        years = [y for y in self.years if y >= 2016] + self.years
        self.la_idx = np.array([0] * (len(self.years) - 2) + [1] * len(self.years))
        self.fitted_rows = Rows(
            la_code=np.array(self.la_codes)[self.la_idx],
            region=np.array(["R"] * len(years)),
            year=np.array(years),
            X=np.zeros((len(years), 0)),
            log_exposure=np.zeros(len(years)),
        )

    def draws(self, name: str) -> np.ndarray:
        return self._draws[name]


def _rows(pairs: list[tuple[str, int]]) -> Rows:
    return Rows(
        la_code=np.array([c for c, _ in pairs]),
        region=np.array(["R"] * len(pairs)),
        year=np.array([y for _, y in pairs]),
        X=np.zeros((len(pairs), 0)),
        log_exposure=np.zeros(len(pairs)),
    )


def test_forecasts_continue_at_the_last_years_scale_and_earlier_years_are_rescaled():
    spec = find_spec("cpp_forecast").with_options(la_year="ar1_t_sd_trend")
    trend_term, t_term = (
        LaYearAR1StudentTSdTrend(spec),
        LaYearAR1StudentT(find_spec("cpp_forecast")),
    )
    post = _Posterior(trend=-0.1)
    # two years ahead of a fitted authority, and a new one: the ar1_t term's draws exactly
    ahead = _rows([("B", LAST + 1), ("B", LAST + 2), ("new", LAST + 1), ("new", LAST + 2)])
    ours = trend_term.contribution(post, ahead, NewLevels(3))["la_year"]
    np.testing.assert_array_equal(ours, t_term.contribution(post, ahead, NewLevels(3))["la_year"])
    # a new authority's first year in 2014 is the stationary draw times w = e^(0.1 x 9)
    early = _rows([("new", FIRST)])
    ours = trend_term.contribution(post, early, NewLevels(4))["la_year"]
    theirs = t_term.contribution(post, early, NewLevels(4))["la_year"]
    np.testing.assert_allclose(ours, theirs * np.exp(0.9))
    # a year before authority A's first fitted year: the Gaussian conditional on u = x / w, times w
    back = trend_term.contribution(post, _rows([("A", 2013)]), NewLevels(5))["la_year"][:, 0]
    assert np.isfinite(back).all() and 0.3 < back.std() < 1.5


def test_between_la_variance_weights_the_years_by_the_scale():
    spec = find_spec("cpp_forecast").with_options(la_year="ar1_t_sd_trend")
    term, flat = LaYearAR1StudentTSdTrend(spec), _Posterior(trend=0.0)
    t_term = LaYearAR1StudentT(find_spec("cpp_forecast"))
    np.testing.assert_allclose(
        term.expected_between_la_variance(flat), t_term.expected_between_la_variance(flat)
    )
    post = _Posterior(trend=-0.1)
    sigma, rho = post.draws("sigma_la_year"), post.draws("rho_la_year")
    expected = np.zeros(400)
    for years in (np.arange(2016, LAST + 1), np.arange(FIRST, LAST + 1)):
        w = np.exp(-0.1 * (years - LAST))
        lags = np.abs(np.subtract.outer(years, years))
        expected += (np.outer(w, w)[None] * rho[:, None, None] ** lags).mean(axis=(1, 2)) / 2
    np.testing.assert_allclose(term.expected_between_la_variance(post), sigma**2 * expected)


def _shrinking_panel() -> pd.DataFrame:
    """30 authorities, 2014-2024: log rate = LA level + a t AR(1) path whose SD falls by a
    factor e^0.12 a year to 0.3 in 2023 (and stays 0.3 in 2024); Poisson counts."""
    panel = simulate_panel(seed=5, first_year=FIRST, last_year=LAST + 1, forecast_year=False).panel
    codes = sorted(panel["la_code"].astype(str).unique())[::5][:30]
    panel = panel[panel["la_code"].astype(str).isin(codes)].copy()
    years = np.arange(FIRST, LAST + 2)
    paths = LaYearAR1StudentTSdTrend.simulate_paths(
        SIGMA, RHO, NU, 0.0, years.astype(float), (len(codes), len(years)), np.random.default_rng(3)
    ) * np.exp(TREND * (np.minimum(years, LAST) - LAST))
    truth = pd.DataFrame(paths, index=codes, columns=years)
    level = pd.Series(np.random.default_rng(4).normal(0.0, 0.3, len(codes)), index=codes)
    code = panel["la_code"].astype(str)
    ar = truth.stack().reindex(list(zip(code, panel["year"], strict=True))).to_numpy()
    log_rate = np.log(300 / 10_000) + code.map(level).to_numpy(float) + ar
    mean = panel["population"].to_numpy(float) * np.exp(log_rate)
    counts = np.random.default_rng(8).poisson(mean)
    panel["cin"] = pd.array(counts, dtype="Int64")
    panel["cin_missing"] = None
    return panel.reset_index(drop=True)


@pytest.fixture(scope="module")
def trend_fit():
    spec = ModelSpec.from_formula(
        "cin ~ offset(log(population)) + (1|la) + rw1(year) + ar1_t_sd_trend(year | la)",
        family="poisson",
        name="cin_sd_trend_test",
    )
    spec = dataclasses.replace(spec, years=(FIRST, LAST))
    spec = spec.with_sampler(draws=250, tune=250, chains=2)
    return csc_bayes.fit(spec, data=_shrinking_panel(), out=None, progress=False)


@pytest.mark.slow  # a recovery test: ~20-50 s of NUTS (tree depth ~9)
def test_a_fit_finds_the_falling_scale_and_forecasts_at_the_last_years(trend_fit):
    post = Posterior.of(trend_fit)
    trend = post.draws("sd_trend_la_year")
    assert np.quantile(trend, 0.95) < -0.04  # the truth is -0.12; the prior is centred on 0
    assert np.quantile(trend, 0.02) < TREND < np.quantile(trend, 0.98)
    sigma = post.draws("sigma_la_year")  # the SD in the last fitted year: 0.3
    assert 0.18 < np.median(sigma) < 0.45
    # a forecast step: decay plus a unit-variance t change at the last fitted year's scale
    code = post.la_codes[0]
    lp = linear_predictor(trend_fit, rows_at(trend_fit, [(code, LAST + 1)]), new=NewLevels(0))
    rho = post.draws("rho_la_year")
    last = post.draws("la_year")[:, 0, -1]
    change = (lp.components["la_year"][:, 0] - rho * last) / (sigma * np.sqrt(1 - rho**2))
    assert abs(np.median(change)) < 0.2 and 0.8 < np.std(change) < 1.3
    # an earlier year of a new authority is drawn at that year's (wider) scale
    early = linear_predictor(trend_fit, rows_at(trend_fit, [("new", FIRST)]), new=NewLevels(1))
    spread = early.components["la_year"][:, 0] / sigma
    assert 1.8 < np.std(spread) < 4.5  # e^1.08 = 2.9 at the truth
    rows = csc_bayes.explain_variance(trend_fit).to_frame().set_index(["measure", "component"])
    assert ("share", "la_year") in rows.index
    from csc_bayes.report import methods_html

    assert "trends over the fitted years" in methods_html(trend_fit.spec)
