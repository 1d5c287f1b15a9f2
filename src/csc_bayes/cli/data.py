"""``csc-bayes data build``: official files -> validated panel parquet, with a coverage summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from csc_bayes.cli._common import check_output, console, frame_table, print_wide, writing


def build(
    raw: Path = typer.Option(
        ..., "--raw", help="Folder holding the official files (see docs/data.md).", exists=False
    ),
    out: Path = typer.Option(Path("panel.parquet"), "--out", help="Where to write the panel."),
    extra: list[Path] = typer.Option(
        [],
        "--extra",
        help=(
            "Your own table (CSV or parquet) keyed by la_code or ons_code, with or without a "
            "year column, joined as new columns; repeat for several (docs/data.md, 'Your own "
            "columns')."
        ),
    ),
) -> None:
    """Build the LA x year panel from the official DfE / ONS files and write it as parquet."""
    from csc_bayes.data import build_panel_report, save_panel

    check_output(out)  # an unwritable --out fails before the build, not after it
    panel, report = build_panel_report(raw, extra=extra)
    with writing(out):
        path = save_panel(panel, out)
    console.print(
        f"[bold]panel[/]: {len(panel)} rows, {panel['la_code'].nunique()} authorities, "
        f"years {panel['year'].min()}-{panel['year'].max()} -> {path}"
    )
    console.print(
        f"sha256 of the {len(panel.attrs.get('raw_files', {}))} official files read recorded "
        "in the panel's metadata (panel.attrs['raw_files'])"
    )
    print_wide(frame_table(report.coverage, title="Authorities with a value, per year"))
    print_wide(frame_table(report.missing, title="Missing cells by column and reason"))
    print_wide(frame_table(report.excluded, title="Excluded authorities (default)"))
    console.print(
        frame_table(
            reconciliation_summary(report.reconciliation),
            title=("Sum of authorities vs national total (difference = LA sum - national)"),
        )
    )
    _print_extra(panel)


def join(
    panel_path: Path = typer.Argument(..., metavar="PANEL", help="A saved panel (parquet)."),
    extra: list[Path] = typer.Option(
        ..., "--extra", help="Your own table (CSV or parquet); repeat for several."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the panel with the new columns."),
) -> None:
    """Join your own tables to a saved panel as new columns (same rules as `data build --extra`)."""
    from csc_bayes.data import load_panel, save_panel
    from csc_bayes.data.extra import join_extra

    check_output(out)
    panel = join_extra(load_panel(panel_path), extra)
    with writing(out):
        path = save_panel(panel, out)
    console.print(f"[bold]panel[/]: {len(panel)} rows -> {path}")
    _print_extra(panel)


def _print_extra(panel: pd.DataFrame) -> None:
    from csc_bayes.data.extra import extra_summary

    summary = extra_summary(panel)
    if not summary.empty:
        print_wide(frame_table(summary, title="Your own columns (--extra)"))


def reconciliation_summary(recon: pd.DataFrame) -> pd.DataFrame:
    """One row per measure: years that agree, and each other year with its difference."""
    rows = []
    for measure, group in recon.groupby("measure", sort=False):
        others = group.loc[group["status"] != "agrees"]
        rows.append(
            {
                "measure": measure,
                "years agreeing": int((group["status"] == "agrees").sum()),
                "years with missing cells (difference)": ", ".join(
                    f"{r.year} ({r.difference:+,.0f})"
                    for r in others.itertuples()
                    if r.status == "missing cells"
                ),
                "years differing": ", ".join(
                    f"{r.year} ({r.difference:+,.0f})"
                    for r in others.itertuples()
                    if r.status == "differs"
                ),
            }
        )
    return pd.DataFrame(rows)


def register(app: typer.Typer) -> None:
    """Add the ``data`` sub-command group to the ``csc-bayes`` app."""
    data_app = typer.Typer(name="data", help="Build the panel from the official files.")
    data_app.command("build")(build)
    data_app.command("join")(join)
    app.add_typer(data_app, name="data")
