"""Children looked after (CLA) at 31 March, 2010-2024, one source per year range.

| years | source | column |
|---|---|---|
| 2010 | ``SFR27_2010_March.csv`` | ``MarTotal_2010`` |
| 2011-2017 | SFR21 / SFR20 / SFR36 / SFR34 / SFR41 / SFR50 CLA files | ``CLA_Mar<year>`` |
| 2018 | LAIT ``bds_long_0.parquet`` (the only source for 31 March 2018) | ``LACnum`` |
| 2019-2020 | EES ``cla_number_and_rate_per_10k_children_2019_to_2023_version.csv`` | ``number`` |
| 2021-2024 | EES ``cla_number_and_rate_per_10k_children.csv`` (2025 release) | ``children_count`` |

Where two files overlap the newer release is used for its years, so each year has one source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from csc_bayes.data.markers import parse_numbers, suppressed_bounds
from csc_bayes.data.outcomes import LAS_COLUMNS, Measure, read_ees_column, whole_numbers
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sfr import read_sfr_column
from csc_bayes.data.sources import check_codes, check_unique, locate, read_csv
from csc_bayes.errors import DataFileError

SFR_YEARS = range(2010, 2018)
LAIT_YEAR = 2018
EES_2023_YEARS = range(2019, 2021)
EES_2025_YEARS = range(2021, 2025)
#: LAIT numbers 970 and above are England (970) and regions (980-990)
LAIT_ENGLAND = 970


def read_cla_sfr(raw_dir: Path, year: int) -> Measure:
    """CLA at 31 March ``year`` (2010-2017) from that year's SFR file."""
    column = "MarTotal_2010" if year == 2010 else f"CLA_Mar{year}"
    return read_sfr_column(locate(raw_dir, f"sfr_{year}"), column, year=year, name="cla")


def read_cla_lait(
    raw_dir: Path, *, year: int = LAIT_YEAR, indicator: str = "LACnum", name: str = "cla"
) -> Measure:
    """CLA at 31 March ``year`` from LAIT indicator ``LACnum`` (values stored as text); another
    count ``indicator`` (``LACnum_Start``, ``LACceased``) as the measure ``name``.

    Rows are numbered 1, 2, ... in file order (a parquet file has no header row).
    """
    path = locate(raw_dir, "lait")
    try:
        raw = pd.read_parquet(path, columns=["Short Desc", "Years", "LA Number", "Values"])
    except (OSError, ValueError, KeyError) as exc:  # pyarrow raises these for bad files/columns
        raise DataFileError(f"cannot read LAIT parquet: {exc}", file=str(path)) from None
    raw = raw.assign(row=np.arange(len(raw)) + 1)
    sel = raw.loc[raw["Short Desc"].eq(indicator) & raw["Years"].astype(str).eq(str(year))].copy()
    if sel.empty:
        raise DataFileError(f"no {indicator} rows for {year}", file=str(path), column="Short Desc")
    if sel["LA Number"].isna().any():
        bad = sel.loc[sel["LA Number"].isna()].iloc[0]
        raise DataFileError("row without an LA Number", file=str(path), row=int(bad["row"]))
    values, reasons = parse_numbers(
        sel["Values"].reset_index(drop=True),
        file=str(path),
        column="Values",
        row_offset=0,
        x_means=MissingReason.NOT_AVAILABLE,
    )
    lower, upper = suppressed_bounds(sel["Values"].reset_index(drop=True), reasons, source="lait")
    sel = sel.reset_index(drop=True).assign(
        value=values,
        reason=reasons,
        lower=lower,
        upper=upper,
        year=year,
        la_code=sel["LA Number"].astype(int).astype(str).values,
    )
    number = sel["LA Number"].astype(int)
    las = sel.loc[number < LAIT_ENGLAND].copy()
    check_codes(
        las.assign(ons_code=pd.NA), file=str(path), code_column="LA Number", ons_column=None
    )
    check_unique(las, file=str(path))
    las["value"] = whole_numbers(las["value"], file=str(path), column="Values", rows=las["row"])
    las = las.assign(ons_code=pd.NA, la_name=pd.NA, region_name=pd.NA)[[*LAS_COLUMNS]]
    nat = sel.loc[number == LAIT_ENGLAND, ["year", "value"]]
    return Measure(
        name, str(path), indicator, las.reset_index(drop=True), nat.reset_index(drop=True)
    )


def read_cla_ees(
    raw_dir: Path, *, release: int, population: str = "31 March", name: str = "cla"
) -> Measure:
    """CLA at 31 March from an EES CLA file: ``release`` 2023 (2019-2020) or 2025 (2021-2024).

    ``population`` picks another ``population_type`` by a word it contains (``starting``,
    ``ceasing``), read as the measure ``name``.
    """
    if release == 2023:
        key, type_col, column, years = "cla_ees_2023", "population_count", "number", EES_2023_YEARS
    elif release == 2025:
        key, type_col, column, years = (
            "cla_ees_2025",
            "population_type",
            "children_count",
            EES_2025_YEARS,
        )
    else:
        raise ValueError(f"release must be 2023 or 2025, not {release!r}")
    path = locate(raw_dir, key)
    frame = read_csv(
        path, required=("time_period", "geographic_level", "old_la_code", type_col, column)
    )
    at31 = frame[type_col].str.contains(population, regex=False)
    in_range = frame["time_period"].str.strip().isin([str(y) for y in years])
    return read_ees_column(path, column, name=name, keep=at31 & in_range, frame=frame, years=years)


def read_cla(raw_dir: Path) -> list[Measure]:
    """Every CLA source, one :class:`Measure` per file and year range (see module table)."""
    out = [read_cla_sfr(raw_dir, y) for y in SFR_YEARS]
    out.append(read_cla_lait(raw_dir))
    out.append(read_cla_ees(raw_dir, release=2023))
    out.append(read_cla_ees(raw_dir, release=2025))
    return out
