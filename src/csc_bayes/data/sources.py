"""Where each official file lives inside the raw-data folder, and a strict CSV reader for them.

Files are found by their documented names (see ``/work/shared/data/raw/PROVENANCE.md``), so a
user's own downloads of the same publications work the same way. Reading is strict: an empty
file, a header without data, a wrong delimiter (named, with the encoding), a row with the wrong
number of fields, a file that ends mid-row, a missing column, a duplicated authority-year, an
authority or ONS code not in the reference list and a file covering far fewer years or
authorities than its name promises are each a :class:`~csc_bayes.errors.DataFileError` that
names the file (and the row, column, value or year where they apply).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from csc_bayes.errors import DataFileError

EES = "dfe_csc_outcomes_enablers"
SFR = "goodair_csc/cla_2010_2017"
LAIT = "dfe_lait"

#: short key -> path inside the raw folder
FILES: dict[str, str] = {
    "cin": f"{EES}/b1_children_in_need_2013_to_2025.csv",
    "referrals": f"{EES}/c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv",
    "s47": f"{EES}/c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv",
    "cpp": f"{EES}/d5_cpps_at31march_by_duration_2013_to_2025.csv",
    "population": f"{EES}/ons_mid-year_population_estimates_2012_to_2024.csv",
    "cla_ees_2025": f"{EES}/cla_number_and_rate_per_10k_children.csv",
    "cla_ees_2023": f"{EES}/cla_number_and_rate_per_10k_children_2019_to_2023_version.csv",
    "lait": f"{LAIT}/bds_long_0.parquet",
    "sfr_2010": f"{SFR}/SFR27_2010_March.csv",
    "sfr_2011": f"{SFR}/SFR21_CLA.csv",
    "sfr_2012": f"{SFR}/SFR20_CLA2012.csv",
    "sfr_2013": f"{SFR}/SFR36_CLA2013.csv",
    "sfr_2014": f"{SFR}/SFR36_CLA2014.csv",
    "sfr_2015": f"{SFR}/SFR34_CLA2015.csv",
    "sfr_2016": f"{SFR}/SFR41_CLA2016.csv",
    "sfr_2017": f"{SFR}/SFR50_CLA2017.csv",
    # covariates
    "iod": "imd2019/File_11_-_IoD2019_Local_Authority_District_Summaries__upper-tier__.xlsx",
    "ethnicity": f"{EES}/ons-ethnic-population-la.csv",
    "lait_2015": f"{LAIT}/bds_long_0_2015_2024_version.parquet",
    "s251_2013": "goodair_csc/la_spend_s251/outturn_1213.csv",
    "s251_2014": "goodair_csc/la_spend_s251/outturn_1314.csv",
    # context columns (csc_bayes.data.context): poverty, assessment factors, workforce, Ofsted
    "dwp_low_income": "dwp_children_low_income/children_relative_low_income_ltla_14-22.csv",
    "dwp_low_income_rda": "dwp_children_low_income/children_low_income_ltla_from_rda.csv",
    "ltla_utla_lookup": f"{EES}/LTLA-UTLA_Apr23_Lookup_England-Wales.csv",
    "assessment_factors": f"{EES}/c3_factors_identified_at_end_of_assessment_2018_to_2025.csv",
    "workforce": f"{EES}/csww_indicators_2017_to_2025.csv",
    "ilacs": f"{EES}/LA_Inspection_Outcomes_as_at_31_March_2025.ods",
    # children starting (ADM) and ceasing (CEA) to be looked after, 2010-2017
    "sfr_started_2010": f"{SFR}/SFR27_2010_Started.csv",
    "sfr_ceased_2010": f"{SFR}/SFR27_2010_Ceased.csv",
    "sfr_started_2011": f"{SFR}/SFE21_ADM.csv",
    "sfr_ceased_2011": f"{SFR}/SFR21_CEA.csv",
    "sfr_started_2012": f"{SFR}/SFR20_ADM2012.csv",
    "sfr_ceased_2012": f"{SFR}/SFR_CEA2012.csv",
    "sfr_started_2013": f"{SFR}/SFR36_ADM2013.csv",
    "sfr_ceased_2013": f"{SFR}/SFR36_CEA2013.csv",
    "sfr_started_2014": f"{SFR}/SFR36_ADM2014.csv",
    "sfr_ceased_2014": f"{SFR}/SFR36_CEA2014.csv",
    "sfr_started_2015": f"{SFR}/SFR34_ADM2015.csv",
    "sfr_ceased_2015": f"{SFR}/SFR34_CEA2015.csv",
    "sfr_started_2016": f"{SFR}/SFR41_ADM2016.csv",
    "sfr_ceased_2016": f"{SFR}/SFR41_CEA2016.csv",
    "sfr_started_2017": f"{SFR}/SFR50_ADM2017.csv",
    "sfr_ceased_2017": f"{SFR}/SFR50_CEA2017.csv",
}


def locate(raw_dir: Path, key: str) -> Path:
    """Path of the documented file ``key`` under ``raw_dir``; a clear error when it is absent."""
    path = Path(raw_dir) / FILES[key]
    if not path.is_file():
        raise DataFileError(
            f"required input file not found; expected {FILES[key]!r} inside the raw folder "
            f"{raw_dir} (see docs/data.md for the list of files)",
            file=str(path),
        )
    return path


def read_csv(path: Path, *, required: tuple[str, ...]) -> pd.DataFrame:
    """Read a published CSV strictly (:func:`read_text_csv`), every cell as text.

    The frame's index is each record's spreadsheet row (header = row 1). Raises
    :class:`DataFileError` for everything :func:`read_text_csv` rejects (an empty file, a header
    without data rows, a file not separated by commas, a row with the wrong number of fields, a
    file that ends mid-row) and for a missing ``required`` column.
    """
    frame = read_text_csv(path).frame
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataFileError(f"missing column(s) {missing}", file=str(path), column=missing[0])
    return frame


def check_unique(frame: pd.DataFrame, *, file: str, keys: tuple[str, ...] = ("la_code", "year")):
    """Raise :class:`DataFileError` when an authority-year appears twice in one file.

    ``frame`` must carry a ``row`` column with the spreadsheet row number of each record.
    """
    dup = frame.duplicated(list(keys), keep=False)
    if dup.any():
        rows = frame.loc[dup, "row"].tolist()
        first = frame.loc[dup].iloc[0]
        what = " ".join(f"{k}={first[k]}" for k in keys)
        raise DataFileError(
            f"duplicated authority-year {what} (rows {rows[:6]})", file=file, row=int(rows[0])
        )


# ----------------------------------------------------------------------------- strict text CSV

#: delimiters recognised in a header, with the words a message uses for them
DELIMITERS = {",": "commas", ";": "semicolons (';')", "\t": "tabs", "|": "vertical bars ('|')"}


@dataclass(frozen=True)
class CsvText:
    """A CSV read strictly: every cell as text; ``frame.index`` is each record's spreadsheet row
    (header = row 1; blank lines count as rows but are not records)."""

    frame: pd.DataFrame
    encoding: str
    delimiter: str


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_csv_rows(path: Path) -> tuple[list[list[str]], str]:
    """Every row of a CSV file as text fields (encoding detected by :func:`decode_text`), and
    the encoding's name; a malformed file is a :class:`DataFileError` naming it."""
    file = str(path)
    text, encoding = decode_text(Path(path).read_bytes(), file=file)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), strict=True)), encoding
    except csv.Error as exc:
        raise DataFileError(f"cannot read as CSV ({encoding}): {exc}", file=file) from None


