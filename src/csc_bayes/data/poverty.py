"""Child poverty: DWP *Children in low income families*, aggregated from districts to authorities.

    low_income_children[la, t]  children under 16 in relative low income, financial year
                                (t-1)/t (FY 2014/15 = reporting year 2015), summed over the
                                authority's lower-tier districts
    low_income_rate[la, t]      low_income_children / children under 16 (0-1)

Sources (``dwp_children_low_income/``):

* counts, FY 2014/15 to 2021/22 (2021/22 provisional):
  ``children_relative_low_income_ltla_14-22.csv`` (Stat-Xplore export: districts on 2021
  boundaries, by name only; the first line is the header, the second a label line; it ends
  with ``Unknown`` and ``Total`` rows for the UK);
* under-16 population (the rate's denominator), FY 2014/15 to 2019/20:
  ``children_low_income_ltla_from_rda.csv`` (``population_0_16``, by 2021 district code; its
  counts equal the CSV's). FY 2020/21 and 2021/22 have no under-16 population in the folder, so
  the denominator is the authority's 0-17 population that year (the ONS estimate the panel uses,
  mid-(t-1)) times its own under-16 share of FY 2019/20 (:func:`under_16_population`).

A financial year April (t-1) to March t is the DfE reporting year t, so FY 2014/15 is year 2015.

Districts are mapped to upper-tier authorities with the ONS April 2023 LTLA -> UTLA lookup
(``dfe_csc_outcomes_enablers/LTLA-UTLA_Apr23_Lookup_England-Wales.csv``) and the DfE number of
the upper-tier code (``reference/authorities.csv``). The 17 districts abolished on 1 April 2023
are not in that lookup and are mapped by hand (:data:`ABOLISHED_2023`). Boundary changes:

* Northamptonshire 928 (to 2021) = North 940 + West 941 Northamptonshire (their 2021 districts
  are the two new unitaries): exact;
* Cumbria 909 (to 2023) = its six districts; Cumberland 942 and Westmorland and Furness 943
  (from 2024) = three each (no data after 2022 here, so it does not arise yet);
* North Yorkshire 815 and Somerset 933: their districts (same area before and after 2023);
* Buckinghamshire 825, Dorset 838 and Bournemouth, Christchurch and Poole 839: one 2021 unitary
  each;
* Dorset 835, Poole 836 and Bournemouth 837 (to 2019): **not available**. The file is on 2021
  boundaries, where Christchurch (part of the former Dorset county) is inside BCP, so none of
  the three can be rebuilt. Their population is missing in those years anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from csc_bayes.data.markers import parse_numbers
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import FILES, read_csv, read_csv_rows, reference_codes
from csc_bayes.errors import DataFileError

COUNTS_FILE = FILES["dwp_low_income"]
POPULATION_FILE = FILES["dwp_low_income_rda"]
LOOKUP_FILE = FILES["ltla_utla_lookup"]

#: districts abolished on 1 April 2023 (not in the April 2023 lookup): name in the DWP file ->
#: (2021 district code, DfE number of the authority until the abolition, DfE number after it)
ABOLISHED_2023: dict[str, tuple[str, str, str]] = {
    "Allerdale": ("E07000026", "909", "942"),
    "Barrow-in-Furness": ("E07000027", "909", "943"),
    "Carlisle": ("E07000028", "909", "942"),
    "Copeland": ("E07000029", "909", "942"),
    "Eden": ("E07000030", "909", "943"),
    "South Lakeland": ("E07000031", "909", "943"),
    "Craven": ("E07000163", "815", "815"),
    "Hambleton": ("E07000164", "815", "815"),
    "Harrogate": ("E07000165", "815", "815"),
    "Richmondshire": ("E07000166", "815", "815"),
    "Ryedale": ("E07000167", "815", "815"),
    "Scarborough": ("E07000168", "815", "815"),
    "Selby": ("E07000169", "815", "815"),
    "Mendip": ("E07000187", "933", "933"),
    "Sedgemoor": ("E07000188", "933", "933"),
    "Somerset West and Taunton": ("E07000246", "933", "933"),
    "South Somerset": ("E07000189", "933", "933"),
}
#: the first reporting year of the authorities that replaced the abolished districts
ABOLITION_YEAR = 2024
#: 2023 unitaries made of the abolished districts: not in the 2021-boundary file by name
SUCCESSOR_UNITARIES = ("E06000063", "E06000064", "E06000065", "E06000066")
#: authorities made of later ones: (DfE number, last reporting year) -> their parts
COMPOSED: dict[str, tuple[int, tuple[str, ...]]] = {
    "928": (2021, ("940", "941")),  # Northamptonshire = North + West Northamptonshire
}
#: the last reporting year with an under-16 population in the folder; its share carries on
LAST_U16_YEAR = 2020

_FY = re.compile(r"^(\d{4})/(\d{2})(\s*\(p\))?$")


@dataclass(frozen=True)
class LowIncome:
    """Counts and denominators by authority and reporting year.

    ``table``: ``la_code, year, low_income_children (Float64), low_income_children_missing,
    under_16 (Float64, NA where the folder has none for that year), n_districts``;
    ``years``: the reporting years the counts file covers; ``provisional``: those it marks
    ``(p)``; ``uk_total``: the file's ``Total`` row by year; ``districts``: the English district
    rows (``name, code, la_code, year, count``) for checks.
    """

    table: pd.DataFrame
    years: tuple[int, ...]
    provisional: tuple[int, ...]
    uk_total: dict[int, float]
    districts: pd.DataFrame


def reporting_year_of_fy(text: str) -> tuple[int, bool]:
    """``"2014/15"`` -> (2015, False); ``"2021/22 (p)"`` -> (2022, True)."""
    m = _FY.match(text.strip())
    if m is None or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(f"not a financial year like '2014/15': {text!r}")
    return int(m.group(1)) + 1, m.group(3) is not None


def read_lookup(path: Path) -> pd.DataFrame:
    """English rows of the LTLA -> UTLA lookup: ``ltla_code, ltla_name, utla_code, la_code``.

    ``la_code`` is the DfE number whose current or former ONS code is the UTLA code; an English
    UTLA code that no authority has is an error naming the row.
    """
    raw = read_csv(path, required=("LTLA23CD", "LTLA23NM", "UTLA23CD"))
    english = raw.loc[raw["LTLA23CD"].str.strip().str.startswith("E")]
    by_code = {ons: la for la, codes in reference_codes().items() for ons in codes}
    la = english["UTLA23CD"].str.strip().str.upper().map(by_code)
    if la.isna().any():
        row = int(la.index[la.isna()][0])
        raise DataFileError(
            "upper-tier code is not a code of any authority in the reference list",
            file=str(path),
            row=row,
            column="UTLA23CD",
            value=english.at[row, "UTLA23CD"],
        )
    return pd.DataFrame(
        {
            "ltla_code": english["LTLA23CD"].str.strip(),
            "ltla_name": english["LTLA23NM"].str.strip(),
            "utla_code": english["UTLA23CD"].str.strip(),
            "la_code": la,
        }
    ).reset_index(drop=True)


def _district_la(code: str, base: str, year: int) -> str:
    """The authority a district with lookup authority ``base`` belonged to in ``year``."""
    for dcode, before, after in ABOLISHED_2023.values():
        if dcode == code:
            return before if year < ABOLITION_YEAR else after
    for whole, (last, parts) in COMPOSED.items():
        if base in parts and year <= last:
            return whole
    return base


def read_low_income(raw_dir: Path) -> LowIncome:
    """The DWP counts and under-16 populations, aggregated to authorities (module docstring)."""
    paths = [Path(raw_dir) / f for f in (COUNTS_FILE, POPULATION_FILE, LOOKUP_FILE)]
    for p in paths:
        if not p.is_file():
            raise DataFileError(f"required input file not found inside {raw_dir}", file=str(p))
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return _read_low_income(Path(raw_dir), stamp)


@lru_cache(maxsize=2)
def _read_low_income(raw_dir: Path, _stamp: tuple) -> LowIncome:
    lookup = read_lookup(raw_dir / LOOKUP_FILE)
    wide, years, provisional, uk_total = _read_counts(raw_dir / COUNTS_FILE)
    districts = _english_districts(wide, lookup, raw_dir / COUNTS_FILE)
    file = str(raw_dir / COUNTS_FILE)
    counts, reasons = [], []
    for year in years:
        col = wide.attrs["columns"][year]
        values, why = parse_numbers(
            districts[year], file=file, column=col, rows=districts["row"].tolist()
        )
        counts.append(values)
        reasons.append(why)
    long = pd.DataFrame(
        {
            "name": np.tile(districts["name"].to_numpy(), len(years)),
            "code": np.tile(districts["code"].to_numpy(), len(years)),
            "base": np.tile(districts["base"].to_numpy(), len(years)),
            "year": np.repeat(list(years), len(districts)),
            "count": pd.concat(counts, ignore_index=True).to_numpy(),
            "reason": pd.concat(reasons, ignore_index=True).to_numpy(),
        }
    )
    long["count"] = long["count"].astype("Float64")
    triples = zip(long["code"], long["base"], long["year"], strict=True)
    long["la_code"] = [_district_la(c, b, y) for c, b, y in triples]
    pop = _read_under_16(raw_dir / POPULATION_FILE, districts, lookup)
    long = long.merge(pop, on=["code", "year"], how="left")

    grouped = long.groupby(["la_code", "year"], sort=True)
    table = pd.DataFrame(
        {
            "low_income_children": grouped["count"].sum(min_count=1),
            "n_missing": grouped["count"].apply(lambda s: int(s.isna().sum())),
            "first_reason": grouped["reason"].first(),
            "under_16": grouped["under_16"].sum(min_count=1),
            "n_u16_missing": grouped["under_16"].apply(lambda s: int(s.isna().sum())),
            "n_districts": grouped.size(),
        }
    ).reset_index()
    partial = table["n_missing"] > 0  # a district without a count: no total for the authority
    table.loc[partial, "low_income_children"] = pd.NA
    table.loc[table["n_u16_missing"] > 0, "under_16"] = pd.NA
    table["low_income_children"] = table["low_income_children"].astype("Float64")
    table["under_16"] = table["under_16"].astype("Float64")
    table["low_income_children_missing"] = (
        table["first_reason"].astype("string").where(partial).astype("string")
    )
    table = table[
        [
            "la_code",
            "year",
            "low_income_children",
            "low_income_children_missing",
            "under_16",
            "n_districts",
        ]
    ]
    district_rows = long[["name", "code", "la_code", "year", "count"]]
    return LowIncome(table, tuple(years), tuple(provisional), uk_total, district_rows)


def _read_counts(path: Path) -> tuple[pd.DataFrame, list[int], list[int], dict[int, float]]:
    """The Stat-Xplore wide CSV: one row per area, one count column per financial year."""
    file = str(path)
    rows, _encoding = read_csv_rows(path)
    if len(rows) < 4 or not rows[0] or rows[0][0].strip() != "Year":
        raise DataFileError("expected a header row starting with 'Year'", file=file, row=1)
    header = [h.strip() for h in rows[0]]
    year_cols: dict[int, int] = {}
    names: dict[int, str] = {}
    provisional = []
    for i, h in enumerate(header[1:], start=1):
        if not h or h.endswith("- Annotations"):
            continue
        try:
            year, prov = reporting_year_of_fy(h)
        except ValueError as exc:
            raise DataFileError(str(exc), file=file, row=1, column=h) from None
        year_cols[year], names[year] = i, h
        if prov:
            provisional.append(year)
    if not year_cols:
        raise DataFileError("no financial-year columns in the header", file=file, row=1)
    years = sorted(year_cols)
    last_col = max(year_cols.values())
    records, row_numbers, uk_total = [], [], {}
    for number, fields in enumerate(rows[1:], start=2):
        if not fields or (len(fields) <= 2 and not any(f.strip() for f in fields[1:])):
            continue  # blank line or the label line ("National - Regional - LA - OAs")
        if len(fields) <= last_col:
            raise DataFileError(
                f"row has {len(fields)} fields; the counts run to field {last_col + 1}",
                file=file,
                row=number,
                value=",".join(fields)[:100],
            )
        name = fields[0].strip()
        if name == "Total":
            for y in years:
                values, _ = parse_numbers(
                    pd.Series([fields[year_cols[y]]]), file=file, column=names[y], rows=[number]
                )
                uk_total[y] = float(values.iloc[0])
            continue
        records.append([name, *(fields[year_cols[y]] for y in years)])
        row_numbers.append(number)
    wide = pd.DataFrame(records, columns=["name", *years])
    wide["row"] = row_numbers
    dup = wide["name"].duplicated(keep=False)
    if dup.any():
        first = wide.loc[dup].iloc[0]
        raise DataFileError(
            f"area {first['name']!r} appears twice", file=file, row=int(first["row"])
        )
    if not uk_total:
        raise DataFileError("no 'Total' row (file cut short?)", file=file)
    wide.attrs["columns"] = names
    return wide, years, provisional, uk_total


def _english_districts(wide: pd.DataFrame, lookup: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The file's English districts with code and lookup authority; each must be there once."""
    rows = zip(lookup["ltla_name"], lookup["ltla_code"], lookup["la_code"], strict=True)
    known = {n: (c, la) for n, c, la in rows if c not in SUCCESSOR_UNITARIES}
    known.update({n: (c, before) for n, (c, before, _) in ABOLISHED_2023.items()})
    found = wide.loc[wide["name"].isin(list(known))].copy()
    lacking = sorted(set(known) - set(found["name"]))
    if lacking:
        raise DataFileError(
            f"{len(lacking)} English district(s) of the lookup are not in the file: "
            + ", ".join(lacking[:8]),
            file=str(path),
        )
    found["code"] = found["name"].map(lambda n: known[n][0])
    found["base"] = found["name"].map(lambda n: known[n][1])
    return found.reset_index(drop=True)


