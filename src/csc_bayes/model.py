"""ModelSpec + panel -> PyMC model that follows the posterior contract in ARCHITECTURE.md.

The model (formulas and reasons in ``docs/model.md``)::

    eta[i] = log_exposure[i] + intercept + X[i] . beta
             + la_effect[la] + region_effect[region] + year_effect[year] (+ la_slope[la] X[i, s])
             (+ la_trend[la] year_c[i],  year_c = (year - year_centre) / 10, per decade)
             (+ la_year[la, year],  a stationary AR(1) over the years within each LA)
    y[i] ~ NegativeBinomial(mu = exp(eta[i]), alpha = phi)   or   Poisson(exp(eta[i]))

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

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import SpecError
from csc_bayes.spec import ModelSpec, Prior, resolve_priors, select_rows

Parameterisation = Literal["hierarchical", "textbook"]
PARAMETERISATIONS = ("hierarchical", "textbook")
#: bump whenever a change to this module changes the posterior of an unchanged spec, so that
#: ``fit(refit="on_change")`` does not reuse runs made by the older code
MODEL_VERSION = "2026-11-22.2"  # .2: la_year centred over authorities


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


def build_model(
    spec: ModelSpec,
    panel: pd.DataFrame,
    *,
    parameterisation: Parameterisation = "hierarchical",
) -> BuiltModel:
    """Build the PyMC model of ``spec`` on the panel rows in ``spec.years``.

    Rows with a missing outcome, exposure or covariate are left out and listed in
    ``BuiltModel.excluded`` with the reason. Covariates are standardised over the fitted rows:
    ``X = (x - mean) / sd`` (population SD).
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

    coords = {
        "la": la_codes,
        "region": regions,
        "year": years,
        "covariate": covs,
        **({"year_to": years[1:]} if spec.year_effect == "rw1" else {}),
        "obs": np.arange(len(data)),
    }
    y = data[spec.outcome].to_numpy(dtype=np.int64)
    log_exposure = np.log(data[spec.exposure].to_numpy(dtype=float))
    slope_k = covs.index(spec.random_slope) if spec.random_slope is not None else None
    if slope_k is not None:
        _warn_if_slope_unidentified(spec, X[:, slope_k], la_idx)

    with pm.Model(coords=coords) as model:
        X_d = pm.Data("X", X, dims=("obs", "covariate"))
        pm.Data("covariate_mean", mean, dims="covariate")
        pm.Data("covariate_sd", sd, dims="covariate")
        la_idx_d = pm.Data("la_idx", la_idx, dims="obs")
        region_idx_d = pm.Data("region_idx", region_idx, dims="obs")
        year_idx_d = pm.Data("year_idx", year_idx, dims="obs")
        log_exposure_d = pm.Data("log_exposure", log_exposure, dims="obs")

        intercept = _prior_rv("intercept", priors["intercept"])
        beta = _beta(covs, priors)
        pm.Deterministic("beta_per_unit", beta / sd, dims="covariate")

        region_term = 0.0
        if "region" in spec.random_effects:
            sigma_region = _prior_rv("sigma_region", priors["sigma_region"])
            if parameterisation == "hierarchical":
                region_z = pm.ZeroSumNormal("region_z", sigma=1.0, dims="region")
            else:
                region_z = pm.Normal("region_z", 0.0, 1.0, dims="region")
            region_effect = pm.Deterministic(
                "region_effect", sigma_region * region_z, dims="region"
            )
            region_term = region_effect[la_region_idx]  # per LA
        else:  # not in the spec: exactly zero, so the posterior contract keeps every name
            pm.Deterministic("sigma_region", pt.constant(0.0))
            pm.Deterministic("region_effect", pt.zeros(len(coords["region"])), dims="region")

        if spec.la_trend:
            # LA-specific linear trend, non-centred; year_c in decades from the fitted years' mean
            year_centre = float(years.mean())
            pm.Data("year_centre", year_centre)
            year_c_values = (data["year"].to_numpy(dtype=float) - year_centre) / 10.0
            year_c = pm.Data("year_c", year_c_values, dims="obs")
            sigma_trend = _prior_rv("sigma_la_trend", priors["sigma_la_trend"])
            if parameterisation == "hierarchical":
                # sum-to-zero: a trend common to every LA is a linear trend in the (zero-sum)
                # year effects, an exact ridge in the likelihood; the year effects carry it
                trend_z = pm.ZeroSumNormal("la_trend_z", sigma=1.0, dims="la")
            else:
                trend_z = pm.Normal("la_trend_z", 0.0, 1.0, dims="la")
            la_trend = pm.Deterministic("la_trend", sigma_trend * trend_z, dims="la")
            # each LA's mean year_c over its fitted rows (0 for an LA fitted in every year)
            mid_c = _group_means(year_c_values[:, None], la_idx, len(la_codes))[:, 0]
            la_mid_c = pt.constant(mid_c)

        sigma_la = _prior_rv("sigma_la", priors["sigma_la"])
        if parameterisation == "hierarchical":
            xbar = pt.constant(_group_means(X, la_idx, len(la_codes)))  # (la, covariate)
            la_mean = intercept + region_term + pt.dot(xbar, beta)
            if spec.la_year == "ar1":
                # the data inform la_theta only through the AR(1) levels, weakly when rho is
                # near 1 (the real panels), so the LA level is non-centred here
                la_z = pm.Normal("la_z", 0.0, 1.0, dims="la")
                la_theta = la_mean + sigma_la * la_z
            elif spec.la_trend:
                # sampled: the LA's level at its own mean fitted year, la_theta + la_trend * mid_c
                # (the same model: a shift by another parameter has unit Jacobian). For an LA
                # with few fitted years (a new authority) level and trend are then nearly
                # uncorrelated; sampling la_theta itself left them on a narrow ridge.
                la_mid = pm.Normal(
                    "la_theta", mu=la_mean + la_trend * la_mid_c, sigma=sigma_la, dims="la"
                )
                la_theta = la_mid - la_trend * la_mid_c
            else:
                la_theta = pm.Normal("la_theta", mu=la_mean, sigma=sigma_la, dims="la")
            pm.Deterministic("la_effect", la_theta - la_mean, dims="la")
            if spec.la_year == "ar1":  # the LA's level in each year, centred on la_theta
                la_level = _la_year_ar1(priors, years, la_theta)
                la_year = pm.Deterministic(
                    "la_year", _centre_over_las(la_level - la_theta[:, None]), dims=("la", "year")
                )
                la_term = la_theta[la_idx_d] + la_year[la_idx_d, year_idx_d]
            else:
                la_term = la_theta[la_idx_d]
            eta = log_exposure_d + la_term + pt.dot(X_d - xbar[la_idx_d], beta)
        else:
            la_z = pm.Normal("la_z", 0.0, 1.0, dims="la")
            la_effect = pm.Deterministic("la_effect", sigma_la * la_z, dims="la")
            eta = log_exposure_d + intercept + pt.dot(X_d, beta) + la_effect[la_idx_d]
            if "region" in spec.random_effects:
                eta = eta + region_effect[region_idx_d]
            if spec.la_year == "ar1":
                la_year = pm.Deterministic(
                    "la_year",
                    _centre_over_las(_la_year_ar1(priors, years, None)),
                    dims=("la", "year"),
                )
                eta = eta + la_year[la_idx_d, year_idx_d]

        if "year" in spec.random_effects:
            sigma_year = _prior_rv("sigma_year", priors["sigma_year"])
            if spec.year_effect == "rw1":
                year_effect = _year_random_walk(sigma_year, years, parameterisation)
            elif parameterisation == "hierarchical":
                year_effect = pm.ZeroSumNormal("year_effect", sigma=sigma_year, dims="year")
            else:
                year_z = pm.Normal("year_z", 0.0, 1.0, dims="year")
                year_effect = pm.Deterministic("year_effect", sigma_year * year_z, dims="year")
            eta = eta + year_effect[year_idx_d]
        else:  # not in the spec: exactly zero (a forecast then adds no new-year uncertainty)
            pm.Deterministic("sigma_year", pt.constant(0.0))
            pm.Deterministic("year_effect", pt.zeros(len(coords["year"])), dims="year")

        if slope_k is not None:
            sigma_slope = _prior_rv("sigma_la_slope", priors["sigma_la_slope"])
            slope_z = pm.Normal("la_slope_z", 0.0, 1.0, dims="la")
            la_slope = pm.Deterministic("la_slope", sigma_slope * slope_z, dims="la")
            eta = eta + la_slope[la_idx_d] * X_d[:, slope_k]

        if spec.la_trend:
            eta = eta + la_trend[la_idx_d] * year_c

        if spec.family == "negative_binomial":
            phi = _prior_rv("phi", priors["phi"])
            pm.NegativeBinomial("y", mu=pt.exp(eta), alpha=phi, observed=y, dims="obs")
        else:
            pm.Poisson("y", mu=pt.exp(eta), observed=y, dims="obs")

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
    )


