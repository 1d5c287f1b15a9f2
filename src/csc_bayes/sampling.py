"""NUTS on a JAX back end: one call from a PyMC model to a DataTree the rest of csc_bayes reads.

``sample(model, backend=..., draws=..., tune=..., chains=..., seed=...)`` returns a
:class:`SampleResult` whose ``idata`` has the groups ``posterior``, ``sample_stats``,
``log_likelihood`` and ``posterior_predictive`` (``y`` on ``obs``), ``observed_data`` and
``constant_data`` (see the posterior contract in ARCHITECTURE.md).

Back ends (:data:`BACKENDS`):

- ``numpyro`` (default): ``pm.sample(nuts_sampler="numpyro")``; chains run with
  :data:`NUMPYRO_CHAIN_METHOD` (see "Chains on CPU" below).
- ``blackjax``: blackjax's NUTS with Stan-style window adaptation, driven here because PyMC 6.4's
  blackjax driver passes ``progress_bar`` to blackjax 1.7's kernel and fails.
- ``nutpie``: nutpie's Rust NUTS with the model compiled by JAX, logp and gradient
  (``pm.sample(nuts_sampler="nutpie", backend="jax", compile_kwargs={"gradient_backend": "jax"})``).
- ``pymc``: PyMC's own NUTS (``nuts_sampler="pymc"``, PyTensor's default compiler), for baselines.

Every back end uses the same maximum tree depth (``max_treedepth``, default :data:`MAX_TREEDEPTH`)
and the same seed handling: the same model, data, seed and settings give identical draws.

Sample statistics are renamed to one vocabulary (these four, plus ``reached_max_treedepth`` =
``tree_depth >= max_treedepth``, are the five promised):

=========================  ================  ==================  ===================  ============
normalised name            numpyro           blackjax            nutpie               pymc
=========================  ================  ==================  ===================  ============
``diverging`` (bool)       diverging         is_divergent        diverging            diverging
``tree_depth`` (int)       floor(log2(       num_trajectory_     floor(log2(          tree_depth
                           num_steps)) + 1   expansions          n_steps)) + 1
``energy`` (float)         energy            energy              energy               energy
``n_steps`` (int)          num_steps         num_integration_    n_steps              n_steps
                                             steps
=========================  ================  ==================  ===================  ============

``tree_depth`` follows Stan's convention (a trajectory of depth d has 2**(d-1) to 2**d - 1
leapfrog steps, counting a last doubling that was rejected for a U-turn). nutpie's own ``depth``
leaves out such a last doubling, so it is derived from ``n_steps`` instead.
``reached_max_treedepth`` (bool) is ``tree_depth >= max_treedepth`` for every back end, as in
Stan's saturation warning (nutpie's ``maxdepth_reached`` and PyMC's own flag are replaced).
``n_steps`` is the number of leapfrog steps of the draw's trajectory, i.e. gradient evaluations.
Other statistics a back end reports are kept under their own names, except non-numeric ones
(nutpie's ``divergence_message``), which cannot be stored in netCDF.

Chains on CPU: JAX runs numpyro's chains ``"parallel"`` (one XLA host device per chain, pmap),
``"vectorized"`` (vmap: one program, every chain waits for the longest trajectory) or
``"sequential"``. Parallel needs several host devices, which JAX fixes when it starts its backend
(its first computation). Importing csc_bayes configures nothing; :func:`prepare_jax`, called when
:func:`sample` starts, asks JAX for :data:`HOST_DEVICES` CPU devices (``jax_num_cpu_devices``)
unless ``XLA_FLAGS`` already names a count (``--xla_force_host_platform_device_count``, as batch
workers do) or ``jax_num_cpu_devices`` was set. If JAX's backend had already started with fewer
devices than chains (your own JAX work ran first), the chains run ``"vectorized"`` instead and the
fit records that (``settings["chain_method"]`` and the ``sample_stats`` attributes
``chain_method`` / ``chain_method_reason``). Call :func:`prepare_jax` first to avoid that.
(PyMC's own ``pymc.sampling.jax``, which ``pm.sample`` imports for numpyro and nutpie, rewrites
``XLA_FLAGS`` when imported; csc_bayes itself modifies no environment variable.)

Draws to target: ``sample(..., draws="auto", until=..., to_target=DrawsToTarget(...))`` (numpyro
only) drives numpyro's ``MCMC`` here on the log density PyMC compiles for JAX, with the seeding,
jittered starts and kernel of ``pm.sample(nuts_sampler="numpyro")``: warm-up and a first block in
one program, then blocks of ``block_draws`` continued from every chain's last state (numpyro's
``MCMC.last_state``; PyMC's own numpyro driver cannot continue a run). From ``min_draws`` on,
``until`` sees all draws so far after every block (posterior and normalised statistics) and
returns the targets they miss; sampling stops when it returns none, or at ``max_draws``. The
draws are the first draws of a fixed-draw run with the same settings, bit for bit, and have the
same groups, variables, coordinates and statistics; ``settings["auto"]`` records the blocks, the
draws, why it stopped and every look. Chains run :data:`AUTO_CHAIN_METHOD` when there is a host
device per chain (measured by ``benchmarks/chain_method.py``).

Compile cache: :func:`prepare_jax` also points JAX's persistent compilation cache at
``$CSC_BAYES_JAX_CACHE`` (default ``~/.cache/csc_bayes/jax``; ``off`` disables it) unless the
JAX cache directory was configured already, so a refit of an unchanged model skips most XLA
compilation. Like the device count, it takes effect only if JAX has compiled nothing yet.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pymc as pm
import xarray as xr

from csc_bayes.errors import CscBayesError, UnknownBackendError

# one list of back ends and one default depth, validated in spec files too
from csc_bayes.spec import (
    AUTO_DRAWS,
    BACKENDS,
    DEFAULT_BLOCK_DRAWS,
    DEFAULT_MAX_DRAWS,
    DEFAULT_MAX_TREEDEPTH,
    DEFAULT_MIN_DRAWS,
)

__all__ = [
    "AUTO_CHAIN_METHOD",
    "BACKENDS",
    "HOST_DEVICES",
    "MAX_TREEDEPTH",
    "NORMALISED_STATS",
    "NUMPYRO_CHAIN_METHOD",
    "DrawsToTarget",
    "SampleResult",
    "Target",
    "UnknownBackendError",
    "enable_compilation_cache",
    "prepare_jax",
    "sample",
]


#: maximum NUTS tree depth (doublings) for every back end; 2**10 - 1 = 1023 leapfrog steps
MAX_TREEDEPTH = DEFAULT_MAX_TREEDEPTH

#: the sample statistics every back end provides, under these names
NORMALISED_STATS = ("diverging", "tree_depth", "reached_max_treedepth", "energy", "n_steps")

#: how numpyro and blackjax run chains when enough XLA host devices exist (else "vectorized")
NUMPYRO_CHAIN_METHOD = "parallel"

#: how ``draws="auto"`` runs chains when there is an XLA host device per chain: the faster of
#: "parallel" and "vectorized" in ``benchmarks/chain_method.py`` (results/chain_method.md)
AUTO_CHAIN_METHOD = "parallel"
_AUTO_CHAIN_EVIDENCE = (
    "faster than vectorized chains per CPU second (benchmarks/results/chain_method.md)"
)

#: XLA host (CPU) devices asked for when sampling starts: one per chain for parallel chains
HOST_DEVICES = max(8, os.cpu_count() or 1)

_CACHE_ENV = "CSC_BAYES_JAX_CACHE"
_DEVICE_FLAG = "xla_force_host_platform_device_count"
#: set by the first :func:`prepare_jax` call of the process
_prepared: dict[str, object] = {}


@dataclass
class SampleResult:
    """Draws and how long they took.

    Attributes:
        idata: DataTree with posterior, sample_stats, log_likelihood, posterior_predictive,
            observed_data and constant_data (the last four as requested / present).
        timings: seconds for ``sampling`` (including compilation), ``log_likelihood``,
            ``posterior_predictive`` and ``total``.
        backend: the back end used, one of :data:`BACKENDS`.
        settings: JSON-safe sampler settings (draws, tune, chains, seed, target_accept,
            max_treedepth, chain_method) for the fit's metadata.
    """

    idata: xr.DataTree
    timings: dict[str, float]
    backend: str
    settings: dict[str, object] = field(default_factory=dict)


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Point JAX's persistent compilation cache at ``path`` and return it (None: disabled).

    Default: ``$CSC_BAYES_JAX_CACHE``, else ``~/.cache/csc_bayes/jax``; the value ``off`` (or
    ``0``, ``none``, empty) disables the cache. Every compiled program is cached (no minimum
    compile time), since a model's many small JAX functions add up.
    """
    if path is None:
        setting = os.environ.get(_CACHE_ENV, str(Path.home() / ".cache" / "csc_bayes" / "jax"))
        if setting.strip().lower() in {"", "0", "off", "none", "false"}:
            return None
        path = setting
    cache = Path(path).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return cache


