"""DfE Statistical First Release (SFR) underlying-data CSVs, 2010-2017 (children looked after).

Rows are ``geog_l`` (National / GOR or REGION / LA), ``geog_c`` (the DfE LA number) and
``geog_n`` (the name; 2010 names carry footnote digits, e.g. "Bedford Borough3"). From 2011 a
``New_geog_code`` column gives the ONS code. In these files ``x`` means suppressed (described
as 1-5 children, but it includes secondary suppression, so it has no known range:
:data:`csc_bayes.data.markers.SUPPRESSED_RANGES`) and ``..`` not available. The 2017 file has
one LA row (Isles of Scilly) with a blank ``geog_l``: a blank level with a 3-digit ``geog_c``
is read as an authority row.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from csc_bayes.data.markers import parse_numbers, suppressed_bounds
from csc_bayes.data.outcomes import LAS_COLUMNS, Measure, whole_numbers
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import check_codes, check_unique, read_csv
from csc_bayes.errors import DataFileError

_LEVELS = {"la": "la", "national": "national", "gor": "region", "region": "region"}


def read_sfr_column(path: Path, column: str, *, year: int, name: str) -> Measure:
    """One numeric column of an SFR CSV for reporting ``year`` as a :class:`Measure`."""
    raw = read_csv(path, required=("geog_l", "geog_c", "geog_n", column))
    raw = raw.assign(row=raw.index.to_numpy())
    level = raw["geog_l"].str.strip().str.lower().map(_LEVELS)
    blank_la = raw["geog_l"].str.strip().eq("") & raw["geog_c"].str.strip().str.fullmatch(r"\d{3}")
    level = level.mask(blank_la, "la")
    if level.isna().any():
        bad = raw.loc[level.isna()].iloc[0]
        raise DataFileError(
            "unknown geography level (expected National, GOR/REGION or LA)",
            file=str(path),
            row=int(bad["row"]),
            column="geog_l",
            value=bad["geog_l"],
        )
    values, reasons = parse_numbers(
        raw[column], file=str(path), column=column, x_means=MissingReason.SUPPRESSED
    )
    lower, upper = suppressed_bounds(raw[column], reasons, source="sfr")
    raw = raw.assign(value=values, reason=reasons, year=year, lower=lower, upper=upper)

    las = raw.loc[level == "la"].copy()
    las["la_code"] = las["geog_c"].str.strip()
    check_unique(las, file=str(path))
    las["value"] = whole_numbers(las["value"], file=str(path), column=column, rows=las["row"])
    las["la_name"] = las["geog_n"].map(lambda n: re.sub(r"\d+$", "", n.strip()).strip())
    las["ons_code"] = las["New_geog_code"].str.strip() if "New_geog_code" in las else pd.NA
    las["region_name"] = pd.NA
    check_codes(
        las,
        file=str(path),
        code_column="geog_c",
        ons_column="New_geog_code" if "New_geog_code" in raw.columns else None,
    )
    las = las[[*LAS_COLUMNS]]

    nat = raw.loc[level == "national", ["year", "value"]]
    if len(nat) != 1:
        raise DataFileError(f"expected one National row, found {len(nat)}", file=str(path))
    return Measure(name, str(path), column, las.reset_index(drop=True), nat.reset_index(drop=True))
