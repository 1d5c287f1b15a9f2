"""``csc-bayes plot KIND FIT -o FILE``: one publication figure from a saved fit."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from csc_bayes.cli._common import (
    RAW_OPT,
    check_output,
    neighbour_group,
    note,
    refusing,
    require_raw,
    write_table,
)
from csc_bayes.variance import DEFAULT_CI_PROB


class PlotKind(StrEnum):
    caterpillar = "caterpillar"
    funnel = "funnel"
    variance = "variance"
    trend = "trend"
    ppc = "ppc"


def plot(
    kind: PlotKind = typer.Argument(..., help="Which figure to draw."),
    fit_path: Path = typer.Argument(..., metavar="FIT", help="A run folder or a model folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Figure file: .png, .svg or .pdf."),
    year: int | None = typer.Option(
        None, help="caterpillar/funnel: the fitted year (default: the last one)."
    ),
    ci_prob: float = typer.Option(DEFAULT_CI_PROB, help="Width of the credible intervals."),
    value: str = typer.Option(
        "excess_ratio", help="caterpillar: the LA-level quantity to rank (an excess() column)."
    ),
    by_region: bool = typer.Option(False, "--by-region", help="caterpillar: a panel per region."),
    region: str | None = typer.Option(None, help="caterpillar: one region only."),
    highlight: list[str] = typer.Option(
        [],
        "--highlight",
        help="caterpillar and funnel: an authority (name, ONS code or DfE number) to draw "
        "distinctly (repeatable).",
    ),
    neighbours: str | None = typer.Option(
        None,
        "--neighbours",
        help="caterpillar and funnel: highlight an authority and its DfE statistical neighbours "
        "(needs --raw).",
    ),
    raw: Path | None = RAW_OPT,
    show_prob: bool = typer.Option(
        False, "--show-prob", help="caterpillar: print P(excess ratio > 1) beside each authority."
    ),
    authority: str | None = typer.Option(
        None, help="trend: the authority (name, ONS code or DfE number)."
    ),
    null_fit: Path | None = typer.Option(
        None, "--null-fit", help="variance: a null fit, for the between-LA share explained."
    ),
    data_out: Path | None = typer.Option(
        None,
        "--data-out",
        help="Also write the table behind the figure (.csv, spreadsheet-safe; .json; .parquet).",
    ),
) -> None:
    """Draw a caterpillar, funnel, variance, trend or ppc figure from a saved fit."""
    import matplotlib.pyplot as plt

    from csc_bayes.cli._common import TABLE_SUFFIXES
    from csc_bayes.fits import load_fit
    from csc_bayes.plots import figure_from_fit, save_figure
    from csc_bayes.plots._style import figure_format
    from csc_bayes.posterior import reader

    if data_out is not None and kind == PlotKind.ppc:
        raise typer.BadParameter("a ppc plot has no table to write", param_hint="--data-out")
    figure_format(out)  # an unknown suffix fails before the figure is drawn
    check_output(out)
    if data_out is not None:
        check_output(data_out)
    if neighbours is not None:
        require_raw(raw)  # before the fit is loaded
    fit = load_fit(fit_path)
    if neighbours is not None:
        group = neighbour_group(fit, neighbours, raw)
        fitted = reader(fit).authorities
        in_fit = [c for c in group if c in set(fitted["la_code"].astype(str))]
        if len(in_fit) < len(group):
            missing = ", ".join(c for c in group if c not in in_fit)
            note(f"neighbours not in the fit: {missing}")
        highlight = [*highlight, *in_fit]
    if not fit.diagnostics_passed:
        note(
            "warning: this fit FAILED the convergence gate; its figures may be wrong "
            "(see `csc-bayes report` for the reasons)."
        )
    with refusing(KeyError):
        fig, table = figure_from_fit(
            kind.value,
            fit,
            year=year,
            ci_prob=ci_prob,
            value=value,
            by_region=by_region,
            region=region,
            highlight=highlight,
            show_prob=show_prob,
            authority=authority,
            null_fit=load_fit(null_fit) if null_fit is not None else None,
        )
    try:
        save_figure(fig, out)
    finally:
        plt.close(fig)
    note(f"wrote {out}")
    if data_out is not None:
        write_table(table, data_out, TABLE_SUFFIXES.get(data_out.suffix.lower(), "csv"))
        note(f"wrote {data_out}")


def register(app: typer.Typer) -> None:
    """Add the ``plot`` command."""
    app.command("plot")(plot)