def prepare_jax(chains: int = 1) -> dict[str, object]:
    """Configure JAX for sampling: host devices for parallel chains, and the compilation cache.

    Called by :func:`sample` before it runs anything on JAX; the first call of a process does the
    work (see "Chains on CPU" and "Compile cache" above), later calls return its record. Nothing
    is changed when the user configured it: ``XLA_FLAGS`` naming a device count, or
    ``jax_num_cpu_devices`` / ``jax_compilation_cache_dir`` already set. Environment variables
    are never modified.

    Returns:
        ``{"host_devices": int | None (None: left as configured), "backend_started": bool (JAX's
        backend had started before, so the device count could not be set), "cache": Path |
        None}``.
    """
    if _prepared:
        return _prepared
    record: dict[str, object] = {"host_devices": None, "backend_started": False}
    user_count = _DEVICE_FLAG in os.environ.get("XLA_FLAGS", "")
    if not user_count and jax.config.jax_num_cpu_devices < 0:
        wanted = max(HOST_DEVICES, chains)
        try:
            jax.config.update("jax_num_cpu_devices", wanted)
            record["host_devices"] = wanted
        except RuntimeError:  # the backend has started: its device count is fixed
            record["backend_started"] = True
    if os.environ.get(_CACHE_ENV) is not None or jax.config.jax_compilation_cache_dir is None:
        record["cache"] = enable_compilation_cache()
    else:
        record["cache"] = Path(jax.config.jax_compilation_cache_dir)
    _prepared.update(record)
    return _prepared


