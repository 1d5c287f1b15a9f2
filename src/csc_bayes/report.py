"""A self-contained HTML report of one fit: a single file a statistician can hand on.

Everything is inline (CSS, figures as base64 PNG, the definitions the numbers rest on), so the
file opens anywhere without a network and needs nothing else to be read. Sections: the model
in lme4 notation; the data window and coverage; provenance (run, hashes, checksums of the
official files read, package versions, sampler settings); the priors used; convergence
diagnostics; the population-level parameters (median, interval, R-hat, ESS, MCSE); the
variance decomposition; excess over expected need (caterpillar, top and bottom authorities,
funnel); a posterior predictive check; and the methods and definitions, with formulas.
Every figure has a caption that says what it shows.

A fit that failed the convergence gate is refused with
:class:`~csc_bayes.errors.DiagnosticsGateError` unless ``force=True``; a forced report carries
a banner at the top and on every section.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from csc_bayes import __version__
from csc_bayes.errors import DiagnosticsGateError
from csc_bayes.plots._labels import highlighted_codes
from csc_bayes.plots._style import SHARED_FILE_MODE
from csc_bayes.plots.funnel import DEFAULT_PROBS as FUNNEL_PROBS
from csc_bayes.plots.funnel import MAX_LABELS as FUNNEL_MAX_LABELS
from csc_bayes.posterior import reader
from csc_bayes.variance import DEFAULT_CI_PROB, interval

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.spec import ModelSpec

#: how many authorities the top and bottom tables list
TOP_N = 10
#: the figures of a report, in order: key -> short title (the image's alt text); each one's
#: caption, which says what it shows, comes from :func:`figure_captions`
FIGURES = {
    "variance": "Variance decomposition",
    "caterpillar": "Excess over expected need, every authority",
    "funnel": "Funnel plot",
    "ppc": "Posterior predictive check",
}
#: the population-level parameters of the parameter table, in order (``sigma_*`` of terms not
#: listed here follow ``sigma_la_year``); ``beta`` and ``beta_per_unit`` get one row per covariate
PARAMETERS = (
    "intercept",
    "beta",
    "beta_per_unit",
    "sigma_la",
    "sigma_region",
    "sigma_year",
    "sigma_la_slope",
    "sigma_la_trend",
    "sigma_la_year",
    "rho_la_year",
    "phi",
)

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left;
         vertical-align: top; }
th.num, td.num { text-align: right; }
pre { background: #f4f4f4; padding: 0.6rem; overflow-x: auto; }
img { max-width: 100%; height: auto; }
.gate-banner { background: #b00020; color: #fff; font-weight: bold; padding: 0.6rem 1rem;
               margin: 0.5rem 0; border-radius: 4px; }
.synthetic-banner { background: #ffcc00; color: #000; font-weight: bold; padding: 0.6rem 1rem;
                    margin: 0.5rem 0; border-radius: 4px; }
.note { color: #555; font-size: 0.9rem; }
figcaption { font-size: 0.9rem; color: #333; margin: 0.3rem 0 1rem; }
code.hash, td.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 0.75rem;
                     word-break: break-all; }
.formula { background: #f4f4f4; padding: 0.4rem 0.6rem; font-family: "DejaVu Sans Mono",
           monospace; font-size: 0.85rem; white-space: pre-wrap; }
"""


def _pct(p: float) -> str:
    return f"{p * 100:g}%"


