"""Children-in-need outcomes from the DfE explore-education-statistics (EES) CSVs, 2013 onwards.

Each measure is one column of one file (see :data:`EES_OUTCOMES`). Every EES file has the same
identity columns (``time_period, geographic_level, old_la_code, new_la_code, la_name,
region_name``), so :func:`read_ees_column` serves the population and CLA files too.
In EES files ``x`` means "not available" (pre-2018 SFR files use it for suppression).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from csc_bayes.data.markers import parse_numbers, suppressed_bounds
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import (
    check_codes,
    check_unique,
    check_year_coverage,
    locate,
    read_csv,
)
from csc_bayes.errors import DataFileError

#: panel column -> (file key in sources.FILES, column in that file)
EES_OUTCOMES: dict[str, tuple[str, str]] = {
    "cin": ("cin", "At31_episodes"),
    "cpp": ("cpp", "CPP_At31"),
    "s47": ("s47", "Section47"),
    "referrals": ("referrals", "referral_count"),
}

#: the columns of a :class:`Measure`'s ``las`` as the file readers make them
LAS_COLUMNS = (
    "la_code", "year", "value", "reason", "ons_code", "la_name", "region_name", "row", "lower",
    "upper",
)  # fmt: skip

EES_IDENTITY = ("time_period", "geographic_level", "old_la_code", "new_la_code", "la_name")


@dataclass(frozen=True)
class Measure:
    """One count series as published: authority rows and the national total per year.

    ``las`` has columns ``la_code, year, value, reason, ons_code, la_name, region_name, row``
    (``value`` Float64, NA where ``reason`` says why) and, from the readers of published files,
    ``lower, upper`` (Int64: the known range of a suppressed count, else NA;
    :func:`csc_bayes.data.markers.suppressed_bounds`); ``national`` has ``year, value``.
    """

    name: str
    file: str
    column: str
    las: pd.DataFrame
    national: pd.DataFrame


def whole_numbers(values: pd.Series, *, file: str, column: str, rows: pd.Series) -> pd.Series:
    """Counts as Int64; a fractional count is an error naming the row (counts are whole)."""
    frac = values.notna() & (values.round() != values).fillna(False)
    if frac.any():
        pos = int(np.flatnonzero(frac.to_numpy())[0])
        raise DataFileError(
            "count is not a whole number",
            file=file,
            row=int(rows.iloc[pos]),
            column=column,
            value=float(values.iloc[pos]),
        )
    return values.round().astype("Int64")


def read_ees_column(
    path: Path,
    column: str,
    *,
    name: str,
    keep: pd.Series | None = None,
    frame: pd.DataFrame | None = None,
    years: range | None = None,
) -> Measure:
    """Read one numeric column of an EES CSV into a :class:`Measure`.

    ``keep`` (a boolean mask over the file's rows) selects e.g. one ``population_type``;
    ``frame``, when given, is the file as :func:`~csc_bayes.data.sources.read_csv` returned it
    (its index is the spreadsheet row). Markers become NA with a reason (``x`` = not
    available); other text is an error. The whole file (before ``keep``) is checked against
    the reference list: every authority's DfE number and ONS code
    (:func:`~csc_bayes.data.sources.check_codes`) and the years and authorities it covers:
    ``years`` when given, else those its name promises
    (:func:`~csc_bayes.data.sources.check_year_coverage`).
    """
    raw = frame if frame is not None else read_csv(path, required=(*EES_IDENTITY, column))
    raw = raw.assign(row=raw.index.to_numpy())
    _check_whole_file(raw, path, years)
    if keep is not None:
        raw = raw.loc[keep.to_numpy()]
    level = raw["geographic_level"].str.strip()
    unknown = ~level.isin(["National", "Regional", "Local authority"])
    if unknown.any():
        bad = raw.loc[unknown].iloc[0]
        raise DataFileError(
            "unknown geographic_level",
            file=str(path),
            row=int(bad["row"]),
            column="geographic_level",
            value=bad["geographic_level"],
        )
    values, reasons = parse_numbers(
        raw[column], file=str(path), column=column, x_means=MissingReason.NOT_AVAILABLE
    )
    lower, upper = suppressed_bounds(raw[column], reasons, source="ees")
    raw = raw.assign(value=values, reason=reasons, lower=lower, upper=upper)
    raw["year"] = _years(raw, path)

    las = raw.loc[level == "Local authority"].copy()
    las["la_code"] = las["old_la_code"].str.strip()
    blank = las["la_code"].eq("")
    if blank.any():
        raise DataFileError(
            "local authority row without an old_la_code",
            file=str(path),
            row=int(las.loc[blank, "row"].iloc[0]),
            column="old_la_code",
        )
    check_unique(las, file=str(path))
    las["value"] = whole_numbers(las["value"], file=str(path), column=column, rows=las["row"])
    las = las.rename(columns={"new_la_code": "ons_code"})
    if "region_name" not in las.columns:
        las["region_name"] = pd.NA
    las = las[[*LAS_COLUMNS]].reset_index(drop=True)

    nat = raw.loc[level == "National", ["year", "value", "row"]]
    check_unique(nat, file=str(path), keys=("year",))
    return Measure(name, str(path), column, las, nat[["year", "value"]].reset_index(drop=True))


def _check_whole_file(raw: pd.DataFrame, path: Path, years: range | None) -> None:
    """Authority rows of the whole file: codes in the reference list, years as promised."""
    las = raw.loc[raw["geographic_level"].str.strip() == "Local authority"]
    las = pd.DataFrame(
        {
            "la_code": las["old_la_code"].str.strip(),
            "ons_code": las["new_la_code"].str.strip(),
            "year": _years(las, path),
            "row": las["row"],
        }
    )
    check_codes(las, file=str(path), code_column="old_la_code", ons_column="new_la_code")
    check_year_coverage(las, file=str(path), years=years)


def _years(raw: pd.DataFrame, path: Path) -> pd.Series:
    """``time_period`` as int (EES reporting years are written ``2019``)."""
    tp = raw["time_period"].str.strip()
    bad = ~tp.str.fullmatch(r"\d{4}")
    if bad.any():
        row = raw.loc[bad].iloc[0]
        raise DataFileError(
            "time_period is not a 4-digit year",
            file=str(path),
            row=int(row["row"]),
            column="time_period",
            value=row["time_period"],
        )
    return tp.astype(int)


def read_outcome(raw_dir: Path, name: str) -> Measure:
    """One CIN-census outcome (``cin``, ``cpp``, ``s47`` or ``referrals``) by authority-year."""
    key, column = EES_OUTCOMES[name]
    return read_ees_column(locate(raw_dir, key), column, name=name)