def _read_under_16(path: Path, districts: pd.DataFrame, lookup: pd.DataFrame) -> pd.DataFrame:
    """``population_0_16`` of the rda extract by district code: ``code, year, under_16``.

    Its English districts must be the counts file's (same 2021 codes and names).
    """
    raw = read_csv(path, required=("ltla21_name", "ltla21_code", "year", "population_0_16"))
    english = raw.loc[raw["ltla21_code"].str.strip().str.startswith("E")]
    values, _ = parse_numbers(
        english["population_0_16"],
        file=str(path),
        column="population_0_16",
        rows=english.index.tolist(),
    )
    years, _ = parse_numbers(
        english["year"], file=str(path), column="year", rows=english.index.tolist()
    )
    out = pd.DataFrame(
        {
            "code": english["ltla21_code"].str.strip().to_numpy(),
            "name": english["ltla21_name"].str.strip().to_numpy(),
            "year": years.astype("Int64").to_numpy(),
            "under_16": values.to_numpy(),
        }
    )
    expected = dict(zip(districts["code"], districts["name"], strict=True))
    have = dict(zip(out["code"], out["name"], strict=False))
    if have != expected:
        odd = sorted(set(have.items()) ^ set(expected.items()))[:4]
        raise DataFileError(
            f"English districts differ from the counts file's (code, name): {odd}", file=str(path)
        )
    if out.duplicated(["code", "year"]).any():
        first = out.loc[out.duplicated(["code", "year"])].iloc[0]
        raise DataFileError(
            f"district {first['code']} listed twice for {first['year']}", file=str(path)
        )
    bad = out["under_16"].isna() | out["under_16"].le(0).fillna(False)
    if bad.any():
        first = out.loc[bad].iloc[0]
        raise DataFileError(
            f"population_0_16 of {first['code']} {first['year']} is missing or not positive",
            file=str(path),
            column="population_0_16",
        )
    out["year"] = out["year"].astype(int)
    return out[["code", "year", "under_16"]]


