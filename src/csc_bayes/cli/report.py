"""``csc-bayes report FIT -o report.html``: the self-contained HTML report of a saved fit."""

from __future__ import annotations

from pathlib import Path

import typer

from csc_bayes.cli._common import check_output, note, refusing, writing
from csc_bayes.variance import DEFAULT_CI_PROB


def report(
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A run folder or a model folder."),
    out: Path = typer.Option(Path("report.html"), "-o", "--out", help="The HTML file to write."),
    force: bool = typer.Option(
        False, "--force", help="Report on a fit that failed the convergence gate (with warnings)."
    ),
    pdf: bool = typer.Option(False, "--pdf", help="Also write the figures and tables as a PDF."),
    null_fit: Path | None = typer.Option(
        None, "--null-fit", help="A null fit, for the between-LA variance the covariates explain."
    ),
    ci_prob: float = typer.Option(DEFAULT_CI_PROB, help="Width of the credible intervals."),
    highlight: list[str] = typer.Option(
        [],
        "--highlight",
        help="An authority (name, ONS code or DfE number) to draw distinctly in the caterpillar "
        "and funnel figures; repeatable.",
    ),
) -> None:
    """Write one self-contained HTML report (no network needed to open it)."""
    from csc_bayes.fits import load_fit
    from csc_bayes.report import check_gate, report_answers, write_report, write_report_pdf

    check_output(out)
    pdf_path = out.with_suffix(".pdf") if pdf else None
    if pdf_path is not None:
        check_output(pdf_path)
    fit = load_fit(fit_path)
    null = load_fit(null_fit) if null_fit is not None else None
    check_gate(fit, force=force)  # refuse a failed fit before the answers are computed
    with refusing():
        answers = report_answers(fit, null_fit=null, ci_prob=ci_prob)  # once, for both formats
    with writing(out):
        write_report(
            fit,
            out,
            force=force,
            null_fit=null,
            ci_prob=ci_prob,
            answers=answers,
            highlight=highlight,
        )
    note(f"wrote {out}")
    if pdf_path is not None:
        with writing(pdf_path):
            write_report_pdf(
                fit,
                pdf_path,
                force=force,
                null_fit=null,
                ci_prob=ci_prob,
                answers=answers,
                highlight=highlight,
            )
        note(f"wrote {pdf_path}")


def register(app: typer.Typer) -> None:
    """Add the ``report`` command."""
    app.command("report")(report)
