"""Exception types. Every message names the file, row, column, authority or key at fault."""

from __future__ import annotations


class CscBayesError(Exception):
    """Base class for all errors raised deliberately by csc_bayes."""


class DataFileError(CscBayesError, ValueError):
    """An official input file cannot be read as documented.

    The message names the file and, where they apply, the row (1-based, as a spreadsheet shows it,
    header = row 1), the column and the offending value.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.file, self.row, self.column, self.value = file, row, column, value
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        if value is not None:
            where.append(f"value {value!r}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class PanelValidationError(CscBayesError, ValueError):
    """A panel (built, loaded or simulated) breaks the documented schema."""


class SpecError(CscBayesError, ValueError):
    """A model specification file is invalid (unknown key, covariate, wrong type, bad prior)."""


class FitIntegrityError(CscBayesError):
    """A saved fit is missing, corrupted, tampered with, or no longer matches its model."""


class UnknownAuthorityError(CscBayesError, KeyError):
    """An authority name or code matched nothing; the message suggests the closest matches."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0]) if self.args else ""


class DiagnosticsGateError(CscBayesError):
    """A fit failed the convergence gate and the caller did not accept that."""


class AnswerError(CscBayesError, ValueError):
    """A request the fit cannot answer (a year it was not fitted to, an interval width outside
    (0, 1), a null fit that does not match, ...); the message names the value at fault."""
