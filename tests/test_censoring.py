"""Suppressed counts with a known range enter the likelihood as interval-censored counts.

Cheap checks: the interval probability against scipy's CDFs, the pointwise log-likelihood
against PyMC's log density of the censored model, the spec key, the rows each setting fits and
what the answers say for a censored row. The ``slow`` test fits a panel with heavy suppression
of small authorities and shows that censoring recovers the truth where dropping is biased.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from csc_bayes.errors import SpecError
from csc_bayes.model import build_model
from csc_bayes.pointwise import pointwise_groups
from csc_bayes.simulate import simulate_outcome, simulate_panel, suppress_small_counts
from csc_bayes.spec import ModelSpec, find_spec
from csc_bayes.terms.family import count_interval_mean, count_log_interval
from equivalence import prior_fit

SUPPRESSED = "suppressed"


def test_interval_probability_is_the_difference_of_cdfs():
    rng = np.random.default_rng(0)
    lower = np.array([0, 1, 1, 3, 10, 6])
    upper = np.array([0, 5, 1, 40, 12, 9])
    mu = rng.uniform(0.5, 30.0, size=(7, len(lower)))
    phi = rng.uniform(2.0, 80.0, size=(7, 1))
    ours = count_log_interval(lower, upper, mu, np.broadcast_to(phi, mu.shape))
    p = phi / (phi + mu)
    nb = stats.nbinom.cdf(upper, phi, p) - stats.nbinom.cdf(lower - 1, phi, p)
    np.testing.assert_allclose(ours, np.log(nb), rtol=1e-9)
    pois = stats.poisson.cdf(upper, mu) - stats.poisson.cdf(lower - 1, mu)
    np.testing.assert_allclose(count_log_interval(lower, upper, mu, None), np.log(pois), rtol=1e-9)
    mean = count_interval_mean(lower, upper, mu, None)
    k = np.arange(41)
    pmf = stats.poisson.pmf(k[None, None, :], mu[..., None])
    pmf = np.where((k >= lower[:, None]) & (k <= upper[:, None]), pmf, 0.0)
    np.testing.assert_allclose(mean, (pmf * k).sum(-1) / pmf.sum(-1), rtol=1e-9)


def small_censored_panel(seed: int = 7) -> pd.DataFrame:
    """12 synthetic authorities, 2019-2022, populations cut to 1/40 so that many CPP counts
    are 1-7 and suppressed with the known range 1-7."""
    sim = simulate_panel(seed=seed, first_year=2019, last_year=2022, suppress_below=1)
    panel = sim.panel
    panel = panel[panel["la_code"].isin(sorted(panel["la_code"].unique())[::12])].copy()
    panel = panel.reset_index(drop=True)
    panel["population"] = (panel["population"] // 40).astype("Int64")
    seen = panel["cpp"].notna().to_numpy()
    y = simulate_outcome(panel, params=sim.truth["cpp"], rng=np.random.default_rng(seed))
    panel.loc[seen, "cpp"] = y[seen]
    return suppress_small_counts(panel, below=8, known_range=True)


@pytest.fixture(scope="module")
def censored():
    panel = small_censored_panel()
    spec = dataclasses.replace(find_spec("cpp_need"), years=(2019, 2022))
    fit = prior_fit(spec, panel, draws=10)
    log_lik, replicated = pointwise_groups(fit, seed=0)
    fit.idata["log_likelihood"] = xr.DataTree(log_lik)
    fit.idata["posterior_predictive"] = xr.DataTree(replicated)
    return panel, spec, fit


def test_spec_key_defaults_to_censored_and_drop_is_written():
    spec = find_spec("cpp_need")
    assert spec.option("suppressed") == "censored"
    assert "suppressed" not in spec.to_toml()
    drop = spec.with_options(suppressed="drop")
    assert 'suppressed = "drop"' in drop.to_toml()
    assert drop.canonical_hash() != spec.canonical_hash()
    assert drop.null_spec().option("suppressed") == "drop"
    assert ModelSpec.from_dict(drop.to_dict(), source="x.toml").option("suppressed") == "drop"
    with pytest.raises(SpecError, match=r"'suppressed'.*\['censored', 'drop'\]"):
        spec.with_options(suppressed="impute")


def test_a_formula_a_shipped_spec_and_the_cli_take_suppressed():
    from typer.testing import CliRunner

    from csc_bayes.cli import app
    from csc_bayes.fitting import as_spec

    formula = "cpp ~ idaci + offset(log(population)) + (1|la)"
    assert as_spec(formula).option("suppressed") == "censored"
    assert as_spec(formula, suppressed="drop").option("suppressed") == "drop"
    assert as_spec("cpp_need", suppressed="drop").option("suppressed") == "drop"
    assert as_spec("cpp_need").option("suppressed") == "censored"
    with pytest.raises(SpecError, match=r"'suppressed'.*\['censored', 'drop'\]"):
        as_spec(formula, suppressed="impute")
    result = CliRunner().invoke(app, ["fit", "--formula", formula, "--suppressed", "impute"])
    assert result.exit_code == 1
    assert "key 'suppressed': unknown value 'impute'; expected one of" in result.output


def test_censored_rows_are_fitted_and_dropped_rows_excluded(censored):
    panel, spec, _ = censored
    in_years = panel["year"].between(2019, 2022)
    n_suppressed = int((panel["cpp_missing"].eq(SUPPRESSED).fillna(False) & in_years).sum())
    assert n_suppressed >= 10
    built = build_model(spec, panel)
    assert built.data["cpp"].isna().sum() == n_suppressed
    assert built.excluded.empty
    dropped = build_model(spec.with_options(suppressed="drop"), panel)
    assert len(dropped.data) == len(built.data) - n_suppressed
    assert (dropped.excluded["reason"] == "cpp: suppressed").sum() == n_suppressed
    # without the range columns, the same suppressed rows are left out under either setting
    bare = panel.drop(columns=["cpp_lower", "cpp_upper"])
    assert len(build_model(spec, bare).data) == len(dropped.data)


def test_pointwise_log_likelihood_equals_pymcs_for_censored_rows(censored):
    panel, spec, fit = censored
    ours, replicated = pointwise_groups(fit, seed=0)
    model = build_model(spec, panel).model
    theirs = pm.compute_log_likelihood(
        fit.idata, model=model, extend_inferencedata=False, progressbar=False
    )
    np.testing.assert_allclose(ours["y"].values, theirs["y"].values, rtol=1e-9, atol=1e-9)
    observed = fit.idata["observed_data"]["y"].values
    lower = fit.idata["constant_data"]["y_lower"].values
    upper = fit.idata["constant_data"]["y_upper"].values
    cens = lower != upper
    assert cens.sum() >= 10 and np.isnan(observed[cens]).all()
    assert (lower[cens] == 1).all() and (upper[cens] == 7).all()
    np.testing.assert_array_equal(observed[~cens], lower[~cens])
    # a censored row's log-likelihood is a log probability of a range: at most 0, and at least
    # that of any one count in it
    assert (ours["y"].values[..., cens] <= 0).all()
    assert replicated["y"].values.dtype.kind == "i"


def test_answers_define_a_censored_rows_observed_count(censored):
    from csc_bayes.compare import heldout_lpd
    from csc_bayes.excess import excess
    from csc_bayes.plots.ppc import ppc_rates
    from csc_bayes.predict import predict

    panel, _, fit = censored
    table = excess(fit, year="all")
    cens = table[table["censored"]]
    assert len(cens) >= 10 and cens["observed"].isna().all()
    assert ((cens["observed_imputed"] >= 1) & (cens["observed_imputed"] <= 7)).all()
    assert (cens["observed_lower"] == 1).all() and (cens["observed_upper"] == 7).all()
    seen = table[~table["censored"]]
    np.testing.assert_array_equal(seen["observed_imputed"], seen["observed"])

    code = str(cens["la_code"].iloc[0])
    year = int(cens["year"].iloc[0])
    row = predict(fit, authority=code, year=year)
    assert np.isnan(row["observed"].iloc[0]) and row["predicted_mean"].iloc[0] > 0

    observed, replicated = ppc_rates(fit, n_replicates=5)
    assert len(observed) == replicated.shape[1] == int((~table["censored"]).sum())

    held = panel[(panel["la_code"] == code) & panel["year"].between(2019, 2022)]
    lpd = heldout_lpd(fit, held, outcome="cpp", seed=0, m=4)
    assert np.isfinite(lpd[code])


# ----------------------------------------------------------------------------- recovery

SMALL_SHARE = 1 / 3


def recovery_panel(seed: int = 2) -> tuple[pd.DataFrame, dict]:
    """Every simulated authority over 2015-2024; a third of them made small (population / 15),
    CPP redrawn from the known truth and counts of 1-19 suppressed with the known range 1-19.
    Low-rate small authorities lose most of their years to suppression."""
    sim = simulate_panel(seed=seed, suppress_below=1)
    panel = sim.panel.copy()
    codes = sorted(panel["la_code"].unique())
    rng = np.random.default_rng(seed)
    small = set(rng.choice(codes, size=int(len(codes) * SMALL_SHARE), replace=False))
    is_small = panel["la_code"].isin(small)
    panel.loc[is_small, "population"] = (panel.loc[is_small, "population"] // 15).astype("Int64")
    seen = panel["cpp"].notna().to_numpy()
    y = simulate_outcome(panel, params=sim.truth["cpp"], rng=np.random.default_rng(seed + 1))
    panel.loc[seen, "cpp"] = y[seen]
    panel = suppress_small_counts(panel, below=20, known_range=True)
    return panel, {**sim.truth["cpp"], "small": sorted(small)}


@pytest.mark.slow
def test_censoring_recovers_small_authorities_where_dropping_is_biased():
    import csc_bayes

    panel, truth = recovery_panel()
    spec = find_spec("cpp_need_spending").with_sampler(draws=500, tune=500, chains=2)
    suppressed = panel["cpp_missing"].eq(SUPPRESSED).fillna(False)
    assert suppressed.mean() > 0.08  # heavy suppression, almost all in small authorities
    fits = {
        mode: csc_bayes.fit(
            spec.with_options(suppressed=mode) if mode == "drop" else spec,
            data=panel,
            out=None,
            progress=False,
        )
        for mode in ("censored", "drop")
    }
    assert fits["censored"].metadata["censored"]["n_rows"] == int(suppressed.sum())
    assert fits["drop"].metadata["censored"]["n_rows"] == 0

    small = truth["small"]
    true_effect = truth["la_effect"]
    error, summary = {}, {}
    for mode, f in fits.items():
        post = f.idata["posterior"]
        effect = post["la_effect"].mean(("chain", "draw")).to_series()
        effect.index = effect.index.astype(str)
        # la_effect is identified up to the intercept: centre both over the fitted authorities
        tru = true_effect.reindex(effect.index)
        error[mode] = (effect - effect.mean()) - (tru - tru.mean())
        codes = [c for c in small if c in effect.index]
        summary[mode] = {
            "n_small": len(codes),
            "small_bias": float(error[mode][codes].mean()),
            "sigma_la": float(post["sigma_la"].mean()),
            "beta_idaci": float(post["beta_per_unit"].sel(covariate="idaci").mean()),
        }
    common = [c for c in small if c in error["drop"].index]
    shift = float((error["drop"][common] - error["censored"][common]).mean())
    print(summary, {"drop_minus_censored_on_common_small": shift, "n_common": len(common)})
    print({"truth": {"sigma_la": truth["sigma_la"], "idaci": truth["beta_per_unit"]["idaci"]}})
    cens, drop = summary["censored"], summary["drop"]
    # censoring keeps every small authority; dropping loses those with every year suppressed
    assert cens["n_small"] == len(small) > drop["n_small"]
    # censoring recovers the small authorities' effects, sigma_la and the coefficient
    assert abs(cens["small_bias"]) < 0.05
    assert abs(cens["sigma_la"] - truth["sigma_la"]) < 0.05
    assert abs(cens["beta_idaci"] - truth["beta_per_unit"]["idaci"]) < 1.0
    # dropping keeps only the small authorities' larger counts: on the same authorities their
    # effects come out higher than under censoring (paired, so the truth's noise cancels)
    assert shift > 0.04
    assert drop["small_bias"] > cens["small_bias"] + 0.04


def test_a_range_too_wide_to_sum_is_an_error_naming_the_authority():
    from csc_bayes.terms.censoring import MAX_WIDTH, row_bounds

    panel = small_censored_panel()
    spec = dataclasses.replace(find_spec("cpp_need"), years=(2019, 2022))
    first = panel.index[panel["cpp_lower"].notna()][0]
    panel.loc[first, "cpp_upper"] = MAX_WIDTH + 1
    code, year = panel.loc[first, "la_code"], panel.loc[first, "year"]
    with pytest.raises(SpecError, match=f"authority {code} {year} is 1-{MAX_WIDTH + 1}"):
        row_bounds(spec, panel)
    lower, upper = row_bounds(spec.with_options(suppressed="drop"), panel)
    assert np.isnan(lower[first]) and np.isnan(upper[first])
