"""Parse published count/number cells: suppression and missing markers -> NA plus a reason.

DfE, ONS and MHCLG files mark cells they cannot publish with short tokens. Each token maps to a
:class:`MissingReason`; nothing is ever read as zero. Any other non-numeric text in a numeric
column is an error naming the file, row, column and value.

A suppressed count whose range is known (a marker that means "a count between lo and hi" in
that kind of file, and nothing else) also gets that range (:data:`SUPPRESSED_RANGES`,
:func:`suppressed_bounds`); the panel carries it as ``<column>_lower`` / ``<column>_upper`` and
a model may enter the row as an interval-censored count (``docs/data.md``). No marker of the
files this package reads has such a range (see :data:`SUPPRESSED_RANGES` for why).
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
    "x": MissingReason.SUPPRESSED,  # pre-2018 SFR (not only 1-5); EES "not available" (below)
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

#: source kind -> {marker token: (lo, hi)}: the documented range of a suppressed count, for
#: markers that mean exactly "lo <= count <= hi". Empty for every kind the package reads:
#:
#: * ``"ees"`` (explore-education-statistics CSVs): ``c`` covers counts of 1 to 5, but DfE
#:   also applies *secondary* suppression ("Secondary suppression has been applied where
#:   necessary", children in need data guidance), so a ``c`` may hide any larger count;
#: * ``"sfr"`` (pre-2018 SFR CSVs): ``x`` is described as 1-5 (raw ``PROVENANCE.md``), but it
#:   is secondary suppression too: in SFR27 (2010) Kensington and Chelsea's ``StartTotal_2010``
#:   and ``CeasedTotal_2010`` are ``x`` while parts of them published in the same rows are 8
#:   and 24, 17 and 23 (``tests/test_suppressed_ranges.py`` checks this on the raw files);
#: * ``"lait"``: ``-`` means missing, with no range.
#:
#: A kind of file whose marker has a documented range gets its entry here (the readers ask
#: :func:`suppressed_bounds` already); a simulated panel carries its known range through
#: :func:`csc_bayes.simulate.suppress_small_counts`.
SUPPRESSED_RANGES: dict[str, dict[str, tuple[int, int]]] = {"ees": {}, "sfr": {}, "lait": {}}

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


def suppressed_bounds(
    values: pd.Series, reasons: pd.Series, *, source: str
) -> tuple[pd.Series, pd.Series]:
    """(lower, upper) as Int64 for each published cell of ``values``: the known range of a
    suppressed count (:data:`SUPPRESSED_RANGES` of ``source``), <NA> everywhere else.

    ``reasons`` is what :func:`parse_numbers` returned for the same cells; only a cell whose
    reason is ``suppressed`` and whose token has a range gets one.
    """
    if source not in SUPPRESSED_RANGES:
        raise ValueError(f"unknown source kind {source!r}; expected {sorted(SUPPRESSED_RANGES)}")
    ranges = SUPPRESSED_RANGES[source]
    lower = pd.Series(pd.NA, index=values.index, dtype="Int64")
    upper = pd.Series(pd.NA, index=values.index, dtype="Int64")
    if not ranges:
        return lower, upper
    suppressed = reasons.eq(MissingReason.SUPPRESSED.value).fillna(False).to_numpy(dtype=bool)
    for pos in np.flatnonzero(suppressed):
        token = str(values.iloc[pos]).strip().lower()
        m = _BRACKETED.match(token)
        token = m.group(1).strip() if m else token
        if token in ranges:
            lower.iloc[pos], upper.iloc[pos] = ranges[token]
    return lower, upper


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
