"""Exception types: every exception class of csc_bayes is defined here (a test checks it).

Every message names the file, row, column, authority or key at fault. The command line maps
them to exit statuses in ``csc_bayes.cli._common.exit_code_for``.
"""

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


class UnknownBackendError(CscBayesError, ValueError):
    """The requested sampling back end is not one of ``csc_bayes.spec.BACKENDS``."""


class PlanError(CscBayesError, ValueError):
    """A batch plan is invalid; the message names the plan file and the key at fault."""


class OutputError(CscBayesError, OSError):
    """An output file or folder cannot be written; the message names the path and the reason.

    Also an ``OSError``, so code that catches failed writes as ``OSError`` still catches it.
    """

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"cannot write {path}: {reason}")

    def __str__(self) -> str:  # OSError would otherwise format its own arguments
        return f"cannot write {self.path}: {self.reason}"

    def __reduce__(self):  # picklable (Dask sends errors between processes)
        return (type(self), (self.path, self.reason))


class OutputFormatError(OutputError, ValueError):
    """An output's format cannot be told from its name (e.g. a figure file ``x.bmp``)."""


class TaskFailedError(CscBayesError, RuntimeError):
    """Fits run as tasks (SBC replicates, K-fold refits) failed; the message names them."""


class AnswerError(CscBayesError, ValueError):
    """A request the fit cannot answer (a year it was not fitted to, an interval width outside
    (0, 1), a null fit that does not match, ...); the message names the value at fault."""
