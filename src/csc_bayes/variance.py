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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from csc_bayes.errors import AnswerError
from csc_bayes.linear_predictor import LinearPredictor, linear_predictor
from csc_bayes.ordinal import require_count_fit
from csc_bayes.posterior import Posterior, reader
from csc_bayes.terms.base import refuse_forecast_only

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit

#: default width of every credible interval in the answers (variance, excess, predict)
DEFAULT_CI_PROB = 0.9


def interval(values: np.ndarray, ci_prob: float, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Central credible interval: the (1 - ci_prob)/2 and (1 + ci_prob)/2 quantiles."""
    check_ci_prob(ci_prob)
    lo, hi = np.quantile(values, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=axis)
    return lo, hi


def check_ci_prob(ci_prob: float) -> None:
    """Reject an interval width outside (0, 1)."""
    if not 0 < ci_prob < 1:
        raise AnswerError(f"ci_prob must lie strictly between 0 and 1, got {ci_prob!r}")


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
            bayes_r2 / between_la_explained, and for a fit with practice covariates
            practice_rate_ratio_per_sd / practice_rate_ratio_vs_reference / practice_share),
            ``component``, ``median``, ``lower``, ``upper``, ``mean``.
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


def _family(post: Posterior) -> Any:
    return next(t for t in post.terms if t.name == "family")


def residual_variances(fit: Fit | Posterior, eta: np.ndarray) -> dict[str, np.ndarray]:
    """Observation-level variance on the latent log scale, per draw (the family's
    :meth:`~csc_bayes.terms.family.Family.residual_variances`)."""
    post = reader(fit)
    return _family(post).residual_variances(post, eta)


def _bayes_r2(post: Posterior, eta: np.ndarray, log_exposure: np.ndarray) -> np.ndarray:
    """Bayesian R2 on the rate scale: Var_i(r_i) / (Var_i(r_i) + mean_i v_i), per draw.

    r_i = mu_i / pop_i is the fitted mean rate; v_i = Var(y_i) / pop_i^2 its residual variance,
    with Var(y) = mu + mu^2/phi (negative binomial) or mu (Poisson).
    """
    family = _family(post)
    mu = np.exp(eta)
    pop = np.exp(log_exposure)[None, :]
    phi = family.phi(post)
    var_y = family.variance(mu, None if phi is None else phi[:, None])
    fitted_var = (mu / pop).var(axis=1, ddof=1)
    return fitted_var / (fitted_var + (var_y / pop**2).mean(axis=1))


def _la_level(values: np.ndarray, la_idx: np.ndarray, n_la: int) -> np.ndarray:
    """Per draw, the mean over each LA's fitted rows: (S, n) -> (S, n_la)."""
    counts = np.bincount(la_idx, minlength=n_la).astype(float)
    sums = np.zeros((values.shape[0], n_la))
    np.add.at(sums.T, la_idx, values.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[None, :]


def between_la_variance(fit: Fit | Posterior, lp: LinearPredictor | None = None) -> np.ndarray:
    """V_between per draw: variance across fitted LAs of the LA-level deviation not explained
    by covariates.

    For LA j, d_j = mean over its fitted rows of (region_effect + la_effect [+ la_slope * x]
    [+ la_trend * year_c] [+ la_year]), i.e. its latent log-rate net of the intercept, the
    covariates and the common year effects (the components of the terms marked ``between_la``);
    V_between = Var_j(d_j) (ddof = 1) over the LAs with at least one fitted row.
    """
    post = reader(fit)
    lp = linear_predictor(post) if lp is None else lp
    n_la = len(post.la_codes)
    labels = lp.between_la_labels()
    own = lp.components[labels[0]]
    for label in labels[1:]:
        own = own + lp.components[label]
    d = _la_level(own, post.la_idx, n_la)
    seen = np.bincount(post.la_idx, minlength=n_la) > 0
    return d[:, seen].var(axis=1, ddof=1)


def superpopulation_between_la_variance(fit: Fit | Posterior) -> np.ndarray:
    """The model's expected V_between per draw: Var_j(d_j) of :func:`between_la_variance` for
    new authorities drawn from the random-effect laws, observed in the fitted LAs' rows,

        sigma_la^2 + sigma_region^2
        [+ sigma_la_slope^2 mean_j xbar_j^2]      xbar_j: LA j's mean of the slope covariate
        [+ sigma_la_trend^2 mean_j cbar_j^2]      cbar_j: LA j's mean year_c
        [+ sigma_la_year^2 mean_j k_j]            k_j = n_j^-2 sum_{a,b} rho^|t_a - t_b|,

    the last three being the variances of an LA's mean slope, trend and AR(1) terms over its
    n_j fitted years t (k_j is the variance of the mean of a unit-variance AR(1) path). Each
    term gives its own part (``Term.expected_between_la_variance``).
    """
    post = reader(fit)
    total = np.zeros(post.n_draws)
    for term in post.terms:
        total = total + term.expected_between_la_variance(post)
    return total


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index-matched draws of two independent posteriors (the first min(S_a, S_b) of each)."""
    n = min(len(a), len(b))
    return a[:n], b[:n]


def _check_null_matches(post: Posterior, null: Posterior) -> None:
    """The null fit must model the same outcome on the same authorities and years."""
    for coord, attr in (("la", "la_codes"), ("year", "years")):
        if getattr(post, attr) != getattr(null, attr):
            full, null_values = getattr(post, attr), getattr(null, attr)
            raise AnswerError(
                f"null fit does not match: its {coord!r} coordinate differs from the full "
                f"fit's ({len(null_values)} vs {len(full)} values; e.g. only in one: "
                f"{sorted(set(map(str, full)) ^ set(map(str, null_values)))[:5]})"
            )
    if post.spec.outcome != null.spec.outcome:
        raise AnswerError(
            f"null fit models outcome {null.spec.outcome!r} but the full fit models "
            f"{post.spec.outcome!r}"
        )
    if null.covariates:
        raise AnswerError(
            f"the null fit has {len(null.covariates)} covariate(s); a null fit has random "
            "effects only"
        )


#: the covariate block whose association with the authorities' levels ``practice_draws`` reports
PRACTICE_BLOCK = "practice"


def practice_covariates(post: Posterior) -> list[str]:
    """The fit's covariates in its ``practice`` block, in spec order (empty without one)."""
    comps = post.spec.blocks.get(PRACTICE_BLOCK, {})
    return [c for covs in comps.values() for c in covs if c in post.covariates]


def _is_indicator(name: str) -> bool:
    """An indicator column (or its yearly deviation): reported per unit, against its reference."""
    from csc_bayes.data.grades import is_ilacs_indicator
    from csc_bayes.data.within import parse_year_dev_name

    return is_ilacs_indicator(parse_year_dev_name(name) or name)


def _check_without_practice(post: Posterior, reduced: Posterior) -> None:
    """The comparison fit must be the same model without the practice block, on the same rows."""
    for coord, attr in (("la", "la_codes"), ("year", "years")):
        if getattr(post, attr) != getattr(reduced, attr):
            raise AnswerError(
                f"the fit without practice does not match: its {coord!r} coordinate differs "
                f"from the practice fit's ({len(getattr(reduced, attr))} vs "
                f"{len(getattr(post, attr))} values); fit it on the same rows "
                "(csc_bayes.fitting.find_without_practice_fit)"
            )
    if post.spec.outcome != reduced.spec.outcome:
        raise AnswerError(
            f"the fit without practice models {reduced.spec.outcome!r} but the practice fit "
            f"models {post.spec.outcome!r}"
        )
    if PRACTICE_BLOCK in reduced.spec.blocks:
        raise AnswerError(
            f"the comparison fit {reduced.spec.name!r} has a practice block itself; give the "
            "same model without it (ModelSpec.without_block('practice'))"
        )
    kept = [c for c in post.covariates if c not in practice_covariates(post)]
    if reduced.covariates != kept:
        raise AnswerError(
            f"the fit without practice has covariates {reduced.covariates}; the practice fit's "
            f"other covariates are {kept}"
        )
    if len(reduced.fitted_rows) != len(post.fitted_rows):
        raise AnswerError(
            f"the fit without practice has {len(reduced.fitted_rows)} fitted rows, the "
            f"practice fit {len(post.fitted_rows)}: fit it on the same authority-years"
        )


def practice_draws(
    fit: Fit | Posterior,
    *,
    without_practice_fit: Fit | Posterior | None = None,
    lp: LinearPredictor | None = None,
) -> dict[str, np.ndarray]:
    """Per-draw answers about a fit's ``practice`` covariates (docs/methods.md 1.5).

    Keys ``"<measure>:<component>"``:

    - ``practice_rate_ratio_per_sd:<cov>``: exp(beta_k), the rate ratio for one SD of the
      covariate across the fitted authority-years (``covariate_sd``), other terms held fixed;
    - ``practice_rate_ratio_vs_reference:<cov>`` for an indicator (an Ofsted judgement against
      "good or better"): exp(beta_per_unit_k);
    - ``practice_share:finite`` (needs ``without_practice_fit``, the same model without its
      practice block on the same rows), per index-paired draw s:
      ``1 - V_between(need + practice)_s / V_between(need)_s`` with V_between from
      :func:`between_la_variance`: the share of the need model's between-authority variance that
      goes with the practice covariates.

    Empty when the fit has no practice block. Every number is an association.
    """
    post = reader(fit)
    covs = practice_covariates(post)
    if not covs:
        if without_practice_fit is not None:
            raise AnswerError(
                f"model {post.spec.name!r} has no practice covariates, so there is no practice "
                "share to compute"
            )
        return {}
    out: dict[str, np.ndarray] = {}
    beta, per_unit = post.draws("beta"), post.draws("beta_per_unit")
    for cov in covs:
        k = post.covariates.index(cov)
        if _is_indicator(cov):
            out[f"practice_rate_ratio_vs_reference:{cov}"] = np.exp(per_unit[:, k])
        else:
            out[f"practice_rate_ratio_per_sd:{cov}"] = np.exp(beta[:, k])
    if without_practice_fit is not None:
        reduced = reader(without_practice_fit)
        _check_without_practice(post, reduced)
        full, need = _paired(between_la_variance(post, lp), between_la_variance(reduced))
        out["practice_share:finite"] = 1 - full / need
    return out


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
    fit: Fit,
    *,
    null_fit: Fit | None = None,
    without_practice_fit: Fit | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
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
    - for a fit with a ``practice`` block, :func:`practice_draws`: each practice covariate's
      rate ratio per SD (per unit, against the reference, for an indicator) and, given
      ``without_practice_fit`` (the same model without the practice block, on the same rows),
      ``practice_share``: the share of that model's between-LA variance the practice terms
      account for.
    """
    require_count_fit(fit, "explain")
    check_ci_prob(ci_prob)
    post = reader(fit)
    refuse_forecast_only(post.terms, post.fit.spec.name, "explain")
    lp = linear_predictor(post)
    names = list(lp.components)
    stacked = np.stack([lp.components[c] for c in names], axis=1)  # (S, m, n)
    centred = stacked - stacked.mean(axis=2, keepdims=True)
    cov = np.einsum("smn,skn->smk", centred, centred) / (stacked.shape[2] - 1)
    explained = shapley_variance(cov)  # (S, m)
    eta = lp.eta
    residual = residual_variances(post, eta)
    parts = np.concatenate([explained, np.stack(list(residual.values()), axis=1)], axis=1)
    labels = names + list(residual)
    shares = parts / parts.sum(axis=1, keepdims=True)

    batches = {k: v for term in post.terms for k, v in term.batch_sd(post).items()}
    quantities: dict[str, np.ndarray] = {}
    for j, label in enumerate(labels):
        quantities[f"share:{label}"] = shares[:, j]
    for j, label in enumerate(names):  # components without a batch of levels of their own
        if batches.get(label, (None, None))[0] is None:
            quantities[f"finite_sd:{label}"] = np.sqrt(cov[:, j, j])
    for label, (finite, _) in batches.items():
        if finite is not None:
            quantities[f"finite_sd:{label}"] = finite
    for label, (_, superpopulation) in batches.items():
        quantities[f"superpopulation_sd:{label}"] = superpopulation
    quantities["bayes_r2:rate"] = _bayes_r2(post, eta, lp.log_exposure)

    if null_fit is not None:
        null_post = reader(null_fit)
        _check_null_matches(post, null_post)
        full, null = _paired(between_la_variance(post, lp), between_la_variance(null_post))
        quantities["between_la_explained:finite"] = 1 - full / null
        full_sp, null_sp = _paired(
            superpopulation_between_la_variance(post),
            superpopulation_between_la_variance(null_post),
        )
        quantities["between_la_explained:superpopulation"] = 1 - full_sp / null_sp
    quantities.update(practice_draws(post, without_practice_fit=without_practice_fit, lp=lp))

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