def sample(
    model: pm.Model,
    *,
    backend: str = "numpyro",
    draws: int | str,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float = 0.9,
    progress: bool = True,
    posterior_predictive: bool = True,
    log_likelihood: bool = True,
    max_treedepth: int = MAX_TREEDEPTH,
    chain_method: str | None = None,
    until: Target | None = None,
    to_target: DrawsToTarget | None = None,
) -> SampleResult:
    """Sample ``model`` with NUTS on ``backend`` and add log-likelihood and predictive draws.

    Args:
        model: a PyMC model with continuous free variables and observed ``y`` on ``obs``.
        backend: one of :data:`BACKENDS`.
        draws, tune: draws kept per chain, and warm-up iterations per chain (discarded).
            ``draws="auto"`` (numpyro only): draw in blocks (``to_target``, default
            :class:`DrawsToTarget` ()) until ``until`` returns no unmet target or the cap is
            reached; ``settings["auto"]`` records the blocks, the draws and why it stopped.
        chains: number of chains (the convergence gate wants at least 4).
        seed: integer seed; the same seed gives the same draws for the same back end.
        target_accept: target mean acceptance probability of step-size adaptation.
        progress: show the back end's progress bar (or a rich spinner for blackjax).
        posterior_predictive: draw ``y`` given each posterior draw (seeded from ``seed``).
        log_likelihood: store pointwise log p(y_i | draw) in ``log_likelihood``.
        max_treedepth: most tree doublings per draw (at most 2**max_treedepth - 1 steps).
        chain_method: numpyro / blackjax only: "parallel", "vectorized" or "sequential"
            (numpyro only); default :data:`NUMPYRO_CHAIN_METHOD` when there is an XLA host
            device per chain, else "vectorized".
        until: with ``draws="auto"``: the targets the draws so far miss (:data:`Target`).
        to_target: with ``draws="auto"``: the first look, the block size and the cap.

    Raises:
        UnknownBackendError: ``backend`` is not one of :data:`BACKENDS`.
        ValueError: ``draws="auto"`` with a back end other than numpyro, or without ``until``.
    """
    if backend not in BACKENDS:
        raise UnknownBackendError(
            f"unknown sampling back end {backend!r}; choose one of {', '.join(BACKENDS)}"
        )
    auto = draws == AUTO_DRAWS
    if auto and (backend != "numpyro" or until is None):
        raise ValueError(
            'draws="auto" needs backend="numpyro" (the one that can continue a run) and a '
            f"target (until=...); got backend={backend!r}, until={until!r}"
        )
    prepared = prepare_jax(chains)
    chain_reason = "requested"
    if chain_method is None:
        devices = jax.local_device_count()
        if devices >= chains and auto:
            chain_method = AUTO_CHAIN_METHOD
            chain_reason = f"{devices} devices; {AUTO_CHAIN_METHOD} {_AUTO_CHAIN_EVIDENCE}"
        elif devices >= chains:
            chain_method, chain_reason = NUMPYRO_CHAIN_METHOD, f"{devices} devices"
        else:
            chain_method = "vectorized"
            chain_reason = f"{devices} JAX device(s) for {chains} chains" + (
                " (JAX had started before sampling)" if prepared["backend_started"] else ""
            )
    start = time.perf_counter()
    record: dict[str, object] | None = None
    if auto:
        plan = to_target or DrawsToTarget()
        idata, record = _sample_numpyro_to_target(
            model,
            plan=plan,
            until=until,  # type: ignore[arg-type]
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress=progress,
            max_treedepth=max_treedepth,
            chain_method=chain_method,
        )
        record = {**asdict(plan), **record}
    elif backend == "blackjax":
        idata = _sample_blackjax(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress=progress,
            max_treedepth=max_treedepth,
            chain_method=chain_method,
        )
    else:
        idata = _sample_with_pymc(
            model,
            backend=backend,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress=progress,
            max_treedepth=max_treedepth,
            chain_method=chain_method,
        )
    # numpyro's draws arrive as JAX arrays: store plain numpy so that saving, numba and
    # arithmetic with other fits behave the same for every back end
    idata["posterior"] = xr.DataTree(_to_numpy(idata["posterior"].dataset))
    stats = _normalise_stats(_to_numpy(idata["sample_stats"].dataset), backend, max_treedepth)
    if backend in ("numpyro", "blackjax"):
        stats.attrs.update(chain_method=chain_method, chain_method_reason=chain_reason)
    idata["sample_stats"] = xr.DataTree(stats)
    timings = {"sampling": time.perf_counter() - start}

    tic = time.perf_counter()
    if log_likelihood:
        loglik = pm.compute_log_likelihood(
            idata, model=model, extend_inferencedata=False, progressbar=False
        )
        idata["log_likelihood"] = xr.DataTree(loglik)  # a Dataset when not extending
    timings["log_likelihood"] = time.perf_counter() - tic

    tic = time.perf_counter()
    if posterior_predictive:
        predictive = pm.sample_posterior_predictive(
            idata,
            model=model,
            random_seed=np.random.default_rng([seed, 1]),
            progressbar=progress,
        )
        idata["posterior_predictive"] = predictive["posterior_predictive"]
    timings["posterior_predictive"] = time.perf_counter() - tic
    timings["total"] = time.perf_counter() - start

    settings = {
        "backend": backend,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "target_accept": target_accept,
        "max_treedepth": max_treedepth,
        "chain_method": chain_method if backend in ("numpyro", "blackjax") else None,
        "chain_method_reason": chain_reason if backend in ("numpyro", "blackjax") else None,
    }
    if record is not None:
        settings["auto"] = record
    return SampleResult(idata=idata, timings=timings, backend=backend, settings=settings)


