"""``csc-bayes explain | excess | predict``: the answers, from a saved fit.

FIT is a run folder (``fits/<model>/<run-id>``) or a model folder (its latest run).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from csc_bayes.cli._common import (
    OutputFormat,
    emit_frame,
    err_console,
    frame_table,
    print_wide,
)
from csc_bayes.variance import DEFAULT_CI_PROB

FIT_ARG = typer.Argument(..., help="A run folder, or a model folder (its latest run).")
CI_OPT = typer.Option(DEFAULT_CI_PROB, "--ci-prob", help="Width of the credible intervals (0-1).")
FORMAT_OPT = typer.Option(OutputFormat.table, "--format", help="table, csv or json.")

#: the columns a reader of the excess table sees first in the terminal
_EXCESS_BRIEF = [
    "la_code",
    "la_name",
    "region",
    "year",
    "observed_rate",
    "expected_rate_median",
    "excess_ratio_median",
    "excess_ratio_lower",
    "excess_ratio_upper",
    "p_excess",
    "rank_median",
]
_PREDICT_BRIEF = [
    "la_code",
    "la_name",
    "year",
    "kind",
    "population",
    "observed",
    "predicted_median",
    "predicted_lower",
    "predicted_upper",
    "rate_median",
    "rate_lower",
    "rate_upper",
    "expected_rate_median",
    "excess_ratio_median",
]


class PredictFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _load(path: Path):
    from csc_bayes.fits import load_fit

    return load_fit(path)


def _refuse(exc: ValueError) -> typer.Exit:
    """A bad request (unfitted year, bad ci_prob, mismatched null fit): message, exit code 2."""
    err_console.print(f"[red]error:[/] {exc}")
    return typer.Exit(2)


def explain(
    fit_path: Path = FIT_ARG,
    null: Path | None = typer.Option(
        None, "--null", help="A null (random-effects-only) fit; default: the matching one."
    ),
    no_null: bool = typer.Option(
        False, "--no-null", help="Skip the null model (and the between-LA share it gives)."
    ),
    fmt: OutputFormat = FORMAT_OPT,
    ci_prob: float = CI_OPT,
) -> None:
    """How much variation each source explains, and how much is left unexplained.

    Without --null, the matching null model (random effects only, same outcome, years and data)
    is loaded from beside FIT if saved, else fitted and saved there.
    """
    from csc_bayes.fitting import find_null_fit
    from csc_bayes.variance import explain_variance

    fit = _load(fit_path)
    if null is not None:
        null_fit = _load(null)
    elif no_null:
        null_fit = None
    else:
        err_console.print(
            f"null model {fit.spec.null_spec().name}: loading the saved fit of the same data, "
            "or fitting it (use --null FIT or --no-null to choose otherwise)"
        )
        null_fit = find_null_fit(fit)
    try:
        result = explain_variance(fit, null_fit=null_fit, ci_prob=ci_prob)
    except ValueError as exc:
        raise _refuse(exc) from None
    if fmt == OutputFormat.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif fmt == OutputFormat.csv:
        emit_frame(result.to_frame(), fmt)
    else:
        frame = result.to_frame()
        for measure, rows in frame.groupby("measure", sort=False):
            print_wide(
                frame_table(
                    rows.drop(columns="measure"), title=f"{measure} ({ci_prob:.0%} intervals)"
                )
            )


def excess_command(
    fit_path: Path = FIT_ARG,
    year: str | None = typer.Option(
        None, "--year", help="A fitted year, or 'all'; default the last fitted year."
    ),
    region_as_need: bool = typer.Option(
        False, "--region-as-need", help="Count region effects as need, not as excess."
    ),
    fmt: OutputFormat = FORMAT_OPT,
    out: Path | None = typer.Option(
        None, "--out", help="Also write the full table as spreadsheet-safe CSV."
    ),
    sort: str = typer.Option(
        "excess_ratio_median", "--sort", help="Column to sort by (descending)."
    ),
    ci_prob: float = CI_OPT,
) -> None:
    """Each authority's excess or shortfall relative to its expected need."""
    from csc_bayes.excess import excess, to_safe_csv

    fit = _load(fit_path)
    try:
        chosen: int | str | None = year if year in (None, "all") else int(year)
        table = excess(fit, year=chosen, ci_prob=ci_prob, region_as_need=region_as_need)
    except ValueError as exc:
        raise _refuse(exc) from None
    if sort not in table.columns:
        raise typer.BadParameter(f"unknown column {sort!r}; one of {list(table.columns)}")
    # descending within each year (one block per year when --year all)
    table = table.sort_values(["year", sort], ascending=[True, False], kind="stable")
    table = table.reset_index(drop=True)
    if out is not None:
        err_console.print(f"wrote {to_safe_csv(table, out)}")
    if fmt == OutputFormat.table:
        emit_frame(table[_EXCESS_BRIEF], fmt, title=f"Excess over expected need ({ci_prob:.0%})")
    else:
        emit_frame(table, fmt)


def predict_command(
    fit_path: Path = FIT_ARG,
    authority: str = typer.Option(
        ..., "--authority", help="Name, ONS code or DfE number, or 'all'."
    ),
    year: list[int] | None = typer.Option(None, "--year", help="Year(s); repeat for several."),
    population: float | None = typer.Option(
        None, "--population", help="Children aged 0-17 in forecast years, instead of the panel's."
    ),
    fmt: PredictFormat = typer.Option(PredictFormat.table, "--format", help="table, json or csv."),
    ci_prob: float = CI_OPT,
    seed: int = typer.Option(0, "--seed", help="Seed of the predictive draws."),
) -> None:
    """Posterior predictions for a named authority (or all of them) and year."""
    from csc_bayes.predict import predict

    fit = _load(fit_path)
    try:
        table = predict(
            fit,
            authority=authority,
            year=year or None,
            population=population,
            ci_prob=ci_prob,
            seed=seed,
        )
    except ValueError as exc:
        raise _refuse(exc) from None
    if fmt == PredictFormat.table:
        emit_frame(table[_PREDICT_BRIEF], OutputFormat.table, title=f"Predictions ({ci_prob:.0%})")
    else:
        emit_frame(table, OutputFormat(fmt.value))


def register(app: typer.Typer) -> None:
    """Add ``explain``, ``excess`` and ``predict`` to the ``csc-bayes`` app."""
    app.command("explain")(explain)
    app.command("excess")(excess_command)
    app.command("predict")(predict_command)
