"""The answers of an ordinal (cumulative-logit) fit: coefficients and predicted grade shares.

For a fit with ``family = "cumulative_logit"`` (``docs/methods.md``, "Ofsted judgements and
spending"), where ``P(grade <= k) = logistic(c_k - eta)``:

- :func:`ordinal_effects`: per covariate, the log cumulative odds ratio ``beta`` per SD (the
  model's scale), per unit as published (``beta / sd``), the odds ratio ``exp(beta)``, their
  posterior medians and equal-tailed intervals, and ``P(beta > 0)``. A positive coefficient
  moves authorities towards the *higher* codes (for ILACS: towards Inadequate); the odds ratio
  is the factor on the odds of a worse grade than any given one, the same at every split
  (proportional odds).
- :func:`grade_probabilities`: the probability of each grade, and of grade >= ``worse_from``
  (ILACS: "requires improvement or inadequate"), at low and high values of two covariates (by
  default the two parts of the spec's interaction, e.g. spending and deprivation: their
  ``quantiles`` over the fitted rows), every other covariate at its mean. Per posterior draw
  the probabilities are averaged over authorities and regions drawn from the fitted random
  effects (``n_authorities`` new levels through the one linear predictor), so a number reads
  as "the share of authorities like this that get the grade"; ``over_authorities=False``
  gives instead an authority with random effects at zero. The contrast rows (``high - low``
  of the first covariate at each level of the second) are differences per draw, with
  intervals.

Count-model answers (``explain``, ``excess``, ``predict``) refuse an ordinal fit with an
:class:`~csc_bayes.errors.AnswerError` that points here (:func:`require_count_fit`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from csc_bayes.data.judgements import outcome_categories
from csc_bayes.errors import AnswerError
from csc_bayes.linear_predictor import linear_predictor
from csc_bayes.posterior import Posterior, reader
from csc_bayes.spec import interactions_of
from csc_bayes.terms import NewLevels, Rows
from csc_bayes.terms.family import ordinal_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit

#: default width of the intervals
DEFAULT_PROB = 0.9
#: default "low" and "high" values of a covariate: these quantiles over the fitted rows
DEFAULT_QUANTILES = (0.1, 0.9)


def require_ordinal_fit(fit: Fit | Posterior, answer: str) -> Posterior:
    """The fit's reader, or :class:`AnswerError` when its family is not ordinal."""
    post = reader(fit)
    if not post.spec.ordinal:
        raise AnswerError(
            f"{answer} is an answer of an ordinal model (family 'cumulative_logit'); "
            f"{post.spec.name!r} has family {post.spec.family!r}"
        )
    return post


def require_count_fit(fit: Fit | Posterior, answer: str) -> None:
    """:class:`AnswerError` when ``fit`` is an ordinal model, for which ``answer`` (a rate,
    an expected count, a variance on the log-rate scale) has no meaning."""
    spec = reader(fit).spec
    if spec.ordinal:
        raise AnswerError(
            f"{answer} answers a count model (rates per child, expected counts); "
            f"{spec.name!r} is an ordinal model of {spec.outcome!r} (family {spec.family!r}): "
            "use `csc-bayes grades FIT` (csc_bayes.ordinal.ordinal_effects / "
            "grade_probabilities) for its coefficients and predicted grade shares"
        )


def _check_prob(prob: float) -> tuple[float, float]:
    if not 0 < prob < 1:
        raise AnswerError(f"interval width must be in (0, 1), got {prob}")
    return (1 - prob) / 2, (1 + prob) / 2