def methods_html(spec: ModelSpec, *, ci_prob: float = DEFAULT_CI_PROB) -> str:
    """The report's "Methods and definitions" section for the fitted model's own terms (each
    term gives its phrase: :meth:`csc_bayes.terms.base.Term.describe`): the model, expected
    need, excess, ranks, variance shares, funnel limits and the convergence checks, each with
    its formula, so that the report needs no other document."""
    from csc_bayes.diagnostics import GateThresholds
    from csc_bayes.terms import terms_of

    model_terms = terms_of(spec)
    names = {t.name for t in model_terms}
    family = next(t for t in model_terms if t.name == "family").describe()[0]
    random = [t.intercept_for for t in model_terms if t.intercept_for]
    terms = [f"random intercepts for {', '.join(random)}"] if random else []
    own = []
    for term in model_terms:
        phrase, own_phrase = term.describe()
        if phrase and term.name != "family":
            terms.append(phrase)
        if own_phrase:
            own.append(own_phrase)
    ar1 = "la_year" in names
    trend = "la_trend" in names
    slope = next((t for t in model_terms if t.name == "la_slope"), None)
    year_term = next(t for t in model_terms if t.name == "year")
    walk = bool(year_term.random_walk)
    nb = spec.family == "negative_binomial"
    if nb:
        funnel_text = (
            "central quantiles of the negative binomial predictive distribution of the count "
            "of an authority exactly as expected, mixed over the posterior draws of the "
            "dispersion, divided by the expected count."
        )
    else:
        funnel_text = (
            "central quantiles of the Poisson distribution of the count of an authority exactly "
            "as expected, divided by the expected count."
        )
        if ar1:
            funnel_text += (
                " In this model the year-to-year variation beyond Poisson noise is the AR(1) "
                "deviation, which counts as the authority's own (it is part of the excess), so "
                "the limits are narrow and many authorities fall outside them; for a funnel "
                "with overdispersion-aware limits use a negative binomial need model."
            )
    own_text = own[0] if len(own) == 1 else f"{', '.join(own[:-1])} and {own[-1]}"
    esc = html.escape
    need = [c for members in spec.need_groups.values() for c in members]
    other = [c for c in spec.covariates if c not in need]
    lo_q, hi_q = (1 - ci_prob) / 2, (1 + ci_prob) / 2

    eta = (
        "eta_i = log(population_i) + intercept + sum_k X_ik beta_k\n"
        "        + la_effect_j(i) + region_effect_r(i) + year_effect_t(i)"
    )
    if slope is not None:
        eta += f"\n        + la_slope_j(i) X_i,{slope.covariate}"
    if trend:
        eta += "\n        + la_trend_j(i) (t(i) - year_centre) / 10"
    if ar1:
        eta += "\n        + la_year_j(i),t(i)"
    likelihood = (
        "y_i ~ NegativeBinomial(mean mu_i = exp(eta_i), concentration phi),"
        "  Var(y_i) = mu_i + mu_i^2 / phi"
        if nb
        else "y_i ~ Poisson(mu_i = exp(eta_i)),  Var(y_i) = mu_i"
    )
    laws = [
        "<code>X_ik = (x_ik - mean_k) / sd_k</code>: covariate k standardised over the fitted "
        "authority-years, so <code>X = 0</code> is the average authority-year;",
        "<code>la_effect_j ~ N(0, sigma_la^2)</code>, one per authority;",
        "<code>region_effect_r</code> and the common year effects <code>year_effect_t</code> "
        + (
            "are exchangeable <code>N(0, sigma^2)</code> effects that sum to zero over the "
            "observed levels (their mean is absorbed into the intercept);"
            if not walk
            else "(regions: exchangeable <code>N(0, sigma_region^2)</code>, summing to zero); "
            "the year effects follow a random walk over calendar years, "
            "<code>w_t - w_t' ~ N(0, sigma_year^2 (t - t'))</code> for consecutive fitted years, "
            "centred: <code>year_effect_t = w_t - mean(w)</code>;"
        ),
    ]
    if slope is not None:
        laws.append(
            f"<code>la_slope_j ~ N(0, sigma_la_slope^2)</code>: the authority's own extra effect "
            f"of one SD of {esc(slope.covariate)};"
        )
    if trend:
        laws.append(
            "<code>la_trend_j ~ N(0, sigma_la_trend^2)</code> per decade, summing to zero over "
            "authorities; <code>year_centre</code> is the mean fitted year;"
        )
    if ar1:
        laws.append(
            "<code>la_year_j.</code>: per authority a stationary AR(1) path over the years, "
            "<code>Cov(la_year_jt, la_year_ju) = sigma_la_year^2 rho_la_year^|t - u|</code>, "
            "centred over the authorities in every year (a movement common to all is a year "
            "effect);"
        )
    laws.append("the prior of every parameter is listed in the section on priors.")
    thresholds = GateThresholds()
    need_list = ", ".join(f"<code>{esc(c)}</code>" for c in need) or "none"
    other_text = (
        f" Non-need covariates ({', '.join(f'<code>{esc(c)}</code>' for c in other)}) are held "
        "at their average (<code>X = 0</code>): need is not what an authority spends."
        if other
        else ""
    )
    p_narrow, p_wide = sorted(FUNNEL_PROBS)
    need_formula = "\n".join(
        [
            "eta_expected_i = log(population_i) + intercept + sum_(k in need) X_ik beta_k",
            "                 + year_effect_t(i)",
            "expected count_i = exp(eta_expected_i)",
            "expected rate_i = exp(eta_expected_i) / population_i x 10,000",
        ]
    )
    excess_formula = "\n".join(
        [
            "excess ratio_i = exp(eta_i - eta_expected_i)",
            "excess children_i = exp(eta_i) - exp(eta_expected_i)",
            "P(excess > 0) = share of the draws in which excess ratio_i > 1",
        ]
    )
    share_formula = "\n".join(
        [
            "f_c(i) = the term of component c at row i (a covariate group, region, year, the",
            "         authority's own effect" + (", its AR(1) deviation)" if ar1 else ")"),
            "value_c = Cov_i(f_c, sum_d f_d)   (Shapley / LMG: each covariance split equally)",
            "residual = "
            + ("trigamma(phi) [overdispersion] + " if nb else "")
            + "mean_i log(1 + 1 / mu_i) [Poisson noise]",
            "share_c = value_c / (Var_i(sum_d f_d) + residual)",
            "share_residual = residual / (Var_i(sum_d f_d) + residual)",
        ]
    )
    funnel_formula = "\n".join(
        [
            "E_j = expected count (posterior median),  O_j = observed count",
            "y_j = (O_j / E_j) x R,  R = sum_j E_j / sum_j population_j x 10,000",
            f"limits at p = {_pct(p_narrow)} and {_pct(p_wide)}: y = (q / E) x R, where q are the",
            "(1 - p)/2 and (1 + p)/2 quantiles of O for an authority exactly as expected",
        ]
    )
    own_parts = [
        part
        for part, present in (("slope", slope), ("trend", trend), ("AR(1) deviation", ar1))
        if present
    ]
    own_terms = f" + its own {' and '.join(own_parts)}" if own_parts else ""
    own_sp = f", plus the part of its own {' and '.join(own_parts)}" if own_parts else ""
    return f"""
<h3>The model</h3>
<p>The model is a {family} multilevel regression of the outcome count on standardised
covariates with the child population as exposure and {"; ".join(terms) or "no random effects"},
written above in lme4 notation. For every authority-year <i>i</i> (authority <i>j</i>, region
<i>r</i>, year <i>t</i>) and every posterior draw:</p>
<div class="formula">{esc(eta)}
{esc(likelihood)}</div>
<ul>{"".join(f"<li>{law}</li>" for law in laws)}</ul>
<p>Every quantity below is computed for each posterior draw; the report gives its posterior
median and the central {_pct(ci_prob)} credible interval, from the {_pct(lo_q)} to the
{_pct(hi_q)} quantile of the draws. Rates are per 10,000 children.</p>

<h3>Expected need, excess and rank</h3>
<ul>
<li><b>Expected need</b> of an authority-year: the model's rate with {own_text} set to
zero and non-need covariates (e.g. spending) held at their average; only the need covariates,
the intercept and the common year effect enter.</li>
</ul>
<div class="formula">{esc(need_formula)}</div>
<p>Need covariates: {need_list}.{other_text} The region effect is not counted as need: a
region's difference may be regional practice as much as unmeasured need, so it stays in the
excess. The common year effect is counted as need: national shocks are part of every
authority's expected demand that year.</p>
<ul>
<li><b>Excess ratio</b>: the authority's latent rate divided by its expected need
(1 = as expected; 1.2 = 20% above). <b>Excess in children</b>: latent count minus expected
count. <b>P(excess &gt; 0)</b>: posterior probability that the ratio exceeds 1.</li>
</ul>
<div class="formula">{esc(excess_formula)}</div>
<p>The ratio compares the <i>latent</i> rate <code>exp(eta_i)</code>, not the observed count,
so a small authority's chance fluctuation is shrunk towards its expected value by the
model.</p>
<ul>
<li><b>Rank</b>: rank of the excess ratio within the year (1 = highest), computed per draw.
The report gives the median rank and its {_pct(ci_prob)} interval, the lower end rounded down
and the upper end rounded up to whole ranks; ranks are far less certain than they look
(Goldstein &amp; Spiegelhalter 1996).</li>
</ul>

<h3>Variance shares</h3>
<ul>
<li><b>Variance shares</b>: per draw, the variance of each term of the linear predictor over
the fitted authority-years (covariances split equally, Shapley/LMG), plus the residual
overdispersion and Poisson noise on the log scale; shares sum to 1 and can be slightly
negative when terms are negatively correlated.</li>
</ul>
<div class="formula">{esc(share_formula)}</div>
<p>Nothing is refitted: the fitted terms are used as they are (Lindeman, Merenda &amp; Gold
1980; Gr&ouml;mping 2007; residual variances on the latent scale after Nakagawa &amp;
Schielzeth 2013). <b>Bayesian R&sup2;</b> (Gelman et al. 2019), on the rate scale
<code>r_i = mu_i / population_i</code>: <code>R2 = V_fit / (V_fit + V_res)</code> with
<code>V_fit = Var_i(r_i)</code> and <code>V_res = mean_i Var(y_i | mu_i) / population_i^2</code>;
it counts the authorities' own effects as fitted. <b>Between-authority variance explained by
the covariates</b> (when a null model, with the same random effects and no covariates, is
given): <code>1 - V_between(full) / V_between(null)</code>, where <code>V_between</code> is the
variance across fitted authorities of each authority's mean of
<code>region_effect + la_effect</code>{own_terms}
over its fitted years (the part of its difference the covariates do not account for); the two
fits' draws are paired. The superpopulation version uses instead the model's expected
variance of that mean for new authorities (<code>sigma_la^2 + sigma_region^2</code>{own_sp})
(Raudenbush &amp; Bryk 2002).</p>

<h3>Funnel plot</h3>
<ul>
<li><b>Funnel limits</b>: {funnel_text}</li>
</ul>
<div class="formula">{esc(funnel_formula)}</div>
<p>Quantiles are interpolated between integers as in Spiegelhalter (2005). Named in the figure:
any authority asked for, and at most {FUNNEL_MAX_LABELS} on each side beyond the
{_pct(p_wide)} limits, the most extreme first: smallest <code>P(O &ge; O_j)</code> above,
smallest <code>P(O &le; O_j)</code> below, under the same distribution.</p>

<h3>Convergence checks</h3>
<p>A fit is reported only when it passes a convergence gate: rank-normalised split
<b>R-hat</b> &lt; {thresholds.max_rhat:g} for every parameter (near 1 when the chains agree);
<b>bulk and tail effective sample sizes</b> (ESS: how many independent draws the correlated
draws are worth, for the centre and for the 5% and 95% quantiles) at least
{thresholds.min_ess_bulk:g} and {thresholds.min_ess_tail:g}; at most
{thresholds.max_divergences} divergent transitions and {thresholds.max_treedepth_hits}
draws at the maximum tree depth; E-BFMI at least {thresholds.min_ebfmi:g} in every chain;
at least {thresholds.min_chains} chains (Vehtari et al. 2021; Betancourt 2016).
<b>MCSE</b> is the Monte Carlo standard error of the posterior median: how far the reported
median may be from the one infinitely many draws would give.</p>

<h3>References</h3>
<ul class="note">
<li>Betancourt, M. (2016). Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte
Carlo. arXiv:1604.00695.</li>
<li>Gelman, A., Goodrich, B., Gabry, J. &amp; Vehtari, A. (2019). R-squared for Bayesian
regression models. <i>The American Statistician</i> 73(3), 307-309.</li>
<li>Goldstein, H. &amp; Spiegelhalter, D. J. (1996). League tables and their limitations.
<i>JRSS A</i> 159(3), 385-443.</li>
<li>Gr&ouml;mping, U. (2007). Estimators of relative importance in linear regression based on
variance decomposition. <i>The American Statistician</i> 61(2), 139-147.</li>
<li>Lindeman, R. H., Merenda, P. F. &amp; Gold, R. Z. (1980). <i>Introduction to Bivariate and
Multivariate Analysis</i>. Scott, Foresman.</li>
<li>Nakagawa, S. &amp; Schielzeth, H. (2013). A general and simple method for obtaining R2 from
generalized linear mixed-effects models. <i>Methods in Ecology and Evolution</i> 4(2),
133-142.</li>
<li>Raudenbush, S. W. &amp; Bryk, A. S. (2002). <i>Hierarchical Linear Models</i>, 2nd ed.
Sage.</li>
<li>Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance.
<i>Statistics in Medicine</i> 24(8), 1185-1202.</li>
<li>Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. &amp; B&uuml;rkner, P.-C. (2021).
Rank-normalization, folding, and localization: an improved R-hat for assessing convergence of
MCMC. <i>Bayesian Analysis</i> 16(2), 667-718.</li>
</ul>
"""


