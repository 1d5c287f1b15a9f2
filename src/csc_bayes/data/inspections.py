"""Ofsted ILACS overall effectiveness in force at 31 March of each reporting year.

Source: sheet ``ILACS_inspection_history`` of
``dfe_csc_outcomes_enablers/LA_Inspection_Outcomes_as_at_31_March_2025.ods`` (Ofsted, *Local
authority inspection outcomes*; header on the 3rd row): every inspection of local authority
children's services (ILACS, from January 2018) with its ONS area code, inspection and
publication dates and overall effectiveness.

A judgement is in force from its **publication date** until the next one is published. The
panel's year t takes the judgement in force at 31 March t: the latest published on or before
that day. Columns: ``ilacs_overall`` (Int64, 1 = Outstanding, 2 = Good, 3 = Requires
improvement to be good, 4 = Inadequate), ``ilacs_overall_label`` (the words) and
``ilacs_overall_published`` (the publication date of that judgement, ISO ``YYYY-MM-DD``: one
inspection's judgement repeats over the years it stays in force, and this tells one inspection
from the next even when both gave the same grade; :mod:`csc_bayes.data.judgements`).

Missing: ``not_yet_inspected`` when no ILACS judgement had been published for the authority
by 31 March t (the one in force was then a SIF judgement of 2014-2017, not in this folder, or
none for an authority created since, such as BCP before February 2022); ``no_source`` for
years before 2018, before ILACS. A judgement of a predecessor is not carried to a successor
(Bournemouth's 2018 judgement does not apply to BCP).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import locate, reference_codes
from csc_bayes.errors import DataFileError

SHEET = "ILACS_inspection_history"
HEADER_ROW = 3  # as a spreadsheet shows it
#: overall effectiveness -> the ordered code
JUDGEMENTS: dict[str, int] = {
    "Outstanding": 1,
    "Good": 2,
    "Requires improvement to be good": 3,
    "Inadequate": 4,
}
LABELS = {v: k for k, v in JUDGEMENTS.items()}
#: the first reporting year an ILACS judgement can be in force (inspections began January 2018)
FIRST_YEAR = 2018
COLUMNS = ("Local authority area code", "Publication date", "Overall effectiveness")


def read_ilacs(raw_dir: Path) -> pd.DataFrame:
    """Every ILACS inspection: ``la_code, published (Timestamp), overall (1-4), label, row``.

    ``row`` is the spreadsheet row. An area code that is no authority's current or former ONS
    code, a publication date that is not a date, an unknown judgement or two inspections of one
    authority published the same day are errors naming the sheet, row and value.
    """
    path = locate(raw_dir, "ilacs")
    stat = path.stat()
    return _read_ilacs(path, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=2)
def _read_ilacs(path: Path, _mtime_ns: int, _size: int) -> pd.DataFrame:
    file = f"{path} (sheet {SHEET})"
    try:
        raw = pd.read_excel(path, sheet_name=SHEET, header=HEADER_ROW - 1, engine="odf")
    except ValueError as exc:
        raise DataFileError(f"cannot read the sheet: {exc}", file=file) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    for column in COLUMNS:
        if column not in raw.columns:
            raise DataFileError("missing column", file=file, row=HEADER_ROW, column=column)
    raw = raw.dropna(how="all")
    rows = raw.index.to_numpy() + HEADER_ROW + 1
    by_code = {ons: la for la, codes in reference_codes().items() for ons in codes}
    records = []
    for row, (_, r) in zip(rows, raw.iterrows(), strict=True):
        code = str(r["Local authority area code"]).strip().upper()
        if code not in by_code:
            raise DataFileError(
                "area code is not the ONS code of any authority in the reference list",
                file=file,
                row=int(row),
                column="Local authority area code",
                value=code,
            )
        published = pd.to_datetime(r["Publication date"], errors="coerce")
        if pd.isna(published):
            raise DataFileError(
                "publication date is not a date",
                file=file,
                row=int(row),
                column="Publication date",
                value=str(r["Publication date"]),
            )
        label = str(r["Overall effectiveness"]).strip()
        if label not in JUDGEMENTS:
            raise DataFileError(
                f"unknown overall effectiveness (expected one of {list(JUDGEMENTS)})",
                file=file,
                row=int(row),
                column="Overall effectiveness",
                value=label,
            )
        records.append((by_code[code], published, JUDGEMENTS[label], label, int(row)))
    out = pd.DataFrame(records, columns=["la_code", "published", "overall", "label", "row"])
    dup = out.duplicated(["la_code", "published"], keep=False)
    if dup.any():
        first = out.loc[dup].iloc[0]
        raise DataFileError(
            f"two inspections of authority {first['la_code']} published on "
            f"{first['published'].date()}",
            file=file,
            row=int(first["row"]),
        )
    return out.sort_values(["la_code", "published"]).reset_index(drop=True)


def judgement_in_force(inspections: pd.DataFrame, la_code: str, year: int) -> pd.Series | None:
    """The inspection whose judgement was in force at 31 March ``year``, or None."""
    cutoff = pd.Timestamp(year=year, month=3, day=31)
    mine = inspections.loc[
        (inspections["la_code"] == la_code) & (inspections["published"] <= cutoff)
    ]
    return None if mine.empty else mine.iloc[-1]


def ilacs_table(raw_dir: Path, units: pd.DataFrame) -> pd.DataFrame:
    """``ilacs_overall`` (Int64), ``ilacs_overall_missing``, ``ilacs_overall_label`` and
    ``ilacs_overall_published`` for each row of ``units`` (``la_code, year``), same index."""
    inspections = read_ilacs(raw_dir)
    values, reasons, labels, published = [], [], [], []
    for la_code, year in zip(units["la_code"], units["year"], strict=True):
        found = None if year < FIRST_YEAR else judgement_in_force(inspections, str(la_code), year)
        if found is not None:
            values.append(int(found["overall"]))
            reasons.append(pd.NA)
            labels.append(found["label"])
            published.append(found["published"].date().isoformat())
            continue
        values.append(pd.NA)
        labels.append(pd.NA)
        published.append(pd.NA)
        reasons.append(
            MissingReason.NO_SOURCE.value
            if year < FIRST_YEAR
            else MissingReason.NOT_YET_INSPECTED.value
        )
    return pd.DataFrame(
        {
            "ilacs_overall": pd.array(values, dtype="Int64"),
            "ilacs_overall_missing": pd.array(reasons, dtype="string"),
            "ilacs_overall_label": pd.array(labels, dtype="string"),
            "ilacs_overall_published": pd.array(published, dtype="string"),
        },
        index=units.index,
    )