def decode_text(data: bytes, *, file: str) -> tuple[str, str]:
    """(text, encoding name) of a text file's bytes: UTF-8 (with or without a byte-order mark),
    UTF-16 with a byte-order mark, else Windows-1252. A spreadsheet, a parquet file or other
    binary content is a :class:`DataFileError` saying what the file seems to be."""
    if data.startswith(b"PK\x03\x04"):
        raise DataFileError(
            "file is a zip archive (an .xlsx / .ods spreadsheet?), not a CSV text file; "
            "save it as CSV",
            file=file,
        )
    if data.startswith(b"PAR1"):
        raise DataFileError("file is parquet, not CSV; give it a .parquet name", file=file)
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "UTF-8 (with byte-order mark)"
        except UnicodeDecodeError as exc:
            raise DataFileError(
                f"file starts with a UTF-8 byte-order mark but is not UTF-8: {exc}", file=file
            ) from None
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: a prefix
        raise DataFileError("file is UTF-32 (byte-order mark); save it as a UTF-8 CSV", file=file)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError as exc:
            raise DataFileError(f"file is not valid UTF-16: {exc}", file=file) from None
    if b"\x00" in data[:4096]:
        raise DataFileError(
            "file holds NUL bytes: binary, or UTF-16 without a byte-order mark; "
            "save it as a UTF-8 CSV",
            file=file,
        )
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def _shown(fields: list[str], delimiter: str, limit: int = 100) -> str:
    text = delimiter.join(fields)
    return text if len(text) <= limit else "..." + text[-limit:]