def ordinal_effects(fit: Fit | Posterior, *, prob: float = DEFAULT_PROB) -> pd.DataFrame:
    """Per covariate: ``beta`` (log cumulative odds ratio per SD), per unit, odds ratio.

    Columns: ``covariate``, ``component``, ``sd`` (its SD over the fitted rows), ``beta_median``,
    ``beta_lower``, ``beta_upper`` (per SD), ``per_unit_median`` / ``_lower`` / ``_upper``
    (``beta / sd``), ``odds_ratio_median`` / ``_lower`` / ``_upper`` (``exp(beta)``, per SD)
    and ``p_positive`` (P(beta > 0): the posterior probability that more of the covariate goes
    with worse grades). Then one row per cutpoint (``covariate`` ``"cutpoint 1|2"``...:
    the log odds of a grade at or below k at eta = 0) and per random-effect SD.
    """
    post = require_ordinal_fit(fit, "ordinal_effects")
    lo, hi = _check_prob(prob)
    rows: list[dict[str, Any]] = []
    groups = {c: g for g, members in post.spec.groups.items() for c in members}

    def summary(values: np.ndarray) -> tuple[float, float, float]:
        return (
            float(np.median(values)),
            float(np.quantile(values, lo)),
            float(np.quantile(values, hi)),
        )

    if post.covariates:
        beta = post.draws("beta")
        sd = post.constant("covariate_sd").astype(float)
        for k, cov in enumerate(post.covariates):
            b = beta[:, k]
            med, low, up = summary(b)
            unit = summary(b / sd[k])
            odds = summary(np.exp(b))
            rows.append(
                {
                    "covariate": cov,
                    "component": groups.get(cov, ""),
                    "sd": float(sd[k]),
                    "beta_median": med,
                    "beta_lower": low,
                    "beta_upper": up,
                    "per_unit_median": unit[0],
                    "per_unit_lower": unit[1],
                    "per_unit_upper": unit[2],
                    "odds_ratio_median": odds[0],
                    "odds_ratio_lower": odds[1],
                    "odds_ratio_upper": odds[2],
                    "p_positive": float(np.mean(b > 0)),
                }
            )
    cut = post.draws("cutpoints")
    names = [str(c) for c in post.fit.idata["posterior"]["cutpoint"].values]
    extra = [(f"cutpoint {n}", cut[:, j]) for j, n in enumerate(names)]
    for sigma in ("sigma_la", "sigma_region", "sigma_year"):
        if post.has(sigma) and np.any(post.draws(sigma) > 0):
            extra.append((sigma, post.draws(sigma)))
    for name, values in extra:
        med, low, up = summary(values)
        rows.append({"covariate": name, "beta_median": med, "beta_lower": low, "beta_upper": up})
    out = pd.DataFrame(rows)
    out.attrs["prob"] = prob
    return out


def _varied(post: Posterior, vary: tuple[str, str] | None) -> tuple[str, str]:
    covs = post.covariates
    if vary is None:
        pairs = list(interactions_of(post.spec).values())
        if pairs:
            return pairs[0]
        if len(covs) < 2:
            raise AnswerError(
                f"grade_probabilities varies two covariates; {post.spec.name!r} has {covs}"
            )
        return covs[0], covs[1]
    unknown = [c for c in vary if c not in covs]
    if len(vary) != 2 or unknown:
        raise AnswerError(f"vary must name two covariates of the fit {covs}; got {list(vary)}")
    return vary[0], vary[1]


