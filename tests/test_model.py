"""The PyMC model: log-density against a scipy reference, the posterior contract, excluded rows,
and parameter recovery on simulated panels (fast variant here, full one marked slow)."""

from __future__ import annotations

import dataclasses
import math

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import SpecError
from csc_bayes.model import attach_coords, build_model
from csc_bayes.simulate import default_authorities, simulate_panel
from csc_bayes.spec import find_spec


@pytest.fixture(scope="module")
def small_panel() -> pd.DataFrame:
    las = default_authorities(2024).iloc[::8].reset_index(drop=True)  # 19 authorities
    return simulate_panel(seed=11, first_year=2019, last_year=2024, authorities=las).panel


def with_years(spec, first, last):
    return dataclasses.replace(spec, years=(first, last))


# ------------------------------------------------------------------ scipy reference (docs/model.md)
def reference_logp(spec, rows: pd.DataFrame, p: dict, parameterisation: str) -> tuple[float, dict]:
    """log p(params, y) written from docs/model.md, independent of csc_bayes.model.

    Returns the total and the contract's la_effect computed by hand.
    """
    covs = list(spec.covariates)
    x = rows[covs].to_numpy(dtype=float)
    X = (x - x.mean(0)) / x.std(0)
    y = rows[spec.outcome].to_numpy(dtype=int)
    log_pop = np.log(rows["population"].to_numpy(dtype=float))
    las = sorted(rows["la_code"].astype(str).unique())
    la = np.array([las.index(c) for c in rows["la_code"].astype(str)])
    regions = [r for r in REGIONS if r in set(rows["region"].astype(str))]
    la_region = np.array(
        [regions.index(rows.loc[rows["la_code"] == c, "region"].iloc[0]) for c in las]
    )
    years = sorted(rows["year"].unique())
    yr = np.array([years.index(t) for t in rows["year"]])

    # data-scaled default priors
    pooled = math.log(y.sum() / np.exp(log_pop).sum())
    s = np.std(np.log((y + 0.5) / np.exp(log_pop)))
    lp = stats.norm.logpdf(p["intercept"], pooled, 2.5 * s)
    lp += stats.norm.logpdf(p["beta"], 0.0, s).sum()
    for g in ("sigma_la", "sigma_region", "sigma_year"):
        lp += stats.halfnorm.logpdf(p[g], scale=s)
    lp += stats.norm.logpdf(p["region_z"]).sum()
    region_effect = p["sigma_region"] * p["region_z"]

    if parameterisation == "hierarchical":
        # sum-to-zero region_z: iid N(0, 1) density on the (n-1)-dim subspace
        assert abs(p["region_z"].sum()) < 1e-9
        lp += math.log(math.sqrt(2 * math.pi))
        xbar = np.array([X[la == j].mean(0) for j in range(len(las))])
        la_mean = p["intercept"] + region_effect[la_region] + xbar @ p["beta"]
        if spec.la_year == "ar1":  # non-centred LA level under the AR(1) levels
            la_theta = la_mean + p["sigma_la"] * p["la_z"]
            lp += stats.norm.logpdf(p["la_z"]).sum()
        else:
            la_theta = p["la_theta"]
            if spec.la_trend:  # sampled la_theta is the level at the LA's own mean fitted year
                year_c = (rows["year"].to_numpy(dtype=float) - np.mean(years)) / 10
                mid_c = np.array([year_c[la == j].mean() for j in range(len(las))])
                la_theta = la_theta - p["sigma_la_trend"] * p["la_trend_z"] * mid_c
            lp += stats.norm.logpdf(la_theta, la_mean, p["sigma_la"]).sum()
        la_effect = la_theta - la_mean
    else:
        lp += stats.norm.logpdf(p["la_z"]).sum()
        la_effect = p["sigma_la"] * p["la_z"]
    if spec.year_effect == "rw1":  # steps N(0, sigma_year^2 gap), walk centred to sum to zero
        gaps = np.diff(np.asarray(years, dtype=float))
        if parameterisation == "hierarchical":
            steps = p["year_step"]
            lp += stats.norm.logpdf(steps, 0.0, p["sigma_year"] * np.sqrt(gaps)).sum()
        else:
            lp += stats.norm.logpdf(p["year_step_z"]).sum()
            steps = p["sigma_year"] * np.sqrt(gaps) * p["year_step_z"]
        walk = np.concatenate([[0.0], np.cumsum(steps)])
        ye = walk - walk.mean()
    elif parameterisation == "hierarchical":
        # sum-to-zero year effects: iid N(0, sigma_year) density on the (n-1)-dim subspace
        ye = p["year_effect"]
        assert abs(ye.sum()) < 1e-9
        lp += stats.norm.logpdf(ye, 0.0, p["sigma_year"]).sum()
        lp += math.log(math.sqrt(2 * math.pi) * p["sigma_year"])
    else:
        lp += stats.norm.logpdf(p["year_z"]).sum()
        ye = p["sigma_year"] * p["year_z"]

    # the contract's linear predictor
    eta = log_pop + p["intercept"] + X @ p["beta"] + la_effect[la] + region_effect[la_region[la]]
    eta = eta + ye[yr]
    if spec.random_slope is not None:
        lp += stats.halfnorm.logpdf(p["sigma_la_slope"], scale=s)
        lp += stats.norm.logpdf(p["la_slope_z"]).sum()
        k = covs.index(spec.random_slope)
        eta = eta + p["sigma_la_slope"] * p["la_slope_z"][la] * X[:, k]
    if spec.la_trend:  # fixed HalfNormal(0.5) prior; year_c per decade from the years' mean
        lp += stats.halfnorm.logpdf(p["sigma_la_trend"], scale=0.5)
        lp += stats.norm.logpdf(p["la_trend_z"]).sum()
        if parameterisation == "hierarchical":  # sum-to-zero, as region_z
            assert abs(p["la_trend_z"].sum()) < 1e-9
            lp += math.log(math.sqrt(2 * math.pi))
        year_c = (rows["year"].to_numpy(dtype=float) - np.mean(years)) / 10
        eta = eta + p["sigma_la_trend"] * p["la_trend_z"][la] * year_c
    if spec.la_year == "ar1":  # stationary AR(1) over calendar years: K = sigma^2 rho^|t - u|
        lp += stats.halfnorm.logpdf(p["sigma_la_year"], scale=s)
        lp += stats.beta.logpdf(p["rho_la_year"], 2.0, 2.0)
        lags = np.abs(np.subtract.outer(years, years)).astype(float)
        K = p["sigma_la_year"] ** 2 * p["rho_la_year"] ** lags
        if parameterisation == "hierarchical":  # sampled: the level la_theta + la_year
            la_year = p["la_level"] - la_theta[:, None]
            lp += stats.multivariate_normal.logpdf(la_year, np.zeros(len(years)), K).sum()
        else:
            lp += stats.norm.logpdf(p["la_year_z"]).sum()
            la_year = p["la_year_z"] @ np.linalg.cholesky(K).T
        la_year = la_year - la_year.mean(axis=0)  # zero-sum over authorities in every year
        eta = eta + la_year[la, yr]
    mu = np.exp(eta)
    if spec.family == "negative_binomial":
        lp += stats.gamma.logpdf(p["phi"], a=2.0, scale=1 / 0.02)
        phi = p["phi"]
        lp += stats.nbinom.logpmf(y, phi, phi / (phi + mu)).sum()
    else:
        lp += stats.poisson.logpmf(y, mu).sum()
    return float(lp), {"la_effect": la_effect}


