"""The LA x year panel: column names, types and the reasons a value can be missing.

One row per authority and reporting year. `year` is the DfE reporting year ending 31 March
(2024 = 2023-24). Counts are pandas nullable integers: a missing count stays <NA>, never 0,
and its companion column ``<name>_missing`` says why (one of :class:`MissingReason`).
"""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from csc_bayes.errors import PanelValidationError


class MissingReason(StrEnum):
    """Why a panel cell is missing. Stored as the string value in ``<column>_missing``."""

    SUPPRESSED = "suppressed"  # c, x (pre-2018 SFR), bracketed forms; range: bounds_columns
    NOT_AVAILABLE = "not_available"  # x (EES), :, .., -, and authorities absent from a file
    NOT_APPLICABLE = "not_applicable"  # z
    LOW_RELIABILITY = "low_reliability"  # u, low
    NO_SOURCE = "no_source"  # no file here covers that measure for that year
    NOT_YET_PUBLISHED = "not_yet_published"  # population published, outcomes not yet
    NOT_IN_EXTRA_TABLE = "not_in_extra_table"  # a user's --extra table has no row for it
    BEFORE_FIRST_YEAR = "before_first_year"  # a lag reaching before the authority's first year
    NOT_YET_INSPECTED = "not_yet_inspected"  # no ILACS judgement published yet (Ofsted)
    ZERO_IN_RATIO = "zero_in_ratio"  # log(a / b) with a or b zero (data/ratios.py)


IDENTITY = ("la_code", "ons_code", "la_name", "region", "year")
EXPOSURE = "population"
OUTCOMES = ("cin", "cpp", "cla", "s47", "referrals")
COVARIATES = ("idaci", "imd", "ethnic_minority_share", "spend_per_child")
#: columns that carry a ``<name>_missing`` companion
FLAGGED = (EXPOSURE, *OUTCOMES, *COVARIATES)
#: ``panel.attrs`` key: one record per joined extra file (see :mod:`csc_bayes.data.extra`)
EXTRA_FILES_ATTR = "extra_files"
#: ``panel.attrs`` key: ``{path inside the raw folder: sha256}`` of every official file read
RAW_FILES_ATTR = "raw_files"

REGIONS = (
    "North East",
    "North West",
    "Yorkshire and The Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
)


def missing_column(name: str) -> str:
    """Name of the companion column that explains missing values of ``name``."""
    return f"{name}_missing"


def with_derived_column(
    panel: pd.DataFrame, name: str, values: pd.Series, reasons: pd.Series
) -> pd.DataFrame:
    """A copy of ``panel`` with a derived column ``name`` and its ``<name>_missing`` reasons
    (a lag, a log ratio); ValueError when the panel already has ``name``."""
    if name in panel.columns:
        raise ValueError(f"column {name!r} is already in the panel")
    out = panel.copy()
    out[name] = values
    out[missing_column(name)] = reasons
    return out


def bounds_columns(name: str) -> tuple[str, str]:
    """``(<name>_lower, <name>_upper)``: the known range of a suppressed count of ``name``.

    Optional columns: a panel has them for a count only when some suppressed cell of it has a
    documented range (``docs/data.md``, "Suppressed counts with a known range"). Where set,
    ``lower <= name <= upper`` is all that is known of the count, which is <NA> with reason
    ``suppressed``; everywhere else both are <NA>.
    """
    return f"{name}_lower", f"{name}_upper"


def _check_bounds(panel: pd.DataFrame, source: str) -> None:
    """Validate the optional ``<count>_lower`` / ``<count>_upper`` columns in place (Int64)."""
    names = [c for c in panel.columns if missing_column(c) in panel.columns]
    for name in names:
        lo_col, hi_col = bounds_columns(name)
        present = [c for c in (lo_col, hi_col) if c in panel.columns]
        if not present:
            continue
        if len(present) == 1:
            raise PanelValidationError(
                f"{source}: column {present[0]!r} needs its partner "
                f"{({lo_col, hi_col} - set(present)).pop()!r}"
            )
        for col in (lo_col, hi_col):
            try:
                panel[col] = panel[col].astype("Int64")
            except (TypeError, ValueError) as exc:
                raise PanelValidationError(
                    f"{source}: column {col!r} is not whole numbers: {exc}"
                ) from exc
        lo, hi = panel[lo_col], panel[hi_col]
        where = f"({lo_col}, {hi_col})"
        checks = [
            (lo.isna() != hi.isna(), f"{where} has one bound without the other"),
            (
                lo.notna()
                & ~panel[missing_column(name)].eq(MissingReason.SUPPRESSED.value).fillna(False),
                f"{where} is set where {name} is not suppressed",
            ),
            ((lo < 0).fillna(False), f"{lo_col} is negative"),
            ((lo > hi).fillna(False), f"{lo_col} is above {hi_col}"),
        ]
        for bad, what in checks:
            bad = bad.fillna(False).astype(bool)
            if bad.any():
                row = panel.loc[bad].iloc[0]
                raise PanelValidationError(
                    f"{source}: {what} for {row['la_code']} {row['la_name']} {row['year']}"
                )


def extra_flagged(panel: pd.DataFrame) -> list[str]:
    """Columns beyond the schema that carry a ``<name>_missing`` companion, in panel order.

    These are a user's own columns (``--extra``) and derived ones such as lags; they follow the
    same missing-value discipline as the schema's columns.
    """
    names = set(panel.columns)
    skip = set(required_columns())
    return [
        c
        for c in panel.columns
        if c not in skip and not str(c).endswith("_missing") and missing_column(c) in names
    ]