# ------------------------------------------------------------------------------ the gate


def gate_reasons(fit: Any) -> list[str]:
    """Why the fit failed the convergence gate (empty when it passed)."""
    diagnostics = fit.metadata.get("diagnostics")
    if not isinstance(diagnostics, dict) or "passed" not in diagnostics:
        return ["the convergence gate was never run on this fit"]
    if diagnostics["passed"]:
        return []
    reasons = [str(f.get("message") or f.get("reason")) for f in diagnostics.get("failures", [])]
    return reasons or ["the convergence gate failed (no reason recorded)"]


def check_gate(fit: Any, *, force: bool = False) -> list[str]:
    """Raise DiagnosticsGateError for a failed fit unless ``force``; return the reasons."""
    reasons = gate_reasons(fit)
    if reasons and not force:
        raise DiagnosticsGateError(
            "refusing to report on a fit that failed the convergence gate (use force=True / "
            "--force to report anyway, with a warning on every section):\n  " + "\n  ".join(reasons)
        )
    return reasons


# ------------------------------------------------------------------------------ content


@dataclass(frozen=True)
class ReportAnswers:
    """The answers a report shows, computed once: the last fitted year's ``excess`` table and
    the ``explain_variance`` result (both feed a figure and a table)."""

    excess_table: pd.DataFrame
    variance: Any