def random_point(built, rng) -> dict[str, np.ndarray]:
    """Random values for the model's value variables (log scale for positive parameters)."""
    point = {}
    for name, start in built.model.initial_point().items():
        if name == "intercept":
            value = rng.normal(-5.0, 0.3)
        elif name in ("la_theta", "la_level"):
            value = rng.normal(-5.0, 0.4, size=start.shape)
        elif name == "phi_log__":
            value = np.log(rng.uniform(5.0, 80.0))
        elif name.endswith("_log__"):
            value = np.log(rng.uniform(0.05, 0.6))
        elif name.endswith("_zerosum__"):
            value = rng.normal(0.0, 0.1, size=start.shape)
        else:
            value = rng.normal(0.0, 1.0, size=start.shape)
        point[name] = np.asarray(value, dtype=float)
    return point


@pytest.mark.parametrize(
    ("parameterisation", "family", "slope", "trend", "ar1"),
    [
        ("hierarchical", "negative_binomial", None, False, False),
        ("textbook", "negative_binomial", None, False, False),
        ("hierarchical", "poisson", "spend_per_child", False, False),
        ("hierarchical", "negative_binomial", None, True, False),
        ("textbook", "poisson", "spend_per_child", True, False),
        ("hierarchical", "negative_binomial", None, False, True),
        ("textbook", "negative_binomial", None, True, True),
        ("hierarchical", "poisson", None, True, True),
    ],
)
def test_logp_matches_scipy_reference(small_panel, parameterisation, family, slope, trend, ar1):
    """``ar1`` switches on the AR(1) LA-year term and random-walk year effects together."""
    spec = with_years(find_spec("cpp_need_spending"), 2019, 2024)
    spec = dataclasses.replace(spec, family=family).with_options(
        random_slope=slope,
        la_trend=trend,
        la_year="ar1" if ar1 else None,
        year_effect="rw1" if ar1 else "iid",
    )
    panel = small_panel
    if ar1:  # a year with no rows at all: its neighbours are two years apart in the AR(1)
        panel = small_panel[small_panel["year"] != 2021]
    built = build_model(spec, panel, parameterisation=parameterisation)
    model = built.model
    logp = model.compile_logp(jacobian=False, mode="FAST_COMPILE")  # no C compilation: quick
    # constrained values of the free variables (and la_effect) at a point of value variables
    outputs = model.replace_rvs_by_values([*model.free_RVs, model["la_effect"]])
    constrained = model.compile_fn(
        outputs, inputs=model.value_vars, on_unused_input="ignore", mode="FAST_COMPILE"
    )
    rng = np.random.default_rng(0)
    for _ in range(3):
        values = random_point(built, rng)
        *free, la_effect = constrained(values)
        point = {rv.name: np.asarray(v) for rv, v in zip(model.free_RVs, free, strict=True)}
        expected, parts = reference_logp(spec, built.data, point, parameterisation)
        assert logp(values) == pytest.approx(expected, rel=1e-9, abs=1e-6)
        np.testing.assert_allclose(la_effect, parts["la_effect"], atol=1e-10)


