"""Fingerprints of a model and of every answer, to show that a refactoring changes no number.

For a shipped spec on a small synthetic panel, :func:`fingerprint` records

- the model: the names and order of the free variables, and the joint log density and its
  gradient at three seeded points of the unconstrained space (so the PyMC graph is the same);
- the answers, computed from a "fit" whose posterior is a seeded draw from the prior
  (``pm.sample_prior_predictive``: deterministic, no NUTS, identical on every machine for an
  unchanged graph): ``explain_variance`` (with the prior "fit" of the null spec), ``excess``
  over every fitted year and ``predict``'s linear predictor and expected need for one
  authority's fitted years (the parts that involve no new random draw).

Arrays are reduced to two weighted sums (plain and with fixed pseudo-random weights), enough to
catch any change at the tolerance the test uses. ``tests/data/equivalence_reference.json``
holds the fingerprints made by the code before the open-model redesign; regenerate it only for
a deliberate change of the numbers::

    python tests/equivalence.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

REFERENCE = Path(__file__).parent / "data" / "equivalence_reference.json"
#: specs fingerprinted in the default test run: between them every kind of term and family
QUICK_SPECS = ("cpp_need_spending", "cla_need_trend", "cpp_need_ar")


def small_panel() -> pd.DataFrame:
    """30 synthetic authorities over every simulated year (incl. the forecast year)."""
    from csc_bayes.simulate import simulate_panel

    panel = simulate_panel(seed=7).panel
    keep = sorted(panel["la_code"].astype(str).unique())[::5][:30]
    return panel[panel["la_code"].astype(str).isin(keep)].reset_index(drop=True)


def _reduce(values: Any) -> list[float]:
    a = np.asarray(values, dtype=float).ravel()
    w = np.random.default_rng(len(a)).uniform(0.5, 1.5, len(a))
    finite = np.isfinite(a)
    return [float(np.sum(a[finite])), float(np.sum(a[finite] * w[finite])), int((~finite).sum())]


def prior_fit(spec: Any, panel: pd.DataFrame, *, draws: int = 60, seed: int = 11) -> Any:
    """A Fit whose posterior is ``draws`` seeded prior draws (2 chains of draws / 2)."""
    import pymc as pm

    from csc_bayes.fits import Fit
    from csc_bayes.model import attach_coords, build_model

    built = build_model(spec, panel)
    with built.model:
        prior = pm.sample_prior_predictive(draws=draws, random_seed=seed)
    post = prior["prior"].to_dataset()
    half = draws // 2
    post = post.isel(chain=0).drop_vars("chain")
    halves = [
        post.isel(draw=slice(k * half, (k + 1) * half)).assign_coords(draw=np.arange(half))
        for k in (0, 1)
    ]
    post = xr.concat(halves, dim="chain").assign_coords(chain=[0, 1])
    post = post.transpose("chain", "draw", ...)
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "observed_data": prior["observed_data"].to_dataset(),
            "constant_data": prior["constant_data"].to_dataset(),
        }
    )
    tree = attach_coords(tree, built)
    keep = panel[panel["year"] >= spec.years[0]].reset_index(drop=True)
    return Fit(idata=tree, spec=spec, panel=keep, metadata={"synthetic": True})


def model_fingerprint(spec: Any, panel: pd.DataFrame) -> dict[str, Any]:
    """Free variable names in order; logp and its gradient at three seeded points."""
    from csc_bayes.model import build_model

    model = build_model(spec, panel).model
    names = [v.name for v in model.value_vars]
    logp = model.compile_logp()
    dlogp = model.compile_dlogp()
    ip = model.initial_point(random_seed=0)
    out: dict[str, Any] = {"value_vars": names, "logp": [], "dlogp": []}
    for k in range(3):
        rng = np.random.default_rng(100 + k)
        point = {n: v + 0.3 * rng.standard_normal(np.shape(v)) for n, v in ip.items()}
        out["logp"].append(float(logp(point)))
        out["dlogp"].append(_reduce(dlogp(point)))
    return out


def answers_fingerprint(spec: Any, panel: pd.DataFrame) -> dict[str, Any]:
    """explain / excess / predict / held-out density of a prior 'fit' (see module)."""
    from csc_bayes.excess import excess
    from csc_bayes.predict import predict_draws
    from csc_bayes.variance import explain_variance

    fit = prior_fit(spec, panel)
    null = prior_fit(spec.null_spec(), panel, seed=12)
    out: dict[str, Any] = {}
    explained = explain_variance(fit, null_fit=null).summary
    for col in ("median", "lower", "upper", "mean"):
        out[f"explain.{col}"] = _reduce(explained[col])
    labels = zip(explained["measure"], explained["component"], strict=True)
    out["explain.labels"] = [f"{m}:{c}" for m, c in labels]
    table = excess(fit, year="all").sort_values(["year", "la_code"])
    for col in table.columns:
        if pd.api.types.is_numeric_dtype(table[col]):
            out[f"excess.{col}"] = _reduce(table[col])
    # predictions of fitted rows are deterministic given the draws (new draws enter only in
    # unfitted years and new authorities, whose laws the predict tests check)
    first = str(panel["la_code"].iloc[0])
    fitted_years = [int(y) for y in fit.idata["posterior"]["year"].values]
    one = predict_draws(fit, authority=first, year=fitted_years, seed=5)
    out["predict_fitted.eta"] = _reduce(one.eta)
    out["predict_fitted.expected"] = _reduce(one.expected)
    return out


def fingerprint(name: str, panel: pd.DataFrame | None = None) -> dict[str, Any]:
    from csc_bayes.spec import find_spec

    panel = small_panel() if panel is None else panel
    spec = find_spec(name)
    return {"model": model_fingerprint(spec, panel), "answers": answers_fingerprint(spec, panel)}


def compare(found: Any, expected: Any, where: str = "", rtol: float = 1e-7) -> list[str]:
    """Paths at which two fingerprints differ (numbers beyond ``rtol``)."""
    if isinstance(expected, dict):
        problems = (
            [f"{where}: keys {sorted(set(found) ^ set(expected))}"]
            if set(found) != set(expected)
            else []
        )
        for key in expected:
            if key in found:
                problems += compare(found[key], expected[key], f"{where}/{key}", rtol)
        return problems
    if isinstance(expected, list) and expected and isinstance(expected[0], str):
        return [] if found == expected else [f"{where}: {found} != {expected}"]
    a, b = np.asarray(found, dtype=float), np.asarray(expected, dtype=float)
    if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=1e-9, equal_nan=True):
        return [f"{where}: {found} != {expected}"]
    return []


if __name__ == "__main__":
    from csc_bayes.spec import list_models

    if "--write" not in sys.argv:
        sys.exit("usage: python tests/equivalence.py --write")
    panel = small_panel()
    names = [p.stem for p in list_models()]
    result = {}
    for n in names:
        print("fingerprinting", n, flush=True)
        result[n] = fingerprint(n, panel)
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print("wrote", REFERENCE)
