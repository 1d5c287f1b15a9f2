"""``fit()``: spec + panel -> PyMC model -> NUTS on a JAX back end -> gate -> saved ``Fit``.

This is the one place where the pieces meet; each step lives in its own module
(spec, model, sampling, diagnostics, fits).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import xarray as xr

from csc_bayes import __version__
from csc_bayes.errors import FitIntegrityError
from csc_bayes.fits import Fit, data_hash, find_reusable_run, load_fit, save_fit

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.spec import ModelSpec

RefitPolicy = Literal["on_change", "always", "never"]
_VERSIONED = (
    "pymc",
    "pytensor",
    "arviz",
    "numpyro",
    "jax",
    "jaxlib",
    "blackjax",
    "nutpie",
    "numpy",
    "pandas",
    "xarray",
)


def package_versions() -> dict[str, str]:
    """Versions of csc_bayes, Python and the libraries that shape a fit's numbers."""
    versions = {"csc_bayes": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def resolve_panel(data: pd.DataFrame | str | Path | None) -> tuple[pd.DataFrame, bool]:
    """The panel to fit and whether it is synthetic (the embedded default when ``data`` is None)."""
    if data is None:
        from csc_bayes.simulate import simulate_panel

        return simulate_panel().panel, True
    if isinstance(data, (str, Path)):
        from csc_bayes.data import load_panel

        panel = load_panel(Path(data))
    else:
        from csc_bayes.data.schema import validate_panel

        panel = validate_panel(data)
    synthetic = bool(panel.attrs.get("synthetic", False)) or bool(
        "synthetic" in panel.columns and panel["synthetic"].fillna(False).any()
    )
    return panel, synthetic


def _panel_to_keep(panel: pd.DataFrame, spec: Any) -> pd.DataFrame:
    """Rows a saved fit may need later: every authority from the first fitted year on."""
    return panel[panel["year"] >= spec.years[0]].reset_index(drop=True)


def fit(
    spec: Any,
    *,
    data: pd.DataFrame | str | Path | None = None,
    out: str | Path | None = "fits",
    backend: str | None = None,
    draws: int | Literal["auto"] | None = None,
    tune: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    target_accept: float | None = None,
    max_treedepth: int | None = None,
    max_draws: int | None = None,
    refit: RefitPolicy = "on_change",
    progress: bool = True,
    priors: dict[str, Any] | None = None,
    family: str | None = None,
    years: tuple[int, int] | None = None,
    name: str | None = None,
    suppressed: str | None = None,
) -> Fit:
    """Fit a model specification to a panel and (unless ``out`` is None) save it.

    Args:
        spec: a ``ModelSpec``, a shipped model name such as ``"cpp_need"``, a TOML path, or a
            formula such as ``"cpp ~ idaci + offset(log(population)) + (1|la) + rw1(year)"``
            (grammar: :mod:`csc_bayes.formula`; it builds the same spec as the TOML would).
        data: a panel DataFrame or a panel parquet path; None uses the embedded synthetic panel.
        out: root folder for saved fits (``out/<model>/<run-id>/``); None keeps it in memory.
        backend, draws, tune, chains, seed, target_accept, max_treedepth: override the spec's
            ``[sampler]``. ``draws="auto"``: sample in blocks until the gate's R-hat and ESS
            targets are met, or the cap is reached (:func:`draws_target`; ``[sampler]``
            ``min_draws``, ``block_draws``, ``max_draws``); ``metadata["sampler"]["auto"]``
            records the blocks, the draws and why it stopped.
        max_draws: with ``draws="auto"``, the cap (draws per chain).
        refit: ``"on_change"`` reuses a saved run with the same spec, data and sampler settings;
            ``"always"`` samples anew; ``"never"`` only loads (error if no matching run).
        progress: show the sampler's progress bar.
        priors: priors by parameter name, as a ``[priors]`` table (e.g.
            ``{"sigma_la": {"sigma": 0.5}}``); they replace the spec's own.
        family, years, name, suppressed: for a formula, the keys it does not hold (defaults
            ``negative_binomial``, 2013-2024, ``<outcome>_formula`` and ``"censored"``); for a
            spec, a different family, years, name or handling of suppressed counts.

    Returns:
        The :class:`Fit`, with ``metadata["diagnostics"]`` holding the convergence gate result.
    """
    from csc_bayes.diagnostics import check_convergence
    from csc_bayes.model import MODEL_VERSION, attach_coords, build_model
    from csc_bayes.pointwise import pointwise_groups
    from csc_bayes.sampling import DrawsToTarget, sample

    spec = as_spec(spec, family=family, years=years, name=name, suppressed=suppressed)
    if priors:
        spec = spec.with_priors(priors)
    overrides = {
        k: v
        for k, v in dict(
            backend=backend,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            max_treedepth=max_treedepth,
            max_draws=max_draws,
        ).items()
        if v is not None
    }
    if overrides:
        spec = spec.with_sampler(**overrides)
    panel, synthetic = resolve_panel(data)
    hashes = {
        "spec_hash": spec.canonical_hash(),
        "data_hash": data_hash(panel),
        "sampler_hash": spec.sampler_hash(),
        "model_version": MODEL_VERSION,
    }

    if out is not None and refit != "always":
        reusable = find_reusable_run(Path(out) / spec.name, **hashes)
        if reusable is not None:
            return load_fit(reusable)
        if refit == "never":
            raise FitIntegrityError(
                f"refit='never' but no saved run of {spec.name!r} in {Path(out) / spec.name} "
                "matches this specification, data and sampler settings"
            )

    started = time.perf_counter()
    built = build_model(spec, panel)
    build_seconds = time.perf_counter() - started
    s = spec.sampler
    auto = {}
    if s.auto:
        auto = {
            "until": draws_target(built),
            "to_target": DrawsToTarget(s.min_draws, s.block_draws, s.max_draws),
        }
    result = sample(
        built.model,
        backend=s.backend,
        draws=s.draws,
        tune=s.tune,
        chains=s.chains,
        seed=s.seed,
        target_accept=s.target_accept,
        max_treedepth=s.max_treedepth,
        progress=progress,
        log_likelihood=False,  # both from the one linear predictor, below: a few numpy passes
        posterior_predictive=False,
        **auto,
    )
    idata = attach_coords(result.idata, built)
    gate = check_convergence(idata)
    tic = time.perf_counter()
    panel_kept = _panel_to_keep(panel, spec)
    log_lik, replicated = pointwise_groups(
        Fit(idata=idata, spec=spec, panel=panel_kept), seed=[s.seed, 1]
    )
    idata["log_likelihood"] = xr.DataTree(log_lik)
    idata["posterior_predictive"] = xr.DataTree(replicated)
    post_sampling = time.perf_counter() - tic

    excluded = built.excluded
    metadata: dict[str, Any] = {
        **hashes,
        "model": spec.name,
        "formula": spec.formula,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "synthetic": synthetic,
        "backend": s.backend,
        "sampler": {
            "backend": s.backend,
            "draws": s.draws,
            "tune": s.tune,
            "chains": s.chains,
            "seed": s.seed,
            "target_accept": s.target_accept,
            "max_treedepth": s.max_treedepth,
            "chain_method": result.settings.get("chain_method"),
            "chain_method_reason": result.settings.get("chain_method_reason"),
            **({"auto": result.settings["auto"]} if s.auto else {}),
        },
        "priors": {name: p.as_dict() for name, p in built.priors.items()},
        "versions": package_versions(),
        "timings": {
            "build_model": build_seconds,
            **result.timings,
            "pointwise": post_sampling,  # log-likelihood and predictive draws, in numpy
        },
        "diagnostics": gate.to_dict(),
        "n_obs": len(built.data),
        "n_authorities": int(built.data["la_code"].nunique()),
        "years_fitted": sorted(int(y) for y in built.data["year"].unique()),
        "excluded": {
            "n_rows": len(excluded),
            "by_reason": excluded["reason"].value_counts().to_dict() if len(excluded) else {},
            "rows": excluded.astype(str).to_dict(orient="records"),
        },
        "censored": _censored_summary(spec, built.data),
    }
    result_fit = Fit(idata=idata, spec=spec, panel=panel_kept, metadata=metadata)
    if out is not None:
        save_fit(result_fit, out)
    return result_fit


def _censored_summary(spec: Any, data: pd.DataFrame) -> dict[str, Any]:
    """How the fit treated suppressed counts of known range (``terms/censoring.py``): the
    setting, and the fitted rows that entered the likelihood as interval-censored counts."""
    from csc_bayes.terms.censoring import censorable, row_bounds

    censored = censorable(spec, data)
    lower, upper = row_bounds(spec, data)
    rows = [
        {"la_code": str(c), "year": int(y), "lower": int(lo), "upper": int(hi)}
        for c, y, lo, hi in zip(
            data["la_code"][censored],
            data["year"][censored],
            lower[censored],
            upper[censored],
            strict=True,
        )
    ]
    return {"mode": spec.option("suppressed"), "n_rows": int(censored.sum()), "rows": rows}


#: the gate's checks that more draws can pass; the others (divergences, tree depth, E-BFMI,
#: chains) are judged on the final draws by the gate itself
TARGET_REASONS = ("RHAT", "ESS_BULK", "ESS_TAIL")


def draws_target(built: Any) -> Callable[[xr.DataTree], list[str]]:
    """The stopping rule of ``draws="auto"``: the gate's R-hat and ESS failures on the draws so far.

    Returns a function of the sampler's DataTree that attaches the model's coordinates and the
    variables its terms leave out of the gate (``model.attach_coords``), runs
    :func:`~csc_bayes.diagnostics.check_convergence` exactly as :func:`fit` does afterwards, and
    returns the messages of its ``RHAT``, ``ESS_BULK`` and ``ESS_TAIL`` failures (empty: met).
    """
    from csc_bayes.diagnostics import check_convergence
    from csc_bayes.model import attach_coords

    def unmet(idata: xr.DataTree) -> list[str]:
        gate = check_convergence(attach_coords(idata, built))
        return [f.message for f in gate.failures if str(f.reason) in TARGET_REASONS]

    return unmet


def as_spec(
    spec: Any,
    *,
    family: str | None = None,
    years: tuple[int, int] | None = None,
    name: str | None = None,
    suppressed: str | None = None,
) -> Any:
    """A ``ModelSpec`` from a spec, a shipped model name, a TOML path or a formula (with ``~``),
    with ``family``, ``years``, ``name`` and ``suppressed`` replaced where given."""

    from csc_bayes.spec import ModelSpec, find_spec

    if isinstance(spec, str) and "~" in spec:
        return ModelSpec.from_formula(
            spec,
            name=name,
            family=family or "negative_binomial",
            years=tuple(years) if years else (2013, 2024),
            suppressed=suppressed or "censored",
        )
    spec = spec if isinstance(spec, ModelSpec) else find_spec(spec)
    changes = {
        "family": family,
        "years": tuple(years) if years else None,
        "name": name,
        "suppressed": suppressed,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return spec
    d = spec.to_dict() | {k: list(v) if k == "years" else v for k, v in changes.items()}
    return ModelSpec.from_dict(d, source=spec.source)


def find_null_fit(fit_: Fit, *, out: str | Path | None = None, progress: bool = True) -> Fit:
    """The null model (random effects only) matching ``fit_``: loaded if saved, else fitted.

    The null model is fitted on exactly the authority-years ``fit_`` fitted (rows the full model
    left out for a missing covariate are left out here too), so that the two are compared on the
    same data. A saved run matches when its spec is ``fit_.spec.null_spec()``, its data hash is that
    of those rows and it was made by this :data:`~csc_bayes.model.MODEL_VERSION`. Otherwise it
    is fitted with ``fit_``'s sampler settings and saved beside ``fit_`` (or under ``out``).
    """
    null_spec = fit_.spec.null_spec().with_sampler(**fit_.spec.sampler.as_dict())
    return _on_same_rows(null_spec, fit_, out=out, progress=progress)


def find_without_practice_fit(
    fit_: Fit, *, out: str | Path | None = None, progress: bool = True
) -> Fit:
    """``fit_``'s model without its ``practice`` covariates, on the same rows: loaded if saved,
    else fitted (``ModelSpec.without_block("practice")``: same priors, terms and sampler).

    It is the comparison behind the practice share (``docs/methods.md`` 1.5), matched and saved
    as :func:`find_null_fit` does: on exactly the authority-years ``fit_`` fitted (rows the
    practice covariates left out are left out here too).
    """
    reduced = fit_.spec.without_block("practice")
    return _on_same_rows(reduced, fit_, out=out, progress=progress)


def _on_same_rows(spec: ModelSpec, fit_: Fit, *, out: str | Path | None, progress: bool) -> Fit:
    """A saved fit of ``spec`` on ``fit_``'s fitted rows (same spec hash, data hash and model
    version) beside ``fit_`` (or under ``out``), else a new fit saved there."""
    from csc_bayes.fits import list_runs, read_metadata
    from csc_bayes.model import MODEL_VERSION

    same_rows = fit_.panel.merge(fit_.fitted_rows, on=["la_code", "year"], how="inner")
    if out is None:
        out = fit_.path.parent.parent if fit_.path is not None else None
    if out is not None:
        wanted = (spec.canonical_hash(), data_hash(same_rows), MODEL_VERSION)
        for run in reversed(list_runs(Path(out) / spec.name)):
            saved = read_metadata(run)
            found = (saved.get("spec_hash"), saved.get("data_hash"), saved.get("model_version"))
            if found == wanted:
                return load_fit(run)
    return fit(spec, data=same_rows, out=out, progress=progress)
