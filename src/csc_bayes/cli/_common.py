"""Small helpers shared by the CLI commands: rich console, output formats, exit codes."""

from __future__ import annotations

import io
import json
from enum import StrEnum

import pandas as pd
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def frame_table(df: pd.DataFrame, *, title: str | None = None, float_digits: int = 3) -> Table:
    """A rich Table of a DataFrame, numbers right-aligned and rounded for reading."""
    table = Table(title=title, show_lines=False)
    for col in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for row in df.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("" if pd.isna(value) else f"{value:,.{float_digits}g}")
            else:
                cells.append("" if value is None or value is pd.NA else str(value))
        table.add_row(*cells)
    return table


def print_wide(table: Table) -> None:
    """Print a table on standard output; to a file or pipe as wide as it needs (rich would
    otherwise cut it to 80 columns and truncate every header)."""
    if console.is_terminal:
        console.print(table)
        return
    measuring = Console(width=100_000, file=io.StringIO())
    width = measuring.measure(table).maximum
    Console(width=max(width, 80), soft_wrap=False).print(table)


def emit_frame(df: pd.DataFrame, fmt: OutputFormat, *, title: str | None = None) -> None:
    """Print a DataFrame as a rich table, CSV or JSON records on standard output."""
    if fmt == OutputFormat.table:
        print_wide(frame_table(df, title=title))
    elif fmt == OutputFormat.csv:
        from csc_bayes.excess import safe_csv_text

        print(safe_csv_text(df), end="")
    else:
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=2))
