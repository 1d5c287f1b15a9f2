"""A model compiled once per shape and sampled for many data sets (K-fold folds, SBC replicates).

The log density comes from the PyMC model that :func:`csc_bayes.model.build_model` builds (the
package's one model definition), with the outcome and a weight per row turned into inputs:

    log p(theta | y, w) = log p(theta) + sum_i w_i log p(y_i | theta)

over the unconstrained parameters theta (log p(theta) includes the Jacobians of the
transforms). ``y`` is the outcome in ``obs`` order and ``w`` a 0/1 weight per row: grouped K-fold
gives a held-out authority's rows weight 0 (the fit then knows nothing of its counts, and its
effects follow their hierarchical prior), so every fold has the same shapes. The graph is PyMC's
own ``model.logp`` with the observed constant replaced by a symbolic vector, translated to JAX
by PyTensor's JAX linker (``pymc.sampling.jax.get_jaxified_graph``).

The sampler is blackjax's NUTS after Stan-style window adaptation (as the ``blackjax`` back end
of :mod:`csc_bayes.sampling`), chains vmapped, and the whole run -- adaptation, draws, the
transform back to the posterior contract's variables -- is one ``jax.jit`` function of
``(keys, start, y, w)``: a second data set of the same shape reuses the compiled program. One
:class:`CompiledModel` holds its programs; :meth:`CompiledModel.close` drops them and clears
JAX's caches, so a long run does not accumulate compiled programs.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from csc_bayes.errors import CscBayesError
from csc_bayes.model import BuiltModel, attach_coords


@dataclass
class CompiledDraws:
    """Draws of one compiled run.

    Attributes:
        posterior: contract name -> array (chain, draw, ...): free and deterministic variables.
        stats: sample statistics (chain, draw): diverging, energy, tree_depth, n_steps,
            acceptance_rate, lp, step_size.
        positions: the unconstrained draws (for :meth:`CompiledModel.pointwise_loglik`).
        seconds: wall time of the run (including compilation on a first call).
    """

    posterior: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    positions: list[Any]
    seconds: float
    max_treedepth: int = 10

    @property
    def divergences(self) -> int:
        return int(np.sum(self.stats["diverging"]))


@dataclass
class CompiledModel:
    """A built model's log density and sampler, compiled for its shapes (module docstring).

    Build with :func:`compile_model`; sample with :meth:`sample`.
    """

    built: BuiltModel
    value_names: list[str]
    output_names: list[str]
    _logp: Any  # (values..., y, w) -> [log density], JAX
    _pointwise: Any  # (values..., y) -> [log p(y_i | theta)], JAX
    _to_posterior: Any  # (values...) -> outputs, JAX
    _initial_point: Any  # seed -> {value name: array}
    y_dtype: Any
    _runs: dict[tuple, Any] = field(default_factory=dict)
    _jitted: dict[str, Any] = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        return len(self.built.data)

    # ------------------------------------------------------------------ log density
    def logdensity(self, values: list[Any], y: Any, w: Any | None = None) -> float:
        """log p(theta | y, w) at unconstrained ``values`` (in ``value_names`` order)."""
        if "logp" not in self._jitted:
            self._jitted["logp"] = jax.jit(lambda v, y_, w_: self._logp(*v, y_, w_)[0])
        return float(self._jitted["logp"](list(values), *self._data(y, w)))

    def pointwise_loglik(self, draws: CompiledDraws, y: Any) -> np.ndarray:
        """log p(y_i | theta^(c, d)) for every draw: array (chain, draw, obs)."""
        if "pointwise" not in self._jitted:
            one = lambda v, y_: self._pointwise(*v, y_)[0]  # noqa: E731
            self._jitted["pointwise"] = jax.jit(
                jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(0, None))
            )
        y_arr, _ = self._data(y, None)
        return np.asarray(self._jitted["pointwise"](draws.positions, y_arr))

    def _data(self, y: Any, w: Any | None) -> tuple[jax.Array, jax.Array]:
        y = np.asarray(y)
        if y.shape != (self.n_obs,):
            raise CscBayesError(
                f"{self.built.spec.name}: the outcome has shape {y.shape}; the compiled model "
                f"was built for {self.n_obs} rows"
            )
        if np.any(y < 0) or not np.all(np.isfinite(y)):
            raise CscBayesError(f"{self.built.spec.name}: the outcome must be finite counts >= 0")
        w = np.ones(self.n_obs) if w is None else np.asarray(w, dtype=float)
        if w.shape != (self.n_obs,):
            raise CscBayesError(
                f"{self.built.spec.name}: {w.shape[0]} weights for {self.n_obs} rows"
            )
        return jnp.asarray(y.astype(self.y_dtype)), jnp.asarray(w)

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        y: Any,
        w: Any | None = None,
        *,
        draws: int,
        tune: int,
        chains: int,
        seed: int,
        target_accept: float = 0.85,
        max_treedepth: int = 10,
    ) -> CompiledDraws:
        """NUTS draws of theta | y, w; one compiled program per (draws, tune, chains, settings).

        The starting points are PyMC's initial point jittered uniform(-1, 1) on the
        unconstrained scale (as :mod:`csc_bayes.sampling`), redrawn until the log density is
        finite (10 tries per chain).
        """
        y_arr, w_arr = self._data(y, w)
        rng = np.random.default_rng(seed)
        start = self._starts(chains, rng, y_arr, w_arr)
        key = (draws, tune, chains, float(target_accept), int(max_treedepth))
        if key not in self._runs:
            self._runs[key] = self._make_run(*key)
        keys = jax.random.split(jax.random.key(int(rng.integers(2**31))), chains)
        tic = time.perf_counter()
        positions, outputs, stats = self._runs[key](keys, start, y_arr, w_arr)
        jax.block_until_ready(outputs)
        seconds = time.perf_counter() - tic
        posterior = {n: np.asarray(x) for n, x in zip(self.output_names, outputs, strict=True)}
        return CompiledDraws(
            posterior=posterior,
            stats={k: np.asarray(v) for k, v in stats.items()},
            positions=positions,
            seconds=seconds,
            max_treedepth=int(max_treedepth),
        )

    def _starts(
        self, chains: int, rng: np.random.Generator, y: jax.Array, w: jax.Array
    ) -> list[jax.Array]:
        points = []
        for chain in range(chains):
            for _ in range(10):
                point = self._initial_point(int(rng.integers(2**31)))
                values = [np.asarray(point[n]) for n in self.value_names]
                if np.isfinite(self.logdensity(values, y, w)):
                    points.append(values)
                    break
            else:
                raise CscBayesError(
                    f"{self.built.spec.name}: no finite log density at 10 jittered starts "
                    f"for chain {chain}"
                )
        return [jnp.asarray(np.stack(vs)) for vs in zip(*points, strict=True)]

    def _make_run(
        self, draws: int, tune: int, chains: int, target_accept: float, max_treedepth: int
    ) -> Any:
        from csc_bayes.sampling import blackjax_chain

        logp, to_posterior = self._logp, self._to_posterior

        def run(keys, start, y, w):
            def logdensity(position):
                return logp(*position, y, w)[0]

            def one_chain(key, position):
                return blackjax_chain(
                    logdensity,
                    key,
                    position,
                    tune=tune,
                    draws=draws,
                    target_accept=target_accept,
                    max_treedepth=max_treedepth,
                )

            positions, stats = jax.vmap(one_chain)(keys, start)
            outputs = jax.vmap(jax.vmap(lambda *v: to_posterior(*v)))(*positions)
            return positions, outputs, stats

        return jax.jit(run)

    # ------------------------------------------------------------------ results
    def to_fit(self, draws: CompiledDraws, *, y: Any, spec: Any, panel: pd.DataFrame) -> Any:
        """A :class:`csc_bayes.fits.Fit` of the draws (posterior, sample_stats, constant and
        observed data, the contract's coordinates), for the answers that read a fit."""
        from arviz_base import from_dict
        from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants

        from csc_bayes.fits import Fit

        model = self.built.model
        coords, dims = coords_and_dims_for_inferencedata(model)
        groups = {
            "posterior": dict(draws.posterior),
            "sample_stats": {
                **draws.stats,
                "diverging": draws.stats["diverging"].astype(bool),
                "reached_max_treedepth": draws.stats["tree_depth"] >= draws.max_treedepth,
            },
        }
        idata = from_dict(groups, coords=coords, dims=dims, sample_dims=["chain", "draw"])
        for name, data in (
            ("observed_data", {"y": np.asarray(y)}),
            ("constant_data", find_constants(model)),
        ):
            idata[name] = from_dict({name: data}, coords=coords, dims=dims, sample_dims=[])[name]
        idata = attach_coords(idata, self.built)
        return Fit(idata=idata, spec=spec, panel=panel)

    def close(self) -> None:
        """Drop the compiled programs and clear JAX's in-memory caches (``jax.clear_caches``)."""
        self._runs.clear()
        self._jitted.clear()
        jax.clear_caches()


def compile_model(built: BuiltModel) -> CompiledModel:
    """The JAX log density of ``built.model`` with its observed ``y`` and row weights as inputs.

    Nothing is compiled by XLA here: each program is compiled on its first call and kept on the
    returned :class:`CompiledModel`.
    """
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_fn
    from pymc.sampling.jax import get_jaxified_graph
    from pymc.util import get_default_varnames
    from pytensor.graph.replace import graph_replace

    from csc_bayes.sampling import prepare_jax

    prepare_jax()  # the compilation cache, before anything is compiled
    model = built.model
    observed = list(model.observed_RVs)
    if [v.name for v in observed] != ["y"]:
        raise CscBayesError(
            f"{built.spec.name}: the compiled path needs exactly one observed variable 'y', "
            f"the model has {[v.name for v in observed]}"
        )
    y_rv = observed[0]
    y_value = model.rvs_to_values[y_rv]
    y_in = pt.vector("y_in", dtype=y_value.dtype)
    w_in = pt.vector("w_in", dtype="float64")
    prior = model.logp(vars=[*model.free_RVs, *model.potentials], sum=True)
    pointwise = model.logp(vars=[y_rv], sum=False)[0]
    prior, pointwise = graph_replace([prior, pointwise], {y_value: y_in}, strict=False)
    total = prior + pt.sum(w_in * pointwise)
    values = list(model.value_vars)
    outputs = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    return CompiledModel(
        built=built,
        value_names=[v.name for v in values],
        output_names=[v.name for v in outputs],
        _logp=get_jaxified_graph(inputs=[*values, y_in, w_in], outputs=[total]),
        _pointwise=get_jaxified_graph(inputs=[*values, y_in], outputs=[pointwise]),
        _to_posterior=get_jaxified_graph(inputs=values, outputs=outputs),
        _initial_point=make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs)),
        y_dtype=np.dtype(y_value.dtype),
    )