def attach_coords(idata: xr.DataTree, built: BuiltModel) -> xr.DataTree:
    """Add the contract's non-dimension coords ``la_name``, ``ons_code``, ``la_region`` on ``la``.

    PyMC only records dimension coordinates, so every group with an ``la`` dimension gets them
    here. Returns the same DataTree (modified in place).
    """
    extra = {
        "la_name": ("la", built.authorities["la_name"].to_numpy(dtype=str)),
        "ons_code": ("la", built.authorities["ons_code"].to_numpy(dtype=str)),
        "la_region": ("la", built.authorities["region"].to_numpy(dtype=str)),
    }
    for node in idata.subtree:
        if "la" in node.dims and node.has_data:
            node.dataset = node.to_dataset().assign_coords(extra)
    return idata


# ---------------------------------------------------------------------------------- helpers
_PM_DISTS = {
    "normal": pm.Normal,
    "student_t": pm.StudentT,
    "halfnormal": pm.HalfNormal,
    "exponential": pm.Exponential,
    "gamma": pm.Gamma,
    "lognormal": pm.LogNormal,
    "beta": pm.Beta,
}


def _prior_rv(name: str, prior: Prior, **kwargs) -> pt.TensorVariable:
    return _PM_DISTS[prior.dist](name, **prior.kwargs, **kwargs)


