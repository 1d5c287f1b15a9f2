"""Lagged columns: the value of a panel column k years earlier for the same authority.

    values, reasons = lagged(panel, "cpp", 1)     # cpp of the year before, per panel row
    panel = add_lagged(panel, "cpp", 1)           # adds lag_cpp_1 and lag_cpp_1_missing

The authority is the DfE LA number (``la_code``), so a series runs through ONS code changes
(Buckinghamshire 825) but not across boundary changes: Dorset 838 starts in 2020, and its 2020
value lagged by one year is missing with ``before_first_year`` (the old Dorset 835 is another
authority). A lagged value is never 0 or carried over from another year: when the earlier
value is absent the reason says why:

* ``before_first_year``: the panel has no row for the authority k years earlier and that year
  is before the authority's first year in the panel (2010 with k = 1; Cumberland 2024);
* the source's own reason (``<column>_missing`` of the earlier row, e.g. ``suppressed``,
  ``no_source``) when the earlier row exists but its value is missing;
* ``not_available`` when the panel lacks the earlier row inside the authority's span (a gap,
  only in a panel someone has cut rows from).

Compute lags on the whole panel before selecting the years to fit, or the first selected
year's lags are all ``before_first_year``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from csc_bayes.data.schema import MissingReason, missing_column, with_derived_column

#: the panel name of a lagged column, ``lag_<column>_<k>`` (``lag(column, k)`` in a formula)
LAGGED_NAME = re.compile(r"^lag_(?P<column>[A-Za-z_][A-Za-z0-9_]*)_(?P<k>[1-9][0-9]*)$")


def lagged_name(column: str, k: int) -> str:
    """Panel name of ``column`` lagged by ``k`` years: ``lag_cpp_1``."""
    return f"lag_{column}_{k}"


def parse_lagged_name(name: str) -> tuple[str, int] | None:
    """``(column, k)`` for a name ``lag_<column>_<k>``, else None."""
    m = LAGGED_NAME.match(name)
    return (m["column"], int(m["k"])) if m else None


def lagged(panel: pd.DataFrame, column: str, k: int) -> tuple[pd.Series, pd.Series]:
    """For each row of ``panel``, ``column`` of the same ``la_code`` in ``year - k``.

    Args:
        panel: a panel with ``la_code``, ``year``, ``column`` and ``<column>_missing`` (the
            schema's columns, a user's ``--extra`` columns and earlier lags all qualify).
        column: the column to lag.
        k: years back, an integer >= 1.

    Returns:
        ``(values, reasons)``, both indexed like ``panel``: ``values`` with ``column``'s dtype
        (Int64 counts stay Int64), NA where the earlier value is absent; ``reasons`` (string)
        NA where a value is present, else ``before_first_year``, the earlier row's own
        ``<column>_missing`` reason, or ``not_available`` (see the module docstring).

    Raises:
        ValueError: ``k`` is not a positive integer, or a column is missing, or an authority
            has two rows for one year.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"lag k must be a whole number of years >= 1, not {k!r}")
    k = int(k)
    flag = missing_column(column)
    absent = [c for c in ("la_code", "year", column, flag) if c not in panel.columns]
    if absent:
        raise ValueError(f"cannot lag {column!r}: the panel lacks column(s) {absent}")
    codes = panel["la_code"].astype(str)
    years = panel["year"].astype(int)
    own = pd.MultiIndex.from_arrays([codes, years])
    if own.has_duplicates:
        code, year = own[own.duplicated()][0]
        raise ValueError(f"cannot lag {column!r}: authority {code} has two rows for {year}")
    source = pd.DataFrame(
        {"value": panel[column].to_numpy(), "reason": panel[flag].astype("string").to_numpy()},
        index=own,
    )
    earlier = pd.MultiIndex.from_arrays([codes, years - k])
    found = earlier.isin(own)
    matched = source.reindex(earlier)
    values = pd.Series(
        pd.array(matched["value"].to_numpy(), dtype=panel[column].dtype), index=panel.index
    )
    first_year = years.groupby(codes).transform("min")
    before = (years - k < first_year).to_numpy()
    default = np.where(
        before, MissingReason.BEFORE_FIRST_YEAR.value, MissingReason.NOT_AVAILABLE.value
    )
    own_reason = matched["reason"].to_numpy(dtype=object)
    present = values.notna().to_numpy()
    reason = np.where(present, None, np.where(found, own_reason, default))
    reasons = pd.Series(
        pd.array([None if r is pd.NA else r for r in reason], dtype="string"), index=panel.index
    )
    # an earlier row that broke the schema (missing without a reason) still gets one
    reasons[values.isna() & reasons.isna()] = MissingReason.NOT_AVAILABLE.value
    return values, reasons


def add_lagged(panel: pd.DataFrame, column: str, k: int, *, name: str | None = None):
    """``panel`` with ``name`` (default ``lag_<column>_<k>``) and its ``_missing`` companion."""
    name = name or lagged_name(column, k)
    return with_derived_column(panel, name, *lagged(panel, column, k))