# ------------------------------------------------------------------ contract, rows, standardising
def test_contract_names_dims_and_standardisation(small_panel):
    spec = with_years(find_spec("cpp_need_spending"), 2019, 2024)
    built = build_model(spec, small_panel)
    model = built.model
    assert model.named_vars_to_dims["X"] == ("obs", "covariate")
    for name in ("la_idx", "region_idx", "year_idx", "log_exposure", "y"):
        assert model.named_vars_to_dims[name] == ("obs",)
    for name, dims in {
        "intercept": None,
        "beta": ("covariate",),
        "beta_per_unit": ("covariate",),
        "la_effect": ("la",),
        "region_effect": ("region",),
        "year_effect": ("year",),
    }.items():
        assert name in model.named_vars
        assert model.named_vars_to_dims.get(name) == dims
    assert list(model.coords["covariate"]) == list(spec.covariates)
    assert list(model.coords["la"]) == sorted(small_panel["la_code"].unique())
    assert list(model.coords["year"]) == list(range(2019, 2025))
    x = built.data["spend_per_child"].to_numpy(dtype=float)
    assert built.covariate_mean["spend_per_child"] == pytest.approx(x.mean())
    X = model["X"].get_value()
    np.testing.assert_allclose(X.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X.std(0), 1.0)
    beta = np.array([0.2, -0.1, 0.05])
    per_unit = model.compile_fn(
        model["beta_per_unit"], inputs=[model["beta"]], point_fn=False, mode="FAST_COMPILE"
    )(beta)
    np.testing.assert_allclose(per_unit, beta / built.covariate_sd.to_numpy())
    # obs order: data rows, la_idx points at the la coordinate
    la = np.asarray(model.coords["la"])[model["la_idx"].get_value()]
    assert (la == built.data["la_code"].to_numpy(dtype=str)).all()