def grade_probabilities(
    fit: Fit | Posterior,
    *,
    vary: tuple[str, str] | None = None,
    quantiles: tuple[float, float] = DEFAULT_QUANTILES,
    worse_from: int | None = None,
    over_authorities: bool = True,
    n_authorities: int = 200,
    prob: float = DEFAULT_PROB,
    seed: int = 0,
) -> pd.DataFrame:
    """Predicted probability of each grade at low / high values of two covariates.

    ``vary`` = (a, b): the two covariates (default: the parts of the spec's first interaction,
    e.g. spending and deprivation); "low" and "high" are their ``quantiles`` over the fitted
    rows; other covariates sit at their mean and an interaction at the product of its parts'
    standardised values. ``worse_from`` (default: K - 1, for ILACS 3) adds the probability of a
    grade >= it (``"3 or worse"``). With ``over_authorities`` the probabilities are averaged,
    per draw, over ``n_authorities`` new authorities (each in a new region) drawn from the
    fitted random effects; otherwise the authority and region effects are zero.

    Returns a long table: ``a_level``, ``b_level`` (``low`` / ``high``, or ``high - low`` for
    the contrast of a at that level of b), the values of a and b, ``grade`` (code or ``"k or
    worse"``), ``label``, ``median``, ``lower``, ``upper`` (equal-tailed ``prob`` interval)
    and, for contrasts, ``p_positive``.
    """
    post = require_ordinal_fit(fit, "grade_probabilities")
    lo, hi = _check_prob(prob)
    if not (0 <= quantiles[0] < quantiles[1] <= 1):
        raise AnswerError(f"quantiles must be two increasing values in [0, 1], got {quantiles}")
    if n_authorities < 1:
        raise AnswerError(f"n_authorities must be at least 1, got {n_authorities}")
    a, b = _varied(post, vary)
    covs = post.covariates
    mean = post.constant("covariate_mean").astype(float)
    sd = post.constant("covariate_sd").astype(float)
    raw = post.fitted_rows.X * sd + mean  # covariates as fitted (published units)
    levels = {
        c: dict(zip(("low", "high"), np.quantile(raw[:, covs.index(c)], quantiles), strict=True))
        for c in (a, b)
    }
    z_of = {c: (c_mean, c_sd) for c, c_mean, c_sd in zip(covs, mean, sd, strict=True)}
    products = interactions_of(post.spec)
    cut = post.draws("cutpoints")
    k = cut.shape[1] + 1
    labels = outcome_categories(post.spec.outcome, np.arange(1, k + 1))
    worse = k - 1 if worse_from is None else int(worse_from)
    if not 2 <= worse <= k:
        raise AnswerError(f"worse_from must be a grade in 2..{k}, got {worse_from}")

    scenarios = [(la, lb) for lb in ("low", "high") for la in ("low", "high")]
    X = np.zeros((len(scenarios), len(covs)))
    for s, (la, lb) in enumerate(scenarios):
        value = {a: levels[a][la], b: levels[b][lb]}
        z = {c: (v - z_of[c][0]) / z_of[c][1] for c, v in value.items()}
        for j, cov in enumerate(covs):
            if cov in z:
                X[s, j] = z[cov]
            elif cov in products and all(p in z for p in products[cov]):
                # the product of the standardised parts, then the model's own standardisation
                pa, pb = products[cov]
                X[s, j] = (z[pa] * z[pb] - mean[j]) / sd[j]
    m = n_authorities if over_authorities else 1
    year = max(post.years)
    codes = np.array([f"new-authority-{i}" for i in range(m)] * len(scenarios))
    regions = np.array([f"new-region-{i}" for i in range(m)] * len(scenarios))
    rows = Rows(
        la_code=codes,
        region=regions,
        year=np.full(len(codes), year),
        X=np.repeat(X, m, axis=0),
        log_exposure=np.zeros(len(codes)),
    )
    lp = linear_predictor(post, rows, new=NewLevels(seed))
    if over_authorities:
        eta = lp.eta
    else:  # an authority with its own and its region's effects at zero
        drop = {term.label for term in lp.terms if term.own or term.between_la}
        eta = lp.log_exposure[None, :] + lp.intercept[:, None]
        for label, values in lp.components.items():
            if label not in drop:
                eta = eta + values
    p = ordinal_probabilities(eta, cut)  # (draws, scenarios * m, K)
    p = p.reshape(p.shape[0], len(scenarios), m, k).mean(axis=2)  # (draws, scenarios, K)
    worse_p = p[:, :, worse - 1 :].sum(axis=2)

    out: list[dict[str, Any]] = []

    def add(la: str, lb: str, grade: str, label: str, values: np.ndarray, contrast: bool) -> None:
        row = {
            "a_level": la,
            "b_level": lb,
            a: levels[a].get(la, np.nan),
            b: levels[b][lb],
            "grade": grade,
            "label": label,
            "median": float(np.median(values)),
            "lower": float(np.quantile(values, lo)),
            "upper": float(np.quantile(values, hi)),
        }
        if contrast:
            row["p_positive"] = float(np.mean(values > 0))
        out.append(row)

    worse_name = f"{worse} or worse"
    worse_label = " or ".join(labels[worse - 1 :])
    for s, (la, lb) in enumerate(scenarios):
        for g in range(k):
            add(la, lb, str(g + 1), labels[g], p[:, s, g], False)
        add(la, lb, worse_name, worse_label, worse_p[:, s], False)
    for lb in ("low", "high"):
        s_low, s_high = scenarios.index(("low", lb)), scenarios.index(("high", lb))
        for g in range(k):
            add("high - low", lb, str(g + 1), labels[g], p[:, s_high, g] - p[:, s_low, g], True)
        add("high - low", lb, worse_name, worse_label, worse_p[:, s_high] - worse_p[:, s_low], True)
    frame = pd.DataFrame(out)
    frame.attrs.update(
        {"a": a, "b": b, "quantiles": quantiles, "prob": prob, "over_authorities": over_authorities}
    )
    return frame


__all__ = [
    "grade_probabilities",
    "ordinal_effects",
    "require_count_fit",
    "require_ordinal_fit",
]