def _beta(covs: list[str], priors: dict[str, Prior]) -> pt.TensorVariable:
    """``beta`` on dim ``covariate``: one vector RV when all covariates share a distribution.

    A model without covariates gets an empty ``beta`` so the posterior has the same names.
    """
    if not covs:
        return pm.Deterministic("beta", pt.zeros((0,)), dims="covariate")
    per_cov = [priors[f"beta.{c}"] for c in covs]
    if len({p.dist for p in per_cov}) == 1:
        params = {k: np.array([p.kwargs[k] for p in per_cov]) for k in per_cov[0].kwargs}
        return _PM_DISTS[per_cov[0].dist]("beta", **params, dims="covariate")
    parts = [_prior_rv(f"beta_{c}", p) for c, p in zip(covs, per_cov, strict=True)]
    return pm.Deterministic("beta", pt.stack(parts), dims="covariate")


def _la_year_ar1(
    priors: dict[str, Prior], years: np.ndarray, la_theta: pt.TensorVariable | None
) -> pt.TensorVariable:
    """The AR(1) LA-year term, dims (la, year): per LA a stationary AR(1) over calendar years.

    ``Cov(la_year[j, t], la_year[j, u]) = sigma_la_year^2 * rho_la_year^|t - u|``, independent
    across LAs; the innovation SD of one step is ``sigma_la_year * sqrt(1 - rho^2)``.
    Given ``la_theta`` (hierarchical): returns the sampled ``la_level`` with that law around
    ``la_theta`` (:func:`ar1_logp`). Without (textbook): returns ``la_year_z @ L.T`` with iid
    ``la_year_z ~ N(0, 1)`` (:func:`ar1_cholesky`). The caller centres the deviations over
    authorities (:func:`_centre_over_las`).
    """
    sigma = _prior_rv("sigma_la_year", priors["sigma_la_year"])
    rho = _prior_rv("rho_la_year", priors["rho_la_year"])
    years = np.asarray(years, dtype=float)
    if la_theta is not None:
        mu = pt.broadcast_to(la_theta[:, None], (la_theta.shape[0], len(years)))
        return pm.CustomDist(
            "la_level",
            mu,
            sigma,
            rho,
            logp=lambda value, mu, sigma, rho: ar1_logp(value - mu, sigma, rho, years),
            random=lambda mu, sigma, rho, rng=None, size=None: (
                mu + rng.standard_normal(np.shape(mu)) @ ar1_cholesky(sigma, rho, years).T
            ),
            support_point=lambda rv, size, mu, sigma, rho: mu,
            signature="(n),(),()->(n)",
            dims=("la", "year"),
        )
    z = pm.Normal("la_year_z", 0.0, 1.0, dims=("la", "year"))
    return pt.dot(z, ar1_cholesky(sigma, rho, years).T)


def _centre_over_las(deviation: pt.TensorVariable) -> pt.TensorVariable:
    """Subtract each year's mean over authorities: the contract's ``la_year`` sums to zero over
    ``la`` in every year. A movement common to all authorities is a year effect; without the
    constraint the year effects and the mean AR(1) deviation traded places (a ridge: R-hat 1.05
    and bulk ESS ~150 for year_effect on the real CLA panel). For deviations independent across
    authorities with a common covariance, this projection is exactly conditioning on the sum.
    """
    return deviation - deviation.mean(axis=0, keepdims=True)