def report_answers(
    fit: Any, *, null_fit: Any | None = None, ci_prob: float = DEFAULT_CI_PROB
) -> ReportAnswers:
    """Compute the report's answers (see :class:`ReportAnswers`)."""
    from csc_bayes.excess import excess
    from csc_bayes.ordinal import require_count_fit
    from csc_bayes.variance import explain_variance

    require_count_fit(fit, "the report")

    return ReportAnswers(
        excess_table=excess(fit, ci_prob=ci_prob),
        variance=explain_variance(fit, null_fit=null_fit, ci_prob=ci_prob),
    )


def report_figures(
    fit: Any,
    answers: ReportAnswers,
    *,
    ci_prob: float = DEFAULT_CI_PROB,
    highlight: Sequence[str | int] = (),
) -> dict[str, Figure]:
    """The report's figures, keyed as :data:`FIGURES`; ``highlight`` names authorities drawn
    distinctly in the caterpillar and funnel plots (any form the authority resolver reads)."""
    from csc_bayes.plots import figure_from_fit

    return {
        kind: figure_from_fit(
            kind,
            fit,
            ci_prob=ci_prob,
            highlight=highlight,
            excess_table=answers.excess_table,
            variance_result=answers.variance,
        )[0]
        for kind in FIGURES
    }


def figure_captions(
    fit: Any, answers: ReportAnswers, *, ci_prob: float = DEFAULT_CI_PROB
) -> dict[str, str]:
    """What each figure of :data:`FIGURES` shows, in words (its caption in the report)."""
    table = answers.excess_table
    years = sorted({int(y) for y in table["year"]}) if "year" in table.columns else []
    year = f" in {years[0]}" if len(years) == 1 else ""
    post = reader(fit)
    limits = "negative binomial" if post.has("phi") else "Poisson"
    p_narrow, p_wide = sorted(FUNNEL_PROBS)
    n_obs = int(fit.idata["observed_data"].sizes["obs"])
    return {
        "variance": (
            "How much of the variation in the latent log rate across the fitted "
            "authority-years each source accounts for: covariate groups, region, year, the "
            "authorities' own differences and the residual noise (posterior median share with "
            f"its {_pct(ci_prob)} interval). The shares sum to 1; covariances between "
            "correlated sources are split equally between them."
        ),
        "caterpillar": (
            f"Each authority's excess ratio{year} (latent rate / expected need) with its 50% "
            f"(thick) and {_pct(ci_prob)} (thin) intervals, ranked from highest to lowest; above "
            "1 = more children than expected for its needs, below 1 = fewer. Colours are "
            "regions; authorities asked for are in black."
        ),
        "funnel": (
            f"Each authority's observed rate{year}, standardised for need (observed / expected "
            "count x the average expected rate), against its expected count. The lines are the "
            f"{_pct(p_narrow)} and {_pct(p_wide)} {limits} limits within which an authority "
            "exactly as expected would fall; they narrow as the expected count grows. Points "
            f"outlined in black lie outside the {_pct(p_narrow)} limits; named: authorities "
            f"asked for and at most {FUNNEL_MAX_LABELS} on each side beyond the "
            f"{_pct(p_wide)} limits, the most extreme first."
        ),
        "ppc": (
            f"Distribution of the observed rates per 10,000 children over the {n_obs} fitted "
            "authority-years (black) against replicated data sets drawn from the fitted model "
            "(light blue): replicated curves that surround the observed one mean the model "
            "reproduces the spread and shape of the rates."
        ),
    }


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_NUMBER = re.compile(r"^[-+]?[\d.,]+(?:e[-+]?\d+)?(?:\s|%|$)")


