"""One row per inspection: the first year each judgement of an authority is in force.

A judgement "in force at 31 March" (Ofsted's ILACS grade, ``ilacs_overall``) repeats in every
year until the next one is published, so a model fitted to all authority-years would count one
inspection two, three or more times (pseudo-replication: its intervals would be too narrow,
and authorities inspected long ago would weigh more). :func:`first_year_in_force` keeps, per
authority, the first year of each *spell* of one judgement. A spell is the run of consecutive
years in force of one inspection, told apart by the publication date ``<column>_published``
(``ilacs_overall_published``)::

    keep[j, t] = y[j, t] present and (published[j, t - 1] missing or != published[j, t])

so a re-inspection that gives the same grade starts a new spell (it is a new inspection; on
the real panel 50 of the 115 ILACS re-inspections to March 2025 repeated the grade). Every other
year with a value repeats the judgement counted at the start of its spell, and is reported as
such, never silently dropped. Spells are found on the whole panel, so a window of years that
starts inside a spell does not count its first year as new.

A panel without the publication-date column (one built before it existed, or a user's own
ordered column) falls back to runs of the same *value*; that merges two inspections with the
same result (the selection then depends on the outcome, which biases the re-inspections
towards change), and every repeat's reason says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from csc_bayes.data.inspections import LABELS as ILACS_LABELS

#: the row selections a spec may ask for (``rows = ...``); ``all``: every row with data
ROW_SELECTIONS = ("all", "first_year_in_force")


def published_column(column: str) -> str:
    """The panel column holding the publication date of ``column``'s value in force."""
    return f"{column}_published"


def first_year_in_force(panel: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """``(keep, reason)`` per row of ``panel`` (same index), for the spells of ``column``.

    ``keep`` is True in the first year of each spell (see the module docstring) and where the
    value is missing (those rows are left to the usual missing-value exclusion); ``reason``
    (string, NA where kept) is the same for every repeat, so that a fit's excluded rows group
    by it: ``"ilacs_overall: the judgement counted in an earlier year, still in force"``.
    """
    order = panel.sort_values(["la_code", "year"]).index
    dated = published_column(column) in panel.columns
    key_column = published_column(column) if dated else column
    rows = panel.loc[order]
    value = rows[column].astype("Float64")
    key = rows[key_column].astype("string")
    la = rows["la_code"].astype(str).to_numpy()
    year = rows["year"].to_numpy(dtype=int)
    same_la = np.zeros(len(rows), dtype=bool)
    same_la[1:] = (la[1:] == la[:-1]) & (year[1:] - year[:-1] == 1)
    previous = key.shift(1)
    continues = same_la & value.notna().to_numpy() & previous.eq(key).fillna(False).to_numpy()
    why = (
        f"{column}: the judgement counted in an earlier year, still in force"
        if dated
        else f"{column}: the grade of the year before (no {key_column} column: the same grade "
        "taken as the same inspection)"
    )
    reason = pd.Series(pd.NA, index=order, dtype="string")
    reason[continues] = why
    keep = pd.Series(~continues, index=order)
    return keep.reindex(panel.index), reason.reindex(panel.index)


#: the most levels an ordered category column the data layer does not know may have
MAX_CATEGORIES = 10

#: ordered category columns the data layer knows: column -> labels of codes 1..K
ORDERED_COLUMNS: dict[str, tuple[str, ...]] = {
    "ilacs_overall": tuple(ILACS_LABELS[k] for k in sorted(ILACS_LABELS)),
}


def outcome_categories(column: str, codes: np.ndarray | pd.Series) -> tuple[str, ...]:
    """The labels of codes 1..K of an ordered category ``column``.

    K and the labels come from :data:`ORDERED_COLUMNS` when it lists the column (so a level
    no fitted row has, such as a grade nobody got, still has its cutpoint); otherwise K is the
    largest code in ``codes`` and the labels are ``"1"``..``"K"``; no labels (not an ordered
    category) when that is above :data:`MAX_CATEGORIES`.
    """
    if column in ORDERED_COLUMNS:
        return ORDERED_COLUMNS[column]
    values = pd.Series(codes, dtype="Float64").dropna()
    k = int(values.max()) if len(values) else 0
    if k > MAX_CATEGORIES:  # not a code of an ordered category: no levels
        return ()
    return tuple(str(j) for j in range(1, k + 1))
