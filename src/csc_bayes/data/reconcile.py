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
* ``differs``: anything else, which the build report lists.
"""

from __future__ import annotations

import pandas as pd

from csc_bayes.data.outcomes import Measure

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
]


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
            ]
        )
    return pd.DataFrame(rows, columns=COLUMNS)