@dataclass(frozen=True)
class DrawsToTarget:
    """``draws = "auto"``: when to look at the draws and when to give up (draws per chain).

    Draws come in blocks of ``block_draws`` (one compiled program for every block); the draws
    are looked at after each block once there are at least ``min_draws``, and sampling stops
    at the first look whose draws meet the target, or after ``max_draws`` (the last block is cut
    to end there).
    """

    min_draws: int = DEFAULT_MIN_DRAWS
    block_draws: int = DEFAULT_BLOCK_DRAWS
    max_draws: int = DEFAULT_MAX_DRAWS

    def blocks(self) -> list[tuple[int, bool]]:
        """(draws per chain, look after it?) of each block up to the cap."""
        out: list[tuple[int, bool]] = []
        drawn = 0
        while drawn < self.max_draws:
            size = min(self.block_draws, self.max_draws - drawn)
            drawn += size
            out.append((size, drawn >= self.min_draws or drawn == self.max_draws))
        return out


#: ``until(idata)`` of :func:`sample` with ``draws="auto"``: the targets the draws so far miss
#: (one line each; empty when every target is met)
Target = Callable[[xr.DataTree], list[str]]

#: sample statistics numpyro collects, as PyMC's numpyro driver collects them
_NUMPYRO_FIELDS = (
    "num_steps",
    "potential_energy",
    "energy",
    "adapt_state.step_size",
    "accept_prob",
    "diverging",
)
_NUMPYRO_STAT_NAMES = {
    "potential_energy": "lp",
    "adapt_state.step_size": "step_size",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
}


