"""A user's own columns: CSV or parquet tables joined to the panel by authority (and year).

    panel = build_panel(raw_dir, extra=["my_measures.csv"])    # at build time
    panel = join_extra(load_panel("panel.parquet"), ["a.csv", "b.parquet"])   # a saved panel
    panel = add_extra(panel, "a.csv")                          # one table

A table has one key column, ``la_code`` (DfE LA number) or ``ons_code`` (current or former ONS
code, resolved through the reference list of authorities, ``reference/authorities.csv``),
optionally a ``year`` column (reporting year ending 31 March, as in the panel), and one or more
numeric columns, each of which becomes a panel column ``x`` with its ``x_missing`` companion.
Columns named ``la_name`` or ``region`` are read but not joined. Without ``year`` the table is
static: an authority's value is the same every year.

Missing values follow the official columns' discipline (never 0): a published marker (``c``,
``x``, ``..``, ``:``, ``-``, ``z``, ``u``, an empty cell; see :mod:`csc_bayes.data.markers`,
``x`` = not available) gives its reason; an authority-year with no row in the table gets
``not_in_extra_table``, or ``no_source`` when the table has no row at all for that year.

Errors (:class:`~csc_bayes.errors.DataFileError`, naming the file, the row as a spreadsheet
shows it with the header as row 1, the column and the value): no key column; a key that matches
no authority; a duplicated key (or key and year); a year that is not a whole number; a cell that
is neither a number nor a marker; a column name that is not an identifier (letters, digits and
``_``, not starting with a digit, not ending in ``_missing``) or that is already a panel column.

Rows for authority-years that are not in the panel (City of London and Isles of Scilly, which
the panel excludes; years outside the panel; an authority in a year it did not exist) are not
joined; :func:`join_extra` counts them in ``panel.attrs["extra_files"]`` and
:func:`extra_summary` reports them.

Integer-valued columns (every value present a whole number) become nullable ``Int64``, so they
can serve as an outcome count; others ``Float64``. ``panel.attrs["extra_files"]`` records, for
each file joined, its path, sha256, key, whether it has years, its columns and the rows not
joined; it is saved with the panel (:func:`csc_bayes.data.save_panel`).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from csc_bayes.data.identity import reference_authorities
from csc_bayes.data.markers import parse_numbers
from csc_bayes.data.schema import (
    EXTRA_FILES_ATTR,
    IDENTITY,
    MissingReason,
    missing_column,
    validate_panel,
)
from csc_bayes.data.sources import read_text_csv, sha256_file
from csc_bayes.errors import DataFileError

KEYS = ("la_code", "ons_code")
YEAR = "year"
#: identity columns a table may carry for the reader's benefit; they are not joined
IGNORED = ("la_name", "region")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LA_CODE = re.compile(r"^\d+(\.0*)?$")
_YEAR = re.compile(r"^\d{4}(\.0*)?$")
#: the largest integer a float holds exactly; larger whole numbers stay Float64
_EXACT = 2**53


@dataclass(frozen=True)
class ExtraTable:
    """One user table, read and checked.

    ``data`` has ``la_code`` (DfE number, string), ``year`` (int; only when ``yearly``), ``row``
    (spreadsheet row) and, per column ``x`` of ``columns``, ``x`` (Int64 or Float64) and
    ``x_missing`` (the marker's reason, or NA).
    """

    file: str
    sha256: str
    key: str
    yearly: bool
    columns: tuple[str, ...]
    data: pd.DataFrame

    def record(self, *, unused_rows: int) -> dict:
        """What ``panel.attrs["extra_files"]`` keeps about this table."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "key": self.key,
            "yearly": self.yearly,
            "columns": list(self.columns),
            "rows": len(self.data),
            "unused_rows": unused_rows,
        }