def _year_random_walk(
    sigma_year: pt.TensorVariable, years: np.ndarray, parameterisation: str
) -> pt.TensorVariable:
    """Year effects as a first-order random walk over calendar years, centred to sum to zero.

    ``step[t] = w[t] - w[t-1] ~ N(0, sigma_year^2 (y_t - y_(t-1)))`` (a gap year is a longer
    step); ``year_effect = w - mean(w)``. Steps are centred (each year is seen in ~150
    authorities) in the hierarchical parameterisation, ``sigma_year * sqrt(gap) * z`` in the
    textbook one. A forecast h years on is ``year_effect[last] + N(0, sigma_year^2 h)``.
    """
    gaps = np.diff(np.asarray(years, dtype=float))
    scale = sigma_year * np.sqrt(gaps)
    if parameterisation == "hierarchical":
        steps = pm.Normal("year_step", 0.0, scale, dims="year_to")
    else:
        steps = scale * pm.Normal("year_step_z", 0.0, 1.0, dims="year_to")
    walk = pt.concatenate([pt.zeros((1,)), pt.cumsum(steps)])
    return pm.Deterministic("year_effect", walk - walk.mean(), dims="year")


def ar1_logp(x: Any, sigma: Any, rho: Any, years: np.ndarray) -> Any:
    """log density of each row of ``x`` (last axis: increasing ``years``) under the AR(1) law.

    Markov factorisation: x_0 ~ N(0, sigma^2) and, with d_t = y_t - y_(t-1) (a gap year is a
    longer lag), x_t | x_(t-1) ~ N(rho^d_t x_(t-1), sigma^2 (1 - rho^(2 d_t))). Elementwise,
    so about as cheap as an iid normal (a dense MvNormal made each gradient ~30x slower).
    """
    gaps = np.diff(np.asarray(years, dtype=float))
    decay = rho**gaps  # (year - 1,)
    mean = pt.concatenate([pt.zeros_like(x[..., :1]), decay * x[..., :-1]], axis=-1)
    one = pt.ones((1,))
    scale = sigma * pt.concatenate([one, pt.sqrt(1.0 - decay**2)])
    z = (x - mean) / scale
    return pt.sum(-0.5 * z**2 - pt.log(scale) - 0.5 * np.log(2 * np.pi), axis=-1)


def ar1_correlation(rho: np.ndarray, years: Any) -> np.ndarray:
    """Per draw, the AR(1) correlation matrix over calendar years: ``rho_s^|y_t - y_u|``,
    shape (draws, years, years), for a numpy array of posterior draws of rho."""
    years = np.asarray(years, dtype=float)
    lags = np.abs(years[:, None] - years[None, :])
    return np.asarray(rho, dtype=float)[:, None, None] ** lags[None]


def ar1_cholesky(sigma: Any, rho: Any, years: np.ndarray) -> Any:
    """Lower Cholesky factor of K[t, u] = sigma^2 rho^|y_t - y_u| for increasing years y.

    From the AR(1) written as innovations (see :func:`ar1_logp`):
    ``L[t, s] = sigma c_s rho^(y_t - y_s)`` for s <= t (0 above), with c_0 = 1 and
    ``c_s = sqrt(1 - rho^(2 (y_s - y_(s-1))))``. Works on PyTensor or numpy scalars.
    """
    years = np.asarray(years, dtype=float)
    lag = years[:, None] - years[None, :]
    lower = lag >= 0
    power = rho ** np.where(lower, lag, 0.0)
    c = (1.0 - rho ** (2.0 * np.diff(years))) ** 0.5
    if isinstance(c, np.ndarray):
        c = np.concatenate([[1.0], c])
    else:
        c = pt.concatenate([pt.ones((1,)), c])
    return sigma * power * c[None, :] * lower


def _group_means(X: np.ndarray, idx: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of the rows of X within each group: ``Xbar[g] = mean(X[idx == g])``."""
    sums = np.zeros((n_groups, X.shape[1]))
    np.add.at(sums, idx, X)
    counts = np.bincount(idx, minlength=n_groups)[:, None]
    return sums / counts


def _warn_if_slope_unidentified(spec: ModelSpec, x: np.ndarray, la_idx: np.ndarray) -> None:
    within = x - _group_means(x[:, None], la_idx, la_idx.max() + 1)[la_idx, 0]
    if np.allclose(within, 0.0):
        warnings.warn(
            f"{spec.source}: random_slope {spec.random_slope!r} does not vary within any LA over "
            "the fitted years, so la_slope is identified only through its prior "
            "(it is confounded with la_effect)",
            stacklevel=3,
        )
