"""The stock term (``stock = "previous"`` / ``"flows"``, terms/stock.py): last year's count as
the base of this year's, the flow-implied growth, forecasts drawn year by year, synthetic flows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from csc_bayes.backtest import masked_panel
from csc_bayes.data.flows import FLOWS
from csc_bayes.data.schema import OUTCOMES
from csc_bayes.errors import AnswerError, SpecError
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.model import build_model
from csc_bayes.predict import predict_draws
from csc_bayes.simulate import simulate_panel
from csc_bayes.spec import ModelSpec, find_spec
from csc_bayes.terms import Rows
from csc_bayes.terms.stock import add_flow_growth, flow_growth
from equivalence import prior_fit, small_panel


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return small_panel()


def spec_of(value: str, years: tuple[int, int] = (2013, 2024)) -> ModelSpec:
    return ModelSpec.from_dict(
        {**find_spec("cla_forecast").to_dict(), "stock": value, "years": list(years)}
    )


def test_flow_growth_is_the_projection_of_last_years_flows():
    # S = 40, C = 35, Y_(t-1) = 105 (h = 35 / 140 = 0.25), E from 1000 to 1100
    g = flow_growth(40.0, 35.0, 1000.0, 105.0, 1100.0, 105.0)
    expected = (105 + 40 / 1000 * 1100) * (1 - 0.25)  # the projected stock
    assert g == pytest.approx(np.log(expected / 105))
    assert np.isnan(flow_growth(40.0, 35.0, 1000.0, 0.0, 1100.0, 0.0))  # no stock, h = 1


def test_synthetic_flows_add_up_to_the_simulated_stock():
    p = simulate_panel(seed=3).panel.sort_values(["la_code", "year"])
    lagged = p.groupby("la_code")["cla"].shift(1)
    ok = p["cla"].notna() & lagged.notna()
    s, c = p.loc[ok, "cla_started"], p.loc[ok, "cla_ceased"]
    assert (s >= 0).all() and (c >= 0).all()
    assert (p.loc[ok, "cla"] == lagged[ok] + s - c).all()
    future = p["year"] == p["year"].max()
    assert p.loc[future, "cla_started"].isna().all()
    assert (p.loc[future, "cla_started_missing"] == "not_yet_published").all()


def test_rows_without_last_years_count_or_flows_are_not_fitted(panel):
    built = build_model(spec_of("flows"), panel)
    first = int(panel["year"].min())
    assert built.data["year"].min() == first + 1  # needs Y_(t-1) and the flows of t-1
    why = built.excluded.set_index("year")["reason"]
    assert why.loc[first].str.contains("lag_cla_1: before_first_year").all()
    assert why.loc[first].str.contains(r"lag\(cla_started, 1\): before_first_year").all()
    with pytest.raises(SpecError, match="cla_started"):
        build_model(spec_of("flows"), panel.drop(columns=["cla_started"]))


@pytest.mark.parametrize("value", ["flows", pytest.param("previous", marks=pytest.mark.slow)])
def test_likelihood_is_nb_around_last_years_count_times_growth(panel, value):
    spec = spec_of(value)
    built = build_model(spec, panel)
    data = built.data
    rng = np.random.default_rng(1)
    point = built.model.initial_point()
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    model = built.model

    def at_point(outs, *, variables=True):  # at the point (not random draws of the variables)
        outs = model.replace_rvs_by_values(outs) if variables else outs
        return model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")(point)

    logp_y = at_point(model.logp(vars=[model["y"]], sum=False)[0], variables=False)
    names = ("intercept", "la_effect", "region_effect", "year_effect", "phi")
    draws = at_point([model[n] for n in names] + ([model["beta_flow"]] if value == "flows" else []))
    intercept, la, region, year, phi = draws[:5]
    la_idx = pd.Index(built.authorities["la_code"]).get_indexer(data["la_code"].astype(str))
    region_idx = pd.Index(built.model.coords["region"]).get_indexer(data["region"].astype(str))
    year_idx = pd.Index(built.model.coords["year"]).get_indexer(data["year"])
    log_mu = (
        np.log(data["lag_cla_1"].to_numpy(float))
        + intercept
        + la[la_idx]
        + region[region_idx]
        + year[year_idx]
    )
    if value == "flows":
        log_mu = log_mu + draws[5] * data["flow_growth_cla"].to_numpy(float)
    mu = np.exp(log_mu)
    y = data["cla"].to_numpy(int)
    expected = stats.nbinom.logpmf(y, phi, phi / (phi + mu))
    np.testing.assert_allclose(logp_y, expected, rtol=1e-8)


LAST = 2021


@pytest.fixture(scope="module")
def training(panel) -> pd.DataFrame:
    """The small panel as known at the end of 2021 (outcomes and flows after it masked)."""
    return masked_panel(panel, (*OUTCOMES, *FLOWS), LAST)


@pytest.fixture(scope="module")
def flows_fit(training):
    """A fit of stock = "flows" to 2015-2021 whose posterior is 40 prior draws."""
    return prior_fit(spec_of("flows", (2013, LAST)), training, draws=40)


def test_forecasts_rest_on_the_last_count_and_are_drawn_jointly(training, flows_fit):
    fit = flows_fit
    pred = predict_draws(fit, authority="all", year=[2022, 2023, 2024], seed=2)
    rows = pred.rows.reset_index(drop=True)
    assert set(rows["kind"]) == {"forecast"}
    p = training.assign(la_code=training["la_code"].astype(str)).set_index(["la_code", "year"])
    # an authority without a published 2021 count (suppressed) has no forecast in any year
    has_last = [(c, LAST) in p.index and pd.notna(p.loc[(c, LAST), "cla"]) for c in rows["la_code"]]
    assert (np.isfinite(pred.count).all(axis=0) == np.array(has_last)).all()
    assert any(has_last)
    # year 2022 rests on the published 2021 count and the 2021 flows
    first = int(np.flatnonzero(has_last)[0])
    code = rows.loc[first, "la_code"]
    at = rows.index[rows["la_code"] == code].to_numpy()
    with_g = add_flow_growth(training, "cla", "population")
    g = with_g.set_index([with_g["la_code"].astype(str), "year"])["flow_growth_cla"]
    beta = fit.idata["posterior"]["beta_flow"].values.reshape(-1)
    pop22 = float(p.loc[(code, 2022), "population"])
    one = Rows(
        la_code=np.array([code]),
        region=np.array([rows.loc[first, "region"]]),
        year=np.array([2022]),
        X=np.zeros((1, 0)),
        log_exposure=np.array([np.log(pop22)]),
    )
    stock = linear_predictor(fit, one, new=0).components["stock"][:, 0]
    expected = np.log(float(p.loc[(code, 2021), "cla"]) / pop22) + beta * float(g.loc[(code, 2022)])
    np.testing.assert_allclose(stock, expected, rtol=1e-10)
    # 2023 rests on the count drawn for 2022, draw by draw
    corr = np.corrcoef(np.log(pred.count[:, at[0]] + 1), pred.eta[:, at[1]])[0, 1]
    assert corr > 0.8
    # a year whose previous year is neither known nor asked for cannot be forecast
    with pytest.raises(AnswerError, match="ask for 2022 too"):
        predict_draws(fit, authority="all", year=[2023], seed=2)


def test_a_new_authority_has_no_stock_forecast_in_any_year(flows_fit):
    """An authority with no rows up to the last fitted year (new, like Cumberland in 2023) has
    no count to start from: NaN in the first forecast year and every year after it (it used to
    fail the whole call for want of its flows), while the others are forecast."""
    import dataclasses

    fit = flows_fit
    panel = fit.panel.assign(la_code=fit.panel["la_code"].astype(str))
    code = sorted(panel["la_code"].unique())[0]
    new = panel[(panel["la_code"] != code) | (panel["year"] > LAST)]
    pred = predict_draws(
        dataclasses.replace(fit, panel=new), authority="all", year=[2022, 2023], seed=2
    )
    mine = (pred.rows["la_code"] == code).to_numpy()
    assert mine.sum() == 2
    assert np.isnan(pred.count[:, mine]).all()
    assert np.isfinite(pred.count[:, ~mine]).all(axis=0).any()


def test_a_backtest_two_years_ahead_draws_the_year_between(panel, flows_fit, monkeypatch):
    """Origin 2023 at horizon 2 rests on a refit to 2021: the backtest draws 2022 and 2023
    jointly (the stock's 2023 needs the count drawn for 2022) and scores 2023 only. (The refit
    is the prior-draw fit above, in place of NUTS.)"""
    import importlib

    from csc_bayes.backtest import backtest

    fitting = importlib.import_module("csc_bayes.fitting")
    monkeypatch.setattr(fitting, "fit", lambda spec, **kwargs: flows_fit)
    result = backtest(
        spec_of("flows", (2013, 2024)),
        data=panel,
        origins=[2023],
        horizons=[2],
        fits_dir=None,
        workers=1,
        progress=False,
    )
    assert set(result.scores["origin"]) == {2023} and set(result.scores["horizon"]) == {2}
    model = result.scores[result.scores["kind"] != "baseline"]
    assert len(model) > 0 and np.isfinite(model["crps"]).all()


def test_fitted_rows_stock_component_is_the_constant_data(flows_fit):
    lp = linear_predictor(flows_fit)
    data = flows_fit.idata["constant_data"]
    beta = flows_fit.idata["posterior"]["beta_flow"].values.reshape(-1)
    expected = data["stock_log_previous"].values - data["log_exposure"].values
    expected = expected[None, :] + beta[:, None] * data["stock_flow_growth"].values[None, :]
    np.testing.assert_allclose(lp.components["stock"], expected, rtol=1e-12)


# ====================================================================== recovery (slow)
TRUTH = {"intercept": 0.01, "beta_flow": 0.6, "sigma_la": 0.04, "sigma_year": 0.03, "phi": 300.0}


def stock_flow_panel(seed: int = 5, n_authorities: int = 60) -> pd.DataFrame:
    """A synthetic panel whose ``cla`` follows the ``stock = "flows"`` model's own law with the
    parameters :data:`TRUTH` (region effects 0), and flows consistent with the stock: per
    authority and year a share ceasing h ~ U(0.3, 0.5) x exp(N(0, 0.2)), ``C_t ~ Binomial(
    Y_(t-1), h)``, ``S_t = Y_t - Y_(t-1) + C_t`` (the shortfall added to C when negative)."""
    rng = np.random.default_rng(seed)
    panel = simulate_panel(seed=seed, forecast_year=False).panel
    codes = sorted(panel["la_code"].astype(str).unique())[:n_authorities]
    panel = panel[panel["la_code"].astype(str).isin(codes)].sort_values(["la_code", "year"])
    panel = panel.reset_index(drop=True)
    years = sorted(panel["year"].unique())
    la = dict(zip(codes, rng.normal(0, TRUTH["sigma_la"], len(codes)), strict=True))
    year_effect = dict(zip(years, rng.normal(0, TRUTH["sigma_year"], len(years)), strict=True))
    share = dict(zip(codes, rng.uniform(0.3, 0.5, len(codes)), strict=True))
    phi = TRUTH["phi"]
    cla, started, ceased = [], [], []
    for code, rows in panel.groupby("la_code", sort=True):
        pop = rows["population"].to_numpy(float)
        y = [max(int(rows["cla"].fillna(100).iloc[0]), 20)]
        c = [int(rng.binomial(y[0], share[code]))]
        s = [c[0]]
        for t in range(1, len(rows)):
            sr, h = s[t - 1] / pop[t - 1], c[t - 1] / (y[t - 1] + c[t - 1])
            g = np.log((1 + sr * pop[t] / y[t - 1]) * (1 - h))
            log_mu = np.log(y[t - 1]) + TRUTH["intercept"] + la[code]
            mu = np.exp(log_mu + year_effect[years[t]] + TRUTH["beta_flow"] * g)
            new = int(rng.poisson(rng.gamma(phi, mu / phi)))
            h_t = min(share[code] * np.exp(rng.normal(0, 0.2)), 0.9)
            out = int(rng.binomial(y[t - 1], h_t))
            into = new - y[t - 1] + out
            if into < 0:
                out, into = out - into, 0
            y.append(new)
            c.append(out)
            s.append(into)
        cla += y
        started += s
        ceased += c
    panel["cla"] = pd.array(cla, dtype="Int64")
    panel["cla_started"] = pd.array(started, dtype="Int64")
    panel["cla_ceased"] = pd.array(ceased, dtype="Int64")
    for name in ("cla", "cla_started", "cla_ceased"):
        panel[f"{name}_missing"] = pd.array([pd.NA] * len(panel), dtype="string")
    return panel


@pytest.mark.slow
def test_flow_parameters_are_recovered():
    import csc_bayes

    panel = stock_flow_panel()
    spec = ModelSpec.from_dict(
        {
            **find_spec("cla_forecast").to_dict(),
            "name": "stock_recovery",
            "random_effects": ["la", "year"],
            "stock": "flows",
        }
    ).with_sampler(draws=500, tune=500, chains=2, seed=3)
    fit = csc_bayes.fit(spec, data=panel, out=None, progress=False)
    post = fit.idata["posterior"]
    for name, true in TRUTH.items():
        draws = post[name].values.reshape(-1)
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo < true < hi, f"{name}: true {true} outside ({lo:.3g}, {hi:.3g})"
    assert (
        np.quantile(post["beta_flow"].values, 0.975) - np.quantile(post["beta_flow"].values, 0.025)
        < 1.0
    )  # informative about beta_flow, not its prior N(0, 1)


def test_explain_and_excess_refuse_a_forecasting_spec(flows_fit):
    from csc_bayes.excess import excess_draws
    from csc_bayes.variance import explain_variance

    with pytest.raises(AnswerError, match="forecasting spec"):
        excess_draws(flows_fit)
    with pytest.raises(AnswerError, match="forecasting spec"):
        explain_variance(flows_fit)
