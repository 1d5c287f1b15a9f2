"""A self-contained HTML report of one fit: a single file a statistician can hand on.

Everything is inline (CSS, figures as base64 PNG), so the file opens anywhere without a network.
Sections: the model in lme4 notation, the data window and coverage, convergence diagnostics,
the variance decomposition (table and chart), excess over expected need (caterpillar, funnel,
top and bottom authorities), a posterior predictive check and the methods notes.

A fit that failed the convergence gate is refused with
:class:`~csc_bayes.errors.DiagnosticsGateError` unless ``force=True``; a forced report carries
a banner at the top and on every section.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure

from csc_bayes import __version__
from csc_bayes.errors import DiagnosticsGateError
from csc_bayes.plots._style import SHARED_FILE_MODE
from csc_bayes.variance import DEFAULT_CI_PROB

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.spec import ModelSpec

#: how many authorities the top and bottom tables list
TOP_N = 10
#: the figures of a report, in order: key -> caption
FIGURES = {
    "variance": "Variance decomposition",
    "caterpillar": "Excess over expected need, every authority",
    "funnel": "Funnel plot",
    "ppc": "Posterior predictive check",
}

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f4f4f4; padding: 0.6rem; overflow-x: auto; }
img { max-width: 100%; height: auto; }
.gate-banner { background: #b00020; color: #fff; font-weight: bold; padding: 0.6rem 1rem;
               margin: 0.5rem 0; border-radius: 4px; }
.synthetic-banner { background: #ffcc00; color: #000; font-weight: bold; padding: 0.6rem 1rem;
                    margin: 0.5rem 0; border-radius: 4px; }
.note { color: #555; font-size: 0.9rem; }
"""


def methods_html(spec: ModelSpec) -> str:
    """The report's "Methods and definitions" section for the fitted model's own terms (each
    term gives its phrase: :meth:`csc_bayes.terms.base.Term.describe`)."""
    from csc_bayes.terms import terms_of

    model_terms = terms_of(spec)
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
    ar1 = any(t.name == "la_year" for t in model_terms)
    if spec.family == "negative_binomial":
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
    return f"""
<p>The model is a {family} multilevel regression of the outcome count on standardised
covariates with the child population as exposure and {"; ".join(terms) or "no random effects"},
written above in lme4 notation. All numbers below are posterior medians with central credible
intervals of the stated width.</p>
<ul>
<li><b>Expected need</b> of an authority-year: the model's rate with {own_text} set to
zero and non-need covariates (e.g. spending) held at their average; only the need covariates,
the intercept and the common year effect enter.</li>
<li><b>Excess ratio</b>: the authority's latent rate divided by its expected need
(1 = as expected; 1.2 = 20% above). <b>Excess in children</b>: latent count minus expected
count. <b>P(excess &gt; 0)</b>: posterior probability that the ratio exceeds 1.</li>
<li><b>Rank</b>: rank of the excess ratio within the year (1 = highest), computed per draw.</li>
<li><b>Variance shares</b>: per draw, the variance of each term of the linear predictor over
the fitted authority-years (covariances split equally, Shapley/LMG), plus the residual
overdispersion and Poisson noise on the log scale; shares sum to 1 and can be slightly
negative when terms are negatively correlated.</li>
<li><b>Funnel limits</b>: {funnel_text}</li>
</ul>
<p class="note">Full definitions, formulas and references: <code>docs/methods.md</code> in the
csc_bayes repository.</p>
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
    from csc_bayes.variance import explain_variance

    return ReportAnswers(
        excess_table=excess(fit, ci_prob=ci_prob),
        variance=explain_variance(fit, null_fit=null_fit, ci_prob=ci_prob),
    )


def report_figures(
    fit: Any, answers: ReportAnswers, *, ci_prob: float = DEFAULT_CI_PROB
) -> dict[str, Figure]:
    """The report's figures, keyed as :data:`FIGURES`."""
    from csc_bayes.plots import figure_from_fit

    return {
        kind: figure_from_fit(
            kind,
            fit,
            ci_prob=ci_prob,
            excess_table=answers.excess_table,
            variance_result=answers.variance,
        )[0]
        for kind in FIGURES
    }


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _table(df: pd.DataFrame, *, digits: int = 3) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:,.{digits}g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
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


def _banner(reasons: list[str]) -> str:
    if not reasons:
        return ""
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    return (
        '<div class="gate-banner" role="alert">WARNING: this fit FAILED the convergence '
        "diagnostics gate. The numbers below may be wrong; do not use them for decisions."
        f"<ul>{items}</ul></div>"
    )


