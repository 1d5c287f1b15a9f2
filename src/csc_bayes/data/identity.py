"""Which authorities exist in which reporting year, and what they are called.

The key is the DfE LA number (``la_code``): it stays the same when only the ONS code changes
(Buckinghamshire 825: E10000002 -> E06000060; Northumberland 929; Gateshead 390; North
Yorkshire 815; Somerset 933), so such an authority keeps one continuous series.

Boundary changes create and end authorities; each exists only in the years it existed:

* Dorset 835, Poole 836, Bournemouth 837 (to 2019) -> Dorset 838 and Bournemouth,
  Christchurch and Poole 839 (from 2020);
* Northamptonshire 928 (to 2021) -> North 940 and West 941 Northamptonshire (from 2022);
* Cumbria 909 (to 2023) -> Cumberland 942 and Westmorland and Furness 943 (from 2024).

The authorities of year t are those with a row in that year's *anchor* file (:data:`ANCHORS`);
every one must be in the package's reference list (``reference/authorities.csv``) and inside
its ``first_year``-``last_year`` there, which is how the table above is enforced.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from csc_bayes.data.outcomes import Measure
from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import DataFileError

#: authorities left out of the panel by default, and why (listed in every BuildReport)
EXCLUDED: dict[str, str] = {
    "201": "City of London: about 1,000 children, counts mostly suppressed",
    "420": (
        "Isles of Scilly: about 400 children, counts mostly suppressed or reported with Cornwall"
    ),
}

#: which file defines the authorities of each reporting year
ANCHORS = {
    **{y: "cla" for y in range(2010, 2013)},  # SFR CLA files
    **{y: "cin" for y in range(2013, 2025)},  # b1 children in need
    2025: "population",  # ONS mid-2024 (outcomes not yet published)
}
FIRST_YEAR, LAST_YEAR = min(ANCHORS), max(ANCHORS)


def reference_authorities() -> pd.DataFrame:
    """The package's list of children's services authorities 2010-2025, keyed by ``la_code``."""
    text = resources.files("csc_bayes").joinpath("reference/authorities.csv")
    with resources.as_file(text) as path:
        ref = pd.read_csv(path, dtype=str, keep_default_na=False)
    ref["first_year"] = ref["first_year"].astype(int)
    ref["last_year"] = ref["last_year"].replace("", str(LAST_YEAR)).astype(int)
    bad = ref.loc[~ref["region"].isin(REGIONS)]
    if not bad.empty:
        raise DataFileError(
            f"unknown region {bad['region'].iloc[0]!r} for authority {bad['la_code'].iloc[0]}",
            file=str(path),
            column="region",
        )
    return ref.set_index("la_code")


def units(anchors: dict[int, Measure]) -> pd.DataFrame:
    """One row per (``la_code``, ``year``) the anchor files list, excluding :data:`EXCLUDED`.

    Returns ``la_code, year, la_name, ons_code, region``: the name and ONS code as the anchor
    file prints them that year, the region from the reference list. An authority that the
    reference list does not know, or lists as not existing that year, is a
    :class:`DataFileError` naming the file, row and authority.
    """
    ref = reference_authorities()
    frames = []
    for year, measure in sorted(anchors.items()):
        las = measure.las.loc[measure.las["year"] == year]
        if las.empty:
            raise DataFileError(f"no authority rows for {year}", file=measure.file)
        for _, row in las.iterrows():
            code = row["la_code"]
            if code not in ref.index:
                raise DataFileError(
                    f"authority {code} {row['la_name']} is not in the reference list of "
                    "children's services authorities",
                    file=measure.file,
                    row=int(row["row"]),
                )
            first, last = ref.at[code, "first_year"], ref.at[code, "last_year"]
            if not first <= year <= last:
                raise DataFileError(
                    f"authority {code} {ref.at[code, 'la_name']} has a row for {year} but existed "
                    f"only {first}-{last}",
                    file=measure.file,
                    row=int(row["row"]),
                )
        frames.append(las[["la_code", "year", "la_name", "ons_code"]])
    out = pd.concat(frames, ignore_index=True)
    out = out.loc[~out["la_code"].isin(EXCLUDED)].copy()
    out["region"] = out["la_code"].map(ref["region"])
    out["la_name"] = out["la_name"].where(
        out["la_name"].notna(), out["la_code"].map(ref["la_name"])
    )
    return out.sort_values(["la_code", "year"]).reset_index(drop=True)


def fill_ons_codes(unit_frame: pd.DataFrame, measures: list[Measure]) -> pd.Series:
    """ONS code in force each year: from the anchor file, else any other file for that year.

    The 2010 SFR file has no ONS codes; the codes there are the 2011 ones (the GSS codes in use
    since 2009), so a code still missing takes the authority's nearest later year's code.
    """
    codes = unit_frame.set_index(["la_code", "year"])["ons_code"].replace("", pd.NA)
    for m in measures:
        other = m.las.set_index(["la_code", "year"])["ons_code"].replace("", pd.NA).dropna()
        other = other[~other.index.duplicated()]
        codes = codes.fillna(other.reindex(codes.index))
    codes = codes.groupby(level="la_code").bfill()
    missing = codes.isna()
    if missing.any():
        code, year = codes.index[missing.to_numpy().argmax()]
        raise DataFileError(f"no ONS code found for authority {code} in {year} in any file")
    return pd.Series(codes.to_numpy(), index=unit_frame.index, dtype="string")
