"""How much of the variation in a fitted outcome each source explains, and how much it leaves.

Every number is computed per posterior draw from the names in the posterior contract
(ARCHITECTURE.md) and summarised by its median and a central ``ci_prob`` interval. The
definitions, with formulas and references, are in ``docs/methods.md``:

- latent-scale variance shares over the fitted authority-years, with correlated components
  attributed by Shapley values (LMG);
- finite-population SDs of every batch (Gelman 2005) beside the superpopulation SDs;
- a Bayesian R-squared on the rate scale (Gelman, Goodrich, Gabry & Vehtari 2019);
- given a null fit, the proportion of between-LA variance that the covariates explain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import polygamma

#: default width of every credible interval in the answers (variance, excess, predict)
DEFAULT_CI_PROB = 0.9


# --------------------------------------------------------------------------------------------
# Draws and the linear predictor, from contract names only (shared with excess.py, predict.py)
# --------------------------------------------------------------------------------------------


def draws(fit: Any, name: str) -> np.ndarray:
    """Posterior draws of ``name`` as an array with the draws first: shape (S, *dims)."""
    da = fit.idata["posterior"][name].transpose("chain", "draw", ...)
    values = np.asarray(da.values, dtype=float)
    return values.reshape(-1, *values.shape[2:])  # chains one after another


def constant(fit: Any, name: str) -> np.ndarray:
    """A ``constant_data`` array as numpy."""
    return np.asarray(fit.idata["constant_data"][name].values)


def has_variable(fit: Any, name: str) -> bool:
    """Whether the posterior holds ``name`` (``phi`` is absent for Poisson fits)."""
    return name in fit.idata["posterior"].data_vars


def covariate_names(fit: Any) -> list[str]:
    """The ``covariate`` coordinate (empty for a random-effects-only model)."""
    post = fit.idata["posterior"]
    if "covariate" not in post.coords or not has_variable(fit, "beta"):
        return []
    return [str(c) for c in post["covariate"].values]


def covariate_groups(fit: Any) -> dict[str, tuple[str, ...]]:
    """Component name -> its covariates, in ``covariate`` coordinate order.

    Taken from ``fit.spec.groups``; a covariate in no group becomes a component of its own.
    """
    covariates = covariate_names(fit)
    declared = dict(getattr(fit.spec, "groups", None) or {})
    groups: dict[str, tuple[str, ...]] = {}
    for name, members in declared.items():
        kept = tuple(c for c in members if c in covariates)
        if kept:
            groups[str(name)] = kept
    grouped = {c for members in groups.values() for c in members}
    for c in covariates:
        if c not in grouped:
            groups[c] = (c,)
    return groups


def random_slope_name(fit: Any) -> str | None:
    """The covariate carrying a random slope, when the posterior has ``la_slope``."""
    if not has_variable(fit, "la_slope"):
        return None
    slope = getattr(fit.spec, "random_slope", None)
    if isinstance(slope, (list, tuple)):
        slope = slope[0] if slope else None
    if slope is None:
        raise ValueError("the posterior has la_slope but fit.spec.random_slope names no covariate")
    return str(slope)


def authorities(fit: Any) -> pd.DataFrame:
    """la_code, ons_code, la_name, region of the fitted authorities, in ``la`` order.

    From the ``la`` coordinate's ``la_name`` / ``ons_code`` / ``la_region`` (``Fit.authorities``);
    when a posterior lacks them, from the latest panel row of each authority.
    """
    post = fit.idata["posterior"]
    if all(name in post.coords for name in ("la_name", "ons_code", "la_region")):
        return fit.authorities
    codes = [str(c) for c in post["la"].values]
    latest = fit.panel.assign(la_code=fit.panel["la_code"].astype(str)).sort_values("year")
    latest = latest.drop_duplicates("la_code", keep="last").set_index("la_code")
    missing = sorted(set(codes) - set(latest.index))
    if missing:
        raise ValueError(f"fitted authorities {missing[:5]} have no rows in the fit's panel")
    rows = latest.loc[codes, ["ons_code", "la_name", "region"]].astype(str)
    return rows.reset_index().rename(columns={"index": "la_code"})


@dataclass(frozen=True)
class Terms:
    """The additive terms of the linear predictor, per draw (rows) and fitted obs (columns).

    ``eta = log_exposure + intercept + sum(components.values())``, where ``components`` holds
    one array per covariate group, then ``region``, ``year`` and ``la`` (la_effect plus the
    random-slope term and the LA-trend term ``la_trend * year_c`` when the model has them),
    then ``la_year`` (the AR(1) LA-year deviation ``la_year[la, year]``) when the model has it.
    """

    log_exposure: np.ndarray  # (n,)
    intercept: np.ndarray  # (S,)
    components: dict[str, np.ndarray]  # name -> (S, n)
    la_idx: np.ndarray  # (n,)

    @property
    def eta(self) -> np.ndarray:
        """Linear predictor (S, n), exactly as in the posterior contract."""
        total = self.log_exposure[None, :] + self.intercept[:, None]
        for values in self.components.values():
            total = total + values
        return total


def linear_predictor_terms(fit: Any) -> Terms:
    """Split every fitted row's linear predictor into the terms of the posterior contract."""
    la_idx = constant(fit, "la_idx").astype(int)
    components: dict[str, np.ndarray] = {}
    covariates = covariate_names(fit)
    if covariates:
        X = constant(fit, "X").astype(float)
        beta = draws(fit, "beta")
        for group, members in covariate_groups(fit).items():
            cols = [covariates.index(c) for c in members]
            components[group] = beta[:, cols] @ X[:, cols].T
    components["region"] = draws(fit, "region_effect")[:, constant(fit, "region_idx").astype(int)]
    components["year"] = draws(fit, "year_effect")[:, constant(fit, "year_idx").astype(int)]
    la = draws(fit, "la_effect")[:, la_idx]
    slope = random_slope_name(fit)
    if slope is not None:
        x_slope = constant(fit, "X").astype(float)[:, covariates.index(slope)]
        la = la + draws(fit, "la_slope")[:, la_idx] * x_slope[None, :]
    if has_variable(fit, "la_trend"):
        year_c = constant(fit, "year_c").astype(float)
        la = la + draws(fit, "la_trend")[:, la_idx] * year_c[None, :]
    components["la"] = la
    if has_variable(fit, "la_year"):
        year_idx = constant(fit, "year_idx").astype(int)
        components["la_year"] = draws(fit, "la_year")[:, la_idx, year_idx]
    return Terms(
        log_exposure=constant(fit, "log_exposure").astype(float),
        intercept=draws(fit, "intercept"),
        components=components,
        la_idx=la_idx,
    )