def _read_cells(path: Path) -> pd.DataFrame:
    """The table as objects, indexed by spreadsheet row (header = row 1), names stripped."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not parquet
            raise DataFileError(f"cannot read as parquet: {exc}", file=str(path)) from None
        if isinstance(frame.index, pd.MultiIndex) or frame.index.name is not None:
            frame = frame.reset_index()
        frame = frame.astype(object).where(frame.notna(), None)
        frame.index = pd.Index(np.arange(len(frame)) + 2)
        if frame.empty:
            raise DataFileError("table has no rows", file=str(path))
    elif suffix in (".csv", ".txt"):
        frame = read_text_csv(path).frame.astype(object)
    else:
        raise DataFileError(
            f"unsupported file type {suffix or '(none)'!r}; give a .csv or .parquet table",
            file=str(path),
        )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _ons_lookup() -> dict[str, str]:
    """Every current and former ONS code of the reference list -> DfE LA number."""
    ref = reference_authorities()
    out: dict[str, str] = {}
    for code, current, former in zip(
        ref.index, ref["ons_code"], ref["former_ons_codes"], strict=True
    ):
        for ons in [current, *str(former or "").split(";")]:
            if ons and ons.strip():
                out[ons.strip().upper()] = str(code)
    return out


def _column_names(frame: pd.DataFrame, *, file: str, key: str) -> list[str]:
    """The value columns, each name checked (identifier, not reserved)."""
    lowered = {c.lower() for c in (*KEYS, YEAR, *IGNORED)}
    names = []
    for name in frame.columns:
        if name.lower() in lowered:
            continue
        if not _NAME.match(name) or keyword.iskeyword(name):
            raise DataFileError(
                "column name is not a valid identifier (use letters, digits and '_', not "
                "starting with a digit)",
                file=file,
                row=1,
                column=name,
            )
        if name.endswith("_missing"):
            raise DataFileError(
                "column names ending in '_missing' are reserved for the panel's missing-value "
                "reasons",
                file=file,
                row=1,
                column=name,
            )
        names.append(name)
    if not names:
        raise DataFileError(
            f"table has no value columns besides {key}"
            + (f" and {YEAR}" if YEAR in frame.columns else ""),
            file=file,
        )
    return names


def _identity_column(frame: pd.DataFrame, name: str, *, file: str) -> str | None:
    """The table's column called ``name`` in any case, or None; two of them is an error."""
    found = [c for c in frame.columns if c.lower() == name]
    if len(found) > 1:
        raise DataFileError(f"table has {len(found)} {name} columns", file=file, column=found[1])
    return found[0] if found else None


def read_extra(path: Path | str) -> ExtraTable:
    """Read and check one user table (see the module docstring for the rules)."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise DataFileError("extra table not found", file=file)
    frame = _read_cells(path)
    la_col = _identity_column(frame, "la_code", file=file)
    ons_col = _identity_column(frame, "ons_code", file=file)
    year_col = _identity_column(frame, YEAR, file=file)
    if la_col is None and ons_col is None:
        raise DataFileError(
            "table needs a key column 'la_code' (DfE LA number) or 'ons_code' (ONS code); "
            f"its columns are {list(frame.columns)}",
            file=file,
            row=1,
        )
    key = "la_code" if la_col is not None else "ons_code"
    ref = reference_authorities()
    ons_map = _ons_lookup()

    codes = []
    for row, raw in frame[la_col or ons_col].items():
        text = _text(raw)
        if key == "la_code":
            code = str(int(float(text))) if _LA_CODE.match(text) else None
            if code is None or code not in ref.index:
                raise DataFileError(
                    "la_code matches no authority in the reference list (DfE LA numbers, "
                    "e.g. 383 for Leeds)",
                    file=file,
                    row=int(row),
                    column=la_col,
                    value=text,
                )
        else:
            code = ons_map.get(text.upper())
            if code is None:
                raise DataFileError(
                    "ons_code matches no authority's current or former ONS code",
                    file=file,
                    row=int(row),
                    column=ons_col,
                    value=text,
                )
        codes.append(code)
    if la_col is not None and ons_col is not None:  # both given: they must agree
        for (row, raw), code in zip(frame[ons_col].items(), codes, strict=True):
            text = _text(raw).upper()
            if text and ons_map.get(text) != code:
                raise DataFileError(
                    f"ons_code is not a code of authority {code} "
                    f"{ref.at[code, 'la_name']} given in la_code",
                    file=file,
                    row=int(row),
                    column=ons_col,
                    value=_text(raw),
                )

    data = pd.DataFrame({"la_code": codes, "row": frame.index.to_numpy()}, index=frame.index)
    if year_col is not None:
        years = []
        for row, raw in frame[year_col].items():
            text = _text(raw)
            if not _YEAR.match(text):
                raise DataFileError(
                    "year is not a 4-digit reporting year (e.g. 2024 for 2023-24)",
                    file=file,
                    row=int(row),
                    column=year_col,
                    value=text,
                )
            years.append(int(float(text)))
        data[YEAR] = years
    keys = ["la_code", YEAR] if year_col is not None else ["la_code"]
    dup = data.duplicated(keys, keep=False)
    if dup.any():
        first = data.loc[dup].iloc[0]
        same = data.loc[dup & (data[keys] == first[keys]).all(axis=1), "row"].tolist()
        what = f"authority {first['la_code']} {ref.at[first['la_code'], 'la_name']}"
        if year_col is not None:
            what += f" in {first[YEAR]}"
        raise DataFileError(
            f"duplicated key: {what} is in rows {same}",
            file=file,
            row=int(same[1]),
            column=la_col or ons_col,
            value=_text(frame.at[same[1], la_col or ons_col]),
        )

    columns = _column_names(frame, file=file, key=la_col or ons_col)
    for name in columns:
        values, reasons = parse_numbers(
            frame[name],
            file=file,
            column=name,
            rows=[int(r) for r in frame.index],
            x_means=MissingReason.NOT_AVAILABLE,
        )
        present = values.dropna().astype(float)
        whole = (
            len(present) > 0
            and bool(np.all(np.floor(present) == present))
            and bool(np.all(np.abs(present) <= _EXACT))
        )
        data[name] = values.round().astype("Int64") if whole else values.astype("Float64")
        data[missing_column(name)] = reasons.astype("string")
    return ExtraTable(
        file=str(path.resolve()),
        sha256=sha256_file(path),
        key=key,
        yearly=year_col is not None,
        columns=tuple(columns),
        data=data.reset_index(drop=True),
    )


def _check_names(panel: pd.DataFrame, tables: list[ExtraTable]) -> None:
    """A column of a table must be new: not a panel column, not in an earlier table."""
    taken = {str(c): "the panel" for c in panel.columns}
    taken.update({c: "the panel's identity" for c in IDENTITY})
    for record in panel.attrs.get(EXTRA_FILES_ATTR, []) or []:
        for col in record.get("columns", []):
            taken[col] = f"extra file {record.get('file')}"
    for table in tables:
        for col in table.columns:
            for name in (col, missing_column(col)):
                if name in taken:
                    raise DataFileError(
                        f"column {name!r} is already in the panel (from {taken[name]}); "
                        "rename it in the table",
                        file=table.file,
                        row=1,
                        column=col,
                    )
            taken[col] = f"extra file {table.file}"
            taken[missing_column(col)] = f"extra file {table.file}"


def _join_one(panel: pd.DataFrame, table: ExtraTable) -> tuple[pd.DataFrame, int]:
    """``panel`` with the table's columns; and the number of table rows not joined."""
    keys = ["la_code", YEAR] if table.yearly else ["la_code"]
    data = table.data
    index = pd.MultiIndex.from_frame(data[keys]) if table.yearly else pd.Index(data["la_code"])
    lookup = data.set_index(index)
    if table.yearly:
        where = pd.MultiIndex.from_arrays([panel["la_code"].astype(str), panel[YEAR].astype(int)])
    else:
        where = pd.Index(panel["la_code"].astype(str))
    matched = lookup.reindex(where)
    found = where.isin(index)
    if table.yearly:
        covered = panel[YEAR].isin(set(data[YEAR])).to_numpy()
        absent = np.where(
            covered, MissingReason.NOT_IN_EXTRA_TABLE.value, MissingReason.NO_SOURCE.value
        )
    else:
        absent = np.full(len(panel), MissingReason.NOT_IN_EXTRA_TABLE.value, dtype=object)
    out = panel.copy()
    for col in table.columns:
        values = matched[col].astype(data[col].dtype)
        reason = matched[missing_column(col)].astype("string").to_numpy(dtype=object)
        reason = np.where(found, reason, absent)
        out[col] = pd.array(values.to_numpy(), dtype=data[col].dtype)
        out[missing_column(col)] = pd.array(
            [None if r is None or r is pd.NA else r for r in reason], dtype="string"
        )
    unused = int((~index.isin(where)).sum())
    return out, unused