def _table(df: pd.DataFrame, *, digits: int = 3) -> str:
    """An HTML table; columns whose every cell reads as a number are right-aligned."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:,.{digits}g}"
        return html.escape(str(v))

    cells = [[cell(v) for v in row] for row in df.itertuples(index=False)]
    numeric = [
        bool(cells) and all(not row[k] or _NUMBER.match(row[k]) for row in cells)
        for k in range(len(df.columns))
    ]
    css = [' class="num"' if n else "" for n in numeric]
    head = "".join(
        f"<th{c}>{html.escape(str(name))}</th>" for name, c in zip(df.columns, css, strict=True)
    )
    rows = "".join(
        "<tr>" + "".join(f"<td{c}>{v}</td>" for v, c in zip(row, css, strict=True)) + "</tr>"
        for row in cells
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _interval(df: pd.DataFrame, name: str, digits: int = 2) -> pd.Series:
    return df.apply(
        lambda r: (
            f"{r[f'{name}_median']:.{digits}f} ({r[f'{name}_lower']:.{digits}f}"
            f" to {r[f'{name}_upper']:.{digits}f})"
        ),
        axis=1,
    )


def excess_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Readable columns of an ``excess()`` table for the top / bottom lists."""
    return pd.DataFrame(
        {
            "authority": table["la_name"],
            "region": table["region"],
            "observed rate": table["observed_rate"].round(1),
            "expected rate": _interval(table, "expected_rate", 1),
            "excess ratio": _interval(table, "excess_ratio"),
            "excess children": _interval(table, "excess_children", 0),
            "P(excess > 0)": table["p_excess"].round(2),
            "rank": _interval(table, "rank", 0),
        }
    )


def report_tables(answers: ReportAnswers, *, top_n: int = TOP_N) -> dict[str, pd.DataFrame]:
    """The report's tables: ``variance``, ``top`` and ``bottom`` (by excess ratio)."""
    result = answers.variance.to_frame()
    shown = result[result["measure"].isin(["share", "bayes_r2", "between_la_explained"])]
    variance = shown[["measure", "component", "median", "lower", "upper"]]
    ranked = answers.excess_table.sort_values("excess_ratio_median", ascending=False)
    return {
        "variance": variance.reset_index(drop=True),
        "top": excess_summary(ranked.head(top_n)),
        "bottom": excess_summary(ranked.tail(top_n).iloc[::-1]),
    }


def _meaning(name: str, element: str | None, post: Any) -> str:
    """What a population-level parameter is, in words."""
    if name == "intercept":
        return "log rate per child at average covariates, for an average authority, region, year"
    if name == "beta":
        return f"log rate ratio per 1 SD of {element}"
    if name == "beta_per_unit":
        return f"log rate ratio per unit of {element} as published"
    year = post.term("year")
    slope = post.term("la_slope")
    fixed = {
        "sigma_la": "SD of the authorities' own effects (log scale)",
        "sigma_region": "SD of the region effects (log scale)",
        "sigma_year": (
            "SD of one year's step of the random walk of year effects (log scale)"
            if year is not None and year.random_walk
            else "SD of the common year effects (log scale)"
        ),
        "sigma_la_slope": (
            f"SD of the authorities' own slopes on {slope.covariate}"
            if slope is not None
            else "SD of the authorities' own slopes"
        ),
        "sigma_la_trend": "SD of the authorities' own linear trends, per decade (log scale)",
        "sigma_la_year": "marginal SD of an authority's AR(1) deviation in one year (log scale)",
        "rho_la_year": "correlation of an authority's AR(1) deviations in consecutive years",
        "phi": "negative binomial concentration: Var(y) = mu + mu^2 / phi",
    }
    return fixed.get(name, name.replace("_", " "))


