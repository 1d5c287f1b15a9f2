"""ModelSpec + panel -> PyMC model that follows the posterior contract in ARCHITECTURE.md.

The model (formulas and reasons in ``docs/model.md``)::

    eta[i] = log_exposure[i] + intercept + X[i] . beta
             + la_effect[la] + region_effect[region] + year_effect[year] (+ la_slope[la] X[i, s])
             (+ la_trend[la] year_c[i],  year_c = (year - year_centre) / 10, per decade)
             (+ la_year[la, year],  a stationary AR(1) over the years within each LA)
    y[i] ~ NegativeBinomial(mu = exp(eta[i]), alpha = phi)   or   Poisson(exp(eta[i]))
    or, for an ordered category (no exposure: log_exposure = 0; intercept = 0),
    P(y[i] <= k) = logistic(cutpoints[k] - eta[i])        (cumulative logit)

Two parameterisations of it:

- ``"hierarchical"`` (default): hierarchical centring. Each LA has a centred log-rate level
  ``la_theta ~ Normal(intercept + region_effect[r] + Xbar[la] . beta, sigma_la)``, where ``Xbar``
  is the LA's mean of the standardised covariates; the likelihood sees
  ``eta = log_exposure + la_theta[la] + (X - Xbar[la]) . beta + year_effect[year]``.
  ``la_effect`` is the deterministic
  ``la_theta - (intercept + region_effect[r] + Xbar[la] . beta)``.
  Year effects (each seen in ~150 LAs) are centred, region effects (9 groups) non-centred
  (``region_effect = sigma_region * region_z``); both sum to zero (``ZeroSumNormal``), which
  removes the ridge between them and the intercept. LA trends (``la_trend``) are non-centred
  and sum to zero too: a trend shared by all LAs is a linear trend in the year effects.
  The AR(1) LA-year term (``la_year = "ar1"``) is centred on the LA's level too: each LA's
  log-rate level by year ``la_level[la, :] ~ MvNormal(la_theta[la], K)``,
  ``K[t, u] = sigma_la_year^2 rho_la_year^|t - u|`` with t, u calendar years (a gap in the
  fitted years is a longer lag, not a skipped step); the deterministic ``la_year`` is
  ``la_level - la_theta`` centred to sum to zero over authorities in each year (a movement
  common to all authorities is a year effect). The data pin down ``la_level`` directly;
  sampling ``la_year`` beside ``la_theta`` instead left a ridge (only their sum is in the
  likelihood). ``la_theta`` itself is then non-centred, ``la_mean + sigma_la * la_z``: the data
  reach it only through the AR(1) levels, weakly when rho is near 1. Random-walk year effects
  (``year_effect = "rw1"``) sample centred steps and are centred to sum to zero.
- ``"textbook"``: every random effect non-centred, ``effect = sigma * z`` with iid
  ``z ~ N(0, 1)`` (no sum-to-zero, except that ``la_year`` is centred over authorities and
  random-walk year effects are centred, as in the default), as bambi builds it. Kept as the
  efficiency baseline. Its ``intercept``, ``region_effect`` and ``year_effect`` are therefore
  not the same quantities as the default's (the mean of the region / year effects is not
  absorbed into the intercept); ``eta`` and every answer computed from it are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import SpecError
from csc_bayes.priors import Prior
from csc_bayes.spec import ModelSpec, resolve_priors, select_rows
from csc_bayes.terms import BUILD_ORDER, BuildContext, terms_of
from csc_bayes.terms.base import NOT_GATED_ATTR
from csc_bayes.terms.la_year import ar1_cholesky, ar1_correlation, ar1_logp  # noqa: F401

Parameterisation = Literal["hierarchical", "textbook"]
PARAMETERISATIONS = ("hierarchical", "textbook")
#: bump whenever a change to this module changes the posterior of an unchanged spec, so that
#: ``fit(refit="on_change")`` does not reuse runs made by the older code
MODEL_VERSION = "2026-11-22.2"  # .2: la_year centred over authorities
#: the order in which the terms' parts are added into eta (it fixes the floating-point sums)
ETA_ORDER = {
    "hierarchical": ("la", "la_year", "covariates", "year", "la_slope", "la_trend", "stock"),
    "textbook": (
        "intercept",
        "covariates",
        "la",
        "region",
        "la_year",
        "year",
        "la_slope",
        "la_trend",
        "stock",
    ),
}


@dataclass
class BuiltModel:
    """A PyMC model built from a spec and a panel, with what is needed to read its posterior.

    Attributes:
        model: the ``pm.Model`` (names, dims and coords as in the posterior contract).
        spec: the specification it was built from.
        data: the fitted panel rows in ``obs`` order (index 0..n-1), every panel column.
        excluded: rows in ``spec.years`` that were not fitted, with a ``reason`` each.
        covariate_mean, covariate_sd: the standardisation ``X = (x - mean) / sd`` (by covariate).
        authorities: one row per ``la`` coordinate: la_code, la_name, ons_code, region.
        priors: the prior used for each parameter (data-scaled defaults + overrides).
        parameterisation: ``"hierarchical"`` or ``"textbook"``.
        not_gated: internal variables the convergence gate skips, as the terms declare them.
    """

    model: pm.Model
    spec: ModelSpec
    data: pd.DataFrame
    excluded: pd.DataFrame
    covariate_mean: pd.Series
    covariate_sd: pd.Series
    authorities: pd.DataFrame
    priors: dict[str, Prior]
    parameterisation: str
    not_gated: tuple[str, ...] = ()


def build_model(
    spec: ModelSpec,
    panel: pd.DataFrame,
    *,
    parameterisation: Parameterisation = "hierarchical",
) -> BuiltModel:
    """Build the PyMC model of ``spec`` on the panel rows in ``spec.years``.

    Rows with a missing outcome, exposure or covariate are left out and listed in
    ``BuiltModel.excluded`` with the reason. Covariates are standardised over the fitted rows:
    ``X = (x - mean) / sd`` (population SD). Each term of the spec (:mod:`csc_bayes.terms`) adds
    its variables in :data:`~csc_bayes.terms.BUILD_ORDER`; eta is their sum.
    """
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}")
    data, excluded = select_rows(spec, panel)
    priors = resolve_priors(spec, data)  # raises SpecError when nothing is left to fit
    covs = list(spec.covariates)

    x = data[covs].to_numpy(dtype=float).reshape(len(data), len(covs))
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    for cov, s in zip(covs, sd, strict=True):
        if not s > 0:
            raise SpecError(
                f"{spec.source}: covariate {cov!r} is constant over the {len(data)} fitted rows; "
                "it cannot be standardised"
            )
    X = (x - mean) / sd

    authorities = (
        data.groupby("la_code", sort=True)[["la_name", "ons_code", "region"]]
        .last()
        .reset_index()
        .astype("string")
    )
    la_codes = authorities["la_code"].to_numpy(dtype=str)
    regions = [r for r in REGIONS if r in set(authorities["region"])]
    years = np.sort(data["year"].unique()).astype(int)
    la_idx = pd.Index(la_codes).get_indexer(data["la_code"].astype(str))
    year_idx = pd.Index(years).get_indexer(data["year"])
    la_region_idx = pd.Index(regions).get_indexer(authorities["region"].astype(str))
    region_idx = la_region_idx[la_idx]

    terms = {t.name: t for t in terms_of(spec)}
    coords = {"la": la_codes, "region": regions, "year": years, "covariate": covs}
    for term in terms.values():
        coords.update(term.coords(years))
    coords["obs"] = np.arange(len(data))
    ctx = BuildContext(
        spec=spec,
        priors=priors,
        parameterisation=parameterisation,
        la_codes=la_codes,
        regions=regions,
        years=years,
        covariates=covs,
        la_idx=la_idx,
        region_idx=region_idx,
        year_idx=year_idx,
        la_region_idx=la_region_idx,
        X=X,
        data=data,
        # an ordinal outcome (a grade every few years) informs each authority's level weakly:
        # its level is non-centred (la_mean + sigma_la * la_z), as under an AR(1) term
        la_level_noncentred=spec.ordinal
        or any(
            getattr(t, "centres_la_level", False) or t.la_level_noncentred for t in terms.values()
        ),
    )

    with pm.Model(coords=coords) as model:
        ctx.tensors["X"] = pm.Data("X", X, dims=("obs", "covariate"))
        pm.Data("covariate_mean", mean, dims="covariate")
        pm.Data("covariate_sd", sd, dims="covariate")
        ctx.tensors["covariate_sd_values"] = sd
        ctx.tensors["la_idx"] = pm.Data("la_idx", la_idx, dims="obs")
        ctx.tensors["region_idx"] = pm.Data("region_idx", region_idx, dims="obs")
        ctx.tensors["year_idx"] = pm.Data("year_idx", year_idx, dims="obs")
        if spec.has_exposure:
            log_exposure = np.log(data[spec.exposure].to_numpy(dtype=float))
        else:  # an ordinal family: no offset
            log_exposure = np.zeros(len(data))
        eta = pm.Data("log_exposure", log_exposure, dims="obs")
        for name in BUILD_ORDER:
            if name == "family":
                for part in ETA_ORDER[parameterisation]:
                    if part in ctx.eta:
                        eta = eta + ctx.eta[part]
                ctx.tensors["eta"] = eta
            if name in terms:
                terms[name].build(ctx)

    return BuiltModel(
        model=model,
        spec=spec,
        data=data,
        excluded=excluded,
        covariate_mean=pd.Series(mean, index=pd.Index(covs, name="covariate")),
        covariate_sd=pd.Series(sd, index=pd.Index(covs, name="covariate")),
        authorities=authorities,
        priors=priors,
        parameterisation=parameterisation,
        not_gated=tuple(v for t in terms.values() for v in t.not_gated),
    )


def attach_coords(idata: xr.DataTree, built: BuiltModel) -> xr.DataTree:
    """Add the contract's non-dimension coords ``la_name``, ``ons_code``, ``la_region`` on ``la``,
    and record in the posterior's attributes the variables the convergence gate skips.

    PyMC only records dimension coordinates, so every group with an ``la`` dimension gets them
    here. With interval-censored rows (``y_lower`` / ``y_upper`` in ``constant_data``), the
    observed ``y`` of those rows becomes NaN. Returns the same DataTree (modified in place).
    """
    extra = {
        "la_name": ("la", built.authorities["la_name"].to_numpy(dtype=str)),
        "ons_code": ("la", built.authorities["ons_code"].to_numpy(dtype=str)),
        "la_region": ("la", built.authorities["region"].to_numpy(dtype=str)),
    }
    for node in idata.subtree:
        if "la" in node.dims and node.has_data:
            node.dataset = node.to_dataset().assign_coords(extra)
    idata["posterior"].attrs[NOT_GATED_ATTR] = " ".join(built.not_gated)
    constant = idata["constant_data"].to_dataset() if "constant_data" in idata else None
    if constant is not None and "y_lower" in constant and "observed_data" in idata:
        # an interval-censored row has no observed count: NaN, its bounds in constant_data
        observed = idata["observed_data"].to_dataset()
        censored = constant["y_lower"].values != constant["y_upper"].values
        y = np.where(censored, np.nan, observed["y"].values.astype(float))
        idata["observed_data"] = xr.DataTree(observed.assign(y=(observed["y"].dims, y)))
    return idata