def join_extra(panel: pd.DataFrame, paths: Iterable[Path | str]) -> pd.DataFrame:
    """``panel`` with the columns of every table in ``paths`` joined (see the module docstring).

    Every table is read and checked before any is joined. Returns a validated panel whose
    ``attrs["extra_files"]`` lists each file's path, sha256 and columns (earlier records kept).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    panel = validate_panel(panel)
    tables = [read_extra(p) for p in paths]
    _check_names(panel, tables)
    records = list(panel.attrs.get(EXTRA_FILES_ATTR, []) or [])
    out = panel
    for table in tables:
        out, unused = _join_one(out, table)
        records.append(table.record(unused_rows=unused))
    out.attrs[EXTRA_FILES_ATTR] = records
    return validate_panel(out, source="panel with extra columns")


def add_extra(panel: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """``panel`` with the columns of one table joined; see :func:`join_extra`."""
    return join_extra(panel, [path])


def extra_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """One row per extra column: ``column, file, key, yearly, with_value`` (panel cells with a
    value), ``missing`` (cells missing, by reason) and ``rows_not_joined`` (table rows for
    authority-years not in the panel, e.g. City of London and Isles of Scilly)."""
    rows = []
    for record in panel.attrs.get(EXTRA_FILES_ATTR, []) or []:
        for col in record.get("columns", []):
            if col not in panel.columns:
                continue
            reasons = panel[missing_column(col)].value_counts()
            rows.append(
                {
                    "column": col,
                    "dtype": str(panel[col].dtype),
                    "file": Path(record.get("file", "")).name,
                    "key": record.get("key"),
                    "yearly": bool(record.get("yearly")),
                    "with_value": int(panel[col].notna().sum()),
                    "missing": ", ".join(f"{r} {n}" for r, n in reasons.items()),
                    "rows_not_joined": int(record.get("unused_rows", 0)),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "column",
            "dtype",
            "file",
            "key",
            "yearly",
            "with_value",
            "missing",
            "rows_not_joined",
        ],
    )


__all__ = ["ExtraTable", "add_extra", "extra_summary", "join_extra", "read_extra"]
