"""The covariates of the LA x year panel: deprivation, ethnicity and spending.

:func:`covariates_for` takes the panel's authority-years and returns, row for row,
``idaci``, ``imd``, ``ethnic_minority_share`` and ``spend_per_child`` (Float64) with their
``<name>_missing`` reasons. See ``docs/covariates.md`` for definitions and caveats.

Deprivation and ethnicity are published once (IoD 2019, Census 2021) on one set of upper-tier
boundaries, so they are matched to each unit by ONS code, through:

1. code changes without boundary changes (:data:`SAME_AREA`): either code finds the area;
2. boundary changes (:data:`DEPRIVATION_STANDINS`, :data:`ETHNICITY_STANDINS`): a unit that
   a source lacks is built from the units it has, either exactly (adding successors' Census
   counts) or approximately (taking one neighbour's value; documented in docs/covariates.md);
3. the authority name, when the code is still not found.

Spending is matched on the DfE LA number and year (:mod:`csc_bayes.data.spending`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from csc_bayes.data.deprivation import IOD_FILE, read_iod
from csc_bayes.data.ethnicity import ETHNICITY_FILE, read_ethnicity
from csc_bayes.data.schema import COVARIATES, MissingReason, missing_column
from csc_bayes.data.spending import locate_file, spend_per_child
from csc_bayes.errors import DataFileError

UNIT_COLUMNS = ("la_code", "ons_code", "la_name", "year")
_NA_REASON = MissingReason.NOT_AVAILABLE.value

#: groups of ONS codes for one unchanged area (a code replaced without a boundary change)
SAME_AREA: tuple[tuple[str, ...], ...] = (
    ("E08000020", "E08000037"),  # Gateshead, 2013
    ("E06000048", "E06000057"),  # Northumberland, 2013
    ("E10000002", "E06000060"),  # Buckinghamshire, county -> unitary 2020
    ("E10000023", "E06000065"),  # North Yorkshire, unitary 2023 (same area)
    ("E10000027", "E06000066"),  # Somerset, unitary 2023 (same area)
)

#: IoD 2019 (2019 codes) lacks these units: code -> the code whose scores stand in for it
DEPRIVATION_STANDINS: dict[str, str] = {
    "E06000061": "E10000021",  # North Northamptonshire <- Northamptonshire
    "E06000062": "E10000021",  # West Northamptonshire <- Northamptonshire
    "E06000063": "E10000006",  # Cumberland <- Cumbria
    "E06000064": "E10000006",  # Westmorland and Furness <- Cumbria
    "E10000009": "E06000059",  # former Dorset county <- Dorset (2019)
    "E06000028": "E06000058",  # former Bournemouth <- Bournemouth, Christchurch and Poole
    "E06000029": "E06000058",  # former Poole <- Bournemouth, Christchurch and Poole
}

#: Census 2021 (2023 codes) lacks these units: code -> codes whose counts are added
ETHNICITY_STANDINS: dict[str, tuple[str, ...]] = {
    "E10000021": ("E06000061", "E06000062"),  # Northamptonshire = North + West (exact)
    "E10000006": ("E06000063", "E06000064"),  # Cumbria = Cumberland + W&F (exact)
    "E10000009": ("E06000059",),  # former Dorset county <- Dorset (approximate)
    "E06000028": ("E06000058",),  # former Bournemouth <- BCP (approximate)
    "E06000029": ("E06000058",),  # former Poole <- BCP (approximate)
}


def covariates_for(units: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    """Covariates for each authority-year in ``units``, same rows, same index and order.

    ``units`` needs ``la_code, ons_code, la_name, year``. Returns the eight covariate columns
    (values Float64, reasons string). A unit that no source covers gets ``not_available``; a
    year outside a source's coverage gets ``no_source``; nothing is filled with 0. Raises
    :class:`DataFileError` naming a missing or malformed input file.
    """
    missing = [c for c in UNIT_COLUMNS if c not in units.columns]
    if missing:
        raise DataFileError(f"units table lacks column(s) {missing}", column=missing[0])
    raw_dir = Path(raw_dir)
    keys = pd.DataFrame(
        {
            "la_code": units["la_code"].astype("string").str.strip(),
            "ons_code": units["ons_code"].astype("string").str.strip(),
            "la_name": units["la_name"].astype("string"),
            "year": units["year"].astype("int64"),
        },
        index=units.index,
    )
    out = pd.DataFrame(index=units.index)

    iod = read_iod(locate_file(raw_dir, IOD_FILE))
    iod = _with_standins(_with_same_area(iod.set_index("code")), DEPRIVATION_STANDINS)
    for name in ("idaci", "imd"):
        out[name], out[missing_column(name)] = _match(keys, iod, name)

    census = read_ethnicity(locate_file(raw_dir, ETHNICITY_FILE)).set_index("code")
    census = _with_summed_standins(_with_same_area(census), ETHNICITY_STANDINS)
    census["ethnic_minority_share"] = (
        (census["residents"] - census["white_british"]) / census["residents"]
    ).astype("Float64")
    census["ethnic_minority_share_missing"] = census["counts_missing"].where(
        census["ethnic_minority_share"].isna()
    )
    share, share_reason = _match(keys, census, "ethnic_minority_share")
    out["ethnic_minority_share"], out["ethnic_minority_share_missing"] = share, share_reason

    spend = spend_per_child(raw_dir)
    covered_years = set(spend["year"])
    joined = keys[["la_code", "year"]].merge(
        spend, on=["la_code", "year"], how="left", validate="m:1"
    )
    joined.index = units.index
    no_source = ~keys["year"].isin(covered_years)
    reason = joined["spend_per_child_missing"].astype("string")
    reason = reason.mask(joined["spend_per_child"].isna() & reason.isna(), _NA_REASON)
    reason = reason.mask(no_source, MissingReason.NO_SOURCE.value)
    out["spend_per_child"] = joined["spend_per_child"].astype("Float64")
    out["spend_per_child_missing"] = reason.astype("string")

    for name in COVARIATES:
        out[name] = out[name].astype("Float64")
        out[missing_column(name)] = out[missing_column(name)].astype("string")
    return out[[*COVARIATES, *(missing_column(c) for c in COVARIATES)]]


def normalise_name(name: object) -> str:
    """Authority name for matching: ``"Bristol, City of"`` -> ``bristol``; ``St.`` -> ``st``."""
    t = str(name).lower().replace("&", " and ")
    t = re.sub(r",\s*(city|county) of$", "", t.strip())
    t = re.sub(r"[^a-z0-9 ]+", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def _match(keys: pd.DataFrame, table: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """Value and reason of ``column`` for each unit: by ONS code, else by name, else NA."""
    by_name = {}
    for code, name in table["name"].items():
        by_name.setdefault(normalise_name(name), code)
    codes = []
    for ons_code, la_name in zip(keys["ons_code"], keys["la_name"], strict=True):
        if pd.notna(ons_code) and ons_code in table.index:
            codes.append(ons_code)
        else:
            codes.append(by_name.get(normalise_name(la_name)))
    matched = table.reindex(pd.Index(codes, dtype="string"))  # unmatched units: all NA
    values = pd.Series(matched[column].to_numpy(), index=keys.index, dtype="Float64")
    reasons = pd.Series(matched[missing_column(column)].to_numpy(), index=keys.index)
    # a unit no row covers, or a missing value without a published reason: not available
    reasons = (
        reasons.astype("string")
        .where(values.isna())
        .mask(values.isna() & reasons.isna(), _NA_REASON)
    )
    return values, reasons


def _with_same_area(table: pd.DataFrame) -> pd.DataFrame:
    """Add rows so that every code of a :data:`SAME_AREA` group finds the area's row."""
    extra = []
    for group in SAME_AREA:
        present = [c for c in group if c in table.index]
        if present:
            extra += [table.loc[[present[0]]].rename(index={present[0]: c}) for c in group]
    added = [e for e in extra if e.index[0] not in table.index]
    return pd.concat([table, *added]) if added else table


def _with_standins(table: pd.DataFrame, standins: dict[str, str]) -> pd.DataFrame:
    """Add a row for each missing unit, copied from the unit that stands in for it."""
    added = [
        table.loc[[source]].rename(index={source: code})
        for code, source in standins.items()
        if code not in table.index and source in table.index
    ]
    return pd.concat([table, *added]) if added else table


def _with_summed_standins(
    table: pd.DataFrame, standins: dict[str, tuple[str, ...]]
) -> pd.DataFrame:
    """Add a row for each missing unit with the summed counts of the units that make it up."""
    rows = {}
    for code, parts in standins.items():
        if code in table.index or not all(p in table.index for p in parts):
            continue
        block = table.loc[list(parts)]
        reasons = block["counts_missing"].dropna()
        rows[code] = {
            "name": " + ".join(block["name"]),
            "residents": block["residents"].sum(skipna=False),
            "white_british": block["white_british"].sum(skipna=False),
            "counts_missing": reasons.iloc[0] if len(reasons) else pd.NA,
        }
    if not rows:
        return table
    added = pd.DataFrame.from_dict(rows, orient="index").astype(table.dtypes.to_dict())
    return pd.concat([table, added])