def test_excluded_rows_have_reasons(small_panel):
    panel = small_panel.copy()
    first = panel.index[(panel["year"] == 2020)][:2]
    panel.loc[first[0], "cpp"] = pd.NA
    panel.loc[first[0], "cpp_missing"] = "suppressed"
    panel.loc[first[1], ["idaci", "cpp"]] = pd.NA
    panel.loc[first[1], ["idaci_missing", "cpp_missing"]] = ["not_available", "low_reliability"]
    spec = with_years(find_spec("cpp_need"), 2019, 2024)
    built = build_model(spec, panel)
    in_years = panel["year"].between(2019, 2024)
    assert len(built.data) + len(built.excluded) == in_years.sum()
    reasons = dict(zip(built.excluded["la_code"] + "/" + built.excluded["year"].astype(str),
                       built.excluded["reason"], strict=True))  # fmt: skip
    key0 = f"{panel.loc[first[0], 'la_code']}/2020"
    key1 = f"{panel.loc[first[1], 'la_code']}/2020"
    assert reasons == {key0: "cpp: suppressed", key1: "cpp: low_reliability; idaci: not_available"}
    assert built.excluded.columns.tolist() == [
        "la_code", "ons_code", "la_name", "region", "year", "reason"
    ]  # fmt: skip
    fitted = set(built.data["la_code"] + "/" + built.data["year"].astype(str))
    assert key0 not in fitted and key1 not in fitted


def test_constant_covariate_and_empty_panel_errors(small_panel):
    spec = with_years(find_spec("cpp_need"), 2019, 2024)
    flat = small_panel.assign(idaci=0.2)
    with pytest.raises(SpecError, match="'idaci' is constant"):
        build_model(spec, flat)
    with pytest.raises(SpecError, match="no rows to fit"):
        build_model(with_years(spec, 2030, 2031), small_panel)


# ------------------------------------------------------------------ sampling and recovery
def fit(built, *, draws, tune, chains, seed, target_accept=0.85):
    idata = pm.sample(
        model=built.model,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        target_accept=target_accept,
        nuts_sampler="numpyro",
        progressbar=False,
    )
    return attach_coords(idata, built)


def inside(draws, truth, prob=0.9) -> bool:
    lo, hi = np.quantile(np.asarray(draws).ravel(), [(1 - prob) / 2, (1 + prob) / 2])
    return bool(lo <= truth <= hi)


def check_recovery(idata, truth, spec, *, prob):
    post = idata["posterior"]
    for cov in spec.covariates:
        draws = post["beta_per_unit"].sel(covariate=cov).values
        assert inside(draws, truth["beta_per_unit"][cov], prob), (cov, draws.mean())
        # posterior mean within 2.5 posterior SDs of the truth
        assert abs(draws.mean() - truth["beta_per_unit"][cov]) < 2.5 * draws.std()
    for name in ("sigma_la", "sigma_year", "phi"):
        draws = post[name].values
        assert inside(draws, truth[name], prob), (name, draws.mean())
    assert np.quantile(post["sigma_region"].values, 0.995) > truth["sigma_region"]
    assert int(idata["sample_stats"]["diverging"].sum()) == 0


