"""Log ratios of two panel columns: leading indicators on the log-rate scale.

    values, reasons = log_ratio(panel, "s47", "cin")    # log(s47 / cin), per panel row
    panel = add_log_ratio(panel, "s47", "cin")          # adds log_ratio_s47__cin (+ _missing)

For columns a and b (counts of the same authority-year, e.g. section 47 enquiries and children
in need), per row of authority j in year t::

    log_ratio_a__b[j, t] = log(a[j, t] / b[j, t])          (a > 0 and b > 0)

The name joins the two columns with a double underscore: ``log_ratio_<a>__<b>``. Lagged, it is
the leading indicator a forecasting model uses: ``lag_log_ratio_s47__cin_1`` (``lag(log_ratio_
s47__cin, 1)`` in a formula) is the previous year's enquiries per child in need, known before
year t is published. On the log scale a ratio is the difference of the two log rates per child
(the population cancels), so its coefficient reads like any covariate of a log-rate model.

A ratio is never a silent zero or infinity. When it cannot be computed the reason says why:

* the numerator's own ``<a>_missing`` reason when a is missing, else the denominator's;
* ``zero_in_ratio`` when a or b is 0 (or negative), so that the log is undefined (the row
  is then excluded from a fit that uses the ratio, with that reason, like any missing value).

Names in the spec's covariates that the panel lacks are derived in
:func:`csc_bayes.spec.with_derived_columns` (a ratio of lags, or a lag of a ratio, both work).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from csc_bayes.data.schema import MissingReason, missing_column, with_derived_column

#: the panel name of a log ratio, ``log_ratio_<a>__<b>`` (a and b without a double underscore)
LOG_RATIO_NAME = re.compile(
    r"^log_ratio_(?P<num>[A-Za-z](?:[A-Za-z0-9]|_(?!_))*)__(?P<den>[A-Za-z][A-Za-z0-9_]*)$"
)


def log_ratio_name(numerator: str, denominator: str) -> str:
    """Panel name of ``log(numerator / denominator)``: ``log_ratio_s47__cin``."""
    for column in (numerator, denominator):
        if "__" in column:
            raise ValueError(f"cannot name a log ratio of {column!r}: it contains '__'")
    return f"log_ratio_{numerator}__{denominator}"


def parse_log_ratio_name(name: str) -> tuple[str, str] | None:
    """``(numerator, denominator)`` for a name ``log_ratio_<a>__<b>``, else None."""
    m = LOG_RATIO_NAME.match(name)
    return (m["num"], m["den"]) if m else None


def _reasons(panel: pd.DataFrame, column: str) -> pd.Series:
    flag = missing_column(column)
    if flag in panel.columns:
        return panel[flag].astype("string")
    return pd.Series(pd.NA, index=panel.index, dtype="string")


def log_ratio(panel: pd.DataFrame, numerator: str, denominator: str) -> tuple[pd.Series, pd.Series]:
    """For each row of ``panel``, ``log(numerator / denominator)`` and why it is missing.

    Args:
        panel: a panel with both columns (numeric) and, where they have missing values, their
            ``<column>_missing`` companions (the schema's columns, ``--extra`` columns, lags).
        numerator, denominator: the column names.

    Returns:
        ``(values, reasons)`` indexed like ``panel``: ``values`` Float64, NA where the ratio is
        undefined; ``reasons`` (string) NA where a value is present, else the numerator's own
        reason, the denominator's, or ``zero_in_ratio`` (see the module docstring).

    Raises:
        ValueError: a column is absent or not numeric, or a missing value has no reason (its
            ``_missing`` companion is absent).
    """
    for column in (numerator, denominator):
        if column not in panel.columns:
            raise ValueError(
                f"cannot form log({numerator} / {denominator}): the panel has no column {column!r}"
            )
        if not pd.api.types.is_numeric_dtype(panel[column]):
            raise ValueError(
                f"cannot form log({numerator} / {denominator}): column {column!r} is not numeric"
            )
    a = panel[numerator].astype("Float64")
    b = panel[denominator].astype("Float64")
    for column, values in ((numerator, a), (denominator, b)):
        unexplained = values.isna() & _reasons(panel, column).isna()
        if unexplained.any():
            row = panel.loc[unexplained[unexplained].index[0]]
            raise ValueError(
                f"cannot form log({numerator} / {denominator}): {column!r} is missing for "
                f"authority {row.get('la_code')} year {row.get('year')} without a reason in "
                f"{missing_column(column)!r}"
            )
    both = a.notna() & b.notna()
    positive = both & (a > 0).fillna(False) & (b > 0).fillna(False)
    ratio = np.full(len(panel), np.nan)
    ok = positive.to_numpy(bool)
    ratio[ok] = np.log(a[ok].to_numpy(float) / b[ok].to_numpy(float))
    values = pd.Series(pd.array(ratio, dtype="Float64"), index=panel.index)
    values[~ok] = pd.NA
    reason = (
        _reasons(panel, numerator)
        .where(a.isna(), pd.NA)
        .fillna(_reasons(panel, denominator).where(b.isna(), pd.NA))
    )
    reason = reason.where(~(both & ~positive), MissingReason.ZERO_IN_RATIO.value)
    reasons = reason.where(~positive, pd.NA).astype("string")
    return values, reasons


def add_log_ratio(
    panel: pd.DataFrame, numerator: str, denominator: str, *, name: str | None = None
) -> pd.DataFrame:
    """``panel`` with ``name`` (default ``log_ratio_<a>__<b>``) and its ``_missing`` companion."""
    name = name or log_ratio_name(numerator, denominator)
    return with_derived_column(panel, name, *log_ratio(panel, numerator, denominator))
