"""IoD 2019 upper-tier summaries -> IDACI and IMD average scores by authority (2019 codes).

Source: MHCLG English Indices of Deprivation 2019, "File 11: upper-tier local authority
summaries" (``imd2019/File_11_-_IoD2019_Local_Authority_District_Summaries__upper-tier__.xlsx``).
The ``IMD`` and ``IDACI`` sheets each give, per upper-tier authority, the population-weighted
*average score* of its LSOAs:

    average score = sum_i pop_i * score_i / sum_i pop_i   over the LSOAs i of the authority

IMD scores run from about 5 (least deprived) to 45; IDACI scores are the proportion of children
aged 0-15 living in income-deprived families (0-1). Both are published to 3 decimals.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import openpyxl
import pandas as pd

from csc_bayes.data.markers import parse_numbers
from csc_bayes.data.sources import FILES
from csc_bayes.errors import DataFileError

IOD_FILE = FILES["iod"]

#: sheet -> (column prefix of the value we use, our column name)
SHEETS: dict[str, tuple[str, str]] = {
    "IMD": ("IMD - Average score", "imd"),
    "IDACI": ("IDACI - Average score", "idaci"),
}
CODE_COLUMN = "Upper Tier Local Authority District code (2019)"
NAME_COLUMN = "Upper Tier Local Authority District name (2019)"

#: Known misprints in the published workbook: (printed code, authority name) -> correct code.
#: Slough is printed E0600003 (a digit dropped) in the IMD sheet; the IDACI sheet has E06000039.
CODE_REPAIRS: dict[tuple[str, str], str] = {("E0600003", "Slough"): "E06000039"}

_ONS_CODE = re.compile(r"^E\d{8}$")


def read_iod(path: Path) -> pd.DataFrame:
    """IDACI and IMD average scores, one row per upper-tier authority (2019 codes).

    Returns columns ``code, name, idaci, imd, idaci_missing, imd_missing``. Known misprinted
    codes (:data:`CODE_REPAIRS`) are repaired; any other malformed code, a missing sheet or
    column, or a value that is not a number (Excel error cells such as ``#REF!`` included)
    raises :class:`DataFileError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError("IoD 2019 upper-tier summaries workbook not found", file=str(path))
    stat = path.stat()
    return _read_iod(path, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=4)
def _read_iod(path: Path, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """Cached on the file's path, modification time and size."""
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a file that is not xlsx
        raise DataFileError(f"cannot open as an Excel workbook: {exc}", file=str(path)) from exc
    try:
        merged: pd.DataFrame | None = None
        for sheet, (prefix, name) in SHEETS.items():
            if sheet not in book.sheetnames:
                raise DataFileError(
                    f"sheet {sheet!r} not found (sheets: {book.sheetnames})", file=str(path)
                )
            table = _read_sheet(book[sheet], path, sheet, prefix, name)
            merged = table if merged is None else _merge_sheets(merged, table, path)
    finally:
        book.close()
    assert merged is not None
    return merged.reset_index(drop=True)


def _read_sheet(worksheet, path: Path, sheet: str, prefix: str, name: str) -> pd.DataFrame:
    """One sheet -> ``code, name, <name>, <name>_missing`` with codes checked and repaired.

    Read with openpyxl rather than pandas, which turns Excel error cells into NaN silently.
    """
    rows = list(worksheet.iter_rows(values_only=True))
    header = [str(c).strip() if c is not None else "" for c in (rows[0] if rows else ())]
    raw = pd.DataFrame(rows[1:], columns=header, dtype=object)
    where = f"{path} sheet {sheet}"
    for column in (CODE_COLUMN, NAME_COLUMN):
        if column not in raw.columns:
            raise DataFileError("missing column", file=where, column=column)
    value_column = next((c for c in raw.columns if c.startswith(prefix)), None)
    if value_column is None:
        raise DataFileError("missing column", file=where, column=prefix)
    while len(raw) and raw.iloc[-1].isna().all():  # trailing empty rows of the used range
        raw = raw.iloc[:-1]
    names = raw[NAME_COLUMN].astype("string").str.strip()
    codes = raw[CODE_COLUMN].astype("string").str.strip()
    for pos, (code, la_name) in enumerate(zip(codes, names, strict=True)):
        fixed = CODE_REPAIRS.get((str(code), str(la_name)))
        if fixed is not None:
            codes.iloc[pos] = fixed
        elif pd.isna(code) or not _ONS_CODE.match(str(code)):
            raise DataFileError(
                f"malformed ONS code for {la_name!r}",
                file=where,
                row=pos + 2,
                column=CODE_COLUMN,
                value=code,
            )
    values, reasons = parse_numbers(
        raw[value_column].reset_index(drop=True), file=where, column=value_column
    )
    table = pd.DataFrame(
        {
            "code": codes.to_numpy(),
            "name": names.to_numpy(),
            name: values.to_numpy(),
            f"{name}_missing": reasons.to_numpy(),
        }
    )
    table[name] = table[name].astype("Float64")
    table[f"{name}_missing"] = table[f"{name}_missing"].astype("string")
    dup = table["code"].duplicated()
    if dup.any():
        raise DataFileError(
            "authority code appears twice",
            file=where,
            column=CODE_COLUMN,
            value=table.loc[dup, "code"].iloc[0],
        )
    return table


def _merge_sheets(left: pd.DataFrame, right: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Join two sheets on code; the sheets must list the same authorities."""
    only = set(left["code"]) ^ set(right["code"])
    if only:
        raise DataFileError(
            f"the IMD and IDACI sheets list different authorities: {sorted(only)}", file=str(path)
        )
    return left.merge(right.drop(columns="name"), on="code", how="left", validate="1:1")