def render_report(
    fit: Any,
    *,
    force: bool = False,
    null_fit: Any | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    top_n: int = TOP_N,
    answers: ReportAnswers | None = None,
) -> str:
    """The report as one self-contained HTML string (see :func:`write_report`)."""
    import matplotlib.pyplot as plt

    reasons = check_gate(fit, force=force)
    banner = _banner(reasons)
    meta = fit.metadata
    if answers is None:
        answers = report_answers(fit, null_fit=null_fit, ci_prob=ci_prob)
    figures = report_figures(fit, answers, ci_prob=ci_prob)
    images = {k: _png(fig) for k, fig in figures.items()}
    for fig in figures.values():
        plt.close(fig)
    tables = report_tables(answers, top_n=top_n)
    spec = fit.spec
    formula = meta.get("formula") or spec.formula
    years = meta.get("years_fitted") or [int(y) for y in fit.idata["posterior"]["year"].values]
    excluded = meta.get("excluded", {}) or {}
    diagnostics = meta.get("diagnostics", {}) or {}
    esc = html.escape

    def section(key: str, title: str, body: str) -> str:
        return f'<section id="{key}"><h2>{esc(title)}</h2>{banner}{body}</section>'

    def figure(key: str) -> str:
        return (
            f'<figure><img alt="{esc(FIGURES[key])}" src="data:image/png;base64,{images[key]}">'
            f"<figcaption>{esc(FIGURES[key])}</figcaption></figure>"
        )

    model = (
        f"<pre>{esc(formula)}</pre><p>Model <b>{esc(str(meta.get('model', spec.name)))}</b>: "
        f"outcome <code>{esc(str(spec.outcome))}</code>, family {esc(str(spec.family))}, "
        f"exposure <code>{esc(str(spec.exposure))}</code>. {esc(spec.description)}"
        "</p>"
    )
    by_reason = excluded.get("by_reason", {}) or {}
    data = (
        f"<p>Data window: reporting years {min(years)} to {max(years)} ({len(years)} years). "
        f"{meta.get('n_authorities', fit.idata['posterior'].sizes['la'])} authorities, "
        f"{meta.get('n_obs', fit.idata['observed_data'].sizes['obs'])} authority-years fitted; "
        f"{excluded.get('n_rows', 0)} rows left out"
        + (
            " (" + ", ".join(f"{esc(str(k))}: {v}" for k, v in by_reason.items()) + ")"
            if by_reason
            else ""
        )
        + ".</p><p>Source: "
        + (
            "<b>SYNTHETIC DATA</b> simulated by csc_bayes; it describes no real authority."
            if fit.synthetic
            else "official DfE / ONS / MHCLG files (see the data provenance)."
        )
        + "</p>"
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
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(
        [
            section("model", "Model", model),
            section("data", "Data window and coverage", data),
            section("diagnostics", "Convergence diagnostics", diag),
            section(
                "variance",
                "Variance decomposition",
                _table(tables["variance"]) + figure("variance"),
            ),
            section(
                "excess",
                "Excess over expected need",
                figure("caterpillar")
                + f"<h3>Highest {top_n} by excess ratio</h3>"
                + _table(tables["top"])
                + f"<h3>Lowest {top_n} by excess ratio</h3>"
                + _table(tables["bottom"])
                + figure("funnel"),
            ),
            section("ppc", "Posterior predictive check", figure("ppc")),
            section("methods", "Methods and definitions", methods_html(spec)),
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
) -> Path:
    """Write the self-contained HTML report of ``fit`` to ``path`` atomically.

    Raises DiagnosticsGateError (with the reasons) for a fit that failed the convergence gate,
    unless ``force``; a forced report says so in a banner at the top and on every section.
    ``answers`` (from :func:`report_answers`) saves computing them again for a second format.
    """
    from csc_bayes.fits import write_text_atomic

    text = render_report(
        fit, force=force, null_fit=null_fit, ci_prob=ci_prob, top_n=top_n, answers=answers
    )
    write_text_atomic(path, text)
    os.chmod(path, SHARED_FILE_MODE)
    return Path(path)


def write_report_pdf(
    fit: Any,
    path: str | Path,
    *,
    force: bool = False,
    null_fit: Any | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    top_n: int = TOP_N,
    answers: ReportAnswers | None = None,
) -> Path:
    """The report's figures and tables as a PDF (matplotlib PdfPages), written atomically."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    reasons = check_gate(fit, force=force)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if answers is None:
        answers = report_answers(fit, null_fit=null_fit, ci_prob=ci_prob)
    figures = report_figures(fit, answers, ci_prob=ci_prob)
    tables = report_tables(answers, top_n=top_n)
    warning = "FAILED THE CONVERGENCE GATE: " + "; ".join(reasons) if reasons else ""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with PdfPages(tmp) as pdf:
            for fig in figures.values():
                if warning:
                    fig.text(0.01, 0.995, warning, color="#b00020", fontsize=7, va="top", wrap=True)
                pdf.savefig(fig, bbox_inches="tight")
                plt.close(fig)
            for name, table in tables.items():
                fig = plt.figure(figsize=(11.7, 8.3))
                ax = fig.add_axes((0.02, 0.02, 0.96, 0.88))
                ax.axis("off")
                shown = table.map(lambda v: f"{v:.3g}" if isinstance(v, float) else str(v))
                ax.table(cellText=shown.values, colLabels=list(shown.columns), loc="upper left")
                fig.suptitle(f"{name} table" + (f"\n{warning}" if warning else ""), fontsize=9)
                pdf.savefig(fig)
                plt.close(fig)
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