def _sample_numpyro_to_target(
    model: pm.Model,
    *,
    plan: DrawsToTarget,
    until: Target,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    progress: bool,
    max_treedepth: int,
    chain_method: str,
) -> tuple[xr.DataTree, dict[str, object]]:
    """numpyro's NUTS driven here in blocks, on the log density PyMC compiles for JAX.

    The same start, kernel and random streams as ``pm.sample(nuts_sampler="numpyro")`` (PyMC's
    ``pymc.sampling.jax.sample_jax_nuts``): the seed is spawned the same way, the jittered
    initial points come from PyMC's own helper, and numpyro continues each chain's state (its
    random key included) from one block to the next, so n draws here are the first n draws of
    a fixed-draw fit of the same settings. Warm-up runs once, before the first block.

    Returns:
        The DataTree (posterior, sample_stats, observed_data, constant_data) and a record:
        ``blocks``, ``draws`` (per chain), ``stopped`` (why), ``met`` (bool) and ``looks`` (per
        block: draws so far, the unmet targets, wall and CPU seconds since sampling started).
    """
    from arviz_base import from_dict
    from numpyro.infer import MCMC, NUTS
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        find_constants,
        find_observations,
    )
    from pymc.sampling.jax import (
        _get_batched_jittered_initial_points,
        get_jaxified_graph,
        get_jaxified_logp,
    )
    from pymc.util import _get_seeds_per_chain, get_default_varnames, get_random_generator

    # pm.sample's seeding: one seed per chain spawned from `seed`, the JAX driver takes the first
    first = int(get_random_generator(seed).spawn(chains)[0].integers(2**30))
    (jax_seed,) = _get_seeds_per_chain(first, 1)
    logp_fn = get_jaxified_logp(model, negative_logp=False)
    initial_points = _get_batched_jittered_initial_points(
        model=model, chains=chains, initvals=None, random_seed=jax_seed, logp_fn=logp_fn
    )
    kernel = NUTS(
        potential_fn=logp_fn,
        target_accept_prob=target_accept,
        max_tree_depth=max_treedepth,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        dense_mass=False,
    )
    blocks = plan.blocks()
    mcmc = MCMC(
        kernel,
        num_warmup=tune,
        num_samples=blocks[0][0],
        num_chains=chains,
        postprocess_fn=None,
        chain_method=chain_method,
        progress_bar=progress,
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    key = jax.random.PRNGKey(jax_seed)
    if chains > 1:
        key = jax.random.split(key, chains)

    outputs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    to_posterior = jax.jit(jax.vmap(jax.vmap(get_jaxified_graph(model.value_vars, outputs))))
    coords, dims = coords_and_dims_for_inferencedata(model)
    posterior: dict[str, list[np.ndarray]] = {v.name: [] for v in outputs}
    stats: dict[str, list[np.ndarray]] = {}
    looks: list[dict[str, object]] = []
    drawn, unmet = 0, ["no look yet"]
    for i, (size, look) in enumerate(blocks):
        mcmc.num_samples = size
        if i == 0:  # warm-up and the first block in one program, as a fixed-draw run
            mcmc.run(key, init_params=initial_points, extra_fields=_NUMPYRO_FIELDS)
        else:  # continue every chain from its last state (random key included)
            mcmc.post_warmup_state = mcmc.last_state
            mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=_NUMPYRO_FIELDS)
        raw = mcmc.get_samples(group_by_chain=True)
        for var, x in zip(outputs, to_posterior(*raw), strict=True):
            posterior[var.name].append(np.asarray(x))
        for field_name, value in mcmc.get_extra_fields(group_by_chain=True).items():
            stats.setdefault(_NUMPYRO_STAT_NAMES.get(field_name, field_name), []).append(
                np.asarray(value)
            )
        drawn += size
        if not look:
            continue
        idata = _numpyro_tree(posterior, stats, coords, dims, tune)
        seen = idata.copy()  # the gate reads the normalised statistics (as after sampling)
        seen["sample_stats"] = xr.DataTree(
            _normalise_stats(idata["sample_stats"].dataset, "numpyro", max_treedepth)
        )
        unmet = until(seen)
        looks.append(
            {
                "draws": drawn,
                "unmet": list(unmet),
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu_start,
            }
        )
        if not unmet:
            break
    idata["posterior"].attrs["sampling_time"] = time.perf_counter() - start
    for name, data in (
        ("observed_data", find_observations(model)),
        ("constant_data", find_constants(model)),
    ):
        if data:
            idata[name] = from_dict({name: data}, coords=coords, dims=dims, sample_dims=[])[name]
    met = not unmet
    stopped = (
        f"gate met after {drawn} draws per chain (R-hat and ESS targets)"
        if met
        else f"cap reached: {drawn} draws per chain (max_draws) with " + "; ".join(unmet)
    )
    record: dict[str, object] = {
        "blocks": drawn // plan.block_draws + (drawn % plan.block_draws > 0),
        "draws": drawn,
        "met": met,
        "stopped": stopped,
        "looks": looks,
    }
    return idata, record