def parameter_table(fit: Any, *, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
    """Posterior summary and diagnostics of the population-level parameters (:data:`PARAMETERS`).

    One row per scalar (``beta`` and ``beta_per_unit`` per covariate): ``parameter``,
    ``meaning``, ``median``, ``lower``, ``upper`` (the central ``ci_prob`` interval),
    ``r_hat`` (rank-normalised split R-hat), ``ess_bulk``, ``ess_tail`` and ``mcse_median``
    (Monte Carlo SE of the median), from ``arviz_stats``. A parameter fixed at one value in
    every draw (``sigma_region`` of a model without region effects) is left out and listed in
    ``attrs["fixed"]`` as ``(name, value)``.
    """
    import arviz_stats as azs

    post = reader(fit)
    present = [n for n in PARAMETERS if post.has(n)]
    data = fit.idata["posterior"].to_dataset()
    present += sorted(
        str(n) for n in data.data_vars if str(n).startswith("sigma_") and n not in PARAMETERS
    )
    kept, fixed = [], []
    for name in present:
        draws = post.draws(name)
        if draws.size == 0:
            continue
        if np.all(draws == draws.flat[0]):
            fixed.append((name, float(draws.flat[0])))
        else:
            kept.append(name)
    columns = [
        "parameter",
        "meaning",
        "median",
        "lower",
        "upper",
        "r_hat",
        "ess_bulk",
        "ess_tail",
        "mcse_median",
    ]
    if not kept:
        out = pd.DataFrame(columns=columns)
        out.attrs.update(fixed=fixed, ci_prob=ci_prob)
        return out
    chosen = data[kept]
    diagnostics = {
        "r_hat": azs.rhat(chosen, method="rank"),
        "ess_bulk": azs.ess(chosen, method="bulk"),
        "ess_tail": azs.ess(chosen, method="tail"),
        "mcse_median": azs.mcse(chosen, method="median"),
    }
    rows = []
    for name in kept:
        draws = post.draws(name)
        elements: list[str | None] = [None]
        if draws.ndim == 2:
            elements = [str(c) for c in data[name].coords[data[name].dims[-1]].values]
        elif draws.ndim > 2:  # not a population-level parameter after all
            continue
        lower, upper = interval(draws, ci_prob)
        median = np.median(draws, axis=0)
        for k, element in enumerate(elements):

            def pick(values: Any, k: int = k, element: str | None = element) -> float:
                arr = np.asarray(values, dtype=float)
                return float(arr if element is None else arr.reshape(-1)[k])

            rows.append(
                {
                    "parameter": name if element is None else f"{name}[{element}]",
                    "meaning": _meaning(name, element, post),
                    "median": pick(median),
                    "lower": pick(lower),
                    "upper": pick(upper),
                    **{key: pick(ds[name].values) for key, ds in diagnostics.items()},
                }
            )
    out = pd.DataFrame(rows, columns=columns)
    out.attrs.update(fixed=fixed, ci_prob=ci_prob)
    return out


def priors_table(fit: Any) -> pd.DataFrame:
    """Every prior of the fitted model as used: :func:`csc_bayes.spec.default_priors` of the
    fit's spec on the fit's own panel (data-scaled defaults are computed from the fitted rows),
    with columns parameter, dist, params, source (``default`` or ``user``)."""
    from csc_bayes.spec import default_priors

    return default_priors(reader(fit).spec, fit.panel)


def _pairs(items: dict[str, Any], first: str = "item", second: str = "value") -> pd.DataFrame:
    return pd.DataFrame(
        {
            first: [str(k) for k in items],
            second: ["" if v is None else str(v) for v in items.values()],
        }
    )


def provenance(fit: Any) -> dict[str, pd.DataFrame]:
    """Where the fit comes from, as tables: ``run`` (run id and folder, dates, hashes),
    ``sampler`` (settings, chain method, timings), ``versions`` (packages at fitting),
    ``fit_files`` (sha256 of the saved run's files), ``raw_files`` (sha256 of every official
    file the panel was built from, from ``panel.attrs["raw_files"]``) and ``extra_files`` (the
    user's own tables joined, ``panel.attrs["extra_files"]``). A table is empty when the fit
    does not record it (a fit not saved, a synthetic panel)."""
    from csc_bayes.data.schema import EXTRA_FILES_ATTR, RAW_FILES_ATTR

    meta = fit.metadata
    run = {
        "run id": meta.get("run_id") or "not saved",
        "run folder": str(fit.path) if fit.path is not None else "not saved",
        "fitted at": meta.get("created_at", "not recorded"),
        "model": meta.get("model", reader(fit).spec.name),
        "data": "synthetic panel made by csc_bayes" if fit.synthetic else "official files",
        "data hash (sha256 of the panel's values)": meta.get("data_hash", "not recorded"),
        "specification hash": meta.get("spec_hash", "not recorded"),
        "sampler settings hash": meta.get("sampler_hash", "not recorded"),
        "model code version": meta.get("model_version", "not recorded"),
        "fit schema version": meta.get("schema_version", "not recorded"),
    }
    sampler_meta = dict(meta.get("sampler", {}) or {})
    auto = sampler_meta.pop("auto", None)  # draws = "auto": why it stopped, not every look
    if isinstance(auto, dict):
        sampler_meta["draws to target"] = (
            f"{auto.get('stopped', '?')}; {auto.get('blocks', '?')} blocks (first look at "
            f"{auto.get('min_draws', '?')}, then every {auto.get('block_draws', '?')}, cap "
            f"{auto.get('max_draws', '?')})"
        )
    sampler = {
        "back end": sampler_meta.pop("backend", meta.get("backend", "not recorded")),
        **{k.replace("_", " "): v for k, v in sampler_meta.items() if k != "chain_method"},
        "chain method": sampler_meta.get("chain_method") or "not recorded",
    }
    for key, seconds in (meta.get("timings", {}) or {}).items():
        sampler[f"time: {key.replace('_', ' ')} (s)"] = f"{float(seconds):.1f}"
    panel_attrs = getattr(fit.panel, "attrs", {}) or {}
    raw = panel_attrs.get(RAW_FILES_ATTR) or {}
    extra = panel_attrs.get(EXTRA_FILES_ATTR) or []
    extra_frame = pd.DataFrame(
        [
            {
                "file": str(r.get("file", "")),
                "sha256": str(r.get("sha256", "")),
                "key": str(r.get("key", "")),
                "columns": ", ".join(map(str, r.get("columns", []))),
                "rows": r.get("rows", ""),
            }
            for r in extra
        ],
        columns=["file", "sha256", "key", "columns", "rows"],
    )
    return {
        "run": _pairs(run),
        "sampler": _pairs(sampler, "setting"),
        "versions": _pairs(meta.get("versions", {}) or {}, "package", "version"),
        "fit_files": _pairs(meta.get("files", {}) or {}, "file", "sha256"),
        "raw_files": _pairs(dict(sorted(raw.items())), "file", "sha256"),
        "extra_files": extra_frame,
    }


def highlighted_rows(table: pd.DataFrame, highlight: Sequence[str | int]) -> pd.DataFrame:
    """The rows of an ``excess`` table of the authorities named in ``highlight`` (resolved by
    :func:`csc_bayes.authorities.resolve_authority`), in the order asked for."""
    codes = highlighted_codes(table, highlight)
    rows = table[table["la_code"].astype(str).isin(codes)]
    return rows.sort_values("excess_ratio_median", ascending=False)


def _banner(reasons: list[str]) -> str:
    if not reasons:
        return ""
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    return (
        '<div class="gate-banner" role="alert">WARNING: this fit FAILED the convergence '
        "diagnostics gate. The numbers below may be wrong; do not use them for decisions."
        f"<ul>{items}</ul></div>"
    )


def _hash_table(df: pd.DataFrame) -> str:
    """A table whose last column holds hashes (set in a small monospace font)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in row[:-1])
        + f'<td class="hash">{html.escape(str(row[-1]))}</td></tr>'
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _parameters_html(table: pd.DataFrame, ci_prob: float) -> str:
    lo, hi = _pct((1 - ci_prob) / 2), _pct((1 + ci_prob) / 2)
    shown = pd.DataFrame(
        {
            "parameter": table["parameter"],
            "meaning": table["meaning"],
            "median": table["median"].map(lambda v: f"{v:.3g}"),
            f"{_pct(ci_prob)} interval ({lo} to {hi})": [
                f"{a:.3g} to {b:.3g}" for a, b in zip(table["lower"], table["upper"], strict=True)
            ],
            "R-hat": table["r_hat"].map(lambda v: f"{v:.3f}"),
            "ESS bulk": table["ess_bulk"].map(lambda v: f"{v:.0f}"),
            "ESS tail": table["ess_tail"].map(lambda v: f"{v:.0f}"),
            "MCSE (median)": table["mcse_median"].map(lambda v: f"{v:.2g}"),
        }
    )
    fixed = table.attrs.get("fixed", [])
    note = (
        '<p class="note">Fixed in this model (the term is left out, so the parameter is '
        + ", ".join(f"<code>{html.escape(n)}</code> = {v:g}" for n, v in fixed)
        + " in every draw).</p>"
        if fixed
        else ""
    )
    return (
        "<p>Posterior median, central credible interval and convergence diagnostics of every "
        "population-level parameter (R-hat: rank-normalised split R-hat; ESS: bulk and tail "
        "effective sample sizes; MCSE: Monte Carlo standard error of the median; the "
        "definitions are in the methods section).</p>" + _table(shown) + note
    )


def render_report(
    fit: Any,
    *,
    force: bool = False,
    null_fit: Any | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    top_n: int = TOP_N,
    answers: ReportAnswers | None = None,
    highlight: Sequence[str | int] = (),
) -> str:
    """The report as one self-contained HTML string (see :func:`write_report`)."""
    import matplotlib.pyplot as plt

    reasons = check_gate(fit, force=force)
    banner = _banner(reasons)
    meta = fit.metadata
    post = reader(fit)
    spec = post.spec
    if answers is None:
        answers = report_answers(fit, null_fit=null_fit, ci_prob=ci_prob)
    named = highlighted_rows(answers.excess_table, highlight) if len(highlight) else None
    figures = report_figures(fit, answers, ci_prob=ci_prob, highlight=highlight)
    images = {k: _png(fig) for k, fig in figures.items()}
    for fig in figures.values():
        plt.close(fig)
    captions = figure_captions(fit, answers, ci_prob=ci_prob)
    tables = report_tables(answers, top_n=top_n)
    parameters = parameter_table(fit, ci_prob=ci_prob)
    priors = priors_table(fit)
    origin = provenance(fit)
    formula = meta.get("formula") or spec.formula
    years = meta.get("years_fitted") or post.years
    excluded = meta.get("excluded", {}) or {}
    diagnostics = meta.get("diagnostics", {}) or {}
    esc = html.escape

    def section(key: str, title: str, body: str) -> str:
        return f'<section id="{key}"><h2>{esc(title)}</h2>{banner}{body}</section>'

    def figure(key: str) -> str:
        return (
            f'<figure id="figure-{key}"><img alt="{esc(FIGURES[key])}" '
            f'src="data:image/png;base64,{images[key]}">'
            f"<figcaption>{esc(captions[key])}</figcaption></figure>"
        )

    model = (
        f"<pre>{esc(formula)}</pre><p>Model <b>{esc(str(meta.get('model', spec.name)))}</b>: "
        f"outcome <code>{esc(str(spec.outcome))}</code>, family {esc(str(spec.family))}, "
        f"exposure <code>{esc(str(spec.exposure))}</code>. {esc(spec.description)}"
        "</p>"
    )
    by_reason = excluded.get("by_reason", {}) or {}
    n_censored = int((meta.get("censored") or {}).get("n_rows", 0))
    data = (
        f"<p>Data window: reporting years {min(years)} to {max(years)} ({len(years)} years). "
        f"{meta.get('n_authorities', len(post.la_codes))} authorities, "
        f"{meta.get('n_obs', fit.idata['observed_data'].sizes['obs'])} authority-years fitted; "
        f"{excluded.get('n_rows', 0)} rows left out"
        + (
            " (" + ", ".join(f"{esc(str(k))}: {v}" for k, v in by_reason.items()) + ")"
            if by_reason
            else ""
        )
        + "."
        + (
            f" {n_censored} of the fitted authority-years had a suppressed count with a known "
            "range; they entered the likelihood as interval-censored counts (the probability of "
            "the range)."
            if n_censored
            else ""
        )
        + "</p><p>Source: "
        + (
            "<b>SYNTHETIC DATA</b> simulated by csc_bayes; it describes no real authority."
            if fit.synthetic
            else "official DfE / ONS / MHCLG files (their checksums are under provenance)."
        )
        + "</p>"
    )
    raw_files = origin["raw_files"]
    extra_files = origin["extra_files"]
    provenance_html = (
        "<h3>Run</h3>"
        + _hash_table(origin["run"])
        + "<h3>Sampler</h3>"
        + _table(origin["sampler"])
        + "<h3>Package versions at fitting</h3>"
        + (_table(origin["versions"]) if len(origin["versions"]) else "<p>Not recorded.</p>")
        + "<h3>Files of the saved fit (sha256)</h3>"
        + (
            _hash_table(origin["fit_files"])
            if len(origin["fit_files"])
            else "<p>This fit has not been saved.</p>"
        )
        + "<h3>Official files the panel was built from (sha256)</h3>"
        + (
            _hash_table(raw_files)
            if len(raw_files)
            else "<p>The panel records no official files"
            + (" (synthetic panel)." if fit.synthetic else ".")
            + "</p>"
        )
        + (
            "<h3>Own tables joined to the panel</h3>"
            + _table(extra_files[["file", "key", "columns", "rows"]])
            + _hash_table(extra_files[["file", "sha256"]])
            if len(extra_files)
            else ""
        )
    )
    priors_html = (
        "<p>The prior of every parameter as used in this fit; <i>default</i> priors are scaled "
        "to the data (from the fitted rows), <i>user</i> priors were set in the "
        "specification.</p>" + _table(priors)
    )
    failures = diagnostics.get("failures", []) or []
    sampler = meta.get("sampler", {}) or {}
    diag = (
        f"<p>Convergence gate: <b>{'PASSED' if not reasons else 'FAILED'}</b> "
        f"({diagnostics.get('n_chains', '?')} chains x {diagnostics.get('n_draws', '?')} draws; "
        f"back end {esc(str(meta.get('backend', sampler.get('backend', '?'))))}, seed "
        f"{esc(str(sampler.get('seed', '?')))}).</p>"
        + (
            _table(
                pd.DataFrame(
                    {
                        "check": [f.get("reason") for f in failures],
                        "detail": [f.get("message") for f in failures],
                    }
                )
            )
            if failures
            else ""
        )
    )
    synthetic = (
        '<div class="synthetic-banner">SYNTHETIC DATA: these numbers describe no real '
        "authority.</div>"
        if fit.synthetic
        else ""
    )
    excess_body = figure("caterpillar")
    if named is not None:
        excess_body += "<h3>Authorities asked for</h3>" + _table(excess_summary(named))
    excess_body += (
        f"<h3>Highest {top_n} by excess ratio</h3>"
        + _table(tables["top"])
        + f"<h3>Lowest {top_n} by excess ratio</h3>"
        + _table(tables["bottom"])
        + figure("funnel")
    )
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(
        [
            section("model", "Model", model),
            section("data", "Data window and coverage", data),
            section("provenance", "Provenance", provenance_html),
            section("priors", "Priors", priors_html),
            section("diagnostics", "Convergence diagnostics", diag),
            section(
                "parameters",
                "Population-level parameters",
                _parameters_html(parameters, ci_prob),
            ),
            section(
                "variance",
                "Variance decomposition",
                _table(tables["variance"]) + figure("variance"),
            ),
            section("excess", "Excess over expected need", excess_body),
            section("ppc", "Posterior predictive check", figure("ppc")),
            section("methods", "Methods and definitions", methods_html(spec, ci_prob=ci_prob)),
        ]
    )
    title = f"csc_bayes report: {meta.get('model', spec.name)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>{banner}{synthetic}"
        f'<p class="note">Made {created} with csc_bayes {__version__}; intervals are central '
        f"{ci_prob:.0%} credible intervals; rates per 10,000 children.</p></header>"
        f"{body}</body></html>\n"
    )


def write_report(
    fit: Any,
    path: str | Path,
    *,
    force: bool = False,
    null_fit: Any | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    top_n: int = TOP_N,
    answers: ReportAnswers | None = None,
    highlight: Sequence[str | int] = (),
) -> Path:
    """Write the self-contained HTML report of ``fit`` to ``path`` atomically.

    Raises DiagnosticsGateError (with the reasons) for a fit that failed the convergence gate,
    unless ``force``; a forced report says so in a banner at the top and on every section.
    ``answers`` (from :func:`report_answers`) saves computing them again for a second format.
    ``highlight``: authorities to draw distinctly in the figures and list on their own (names,
    short names, DfE numbers, current or former ONS codes).
    """
    from csc_bayes.fits import write_text_atomic

    text = render_report(
        fit,
        force=force,
        null_fit=null_fit,
        ci_prob=ci_prob,
        top_n=top_n,
        answers=answers,
        highlight=highlight,
    )
    write_text_atomic(path, text)
    os.chmod(path, SHARED_FILE_MODE)
    return Path(path)


def _text_page(title: str, table: pd.DataFrame, warning: str) -> Figure:
    """A landscape A4 page with one table (the PDF report)."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(11.7, 8.3))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.88))
    ax.axis("off")
    shown = table.map(lambda v: f"{v:.3g}" if isinstance(v, float) else str(v))
    if len(shown):
        drawn = ax.table(cellText=shown.values, colLabels=list(shown.columns), loc="upper left")
        drawn.auto_set_font_size(False)
        drawn.set_fontsize(7)
    fig.suptitle(title + (f"\n{warning}" if warning else ""), fontsize=9)
    return fig


def write_report_pdf(
    fit: Any,
    path: str | Path,
    *,
    force: bool = False,
    null_fit: Any | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    top_n: int = TOP_N,
    answers: ReportAnswers | None = None,
    highlight: Sequence[str | int] = (),
) -> Path:
    """The report's figures (with their captions) and tables as a PDF (matplotlib PdfPages),
    written atomically."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    reasons = check_gate(fit, force=force)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if answers is None:
        answers = report_answers(fit, null_fit=null_fit, ci_prob=ci_prob)
    figures = report_figures(fit, answers, ci_prob=ci_prob, highlight=highlight)
    captions = figure_captions(fit, answers, ci_prob=ci_prob)
    tables = report_tables(answers, top_n=top_n)
    parameters = parameter_table(fit, ci_prob=ci_prob)
    tables["parameters"] = parameters.drop(columns="meaning")
    tables["priors"] = priors_table(fit)
    warning = "FAILED THE CONVERGENCE GATE: " + "; ".join(reasons) if reasons else ""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with PdfPages(tmp) as pdf:
            for key, fig in figures.items():
                if warning:
                    fig.text(0.01, 0.995, warning, color="#b00020", fontsize=7, va="top", wrap=True)
                fig.text(0.01, -0.01, captions[key], fontsize=7, va="top", wrap=True)
                pdf.savefig(fig, bbox_inches="tight")
                plt.close(fig)
            for name, table in tables.items():
                fig = _text_page(f"{name} table", table, warning)
                pdf.savefig(fig)
                plt.close(fig)
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