def test_fast_recovery_and_coords():
    """60 authorities x 6 years, 300 + 300 draws, 2 chains: under a minute."""
    las = default_authorities(2024).iloc[::2].iloc[:60].reset_index(drop=True)
    sim = simulate_panel(seed=3, first_year=2019, last_year=2024, authorities=las)
    spec = with_years(find_spec("cpp_need"), 2019, 2024)
    built = build_model(spec, sim.panel)
    idata = fit(built, draws=300, tune=300, chains=2, seed=2)
    post = idata["posterior"]
    expected_las = las.sort_values("la_code")
    assert post["la_name"].values.tolist() == expected_las["la_name"].tolist()
    assert post["ons_code"].values.tolist() == expected_las["ons_code"].tolist()
    assert post["la_region"].values.tolist() == expected_las["region"].tolist()
    for group in ("posterior", "observed_data", "constant_data"):
        assert group in idata.children
    assert set(idata["constant_data"].data_vars) >= {
        "X", "covariate_mean", "covariate_sd", "la_idx", "region_idx", "year_idx",
        "log_exposure",
    }  # fmt: skip
    check_recovery(idata, sim.truth["cpp"], spec, prob=0.95)
    # the contract's la_effect recovers the simulated LA effects
    true_la = sim.truth["cpp"]["la_effect"].reindex(post["la"].values.astype(str))
    est = post["la_effect"].mean(("chain", "draw")).values
    assert np.corrcoef(est, true_la.to_numpy())[0, 1] > 0.9


def test_poisson_null_model_samples():
    las = default_authorities(2024).iloc[::6].reset_index(drop=True)
    sim = simulate_panel(seed=4, first_year=2021, last_year=2024, authorities=las)
    spec = dataclasses.replace(with_years(find_spec("cla_null"), 2021, 2024), family="poisson")
    built = build_model(spec, sim.panel)
    idata = fit(built, draws=80, tune=80, chains=1, seed=1)
    post = idata["posterior"]
    assert "phi" not in post and post.sizes["covariate"] == 0
    assert post["la_effect"].sizes["la"] == len(las)
    assert az.ess(idata, var_names=["intercept"])["intercept"].item() > 15


@pytest.mark.slow
def test_full_recovery_on_simulated_panel():
    """The default settings on the demo-sized panel: truth inside the 90% intervals."""
    sim = simulate_panel(seed=1)
    spec = with_years(find_spec("cpp_need_spending"), 2015, 2024)
    built = build_model(spec, sim.panel)
    s = spec.sampler
    idata = fit(built, draws=s.draws, tune=s.tune, chains=s.chains, seed=s.seed)
    truth = sim.truth["cpp"]
    check_recovery(idata, truth, spec, prob=0.9)
    post = idata["posterior"]
    for name in ("sigma_la", "phi"):
        assert abs(post[name].mean().item() / truth[name] - 1) < 0.15, name
    summary = az.ess(idata, var_names=["beta", "sigma_la", "sigma_region", "la_effect"])
    assert min(float(summary[v].min()) for v in summary.data_vars) > 400


def test_ar1_cholesky_factors_the_ar1_correlation_with_a_gap_year():
    from csc_bayes.model import ar1_cholesky, ar1_correlation

    years = np.array([2015, 2016, 2018, 2019])  # 2017 missing: a lag of two
    rho, sigma = np.array([0.3, 0.8]), 0.7
    corr = ar1_correlation(rho, years)
    assert corr.shape == (2, 4, 4)
    np.testing.assert_allclose(corr[1, 1, 2], 0.8**2)
    for s in range(2):
        chol = ar1_cholesky(sigma, rho[s], years)
        np.testing.assert_allclose(chol @ chol.T, sigma**2 * corr[s], atol=1e-12)