def _numpyro_tree(
    posterior: dict[str, list[np.ndarray]],
    stats: dict[str, list[np.ndarray]],
    coords: dict,
    dims: dict,
    tune: int,
) -> xr.DataTree:
    """The draws of the blocks so far, laid out as PyMC's numpyro driver lays them out."""
    import numpyro
    from arviz_base import from_dict, make_attrs

    joined: dict[str, np.ndarray] = {}
    for name, parts in stats.items():
        joined[name] = np.concatenate(parts, axis=1)
        if name == "n_steps":  # PyMC's tree depth of a numpyro draw, in PyMC's order
            joined["tree_depth"] = np.log2(joined[name]).astype(int) + 1
    groups = {
        "posterior": {k: np.concatenate(v, axis=1) for k, v in posterior.items()},
        "sample_stats": joined,
    }
    attrs = {"posterior": make_attrs({"tuning_steps": tune}, inference_library=numpyro)}
    return from_dict(groups, coords=coords, dims=dims, sample_dims=["chain", "draw"], attrs=attrs)


def _sample_with_pymc(
    model: pm.Model,
    *,
    backend: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    progress: bool,
    max_treedepth: int,
    chain_method: str,
) -> xr.DataTree:
    """numpyro, nutpie and pymc through ``pm.sample``."""
    common = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": seed,
        "model": model,
        "progressbar": progress,
        "quiet": not progress,
        "compute_convergence_checks": False,
        "nuts_sampler": backend,
    }
    if backend == "numpyro":
        nuts = {
            "target_accept": target_accept,
            "max_tree_depth": max_treedepth,
            "chain_method": chain_method,
        }
        return pm.sample(**common, nuts=nuts)
    if backend == "nutpie":
        return pm.sample(
            **common,
            nuts={"target_accept": target_accept, "maxdepth": max_treedepth},
            backend="jax",
            compile_kwargs={"gradient_backend": "jax"},
        )
    # PyMC's NUTS: one process per chain, as many at a time as there are CPU cores (PyMC forks
    # on Linux; the child processes run PyTensor, not JAX; forkserver or spawn would demand an
    # ``if __name__ == "__main__"`` guard in every user script)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*fork\(\)", category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=r".*use of fork\(\)", category=DeprecationWarning)
        return pm.sample(
            **common,
            cores=min(chains, os.cpu_count() or 1),
            nuts={"target_accept": target_accept, "max_treedepth": max_treedepth},
        )


