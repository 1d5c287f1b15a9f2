"""Helpers shared by the CLI commands: exit codes and errors, output files and formats, tables.

Exit codes (one place; README's table is the same):

====  ======================================================================================
code  meaning
====  ======================================================================================
0     success
1     a domain or input error: a bad spec, panel, fit, plan, authority, year or request
2     a usage error: an unknown option or a value the command line cannot parse (typer)
3     a fit failed the convergence gate (``fit``; ``report`` refusing such a fit)
4     an output could not be written (no such folder, not a folder, permission, full disk,
      unknown file suffix), or another operating-system I/O error
5     a check failed: ``sbc`` rejected uniformity of the ranks
====  ======================================================================================

Errors print as one line, ``error: <message>``, on standard error, without a traceback. Data
(tables, CSV, JSON) go to standard output; messages (``wrote ...``, warnings) to standard error.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from csc_bayes.errors import CscBayesError, DiagnosticsGateError, OutputError

console = Console()
#: messages on standard error; soft_wrap: a long path is not broken across lines
err_console = Console(stderr=True, soft_wrap=True)


class ExitCode(IntEnum):
    """Exit statuses of ``csc-bayes`` (the table in this module's docstring and in README)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    GATE_FAILED = 3  # == csc_bayes.diagnostics.GATE_FAILED_EXIT_CODE
    OUTPUT = 4
    CHECK_FAILED = 5


# ---------------------------------------------------------------------------------- errors


class CliExit(SystemExit):
    """Ends a command with an exit code after its one-line error was printed.

    ``str()`` is the message and ``error`` the exception behind it, so a test that invokes the
    app with click's CliRunner can read both from ``result.exception``.
    """

    def __init__(self, code: int, message: str, error: BaseException | None = None) -> None:
        super().__init__(int(code))
        self.message, self.error = message, error

    def __str__(self) -> str:
        return self.message


def one_line(text: str) -> str:
    """A message on one line: its non-empty lines, stripped, joined by "; "."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return "; ".join(lines)


def fail(
    message: object, code: int = ExitCode.ERROR, error: BaseException | None = None
) -> CliExit:
    """Print ``error: <message>`` as one line on standard error; return the exit to raise."""
    text = one_line(message)
    typer.secho("error:", fg="red", bold=True, err=True, nl=False)
    typer.echo(f" {text}", err=True)
    return CliExit(code, text, error)


def os_error_text(exc: OSError) -> str:
    """``<path>: <reason>`` for an OSError (``[Errno 13] ...`` without the number)."""
    reason = exc.strerror or str(exc)
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(map(str, paths))}: {reason}" if paths else reason


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of an exception a command let through; None: not an expected error."""
    if isinstance(exc, DiagnosticsGateError):
        return ExitCode.GATE_FAILED
    if isinstance(exc, OutputError):
        return ExitCode.OUTPUT
    if isinstance(exc, CscBayesError):
        return ExitCode.ERROR
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:  # typer handles a closed pipe
        return ExitCode.OUTPUT
    return None


def message_for(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, CscBayesError):
        return os_error_text(exc)
    if isinstance(exc, KeyError) and exc.args:  # KeyError's str() is the repr of its message
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


class CliGroup(TyperGroup):
    """The ``csc-bayes`` group: turns the errors a command lets through into exit codes.

    csc_bayes's own errors and OS errors print one line on standard error and exit with
    :func:`exit_code_for`'s code; anything else (a bug) keeps its traceback.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CscBayesError, OSError) as exc:
            code = exit_code_for(exc)
            if code is None:
                raise
            raise fail(message_for(exc), code, exc) from None


@contextmanager
def refusing(*kinds: type[BaseException]) -> Iterator[None]:
    """Turn a library's ValueError (or ``kinds``) for a bad request into a one-line error, exit 1.

    For calls whose ValueErrors answer the user's request (an unfitted year, a bad interval
    width, an unknown column), not for whole commands: elsewhere a ValueError is a bug.
    """
    try:
        yield
    except CscBayesError as exc:  # here too, so that a command works outside the csc-bayes group
        raise fail(message_for(exc), exit_code_for(exc) or ExitCode.ERROR, exc) from None
    except (ValueError, *kinds) as exc:
        raise fail(message_for(exc), ExitCode.ERROR, exc) from None


#: ``--raw`` for commands that read DfE's statistical-neighbour groupings
RAW_OPT = typer.Option(
    None, "--raw", help="Folder of the official files (for --neighbours: DfE's groupings)."
)


#: help of ``--draws`` wherever a command fits
DRAWS_HELP = (
    "Draws per chain, or 'auto': blocks until the convergence gate's R-hat and ESS targets "
    "are met or the spec's max_draws is reached (default: the spec's)."
)


def parse_draws(value: str | None, hint: str = "--draws") -> int | str | None:
    """``--draws``: a whole number of draws per chain (>= 1), ``auto``, or None (the spec's)."""
    if value is None:
        return None
    text = value.strip().lower()
    if text == "auto":
        return "auto"
    try:
        draws = int(text)
    except ValueError:
        raise typer.BadParameter(
            f"give a whole number of draws per chain or 'auto', not {value!r}", param_hint=hint
        ) from None
    if draws < 1:
        raise typer.BadParameter(f"draws per chain must be >= 1, got {draws}", param_hint=hint)
    return draws


def require_raw(raw: Path | None) -> Path:
    """``--raw``, which ``--neighbours`` needs (a usage error without it)."""
    if raw is None:
        raise typer.BadParameter("--neighbours reads DfE's groupings: give --raw DIR")
    return raw


def neighbour_group(fit: Any, authority: str, raw: Path | None) -> list[str]:
    """DfE numbers of ``authority`` (name, ONS code or DfE number, resolved among the fit's
    authorities) and its statistical neighbours, closest first; ``--raw`` is required."""
    raw = require_raw(raw)
    from csc_bayes.authorities import resolve_authority
    from csc_bayes.data.neighbours import statistical_neighbours
    from csc_bayes.posterior import reader

    with refusing():
        code = str(resolve_authority(authority, reader(fit).authorities)["la_code"])
        return [code, *statistical_neighbours(code, raw)]


def note(message: str) -> None:
    """A message for the user (not data): one line on standard error."""
    typer.echo(message, err=True)


# ---------------------------------------------------------------------------------- outputs


def check_output(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Fail early, with :class:`OutputError`, when ``path`` clearly cannot be written.

    A file path must not be a folder; a folder path must not be a file; the nearest existing
    ancestor must be a folder this process may write into (missing folders are created on
    writing). Call it before the work whose result would be lost.
    """
    target = Path(path)
    if folder and target.exists() and not target.is_dir():
        raise OutputError(target, "it exists and is not a folder")
    if not folder and target.is_dir():
        raise OutputError(target, "it is a folder; give a file name")
    ancestor = target if folder else target.parent
    ancestor = Path(os.path.abspath(ancestor))
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(target, f"{ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(target, f"permission denied (cannot write in {ancestor})")
    return target


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Report an OSError raised while writing ``path`` as :class:`OutputError` (exit code 4)."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


FORMAT_HELP = (
    "table, csv or json on standard output; with --out, the file's format (table: from the "
    "suffix, .csv if none). parquet needs --out."
)
OUT_HELP = "Write the full table to this file instead of standard output (see --format)."
#: file formats a table can be written in, by suffix
TABLE_SUFFIXES = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def file_format(fmt: OutputFormat, out: Path) -> str:
    """The format a table file is written in: ``fmt``, or for ``table`` the file's suffix."""
    if fmt != OutputFormat.table:
        return fmt.value
    return TABLE_SUFFIXES.get(out.suffix.lower(), "csv")


def check_table_output(fmt: OutputFormat, out: Path | None, *, folder: bool = False) -> None:
    """Validate ``--format`` / ``--out`` before any work: parquet needs a file; it is writable."""
    if fmt == OutputFormat.parquet and out is None:
        raise typer.BadParameter(
            "parquet is a binary file format: give --out FILE", param_hint="--format"
        )
    if out is not None:
        check_output(out, folder=folder)


def write_table(
    df: pd.DataFrame, path: str | os.PathLike[str], fmt: str, *, json_text: str | None = None
) -> Path:
    """Write ``df`` to ``path`` as csv (spreadsheet-safe), json records or parquet, atomically.

    ``json_text``, when given, is written instead of ``df``'s records (a nested result).
    Raises :class:`OutputError` naming the path when it cannot be written.
    """
    from csc_bayes.excess import safe_csv_text

    target = Path(path)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            _replace_atomically(target, lambda tmp: df.to_parquet(tmp, index=False))
        else:
            if fmt == "csv":
                text = safe_csv_text(df)
            elif json_text is not None:
                text = json_text
            else:
                text = json.dumps(json.loads(df.to_json(orient="records")), indent=2) + "\n"
            data = text.encode("utf-8")
            _replace_atomically(target, lambda tmp: Path(tmp).write_bytes(data))
    return target


def _replace_atomically(target: Path, write: Callable[[str], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved file is readable as usual
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit_table(
    df: pd.DataFrame,
    fmt: OutputFormat,
    out: Path | None = None,
    *,
    title: str | None = None,
    brief: list[str] | None = None,
    json_text: str | None = None,
) -> None:
    """Hand a command's table over: to ``out`` when given, else to standard output.

    With ``out``, the full table is written there (see :func:`file_format`) and, for
    ``--format table``, the ``brief`` columns are still shown on standard output. Without it,
    ``table`` prints the ``brief`` columns as a rich table, ``csv`` / ``json`` the full table.
    """
    shown = df[brief] if brief else df
    if out is not None:
        write_table(df, out, file_format(fmt, out), json_text=json_text)
        note(f"wrote {out}")
        if fmt == OutputFormat.table:
            emit_frame(shown, fmt, title=title)
        return
    if fmt == OutputFormat.json and json_text is not None:
        print(json_text)
    else:
        emit_frame(shown if fmt == OutputFormat.table else df, fmt, title=title)


# ---------------------------------------------------------------------------------- tables


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
    elif fmt == OutputFormat.json:
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=2))
    else:
        raise typer.BadParameter(
            f"{fmt.value} is a binary file format: give --out FILE", param_hint="--format"
        )


# ---------------------------------------------------------------------------------- help

#: the worked example at the end of each command's --help, by command path
EXAMPLES: dict[str, str] = {
    "demo": "csc-bayes demo --out demo-output",
    "data build": "csc-bayes data build --raw ../shared/data/raw --out panel.parquet",
    "data join": "csc-bayes data join panel.parquet --extra my_fsm_share.csv --out panel2.parquet",
    "fit": "csc-bayes fit cpp_need --data panel.parquet --out fits",
    "models": "csc-bayes models",
    "priors": "csc-bayes priors cpp_need --data panel.parquet",
    "explain": "csc-bayes explain fits/cpp_need --format csv --out variance.csv",
    "excess": "csc-bayes excess fits/cpp_need --year 2024 --format parquet --out excess.parquet",
    "predict": 'csc-bayes predict fits/cpp_need --authority "Leeds" --year 2025',
    "grades": "csc-bayes grades fits/ilacs_spending --out grades.csv --effects-out effects.csv",
    "plot": "csc-bayes plot caterpillar fits/cpp_need -o caterpillar.pdf --highlight Leeds",
    "report": "csc-bayes report fits/cpp_need -o cpp_report.html",
    "batch": "csc-bayes batch plans/example.toml --workers 2",
    "sbc": "csc-bayes sbc cpp_need --sims 200 --out results/sbc_cpp_need",
    "compare": "csc-bayes compare fits/cpp_need fits/cpp_null --kfold 5 --out results/cv",
    "backtest": "csc-bayes backtest cpp_need_ar --data panel.parquet --origins 2019 2024 "
    "--horizon 1 2 3 --out results/backtest",
    "backtest-table": "csc-bayes backtest-table bt/cpp bt/cin bt/s47 bt/referrals "
    "--out results/forecast",
    "backtest-compare": "csc-bayes backtest-compare bt/s47_forecast bt/s47_forecast_noind "
    "--out s47_compare.csv",
}


def example_epilog(command: str) -> str | None:
    """The --help epilog of ``command`` (a path such as ``"data build"``), or None."""
    example = EXAMPLES.get(command)
    return f"Example:\n\n  {example}" if example else None
