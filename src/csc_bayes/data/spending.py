"""Children's social care spend per child aged 0-17, by DfE authority and reporting year.

Definition (cash prices, £ per child):

    spend_per_child[la, t] = (CLA + safeguarding + family support + other children and family)
                             / children aged 0-17 at mid-(t-1)

The numerator is the Section 251 **gross** outturn of four service blocks for finance year
(t-1)-t; finance year 2016-17 is reporting year 2017. The denominator is the ONS mid-year
estimate that DfE uses for rates in reporting year t (mid-(t-1)). Sources:

* finance years 2016-17 to 2023-24: LAIT ``bds_long_0.parquet`` indicators
  ``TotalLACFinance``, ``SafeguardingFinance``, ``FamilySupportFinance``,
  ``OtherChildren&FamilyFinance`` (totals in £, not per child);
* finance year 2015-16: the same indicators in ``bds_long_0_2015_2024_version.parquet``;
* finance years 2012-13 and 2013-14: the s251 outturn CSVs ``outturn_1213.csv`` and
  ``outturn_1314.csv`` (column ``TotalExpenditure``, lines matched by description). Their
  four blocks have the same line structure as LAIT's. Earlier s251 files use a different
  structure and there is no 0-17 population before mid-2012, so they are not used;
* finance year 2014-15 has no source here.

LAIT's only per-child finance figures are weekly unit costs per looked-after child or child in
need (``LACFinance``, ``SWFinance``), not per child of the population, so none is used.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from csc_bayes.data.markers import parse_numbers
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import FILES, check_positive, read_csv
from csc_bayes.errors import DataFileError

LAIT_FILE = FILES["lait"]
LAIT_2015_FILE = FILES["lait_2015"]
POPULATION_FILE = FILES["population"]
S251_FILES: dict[int, str] = {
    2013: FILES["s251_2013"],
    2014: FILES["s251_2014"],
}

#: component -> LAIT indicator (``Short Desc``)
LAIT_INDICATORS: dict[str, str] = {
    "looked_after": "TotalLACFinance",
    "safeguarding": "SafeguardingFinance",
    "family_support": "FamilySupportFinance",
    "other_children_family": "OtherChildren&FamilyFinance",
}
#: component -> s251 line description, after :func:`_normalise_line`
S251_LINES: dict[str, re.Pattern[str]] = {
    "looked_after": re.compile(r"^total children looked after$"),
    "safeguarding": re.compile(r"^total safeguarding children and young peoples services$"),
    "family_support": re.compile(r"^total family support services$"),
    "other_children_family": re.compile(r"^other childrens? and famil(y|ies) services$"),
}
LAIT_COLUMNS = ("Short Desc", "Years", "LA Number", "Values")
_FINANCE_YEAR = re.compile(r"^(\d{4})-(\d{2})\b")


def reporting_year(finance_year: str) -> int:
    """Reporting year of an s251 finance year: ``"2016-17 (OT)"`` -> 2017."""
    m = _FINANCE_YEAR.match(finance_year.strip())
    if m is None or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(f"not a finance year like '2016-17 (OT)': {finance_year!r}")
    return int(m.group(1)) + 1


def read_lait_finance(path: Path) -> pd.DataFrame:
    """The four s251 blocks from a LAIT long file: ``la_code, year, component, value, reason``.

    ``year`` is the reporting year. Values are £ totals (``-`` -> ``not_available``). Raises
    :class:`DataFileError` for a missing column, a malformed finance year, an unparseable value
    (naming the row) or an authority-year listed twice for one indicator.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError("LAIT data file not found", file=str(path))
    stat = path.stat()
    return _read_lait_finance(path, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=4)