def aligned_outcome(built: BuiltModel, panel: pd.DataFrame, outcome: str) -> np.ndarray:
    """``panel[outcome]`` in the built model's ``obs`` order, matched on (la_code, year).

    Raises:
        CscBayesError: a fitted row has no row, or a missing outcome, in ``panel``.
    """
    keys = pd.MultiIndex.from_arrays(
        [panel["la_code"].astype(str), panel["year"].astype(int)], names=["la_code", "year"]
    )
    values = pd.Series(panel[outcome].to_numpy(), index=keys)
    if not values.index.is_unique:
        raise CscBayesError(f"the panel has repeated (la_code, year) rows for {outcome!r}")
    want = pd.MultiIndex.from_arrays(
        [built.data["la_code"].astype(str), built.data["year"].astype(int)]
    )
    got = values.reindex(want)
    bad = got.isna().to_numpy()
    if bad.any():
        la, year = want[int(np.argmax(bad))]
        raise CscBayesError(
            f"{outcome!r} is missing for authority {la}, year {year}, a row the compiled "
            f"model fits ({int(bad.sum())} such rows)"
        )
    return got.to_numpy(dtype=np.int64)


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (``getrusage``; Linux KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """This process's resident set size now, in MiB (``/proc/self/statm``; NaN elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * resource.getpagesize() / 2**20
