"""Parse published count/number cells: suppression and missing markers -> NA plus a reason.

DfE, ONS and MHCLG files mark cells they cannot publish with short tokens. Each token maps to a
:class:`MissingReason`; nothing is ever read as zero. Any other non-numeric text in a numeric
column is an error naming the file, row, column and value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from csc_bayes.data.schema import MissingReason
from csc_bayes.errors import DataFileError

#: token (lower-cased, stripped, brackets removed) -> reason
MARKERS: dict[str, MissingReason] = {
    "c": MissingReason.SUPPRESSED,  # EES: confidential
    "x": MissingReason.SUPPRESSED,  # pre-2018 SFR: 1-5 children; EES "not available" (see below)
    "supp": MissingReason.SUPPRESSED,
    "u": MissingReason.LOW_RELIABILITY,
    "low": MissingReason.LOW_RELIABILITY,
    "z": MissingReason.NOT_APPLICABLE,
    ":": MissingReason.NOT_AVAILABLE,
    "..": MissingReason.NOT_AVAILABLE,
    "-": MissingReason.NOT_AVAILABLE,
    "": MissingReason.NOT_AVAILABLE,
    "na": MissingReason.NOT_AVAILABLE,
    "n/a": MissingReason.NOT_AVAILABLE,
    "nan": MissingReason.NOT_AVAILABLE,
}

_BRACKETED = re.compile(r"^[\[\(](.*)[\]\)]$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def marker_reason(
    token: str, *, x_means: MissingReason = MissingReason.SUPPRESSED
) -> MissingReason | None:
    """Reason for a marker token, or None when the token is not a marker.

    ``x`` means "suppressed" in pre-2018 SFR files and "not available" in EES files; the caller
    says which with ``x_means``. Bracketed forms such as ``[c]`` or ``(x)`` count as the token.
    """
    t = token.strip().lower()
    m = _BRACKETED.match(t)
    if m:
        t = m.group(1).strip()
    if t == "x":
        return x_means
    return MARKERS.get(t)


def parse_numbers(
    values: pd.Series,
    *,
    file: str,
    column: str,
    row_offset: int = 2,
    rows: Sequence[int] | None = None,
    x_means: MissingReason = MissingReason.SUPPRESSED,
) -> tuple[pd.Series, pd.Series]:
    """Turn a column of published cells into (numbers as Float64, reasons as string).

    ``row_offset`` converts the Series' positional index to the row number a spreadsheet shows
    (2 when the header is row 1); ``rows``, when given, is the row number of each value instead.
    Numbers may carry thousands commas or scientific notation.
    Raises :class:`DataFileError` for any other text, e.g. ``#VALUE!``.
    """
    row_of = list(rows) if rows is not None else [p + row_offset for p in range(len(values))]
    numbers = np.full(len(values), np.nan)
    reasons: list[str | None] = [None] * len(values)
    for pos, raw in enumerate(values.tolist()):
        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NA:
            reasons[pos] = MissingReason.NOT_AVAILABLE.value
            continue
        if isinstance(raw, (int, float, np.integer, np.floating)) and not isinstance(raw, bool):
            numbers[pos] = float(raw)
            continue
        text = str(raw).strip()
        reason = marker_reason(text, x_means=x_means)
        if reason is not None:
            reasons[pos] = reason.value
            continue
        cleaned = text.replace(",", "") if _THOUSANDS.match(text) else text
        try:
            if "_" in cleaned:  # Python's float() would read "1_000" as 1000
                raise ValueError(cleaned)
            numbers[pos] = float(cleaned)
        except ValueError:
            raise DataFileError(
                "unrecognised value in a numeric column",
                file=file,
                row=row_of[pos],
                column=column,
                value=text,
            ) from None
        if not np.isfinite(numbers[pos]):
            raise DataFileError(
                "non-finite number", file=file, row=row_of[pos], column=column, value=text
            )
    return (
        pd.Series(numbers, index=values.index, dtype="Float64"),
        pd.Series(reasons, index=values.index, dtype="string"),
    )
