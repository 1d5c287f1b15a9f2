"""Every back end: groups, normalised sample stats, reproducible draws; on a tiny NB model."""

from __future__ import annotations

import jax
import numpy as np
import pymc as pm
import pytest

from csc_bayes.diagnostics import check_convergence
from csc_bayes.errors import CscBayesError
from csc_bayes.sampling import (
    BACKENDS,
    MAX_TREEDEPTH,
    NORMALISED_STATS,
    DrawsToTarget,
    UnknownBackendError,
    enable_compilation_cache,
    sample,
)

# max_treedepth=3 (at most 7 leapfrog steps): fast, and the toy model saturates it (it wants 4-5)
TINY = {"draws": 30, "tune": 30, "chains": 2, "progress": False, "max_treedepth": 3}


def toy_model(n_la: int = 6, n_years: int = 3, seed: int = 0) -> pm.Model:
    """Hierarchical negative binomial: y ~ NB(exposure * exp(intercept + la_effect[la]), phi)."""
    rng = np.random.default_rng(seed)
    la_idx = np.repeat(np.arange(n_la), n_years)
    exposure = rng.uniform(1e3, 5e3, la_idx.size)
    mu = exposure * np.exp(-5 + rng.normal(0, 0.3, n_la)[la_idx])
    y = rng.negative_binomial(20, 20 / (20 + mu))
    coords = {"la": [str(380 + i) for i in range(n_la)], "obs": np.arange(la_idx.size)}
    with pm.Model(coords=coords) as model:
        idx = pm.Data("la_idx", la_idx, dims="obs")
        log_exposure = pm.Data("log_exposure", np.log(exposure), dims="obs")
        intercept = pm.Normal("intercept", -5, 2)
        sigma_la = pm.HalfNormal("sigma_la", 1)
        z = pm.Normal("z_la", 0, 1, dims="la")
        la_effect = pm.Deterministic("la_effect", z * sigma_la, dims="la")
        phi = pm.Gamma("phi", 2, 0.1)
        eta = log_exposure + intercept + la_effect[idx]
        pm.NegativeBinomial("y", mu=pm.math.exp(eta), alpha=phi, observed=y, dims="obs")
    return model


@pytest.fixture(scope="module")
def model() -> pm.Model:
    return toy_model()


def test_unknown_backend_lists_the_valid_ones(model):
    with pytest.raises(UnknownBackendError, match="numpyro, blackjax, nutpie, pymc") as info:
        sample(model, backend="stan", draws=10, tune=10, chains=1, seed=0)
    assert isinstance(info.value, CscBayesError) and isinstance(info.value, ValueError)


@pytest.fixture(scope="module")
def results(model) -> dict:
    """One tiny run per back end, shared by the tests that only read it."""
    return {backend: sample(model, backend=backend, seed=11, **TINY) for backend in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_output_contract(model, results, backend):
    result = results[backend]
    idata = result.idata
    assert result.backend == backend
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive"} <= set(
        idata.children
    )
    assert {"observed_data", "constant_data"} <= set(idata.children)
    assert set(result.timings) == {"sampling", "log_likelihood", "posterior_predictive", "total"}
    assert result.timings["total"] >= result.timings["sampling"] > 0

    post = idata["posterior"]
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 30
    assert list(post["la"].values) == [str(380 + i) for i in range(6)]
    assert {"intercept", "sigma_la", "phi", "la_effect"} <= set(post.data_vars)
    assert float(post["sigma_la"].min()) > 0  # constrained scale, not log sigma
    for group in ("posterior_predictive", "log_likelihood"):
        assert idata[group]["y"].dims == ("chain", "draw", "obs")
    for group in ("posterior", "sample_stats"):
        for name, da in idata[group].data_vars.items():
            assert type(da.variable._data) is np.ndarray, f"{group}/{name} is not numpy"
    observed = model.rvs_to_values[model["y"]].data
    np.testing.assert_array_equal(idata["observed_data"]["y"].values, observed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_normalised_sample_stats(results, backend):
    stats = results[backend].idata["sample_stats"]
    assert set(NORMALISED_STATS) <= set(stats.data_vars)
    assert stats["diverging"].dtype == bool and stats["reached_max_treedepth"].dtype == bool
    assert stats["n_steps"].dtype == np.int64 and stats["tree_depth"].dtype == np.int64
    steps, depth = stats["n_steps"].values, stats["tree_depth"].values
    assert ((depth >= 1) & (depth <= 3)).all()
    # Stan's convention: a trajectory of depth d has 2**(d-1) to 2**d - 1 leapfrog steps
    assert (steps >= 2 ** (depth - 1)).all() and (steps <= 2**depth - 1).all()
    np.testing.assert_array_equal(stats["reached_max_treedepth"], depth == 3)
    assert stats["reached_max_treedepth"].values.any()
    assert np.isfinite(stats["energy"].values).all()
    assert check_convergence(results[backend].idata).n_chains == 2  # the gate reads them


def _assert_reproducible(model, backend, first):
    again = sample(model, backend=backend, seed=11, **TINY)
    post = first.idata["posterior"]
    for name in post.data_vars:
        np.testing.assert_array_equal(post[name].values, again.idata["posterior"][name].values)
    np.testing.assert_array_equal(
        first.idata["posterior_predictive"]["y"].values,
        again.idata["posterior_predictive"]["y"].values,
    )
    other = sample(
        model, backend=backend, seed=12, posterior_predictive=False, log_likelihood=False, **TINY
    )
    assert not np.array_equal(post["intercept"].values, other.idata["posterior"]["intercept"])


@pytest.mark.parametrize("backend", ["numpyro", "nutpie"])
def test_same_seed_same_draws(model, results, backend):
    _assert_reproducible(model, backend, results[backend])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["blackjax", "pymc"])
