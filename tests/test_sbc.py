"""Simulation-based calibration: the generator, the rank statistics, and a small run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from csc_bayes.sbc import (
    draw_from_prior,
    n_bins,
    nb_loglik,
    run_sbc,
    sbc_specs,
    sbc_template,
    simulate_replicate,
    simultaneous_band,
    uniformity_tests,
)
from csc_bayes.spec import Prior, find_spec


@pytest.fixture(scope="module")
def template() -> pd.DataFrame:
    return sbc_template(n_authorities=12, years=(2021, 2024), seed=3)


# ---------------------------------------------------------------------------- generator
def test_frozen_priors_are_explicit_and_the_control_halves_scales(template):
    generator, fitted = sbc_specs(find_spec("cpp_need"), template, fit_prior_scale=0.5)
    assert generator.years == (2021, 2024)
    assert set(generator.priors) == {
        "intercept",
        "beta.idaci",
        "beta.ethnic_minority_share",
        "sigma_la",
        "sigma_region",
        "sigma_year",
        "phi",
    }
    assert all(p.dist is not None for p in generator.priors.values())
    g, f = generator.priors, fitted.priors
    assert f["sigma_la"].kwargs["sigma"] == pytest.approx(g["sigma_la"].kwargs["sigma"] / 2)
    assert f["intercept"].kwargs["mu"] == g["intercept"].kwargs["mu"]
    assert f["phi"].kwargs["beta"] == pytest.approx(2 * g["phi"].kwargs["beta"])  # scale 1/rate
    assert fitted.name != generator.name


@pytest.mark.parametrize(
    ("prior", "mean", "sd"),
    [
        (Prior("normal", (("mu", 1.0), ("sigma", 2.0))), 1.0, 2.0),
        (Prior("halfnormal", (("sigma", 2.0),)), 2.0 * np.sqrt(2 / np.pi), None),
        (Prior("gamma", (("alpha", 2.0), ("beta", 0.02))), 100.0, np.sqrt(2) / 0.02),
        (Prior("exponential", (("lam", 4.0),)), 0.25, 0.25),
    ],
)
def test_prior_draws_have_the_documented_moments(prior, mean, sd):
    x = draw_from_prior(prior, np.random.default_rng(1), 200_000)
    assert x.mean() == pytest.approx(mean, rel=0.02)
    if sd is not None:
        assert x.std() == pytest.approx(sd, rel=0.02)


def test_replicate_follows_the_documented_model(template):
    from csc_bayes.model import build_model

    generator, _ = sbc_specs(find_spec("cpp_need"), template)
    panel, truth = simulate_replicate(generator, template, seed=(5, 0))
    again, _ = simulate_replicate(generator, template, seed=(5, 0))
    pd.testing.assert_frame_equal(panel, again)
    assert abs(truth["year_effect"].sum()) < 1e-12  # sum-to-zero year and region effects
    assert abs(truth["region_effect"].sum()) < 1e-12 and truth["region_effect"].std() > 0
    # the generator's standardisation and linear predictor agree with the model's data
    built = build_model(generator, panel)
    X = built.model["X"].get_value()
    eta = (
        built.model["log_exposure"].get_value()
        + truth["intercept"]
        + X @ truth["beta"].to_numpy()
        + truth["la_effect"].to_numpy()[built.model["la_idx"].get_value()]
    )
    regions = list(built.model.coords["region"])
    eta += truth["region_effect"].reindex(regions).to_numpy()[built.model["region_idx"].get_value()]
    eta += truth["year_effect"].to_numpy()[built.model["year_idx"].get_value()]
    np.testing.assert_allclose(np.exp(eta), truth["mu"], rtol=1e-10)
    assert panel["cpp"].notna().all() and built.excluded.empty  # nothing suppressed


def test_nb_loglik_matches_scipy():
    y, mu, phi = np.array([0, 3, 40, 250]), np.array([1.5, 4.0, 35.0, 300.0]), 7.5
    expected = stats.nbinom.logpmf(y, phi, phi / (mu + phi)).sum()
    assert nb_loglik(y, mu, phi) == pytest.approx(expected, rel=1e-12)
    assert nb_loglik(y, mu, np.inf) == pytest.approx(stats.poisson.logpmf(y, mu).sum())


# ---------------------------------------------------------------------------- statistics
def test_uniformity_tests_accept_uniform_and_reject_skewed_ranks():
    rng = np.random.default_rng(0)
    ranks = pd.DataFrame(
        {
            "uniform": rng.integers(0, 100, 400),
            "too_narrow": np.clip(rng.normal(50, 10, 400).round(), 0, 99).astype(int),
            "biased": rng.integers(0, 60, 400),
        }
    )
    tests = uniformity_tests(ranks, n_ranks=99).set_index("quantity")
    assert tests.loc["uniform", "passed"]
    assert not tests.loc["too_narrow", "passed"] and not tests.loc["biased", "passed"]
    assert tests.loc["uniform", "bins"] == 20
    assert (tests["p_adjusted"] >= tests["p_value"]).all()


def test_bins_divide_rank_values_and_keep_expected_counts():
    assert n_bins(200) == 20 and n_bins(50) == 10 and n_bins(8) == 4
    for sims in (3, 8, 40, 200, 1000):
        assert 100 % n_bins(sims) == 0


def test_simultaneous_band_covers_uniform_ecdfs_about_95_percent():
    n, L = 50, 19
    z, low, high = simultaneous_band(n, L, n_sim=2000, seed=1)
    rng = np.random.default_rng(2)
    sims = rng.integers(0, L + 1, size=(2000, n))
    ecdf = (sims[:, :, None] < np.arange(1, L + 1)).mean(axis=1) - z
    inside = ((ecdf >= low - 1e-12) & (ecdf <= high + 1e-12)).all(axis=1).mean()
    assert 0.93 <= inside <= 0.99
    assert (low < 0).all() and (high > 0).all()


# ---------------------------------------------------------------------------- small runs
SMALL = dict(
    sims=8,
    seed=11,
    n_authorities=12,
    years=(2021, 2024),
    draws=100,
    tune=100,
    chains=1,
    progress=False,
)


@pytest.mark.slow  # ~2 min of NUTS; the rank, test and band code has fast unit tests above
def test_small_sbc_computes_ranks_tests_and_files(tmp_path):
    """8 replicates on 2 workers: the machinery (the >= 200-simulation runs are recorded in
    results/sbc/, see docs/scale.md)."""
    from csc_bayes.batch import dask_client

    with dask_client(n_workers=2) as client:
        good = run_sbc("cpp_need", fits_dir=tmp_path / "fits", client=client, **SMALL)
        # a summary of what is saved so far fits nothing and gives the same ranks
        so_far = run_sbc(
            "cpp_need",
            fits_dir=tmp_path / "fits",
            client=client,
            saved_only=True,
            **{**SMALL, "sims": 10},
        )
    assert so_far.info["sims_done"] == 8 and so_far.info["sims_not_fitted"] == 2
    pd.testing.assert_frame_equal(so_far.ranks, good.ranks)
    assert good.info["sims_done"] == 8 and not good.info["failed"]
    expected = {"intercept", "beta[idaci]", "sigma_la", "sigma_year", "phi", "log_lik"}
    assert expected <= set(good.ranks.columns)
    assert len([c for c in good.ranks.columns if c.startswith("la_effect[")]) == 3
    assert good.ranks.min().min() >= 0 and good.ranks.max().max() <= 99
    assert good.tests["p_value"].between(0, 1).all()
    assert good.passed
    folder = good.save(tmp_path / "result")
    assert {p.name for p in folder.iterdir()} == {
        "ranks.csv",
        "tests.csv",
        "info.json",
        "ranks_ecdf.png",
    }


@pytest.mark.slow
def test_small_sbc_detects_a_grossly_wrong_model(tmp_path):
    """Prior scales ten times too small in the fit only: rejected even with 8 replicates
    (about 4 minutes on 2 busy cores, hence slow)."""
    wrong = run_sbc(
        "cpp_need", fits_dir=tmp_path / "fits", n_workers=2, fit_prior_scale=0.1, **SMALL
    )
    assert wrong.info["sims_done"] == 8
    assert not wrong.passed
    failing = set(wrong.tests.loc[~wrong.tests["passed"], "quantity"])
    assert failing & {"sigma_la", "sigma_region", "sigma_year", "intercept"}