def interval(values: np.ndarray, ci_prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central credible interval: the (1 - ci_prob)/2 and (1 + ci_prob)/2 quantiles."""
    check_ci_prob(ci_prob)
    lo, hi = np.quantile(values, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=axis)
    return lo, hi


def check_ci_prob(ci_prob: float) -> None:
    """Reject an interval width outside (0, 1)."""
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must lie strictly between 0 and 1, got {ci_prob!r}")


# --------------------------------------------------------------------------------------------
# Shapley (LMG) attribution of the variance of a sum
# --------------------------------------------------------------------------------------------


def shapley_variance(cov: np.ndarray) -> np.ndarray:
    """Shapley values of the game v(T) = Var(sum of components in T), from their covariances.

    ``cov`` has shape (..., m, m). The value of component j is the average over all orderings
    of its increment in Var(sum so far); for this quadratic game it equals exactly
    ``phi_j = sum_k Cov(f_j, f_k) = Cov(f_j, f_1 + ... + f_m)``: each covariance between two
    components is split equally between them. The values sum to Var(f_1 + ... + f_m).
    """
    cov = np.asarray(cov, dtype=float)
    return cov.sum(axis=-1)


# --------------------------------------------------------------------------------------------
# The answer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VarianceExplained:
    """Variance shares, batch SDs, Bayesian R2 and (given a null fit) between-LA R2.

    Attributes:
        summary: one row per quantity: ``measure`` (share / finite_sd / superpopulation_sd /
            bayes_r2 / between_la_explained), ``component``, ``median``, ``lower``, ``upper``,
            ``mean``.
        shares: per-draw latent-scale variance shares, dims (sample, component); each draw's
            shares sum to 1.
        draws: every per-draw quantity of ``summary``, dims (sample, quantity), where the
            quantity label is ``"<measure>:<component>"``.
        ci_prob: the interval width used.
    """

    summary: pd.DataFrame
    shares: xr.DataArray
    draws: xr.DataArray
    ci_prob: float

    def to_frame(self) -> pd.DataFrame:
        """The summary table (a copy)."""
        return self.summary.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: ``{"ci_prob": p, "rows": [{measure, component, median, ...}]}``."""
        rows = [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in self.summary.to_dict(orient="records")
        ]
        return {"ci_prob": self.ci_prob, "rows": rows}


def residual_variances(fit: Any, eta: np.ndarray) -> dict[str, np.ndarray]:
    """Observation-level variance on the latent log scale, per draw.

    ``overdispersion`` (negative binomial only): trigamma(phi), the variance of log G for the
    gamma mixing variable G ~ Gamma(phi, phi). ``poisson_noise``: the lognormal approximation
    of Poisson sampling variance, mean over fitted rows of log(1 + 1/mu_i) with mu_i = exp(eta_i)
    (Nakagawa, Johnson & Schielzeth 2017).
    """
    out: dict[str, np.ndarray] = {}
    if has_variable(fit, "phi"):
        out["overdispersion"] = polygamma(1, draws(fit, "phi"))
    out["poisson_noise"] = np.log1p(np.exp(-eta)).mean(axis=1)
    return out


def _bayes_r2(fit: Any, eta: np.ndarray, log_exposure: np.ndarray) -> np.ndarray:
    """Bayesian R2 on the rate scale: Var_i(r_i) / (Var_i(r_i) + mean_i v_i), per draw.

    r_i = mu_i / pop_i is the fitted mean rate; v_i = Var(y_i) / pop_i^2 its residual variance,
    with Var(y) = mu + mu^2/phi (negative binomial) or mu (Poisson).
    """
    mu = np.exp(eta)
    pop = np.exp(log_exposure)[None, :]
    rate = mu / pop
    var_y = mu + mu**2 / draws(fit, "phi")[:, None] if has_variable(fit, "phi") else mu
    fitted_var = rate.var(axis=1, ddof=1)
    return fitted_var / (fitted_var + (var_y / pop**2).mean(axis=1))


def _la_level(values: np.ndarray, la_idx: np.ndarray, n_la: int) -> np.ndarray:
    """Per draw, the mean over each LA's fitted rows: (S, n) -> (S, n_la)."""
    counts = np.bincount(la_idx, minlength=n_la).astype(float)
    sums = np.zeros((values.shape[0], n_la))
    np.add.at(sums.T, la_idx, values.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[None, :]


def between_la_variance(fit: Any, terms: Terms | None = None) -> np.ndarray:
    """V_between per draw: variance across fitted LAs of the LA-level deviation not explained
    by covariates.

    For LA j, d_j = mean over its fitted rows of (region_effect + la_effect [+ la_slope * x]
    [+ la_trend * year_c] [+ la_year]), i.e. its latent log-rate net of the intercept, the
    covariates and the common year effects;
    V_between = Var_j(d_j) (ddof = 1) over the LAs with at least one fitted row.
    """
    terms = linear_predictor_terms(fit) if terms is None else terms
    n_la = fit.idata["posterior"].sizes["la"]
    own = terms.components["region"] + terms.components["la"]
    if "la_year" in terms.components:
        own = own + terms.components["la_year"]
    d = _la_level(own, terms.la_idx, n_la)
    seen = np.bincount(terms.la_idx, minlength=n_la) > 0
    return d[:, seen].var(axis=1, ddof=1)


def superpopulation_between_la_variance(fit: Any) -> np.ndarray:
    """The model's expected V_between per draw: Var_j(d_j) of :func:`between_la_variance` for
    new authorities drawn from the random-effect laws, observed in the fitted LAs' rows,

        sigma_la^2 + sigma_region^2
        [+ sigma_la_slope^2 mean_j xbar_j^2]      xbar_j: LA j's mean of the slope covariate
        [+ sigma_la_trend^2 mean_j cbar_j^2]      cbar_j: LA j's mean year_c
        [+ sigma_la_year^2 mean_j k_j]            k_j = n_j^-2 sum_{a,b} rho^|t_a - t_b|,

    the last three being the variances of an LA's mean slope, trend and AR(1) terms over its
    n_j fitted years t (k_j is the variance of the mean of a unit-variance AR(1) path).
    """
    la_idx = constant(fit, "la_idx").astype(int)
    n_la = fit.idata["posterior"].sizes["la"]
    seen = np.flatnonzero(np.bincount(la_idx, minlength=n_la) > 0)
    total = draws(fit, "sigma_la") ** 2 + draws(fit, "sigma_region") ** 2

    def mean_square_of_la_means(values: np.ndarray) -> float:
        sums = np.bincount(la_idx, weights=values, minlength=n_la)
        means = sums[seen] / np.bincount(la_idx, minlength=n_la)[seen]
        return float(np.mean(means**2))

    slope = random_slope_name(fit)
    if slope is not None:
        x_slope = constant(fit, "X").astype(float)[:, covariate_names(fit).index(slope)]
        total = total + draws(fit, "sigma_la_slope") ** 2 * mean_square_of_la_means(x_slope)
    if has_variable(fit, "la_trend"):
        year_c = constant(fit, "year_c").astype(float)
        total = total + draws(fit, "sigma_la_trend") ** 2 * mean_square_of_la_means(year_c)
    if has_variable(fit, "la_year"):
        years = fit.idata["posterior"]["year"].values.astype(float)
        fitted_years = years[constant(fit, "year_idx").astype(int)]
        year_sets = pd.Series(fitted_years).groupby(la_idx).agg(lambda t: tuple(sorted(t)))
        from csc_bayes.model import ar1_correlation

        rho = draws(fit, "rho_la_year")
        mean_k = np.zeros_like(rho)
        for year_set, count in year_sets.value_counts().items():
            mean_k += count * ar1_correlation(rho, year_set).mean(axis=(1, 2))
        total = total + draws(fit, "sigma_la_year") ** 2 * mean_k / len(year_sets)
    return total


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index-matched draws of two independent posteriors (the first min(S_a, S_b) of each)."""
    n = min(len(a), len(b))
    return a[:n], b[:n]


def _check_null_matches(fit: Any, null_fit: Any) -> None:
    """The null fit must model the same outcome on the same authorities and years."""
    for coord in ("la", "year"):
        full = [str(v) for v in fit.idata["posterior"][coord].values]
        null = [str(v) for v in null_fit.idata["posterior"][coord].values]
        if full != null:
            raise ValueError(
                f"null fit does not match: its {coord!r} coordinate differs from the full fit's "
                f"({len(null)} vs {len(full)} values; e.g. only in one: "
                f"{sorted(set(full) ^ set(null))[:5]})"
            )
    outcome = getattr(fit.spec, "outcome", None)
    null_outcome = getattr(null_fit.spec, "outcome", None)
    if outcome != null_outcome:
        raise ValueError(
            f"null fit models outcome {null_outcome!r} but the full fit models {outcome!r}"
        )
    if covariate_names(null_fit):
        n = len(covariate_names(null_fit))
        raise ValueError(f"the null fit has {n} covariate(s); a null fit has random effects only")


def _summarise(label: str, component: str, values: np.ndarray, ci_prob: float) -> dict[str, Any]:
    lo, hi = interval(values, ci_prob)
    return {
        "measure": label,
        "component": component,
        "median": float(np.median(values)),
        "lower": float(lo),
        "upper": float(hi),
        "mean": float(np.mean(values)),
    }


def explain_variance(
    fit: Any, *, null_fit: Any | None = None, ci_prob: float = DEFAULT_CI_PROB
) -> VarianceExplained:
    """How much variation each source explains, with ``ci_prob`` credible intervals.

    Per draw, over the fitted authority-years (unweighted), with f_c the term of component c
    in the linear predictor (covariate groups, region, year, la):

    - ``share``: Shapley value of c in Var(sum_c f_c), divided by the total
      Var(sum_c f_c) + residual, where the residual is trigamma(phi) (NB) plus the mean
      log(1 + 1/mu) Poisson noise; residual rows are reported as shares too. Shares sum to 1.
    - ``finite_sd``: SD (ddof = 1) across the observed levels of la_effect, region_effect,
      year_effect, la_slope, la_trend, and across fitted rows of each covariate group's term
      and of the AR(1) LA-year term.
    - ``superpopulation_sd``: sigma_la, sigma_region, sigma_year, sigma_la_slope,
      sigma_la_trend, sigma_la_year (the AR(1) term's marginal SD).
    - ``bayes_r2``: see :func:`_bayes_r2`.
    - ``between_la_explained`` (needs ``null_fit``): 1 - V_between(full) / V_between(null) per
      index-paired draw, V_between from :func:`between_la_variance`; and the same with the
      model's expected V_between, :func:`superpopulation_between_la_variance`.
    """
    check_ci_prob(ci_prob)
    terms = linear_predictor_terms(fit)
    names = list(terms.components)
    stacked = np.stack([terms.components[c] for c in names], axis=1)  # (S, m, n)
    centred = stacked - stacked.mean(axis=2, keepdims=True)
    cov = np.einsum("smn,skn->smk", centred, centred) / (stacked.shape[2] - 1)
    explained = shapley_variance(cov)  # (S, m)
    eta = terms.eta
    residual = residual_variances(fit, eta)
    parts = np.concatenate([explained, np.stack(list(residual.values()), axis=1)], axis=1)
    labels = names + list(residual)
    shares = parts / parts.sum(axis=1, keepdims=True)

    quantities: dict[str, np.ndarray] = {}
    for j, label in enumerate(labels):
        quantities[f"share:{label}"] = shares[:, j]
    for j, label in enumerate(names):
        if label not in ("region", "year", "la"):
            quantities[f"finite_sd:{label}"] = np.sqrt(cov[:, j, j])
    for batch, var in (("la", "la_effect"), ("region", "region_effect"), ("year", "year_effect")):
        quantities[f"finite_sd:{batch}"] = draws(fit, var).std(axis=1, ddof=1)
    for extra in ("la_slope", "la_trend"):
        if has_variable(fit, extra):
            quantities[f"finite_sd:{extra}"] = draws(fit, extra).std(axis=1, ddof=1)
    for batch, var in (
        ("la", "sigma_la"),
        ("region", "sigma_region"),
        ("year", "sigma_year"),
        ("la_slope", "sigma_la_slope"),
        ("la_trend", "sigma_la_trend"),
        ("la_year", "sigma_la_year"),
    ):
        if has_variable(fit, var):
            quantities[f"superpopulation_sd:{batch}"] = draws(fit, var)
    quantities["bayes_r2:rate"] = _bayes_r2(fit, eta, terms.log_exposure)

    if null_fit is not None:
        _check_null_matches(fit, null_fit)
        full, null = _paired(between_la_variance(fit, terms), between_la_variance(null_fit))
        quantities["between_la_explained:finite"] = 1 - full / null
        full_sp, null_sp = _paired(
            superpopulation_between_la_variance(fit), superpopulation_between_la_variance(null_fit)
        )
        quantities["between_la_explained:superpopulation"] = 1 - full_sp / null_sp

    n = min(len(v) for v in quantities.values())
    rows = [_summarise(*key.split(":", 1), values, ci_prob) for key, values in quantities.items()]
    sample = np.arange(shares.shape[0])
    return VarianceExplained(
        summary=pd.DataFrame(rows),
        shares=xr.DataArray(
            shares,
            dims=("sample", "component"),
            coords={"sample": sample, "component": labels},
            name="variance_share",
        ),
        draws=xr.DataArray(
            np.stack([v[:n] for v in quantities.values()], axis=1),
            dims=("sample", "quantity"),
            coords={"sample": np.arange(n), "quantity": list(quantities)},
            name="variance_quantities",
        ),
        ci_prob=ci_prob,
    )