def test_same_seed_same_draws_slow_backends(model, results, backend):
    _assert_reproducible(model, backend, results[backend])


def test_numpyro_optional_groups_and_chain_methods(model, results):
    assert results["numpyro"].settings["chain_method"] == "parallel"
    bare = sample(
        model,
        seed=1,
        chain_method="vectorized",
        posterior_predictive=False,
        log_likelihood=False,
        **TINY,
    )
    assert "posterior_predictive" not in bare.idata.children
    assert "log_likelihood" not in bare.idata.children
    assert bare.settings["chain_method"] == "vectorized"
    assert jax.local_device_count() >= 2  # prepare_jax (sampling's start) gives a device a chain


def test_a_converged_numpyro_fit_passes_the_gate(model):
    result = sample(
        model,
        seed=5,
        draws=1000,
        tune=500,
        chains=4,
        target_accept=0.95,
        progress=False,
        posterior_predictive=False,
        log_likelihood=False,
    )
    gate = check_convergence(result.idata)
    assert gate.passed, str(gate)
    assert result.settings["max_treedepth"] == MAX_TREEDEPTH


def test_compilation_cache_location(monkeypatch, tmp_path):
    monkeypatch.setenv("CSC_BAYES_JAX_CACHE", "off")
    assert enable_compilation_cache() is None
    before = jax.config.jax_compilation_cache_dir
    try:
        monkeypatch.setenv("CSC_BAYES_JAX_CACHE", str(tmp_path / "jax"))
        assert enable_compilation_cache() == tmp_path / "jax"
        assert (tmp_path / "jax").is_dir()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "jax")
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def _looks_until(met_at_look: int | None):
    """A stand-in target: unmet until look number ``met_at_look`` (None: never met)."""
    looks: list[int] = []

    def until(idata) -> list[str]:
        looks.append(idata["posterior"].sizes["draw"])
        # the gate reads what it reads after sampling: normalised statistics
        assert set(NORMALISED_STATS) <= set(idata["sample_stats"].data_vars)
        return [] if met_at_look is not None and len(looks) >= met_at_look else ["ESS_BULK: x"]

    return until, looks


def test_draws_auto_stops_at_the_first_look_that_meets_the_target(model, results):
    until, looks = _looks_until(2)
    auto = sample(
        model,
        seed=11,
        **{**TINY, "draws": "auto"},
        until=until,
        to_target=DrawsToTarget(min_draws=10, block_draws=5, max_draws=30),
        posterior_predictive=False,
        log_likelihood=False,
    )
    record = auto.settings["auto"]
    assert looks == [10, 15]  # first look at min_draws, then one per block
    assert record["draws"] == 15 and record["blocks"] == 3 and record["met"] is True
    assert record["stopped"] == "gate met after 15 draws per chain (R-hat and ESS targets)"
    assert [look["unmet"] for look in record["looks"]] == [["ESS_BULK: x"], []]
    # the same chains as a fixed-draw run of the same seed, cut at 15 draws, in the same layout
    fixed = results["numpyro"].idata
    for group in ("posterior", "sample_stats"):
        got, want = auto.idata[group].dataset, fixed[group].dataset.isel(draw=slice(0, 15))
        assert list(got.data_vars) == list(want.data_vars)
        assert dict(got.sizes) == dict(want.sizes)
        for name in want.data_vars:
            assert got[name].dtype == want[name].dtype and got[name].dims == want[name].dims
            np.testing.assert_array_equal(got[name].values, want[name].values, err_msg=name)
    assert list(auto.idata["posterior"]["la"].values) == list(fixed["posterior"]["la"].values)
    assert {"observed_data", "constant_data"} <= set(auto.idata.children)


def test_draws_auto_records_the_cap(model):
    until, looks = _looks_until(None)
    auto = sample(
        model,
        seed=11,
        **{**TINY, "draws": "auto"},
        until=until,
        # blocks of 5 as above: the same compiled programs (JAX's compilation cache)
        to_target=DrawsToTarget(min_draws=50, block_draws=5, max_draws=10),
        posterior_predictive=False,
        log_likelihood=False,
    )
    record = auto.settings["auto"]
    assert looks == [10]  # min_draws above the cap: one look, at the cap
    assert record["met"] is False and record["blocks"] == 2
    assert record["stopped"] == "cap reached: 10 draws per chain (max_draws) with ESS_BULK: x"
    assert auto.idata["posterior"].sizes["draw"] == 10


def test_draws_to_target_blocks_look_from_min_draws_and_end_at_the_cap():
    assert DrawsToTarget(1000, 500, 4000).blocks() == [(500, False)] + [(500, True)] * 7
    assert DrawsToTarget(10, 4, 18).blocks() == [
        (4, False),
        (4, False),
        (4, True),
        (4, True),
        (2, True),
    ]
    assert DrawsToTarget(50, 5, 12).blocks() == [(5, False), (5, False), (2, True)]


def test_draws_auto_needs_numpyro_and_a_target(model):
    with pytest.raises(ValueError, match='draws="auto" needs backend="numpyro"'):
        sample(model, backend="nutpie", seed=1, **{**TINY, "draws": "auto"}, until=lambda i: [])
    with pytest.raises(ValueError, match="until"):
        sample(model, seed=1, **{**TINY, "draws": "auto"})