def blackjax_chain(
    logdensity: Callable[[Any], Any],
    key: jax.Array,
    position: Any,
    *,
    tune: int,
    draws: int,
    target_accept: float,
    max_treedepth: int,
) -> tuple[Any, dict[str, Any]]:
    """One blackjax NUTS chain (traceable: vmap / pmap / jit it): Stan-style window adaptation
    for ``tune`` steps, then ``draws`` draws. Returns the positions and the sample statistics
    the package records (diverging, energy, tree depth, steps, acceptance rate, lp, step size).
    Used by :func:`_sample_blackjax` and by the compiled engine (``compiled.py``)."""
    import blackjax

    warm_key, draw_key = jax.random.split(key)
    warmup = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        target_acceptance_rate=target_accept,
        max_num_doublings=max_treedepth,
    )
    (state, params), _ = warmup.run(warm_key, position, num_steps=tune)
    kernel = blackjax.nuts(logdensity, **params).step  # params holds the max depth

    def step(state: Any, key: jax.Array) -> tuple[Any, tuple[Any, dict[str, Any]]]:
        state, info = kernel(key, state)
        stats = {
            "diverging": info.is_divergent,
            "energy": info.energy,
            "tree_depth": info.num_trajectory_expansions,
            "n_steps": info.num_integration_steps,
            "acceptance_rate": info.acceptance_rate,
            "lp": state.logdensity,
            "step_size": jax.numpy.full((), params["step_size"]),
        }
        return state, (state.position, stats)

    _, (positions, stats) = jax.lax.scan(step, state, jax.random.split(draw_key, draws))
    return positions, stats