def under_16_population(table: pd.DataFrame, child_population: pd.DataFrame) -> pd.Series:
    """Children under 16 for each row of ``table`` (``la_code, year, under_16``).

    Where the rda extract gives it (2015-2020) it is used as published. A later year t takes
    the authority's ONS 0-17 estimate for mid-year t times its own under-16 share of
    :data:`LAST_U16_YEAR` (under-16s that year over the 0-17 estimate for mid-2020).
    ``child_population``: ``la_code, mid_year, population`` (the ONS file the panel's exposure
    comes from); an authority made of later ones (:data:`COMPOSED`) that the file no longer
    lists takes the sum of its parts, and a part created after 2020 (North and West
    Northamptonshire, 2021) the whole's share. NA where neither is available.

    Mid-year t, not the panel's mid-(t-1): across 2015-2020 the rda's under-16 counts keep a
    steadier share of the mid-t estimate (median within-authority SD of the share 0.0034,
    against 0.0058 for mid-(t-1); carrying the 2019 share to 2020 is off by a median 0.4%, at
    most 1.4%).
    """
    pop = child_population.set_index(["la_code", "mid_year"])["population"].astype("Float64")
    pop = pop[~pop.index.duplicated()]
    for whole, (_, parts) in COMPOSED.items():
        years = {y for la, y in pop.index if la in parts}
        for y in sorted(years):
            if (whole, y) in pop.index and pd.notna(pop.loc[(whole, y)]):
                continue
            total = pop.reindex([(p, y) for p in parts]).sum(min_count=len(parts))
            pop.loc[(whole, y)] = total
    keys = pd.MultiIndex.from_arrays([table["la_code"], table["year"]])
    pop_now = pd.Series(pop.reindex(keys).to_numpy(), index=table.index, dtype="Float64")
    base = table.loc[table["year"] == LAST_U16_YEAR].set_index("la_code")["under_16"]
    base_keys = pd.MultiIndex.from_arrays([base.index, [LAST_U16_YEAR] * len(base)])
    share = base.astype("Float64") / pd.Series(
        pop.reindex(base_keys).to_numpy(), index=base.index, dtype="Float64"
    )
    for whole, (_, parts) in COMPOSED.items():  # parts created later take the whole's share
        if whole in share.index:
            for part in parts:
                if part not in share.index or pd.isna(share.get(part)):
                    share.loc[part] = share.loc[whole]
    later = table["year"] > LAST_U16_YEAR
    estimate = pop_now * pd.Series(
        share.reindex(table["la_code"]).to_numpy(), index=table.index, dtype="Float64"
    )
    return table["under_16"].astype("Float64").where(~later, estimate)


def low_income_table(raw_dir: Path) -> tuple[pd.DataFrame, set[int]]:
    """``la_code, year, low_income_children, low_income_children_missing, low_income_rate,
    low_income_rate_missing, under_16`` for every authority-year the counts file covers, and
    those years. The rate's denominator is :func:`under_16_population`."""
    from csc_bayes.data.spending import read_child_population

    data = read_low_income(raw_dir)
    table = data.table.copy()
    child_pop = read_child_population(Path(raw_dir) / FILES["population"])
    table["under_16"] = under_16_population(table, child_pop)
    rate = (table["low_income_children"] / table["under_16"]).astype("Float64")
    table["low_income_rate"] = rate
    reason = table["low_income_children_missing"].astype("string")
    no_denominator = rate.isna() & reason.isna()
    table["low_income_rate_missing"] = reason.mask(
        no_denominator, MissingReason.NOT_AVAILABLE.value
    )
    return table, set(data.years)