def read_text_csv(path: Path) -> CsvText:
    """Read a CSV strictly, every cell as text (markers intact, nothing turned into NaN).

    Detects the encoding (:func:`decode_text`) and the delimiter of the header; only commas are
    accepted, and a file split by semicolons, tabs or bars is an error naming the delimiter and
    the encoding. Column names are stripped of spaces; a blank one becomes ``Unnamed: <i>``.
    Raises :class:`DataFileError` naming the file and, where it applies, the row and value for:
    an empty file; a header without data rows; a duplicated column name; a row whose number of
    fields differs from the header's (a short last row without a line ending: the file ends
    mid-row, e.g. truncated);
    an unterminated quote.
    """
    path = Path(path)
    file = str(path)
    data = path.read_bytes()
    if not data.strip():
        raise DataFileError("file is empty", file=file)
    text, encoding = decode_text(data, file=file)
    first_line = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    counts = {d: first_line.count(d) for d in DELIMITERS}
    other = max((d for d in DELIMITERS if d != ","), key=counts.get)
    if counts[other] > counts[","]:
        raise DataFileError(
            f"file is not comma-separated: its header is split by {DELIMITERS[other]} "
            f"(read as {encoding}); save it as a comma-separated CSV",
            file=file,
            row=1,
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    records: list[list[str]] = []
    rows: list[int] = []
    row = 0
    try:
        for row, fields in enumerate(reader, start=1):
            if not fields:
                continue  # a blank line: a row a spreadsheet shows, but no record
            if header is None:
                header = [f.strip() for f in fields]
                header_row = row
                continue
            records.append(fields)
            rows.append(row)
    except csv.Error as exc:
        raise DataFileError(
            f"cannot read as CSV ({encoding}, comma-separated) from this row on: {exc} "
            "(a quote opened and never closed?)",
            file=file,
            row=row + 1,
        ) from None
    if header is None:
        raise DataFileError("file is empty", file=file)
    header = [name or f"Unnamed: {i}" for i, name in enumerate(header)]  # as pandas names them
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataFileError(
                "column name appears twice in the header", file=file, row=header_row, column=name
            )
        seen.add(name)
    if not records:
        raise DataFileError("file has a header but no data rows", file=file, row=header_row)
    ends_cleanly = text.endswith(("\n", "\r"))
    width = len(header)
    for i, (fields, r) in enumerate(zip(records, rows, strict=True)):
        if len(fields) == width:
            continue
        last = i == len(records) - 1
        if last and not ends_cleanly and len(fields) < width:
            raise DataFileError(
                f"file ends mid-row: its last row has {len(fields)} of the header's {width} "
                "fields and no line ending (truncated?)",
                file=file,
                row=r,
                value=_shown(fields, ","),
            )
        raise DataFileError(
            f"row has {len(fields)} fields but the header has {width}",
            file=file,
            row=r,
            value=_shown(fields, ","),
        )
    frame = pd.DataFrame(records, columns=header, index=pd.Index(rows), dtype=str)
    return CsvText(frame, encoding, ",")


# ----------------------------------------------------------------- checks against the reference

#: ``..._2013_to_2025.csv``: the years a file's name promises
_YEAR_RANGE = re.compile(r"(?<!\d)((?:19|20)\d{2})_to_((?:19|20)\d{2})(?!\d)")
#: a year a file covers must list at least this share of the reference list's authorities
MIN_AUTHORITY_SHARE = 0.9


@lru_cache(maxsize=1)
def _reference() -> pd.DataFrame:
    text = resources.files("csc_bayes").joinpath("reference/authorities.csv")
    with text.open("r", encoding="utf-8") as handle:
        ref = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return ref.set_index("la_code")


def reference_codes() -> dict[str, set[str]]:
    """DfE LA number -> its current and former ONS codes (upper case), from the reference list."""
    ref = _reference()
    return {
        code: {c.strip().upper() for c in [row["ons_code"], *row["former_ons_codes"].split(";")]}
        - {""}
        for code, row in ref.iterrows()
    }


def reference_count(year: int) -> int:
    """Authorities the reference list has in reporting ``year`` (clamped to the list's years)."""
    ref = _reference()
    first = ref["first_year"].astype(int)
    last = ref["last_year"].replace("", "9999").astype(int)
    year = min(max(year, int(first.min())), int(max(first.max(), last[last < 9999].max())))
    return int(((first <= year) & (last >= year)).sum())


def check_codes(las: pd.DataFrame, *, file: str, code_column: str, ons_column: str | None) -> None:
    """Every authority row's DfE number must be in the reference list, and its ONS code (when
    the file gives one) a current or former code of that authority.

    ``las`` needs ``la_code``, ``ons_code`` (may be NA / blank) and ``row``; ``code_column`` and
    ``ons_column`` are the file's names for them, for the message.
    """
    codes = reference_codes()
    ref = _reference()
    for code, ons, row in zip(las["la_code"], las["ons_code"], las["row"], strict=True):
        if code not in codes:
            raise DataFileError(
                "authority code is not in the reference list of children's services "
                "authorities (src/csc_bayes/reference/authorities.csv)",
                file=file,
                row=int(row),
                column=code_column,
                value=code,
            )
        text = "" if ons is None or ons is pd.NA else str(ons).strip().upper()
        if ons_column is not None and text and text not in codes[code]:
            raise DataFileError(
                f"ONS code is not a code of authority {code} {ref.at[code, 'la_name']} "
                f"({', '.join(sorted(codes[code]))})",
                file=file,
                row=int(row),
                column=ons_column,
                value=str(ons).strip(),
            )


def promised_years(path: Path | str) -> range | None:
    """Years a file's name promises (``..._2013_to_2025.csv`` -> 2013-2025), or None."""
    m = _YEAR_RANGE.search(Path(path).name)
    if m is None or int(m.group(2)) < int(m.group(1)):
        return None
    return range(int(m.group(1)), int(m.group(2)) + 1)


def check_year_coverage(
    las: pd.DataFrame,
    *,
    file: str,
    years: range | None = None,
    year_column: str = "time_period",
) -> None:
    """A file must cover the years it should: ``years`` when given, else the range its name
    promises (``..._2013_to_2025.csv``) except the last year (files are named by release, whose
    last year may have no data yet); a file with neither is not checked. Each of those years
    must have authority rows, and at least :data:`MIN_AUTHORITY_SHARE` of the authorities the
    reference list has that year. Catches a file cut short at a line boundary.

    ``las`` (authority rows only) needs ``la_code``, ``year`` (the file's own year) and ``row``.
    """
    if years is None:
        named = promised_years(file)
        if named is None:
            return
        wanted, promise = named[:-1], f"file name promises years {named[0]}-{named[-1]}"
    else:
        wanted, promise = years, f"file should cover years {years[0]}-{years[-1]}"
    have = set(int(y) for y in las["year"])
    lacking = [y for y in wanted if y not in have]
    if lacking:
        raise DataFileError(
            f"{promise} but it has no authority rows for {_span(lacking)} (years with rows: "
            f"{_span(sorted(have)) if have else 'none'}); truncated or incomplete?",
            file=file,
            column=year_column,
        )
    for year, group in las.loc[las["year"].isin(list(wanted))].groupby("year"):
        n, expected = group["la_code"].nunique(), reference_count(int(year))
        if n < MIN_AUTHORITY_SHARE * expected:
            raise DataFileError(
                f"year {year} has rows for only {n} authorities; the reference list has "
                f"{expected} that year (truncated or incomplete?)",
                file=file,
                row=int(group["row"].max()),
                column=year_column,
                value=str(year),
            )


def _span(years: list[int]) -> str:
    """[2013, 2014, 2015, 2018] -> '2013-2015, 2018'."""
    parts = []
    start = prev = years[0]
    for year in [*years[1:], None]:
        if year is not None and year == prev + 1:
            prev = year
            continue
        parts.append(f"{start}-{prev}" if prev != start else str(start))
        if year is not None:
            start = prev = year
    return ", ".join(parts)


def check_positive(
    values: pd.Series, *, file: str, column: str, rows: pd.Series, what: str
) -> None:
    """``what`` (e.g. population) must be > 0 where present: a 0 or negative is an error."""
    bad = values.notna() & values.le(0).fillna(False)
    if bad.any():
        pos = int(bad.to_numpy().nonzero()[0][0])
        raise DataFileError(
            f"{what} must be positive",
            file=file,
            row=int(rows.iloc[pos]),
            column=column,
            value=str(values.iloc[pos]),
        )


def raw_file_hashes(raw_dir: Path) -> dict[str, str]:
    """sha256 of every documented file (:data:`FILES`) under ``raw_dir``, by path inside it."""
    return {name: sha256_file(Path(raw_dir) / name) for name in sorted(set(FILES.values()))}
