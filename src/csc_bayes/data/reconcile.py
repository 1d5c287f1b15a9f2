"""Sum of authorities against the published national total, per file, measure and year.

National rows are not authorities; they are used only here. The sum runs over every authority
row of the file for that year (City of London and Isles of Scilly included, as in the national
figure). Authority counts are published unrounded (EES, LAIT) or nearly so, while the national
total is rounded to the nearest 10, and releases revise a little, so the tolerance is

    tolerance = ABSOLUTE + RELATIVE * national      (ABSOLUTE = 10, RELATIVE = 0.0005)

and a year's ``status`` is

* ``agrees``: no cell is missing and |sum_LA - national| <= tolerance;
* ``missing cells``: some cells are suppressed or not available, and the sum falls short of
  the national total (national - sum_LA >= -tolerance): the shortfall is what they hold;
* ``differs``: anything else.

A year that ``differs`` stops the build (:func:`check_reconciliation`, a
:class:`~csc_bayes.errors.DataFileError` naming the file, column, years, both totals and the
tolerance): the published files agree with their own national totals, so a sum that no longer
does means a changed or damaged file. The exception is a year listed in
:data:`KNOWN_DIFFERENCES`, a difference the publication itself has, with its documented
reason; it is kept (``note`` says why) only while the difference is the documented one.

What this cannot see: a count lowered in a year that has missing cells, since the shortfall it
leaves looks like what the missing cells hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import pandas as pd

from csc_bayes.data.outcomes import Measure
from csc_bayes.errors import DataFileError

ABSOLUTE = 10
RELATIVE = 0.0005

COLUMNS = [
    "measure",
    "file",
    "column",
    "year",
    "n_las",
    "n_missing",
    "la_sum",
    "national",
    "difference",
    "tolerance",
    "status",
    "note",
]


@dataclass(frozen=True)
class KnownDifference:
    """A year whose published authority rows do not sum to the published national total.

    ``file`` is the path inside the raw folder (as in ``csc_bayes.data.sources.FILES``);
    ``difference`` is ``sum_LA - national`` as published; ``reason`` says why, citing where
    that is documented (PROVENANCE.md, the file's own notes or the release's methodology).
    """

    file: str
    column: str
    year: int
    difference: float
    reason: str


#: Documented differences between the authority sum and the national total in the published
#: files. The current files (docs/data.md) have none: every year of every file either agrees
#: or falls short only by what its missing cells hold. A future release with, say, a national
#: figure that counts children the authority rows do not, gets an entry here; the build then
#: accepts that year while its difference stays within the tolerance of the documented one.
KNOWN_DIFFERENCES: tuple[KnownDifference, ...] = ()


def known_difference(
    file: str, column: str, year: int, difference: float, tolerance: float
) -> KnownDifference | None:
    """The entry of :data:`KNOWN_DIFFERENCES` that explains this year's difference, if any."""
    path = PurePath(file).as_posix()
    for known in KNOWN_DIFFERENCES:
        if (
            (path == known.file or path.endswith("/" + known.file))
            and column == known.column
            and year == known.year
            and abs(difference - known.difference) <= tolerance
        ):
            return known
    return None


def reconcile(measure: Measure, *, years: set[int] | None = None) -> pd.DataFrame:
    """One row per year of ``measure`` (or of ``years``) with the columns in :data:`COLUMNS`."""
    rows = []
    for year, group in measure.las.groupby("year"):
        if years is not None and year not in years:
            continue
        nat = measure.national.loc[measure.national["year"] == year, "value"]
        national = nat.iloc[0] if len(nat) else pd.NA
        la_sum = int(group["value"].sum())
        n_missing = int(group["value"].isna().sum())
        note = pd.NA
        if pd.isna(national):
            difference, tolerance, status = pd.NA, pd.NA, "no national total"
        else:
            difference = la_sum - float(national)
            tolerance = ABSOLUTE + RELATIVE * float(national)
            if n_missing == 0 and abs(difference) <= tolerance:
                status = "agrees"
            elif n_missing > 0 and difference <= tolerance:
                status = "missing cells"
            else:
                status = "differs"
                known = known_difference(
                    measure.file, measure.column, int(year), difference, tolerance
                )
                if known is not None:
                    note = known.reason
        rows.append(
            [
                measure.name,
                measure.file,
                measure.column,
                int(year),
                len(group),
                n_missing,
                la_sum,
                national,
                difference,
                tolerance,
                status,
                note,
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def check_reconciliation(recon: pd.DataFrame) -> None:
    """Raise :class:`DataFileError` if a year ``differs`` without a documented reason.

    The message names the file, the column and measure, and for each such year the sum of the
    authorities, the national total, the difference and the tolerance; other files that also
    differ are named after it.
    """
    bad = recon.loc[(recon["status"] == "differs") & recon["note"].isna()]
    if bad.empty:
        return
    groups = list(bad.groupby(["file", "column"], sort=False))
    (file, column), rows = groups[0]
    measure = rows["measure"].iloc[0]
    years = ", ".join(str(y) for y in rows["year"])
    detail = "; ".join(
        f"{r.year}: the authorities sum to {r.la_sum:,}, the national total is "
        f"{float(r.national):,.0f} (difference {float(r.difference):+,.0f}, tolerance "
        f"{float(r.tolerance):,.0f})"
        for r in rows.itertuples()
    )
    also = ""
    if len(groups) > 1:
        also = "; other files that differ: " + ", ".join(
            f"{PurePath(f).name} {c!r} {', '.join(str(y) for y in g['year'])}"
            for (f, c), g in groups[1:]
        )
    raise DataFileError(
        f"{measure}: the sum over authorities no longer matches the published national total "
        f"in {years}, beyond rounding (tolerance = {ABSOLUTE} + {RELATIVE} x national): "
        f"{detail}; a changed or damaged file? (docs/data.md, 'Reconciliation with national "
        f"totals'){also}",
        file=str(file),
        column=str(column),
    )