def _sample_blackjax(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    target_accept: float,
    progress: bool,
    max_treedepth: int,
    chain_method: str,
) -> xr.DataTree:
    """blackjax NUTS after window adaptation (:func:`blackjax_chain`), one chain per vmap / pmap
    lane."""
    from arviz_base import from_dict
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        find_constants,
        find_observations,
    )
    from pymc.initial_point import make_initial_point_fn
    from pymc.sampling.jax import get_jaxified_graph, get_jaxified_logp
    from pymc.util import get_default_varnames

    if chain_method not in ("parallel", "vectorized"):
        raise ValueError(f"blackjax runs chains 'parallel' or 'vectorized', not {chain_method!r}")
    # (sic) negative_logp=True returns +log p; numpyro wants the potential, -log p
    logdensity = get_jaxified_logp(model, negative_logp=True)
    rng = np.random.default_rng(seed)
    start = _initial_positions(
        model, make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs)), chains, rng
    )

    def one_chain(key: jax.Array, position: list[jax.Array]) -> tuple[list, dict]:
        return blackjax_chain(
            logdensity,
            key,
            position,
            tune=tune,
            draws=draws,
            target_accept=target_accept,
            max_treedepth=max_treedepth,
        )

    mapper = jax.pmap if chain_method == "parallel" else jax.vmap
    keys = jax.random.split(jax.random.key(int(rng.integers(2**31))), chains)
    if progress:
        from rich.console import Console

        status = Console(stderr=True).status(f"blackjax: {chains} chains x ({tune} + {draws})")
    else:
        status = nullcontext()
    with status:
        positions, stats = mapper(one_chain)(keys, start)
        jax.block_until_ready(positions)

    # value variables (e.g. log sigma) -> constrained variables and deterministics
    outputs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    to_posterior = jax.jit(jax.vmap(jax.vmap(get_jaxified_graph(model.value_vars, outputs))))
    posterior = {
        v.name: np.asarray(x) for v, x in zip(outputs, to_posterior(*positions), strict=True)
    }
    coords, dims = coords_and_dims_for_inferencedata(model)
    groups = {
        "posterior": posterior,
        "sample_stats": {k: np.asarray(v) for k, v in stats.items()},
    }
    idata = from_dict(groups, coords=coords, dims=dims, sample_dims=["chain", "draw"])
    for name, data in (
        ("observed_data", find_observations(model)),
        ("constant_data", find_constants(model)),
    ):
        if data:
            idata[name] = from_dict({name: data}, coords=coords, dims=dims, sample_dims=[])[name]
    return idata


def _initial_positions(
    model: pm.Model, initial_point, chains: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Jittered starting points (uniform(-1, 1) on the unconstrained scale), stacked by chain.

    Raises:
        CscBayesError: a chain found no start with finite log density in 10 tries.
    """
    logp = model.compile_logp()
    points = []
    for chain in range(chains):
        for _ in range(10):
            point = initial_point(int(rng.integers(2**31)))
            if np.isfinite(logp(point)):
                points.append(point)
                break
        else:
            raise CscBayesError(f"no finite log density at 10 jittered starts for chain {chain}")
    return [np.stack([p[v.name] for p in points]) for v in model.value_vars]


def _to_numpy(ds: xr.Dataset) -> xr.Dataset:
    """The same dataset with every variable's data as a numpy array (attributes kept)."""
    return ds.map(lambda da: da.copy(data=np.asarray(da.data)), keep_attrs=True)


def _normalise_stats(stats: xr.Dataset, backend: str, max_treedepth: int) -> xr.Dataset:
    """Rename a back end's sample statistics to :data:`NORMALISED_STATS` (table above)."""
    stats = stats.drop_vars([k for k, v in stats.data_vars.items() if v.dtype == object])
    if backend == "nutpie":
        stats = stats.drop_vars(["depth", "maxdepth_reached"])
        stats["tree_depth"] = np.floor(np.log2(stats["n_steps"])).astype(np.int64) + 1
    stats["reached_max_treedepth"] = stats["tree_depth"] >= max_treedepth
    missing = [name for name in NORMALISED_STATS if name not in stats]
    if missing:
        raise CscBayesError(f"back end {backend!r} reported no {missing} sample statistics")
    return stats.assign(
        diverging=stats["diverging"].astype(bool),
        reached_max_treedepth=stats["reached_max_treedepth"].astype(bool),
        tree_depth=stats["tree_depth"].astype(np.int64),
        n_steps=stats["n_steps"].astype(np.int64),
        energy=stats["energy"].astype(np.float64),
    )