def required_columns() -> list[str]:
    """Every column a valid panel must have, in canonical order."""
    cols = [*IDENTITY, *FLAGGED]
    return cols + [missing_column(c) for c in FLAGGED]


def validate_panel(panel: pd.DataFrame, *, source: str = "panel") -> pd.DataFrame:
    """Check a panel against the schema and return it with canonical dtypes.

    Raises :class:`PanelValidationError` naming the column, authority or row at fault for:
    a missing column; a duplicated (la_code, year); a region outside :data:`REGIONS`; a negative
    count or population; a missing value without a reason, or a reason beside a present value;
    a suppressed count's range (:func:`bounds_columns`) that is one-sided, inverted, negative or
    set where the count is not suppressed.

    Columns beyond the schema are kept, after the schema's. Those with a ``<name>_missing``
    companion (a user's ``--extra`` columns, lags; see :func:`extra_flagged`) must be numeric
    (integers become Int64, others Float64) and follow the same missing-value rules. A column
    named in ``panel.attrs["extra_files"]`` must have its companion; records there for columns
    no longer in the panel are dropped from the returned panel's ``attrs``.
    """
    missing = [c for c in required_columns() if c not in panel.columns]
    if missing:
        raise PanelValidationError(f"{source}: missing column(s) {missing}")
    out = panel.copy()
    out["la_code"] = out["la_code"].astype("string")
    out["ons_code"] = out["ons_code"].astype("string")
    out["la_name"] = out["la_name"].astype("string")
    out["region"] = out["region"].astype("string")
    out["year"] = out["year"].astype("int64")
    for col in (EXPOSURE, *OUTCOMES):
        try:
            out[col] = out[col].astype("Int64")
        except (TypeError, ValueError) as exc:
            raise PanelValidationError(
                f"{source}: column {col!r} is not whole numbers: {exc}"
            ) from exc
    for col in COVARIATES:
        out[col] = out[col].astype("Float64")

    dup = out.duplicated(["la_code", "year"], keep=False)
    if dup.any():
        first = out.loc[dup, ["la_code", "la_name", "year"]].iloc[0]
        raise PanelValidationError(
            f"{source}: duplicated authority-year {first['la_code']} {first['la_name']} "
            f"{first['year']} ({int(dup.sum())} rows involved)"
        )
    bad_region = ~out["region"].isin(REGIONS)
    if bad_region.any():
        row = out.loc[bad_region].iloc[0]
        raise PanelValidationError(
            f"{source}: unknown region {row['region']!r} for authority {row['la_code']} "
            f"{row['la_name']}; expected one of {list(REGIONS)}"
        )
    extras = extra_flagged(out)
    for col in extras:
        out[col] = _numeric(out[col], col, source)
    _check_extra_metadata(out, source)
    reasons = {r.value for r in MissingReason}
    for col in (*FLAGGED, *extras):
        flag = missing_column(col)
        out[flag] = out[flag].astype("string")
        values = out[col]
        if col in (EXPOSURE, *OUTCOMES):
            negative = values.lt(0).fillna(False)
            if negative.any():
                row = out.loc[negative].iloc[0]
                raise PanelValidationError(
                    f"{source}: negative {col} for {row['la_code']} {row['la_name']} {row['year']}"
                )
        unexplained = values.isna() & out[flag].isna()
        if unexplained.any():
            row = out.loc[unexplained].iloc[0]
            raise PanelValidationError(
                f"{source}: {col} is missing without a reason in {flag!r} for "
                f"{row['la_code']} {row['la_name']} {row['year']}"
            )
        contradictory = values.notna() & out[flag].notna()
        if contradictory.any():
            row = out.loc[contradictory].iloc[0]
            raise PanelValidationError(
                f"{source}: {col} has a value and a missing reason for "
                f"{row['la_code']} {row['la_name']} {row['year']}"
            )
        unknown = out[flag].notna() & ~out[flag].isin(reasons)
        if unknown.any():
            row = out.loc[unknown].iloc[0]
            raise PanelValidationError(
                f"{source}: unknown missing reason {row[flag]!r} in {flag!r} for "
                f"{row['la_code']} {row['la_name']} {row['year']}; "
                f"expected one of {sorted(reasons)}"
            )
    _check_bounds(out, source)
    extra = [c for c in out.columns if c not in required_columns()]
    return out[required_columns() + extra].sort_values(["la_code", "year"]).reset_index(drop=True)


def _numeric(values: pd.Series, col: str, source: str) -> pd.Series:
    """An extra column as Int64 (integer dtypes) or Float64 (floats); anything else is an error."""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise PanelValidationError(f"{source}: column {col!r} is boolean, not numbers")
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64")
    if pd.api.types.is_float_dtype(values.dtype):
        return values.astype("Float64")
    if values.isna().all():
        return values.astype("Float64")
    raise PanelValidationError(
        f"{source}: column {col!r} has a {missing_column(col)!r} companion but holds "
        f"{values.dtype} values, not numbers"
    )


def _check_extra_metadata(panel: pd.DataFrame, source: str) -> None:
    """Keep ``attrs["extra_files"]`` to the columns present; each must have its companion."""
    records = panel.attrs.get(EXTRA_FILES_ATTR)
    if not records:
        return
    kept = []
    for record in records:
        columns = [c for c in record.get("columns", []) if c in panel.columns]
        for col in columns:
            if missing_column(col) not in panel.columns:
                raise PanelValidationError(
                    f"{source}: column {col!r} (from extra file {record.get('file')}) has no "
                    f"{missing_column(col)!r} column saying why a value is missing"
                )
        if columns:
            kept.append({**record, "columns": columns})
    panel.attrs[EXTRA_FILES_ATTR] = kept