def _read_lait_finance(path: Path, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """Cached on the file's path, modification time and size."""
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise DataFileError(f"cannot read as parquet: {exc}", file=str(path)) from exc
    for column in LAIT_COLUMNS:
        if column not in raw.columns:
            raise DataFileError("missing column", file=str(path), column=column)
    raw = raw.reset_index(drop=True)
    keep = raw["Short Desc"].isin(LAIT_INDICATORS.values()) & raw["LA Number"].notna()
    rows = raw.loc[keep, list(LAIT_COLUMNS)]
    try:
        values, reasons = parse_numbers(
            rows["Values"].astype(object), file=str(path), column="Values", row_offset=0
        )
    except DataFileError as exc:  # report the parquet record (1-based), not the filtered position
        record = int(rows.index[exc.row]) + 1
        raise DataFileError(
            "unrecognised value in a numeric column (row = parquet record, 1-based)",
            file=str(path),
            row=record,
            column="Values",
            value=exc.value,
        ) from None
    years = []
    for index, text in rows["Years"].items():
        try:
            years.append(reporting_year(str(text)))
        except ValueError as exc:
            raise DataFileError(str(exc), file=str(path), row=index + 1, column="Years") from None
    component = {v: k for k, v in LAIT_INDICATORS.items()}
    out = pd.DataFrame(
        {
            "la_code": rows["LA Number"].astype(int).astype(str).to_numpy(),
            "year": years,
            "component": rows["Short Desc"].map(component).to_numpy(),
            "value": values.to_numpy(),
            "reason": reasons.to_numpy(),
        }
    )
    return _checked(out, path)


def read_s251_outturn(path: Path, *, year: int) -> pd.DataFrame:
    """The four blocks from an s251 outturn CSV (cp1252), long like :func:`read_lait_finance`.

    Lines are matched by description (:data:`S251_LINES`), whatever their line number; the
    value is ``TotalExpenditure`` (gross, £). Each authority must have each line exactly once.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError("s251 outturn file not found", file=str(path))
    stat = path.stat()
    return _read_s251_outturn(path, year, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=8)
def _read_s251_outturn(path: Path, year: int, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """Cached on the file's path, modification time and size."""
    raw = read_csv(path, required=("LA", "CYPServiceDescription", "TotalExpenditure"))
    lines = raw["CYPServiceDescription"].map(_normalise_line)
    component = pd.Series(pd.NA, index=raw.index, dtype="string")
    for name, pattern in S251_LINES.items():
        component[lines.str.fullmatch(pattern.pattern)] = name
    keep = component.notna()
    values, reasons = parse_numbers(
        raw["TotalExpenditure"],
        file=str(path),
        column="TotalExpenditure",
        rows=raw.index.tolist(),
    )
    out = pd.DataFrame(
        {
            "la_code": raw.loc[keep, "LA"].str.strip().to_numpy(),
            "year": year,
            "component": component[keep].to_numpy(),
            "value": values[keep].to_numpy(),
            "reason": reasons[keep].to_numpy(),
        }
    )
    counts = out.groupby("la_code")["component"].nunique()
    short = counts[counts < len(S251_LINES)]
    if len(short) or out.empty:
        la = short.index[0] if len(short) else "(none)"
        raise DataFileError(
            f"authority {la} lacks one of the s251 lines {sorted(S251_LINES)}",
            file=str(path),
            column="CYPServiceDescription",
        )
    return _checked(out, path)


def read_child_population(path: Path) -> pd.DataFrame:
    """ONS mid-year children aged 0-17 by DfE authority: ``la_code, mid_year, population, reason``.

    ``mid_year`` is the file's ``time_period`` (the mid-year of the estimate). ``x`` means
    "not available" in this EES file (Dorset, Poole, Bournemouth before 2019).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError("ONS child population file not found", file=str(path))
    stat = path.stat()
    return _read_child_population(path, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=4)
def _read_child_population(path: Path, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """Cached on the file's path, modification time and size."""
    raw = read_csv(
        path, required=("time_period", "geographic_level", "old_la_code", "population_estimate")
    )
    values, reasons = parse_numbers(
        raw["population_estimate"],
        file=str(path),
        column="population_estimate",
        rows=raw.index.tolist(),
        x_means=MissingReason.NOT_AVAILABLE,
    )
    keep = raw["geographic_level"].str.strip().eq("Local authority")
    check_positive(
        values[keep],
        file=str(path),
        column="population_estimate",
        rows=pd.Series(raw.index[keep.to_numpy()]),
        what="population",
    )
    out = pd.DataFrame(
        {
            "la_code": raw.loc[keep, "old_la_code"].str.strip().to_numpy(),
            "mid_year": raw.loc[keep, "time_period"].astype(int).to_numpy(),
            "population": values[keep].to_numpy(),
            "reason": reasons[keep].to_numpy(),
        }
    )
    dup = out.duplicated(["la_code", "mid_year"])
    if dup.any():
        first = out.loc[dup].iloc[0]
        raise DataFileError(
            f"authority {first['la_code']} listed twice for {first['mid_year']}", file=str(path)
        )
    return out


def s251_total(raw_dir: Path) -> pd.DataFrame:
    """Gross spend on the four s251 blocks (£, cash) for every authority-year a source covers.

    Returns a frame indexed by ``la_code, year`` with ``total`` (Float64) and ``total_reason``
    (the reason of the first missing block, else NA).
    """
    raw_dir = Path(raw_dir)
    newest = read_lait_finance(locate_file(raw_dir, LAIT_FILE))
    older = read_lait_finance(locate_file(raw_dir, LAIT_2015_FILE))
    first_newest = int(newest["year"].min())
    parts = [older[older["year"] < first_newest], newest]
    for year, name in S251_FILES.items():
        parts.append(read_s251_outturn(locate_file(raw_dir, name), year=year))
    finance = pd.concat(parts, ignore_index=True)

    wide = finance.pivot(index=["la_code", "year"], columns="component", values="value")
    why = finance.pivot(index=["la_code", "year"], columns="component", values="reason")
    total = wide[list(LAIT_INDICATORS)].sum(axis=1, skipna=False).astype("Float64")
    total_reason = why[list(LAIT_INDICATORS)].bfill(axis=1).iloc[:, 0].astype("string")
    return pd.DataFrame({"total": total, "total_reason": total_reason})


def spend_per_child(raw_dir: Path) -> pd.DataFrame:
    """Spend per child aged 0-17 (£, cash) for every authority-year a source covers.

    Returns ``la_code, year, spend_per_child, spend_per_child_missing``. A year is present for an
    authority when its finance source lists it; the value is missing (with the reason of the
    first missing part) when any of the four blocks or the population is missing.
    """
    raw_dir = Path(raw_dir)
    out = s251_total(raw_dir)
    pop = read_child_population(locate_file(raw_dir, POPULATION_FILE))
    pop = pop.assign(year=pop["mid_year"] + 1).set_index(["la_code", "year"])
    out = out.join(pop[["population", "reason"]], how="left")
    population = out["population"].astype("Float64")
    value = out["total"] / population.where(population > 0)
    # the first missing part explains the gap; no population row at all is "not available"
    reason = out["total_reason"].fillna(out["reason"].astype("string"))
    reason = reason.fillna(MissingReason.NOT_AVAILABLE.value).where(value.isna())
    result = pd.DataFrame(
        {"spend_per_child": value.astype("Float64"), "spend_per_child_missing": reason}
    ).reset_index()
    result["spend_per_child_missing"] = result["spend_per_child_missing"].astype("string")
    return result


def locate_file(raw_dir: Path, name: str) -> Path:
    """``raw_dir / name``; a :class:`DataFileError` naming the documented file when absent."""
    path = raw_dir / name
    if not path.is_file():
        raise DataFileError(f"required input file not found inside {raw_dir}", file=name)
    return path


def _normalise_line(text: str) -> str:
    """``"17 Other children's and families services "`` -> ``other childrens and families ...``."""
    t = re.sub(r"^\s*\d+\s*", "", str(text)).lower()
    t = t.replace("'", "").replace("\u2019", "")
    return re.sub(r"\s+", " ", t).strip()


def _checked(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Typed columns; an authority-year-component listed twice is an error."""
    frame["value"] = frame["value"].astype("Float64")
    frame["reason"] = frame["reason"].astype("string")
    frame["year"] = frame["year"].astype(int)
    dup = frame.duplicated(["la_code", "year", "component"])
    if dup.any():
        first = frame.loc[dup].iloc[0]
        raise DataFileError(
            f"authority {first['la_code']} has {first['component']} twice for {first['year']}",
            file=str(path),
        )
    return frame
