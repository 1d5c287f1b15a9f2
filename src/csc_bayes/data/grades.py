"""Ofsted ILACS judgements as indicator columns a model can use (a judgement is a category).

``ilacs_overall`` (1 = Outstanding, 2 = Good, 3 = Requires improvement to be good,
4 = Inadequate; :mod:`csc_bayes.data.inspections`) is ordered but not an interval scale, so a
model takes it as indicators against the reference "good or better" (1 or 2)::

    ilacs_requires_improvement = 1 if ilacs_overall == 3 else 0
    ilacs_inadequate           = 1 if ilacs_overall == 4 else 0
    ilacs_not_yet_inspected    = 1 if no ILACS judgement was in force (reason not_yet_inspected)

A row with ``ilacs_overall_missing == "not_yet_inspected"`` is **kept**: it has 0 in the two
grade indicators and 1 in ``ilacs_not_yet_inspected`` (its judgement was a SIF one of
2014-2017, not in the raw folder), so a model with all three indicators fits it and its
coefficient is that of "not yet inspected under ILACS" against good or better. A model naming
only the grade indicators leaves those rows out with reason ``ilacs_overall: not_yet_inspected``
(the grade is unknown). Any other missing judgement (``no_source``: years before 2018) makes
every indicator missing with that reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from csc_bayes.data.schema import MissingReason, missing_column

SOURCE = "ilacs_overall"
#: indicator name -> the ``ilacs_overall`` codes it marks (None: not yet inspected)
ILACS_INDICATORS: dict[str, tuple[int, ...] | None] = {
    "ilacs_requires_improvement": (3,),
    "ilacs_inadequate": (4,),
    "ilacs_not_yet_inspected": None,
}


def is_ilacs_indicator(name: str) -> bool:
    """Whether ``name`` is one of :data:`ILACS_INDICATORS`."""
    return name in ILACS_INDICATORS


def add_ilacs_indicator(panel: pd.DataFrame, name: str) -> pd.DataFrame:
    """``panel`` with indicator ``name`` (:data:`ILACS_INDICATORS`) and its ``_missing`` reason,
    from ``ilacs_overall`` and ``ilacs_overall_missing`` (see the module docstring).

    A grade outside 1-4 raises ``ValueError`` naming the authority and year.
    """
    if name not in ILACS_INDICATORS:
        raise ValueError(f"{name!r} is not an ILACS indicator ({sorted(ILACS_INDICATORS)})")
    if SOURCE not in panel.columns:
        raise ValueError(f"cannot derive {name!r}: the panel has no {SOURCE!r} column")
    grade = panel[SOURCE].astype("Float64")
    bad = grade.notna() & ~grade.isin([1, 2, 3, 4])
    if bad.any():
        row = panel.loc[bad[bad].index[0]]
        raise ValueError(
            f"{SOURCE} must be 1-4; authority {row.get('la_code')} year {row.get('year')} "
            f"has {row[SOURCE]}"
        )
    companion = missing_column(SOURCE)
    reason = (
        panel[companion].astype("string")
        if companion in panel
        else pd.Series(pd.NA, index=panel.index, dtype="string")
    )
    not_yet = grade.isna() & reason.eq(MissingReason.NOT_YET_INSPECTED.value).fillna(False)
    codes = ILACS_INDICATORS[name]
    if codes is None:
        value = np.where(grade.notna(), 0.0, np.where(not_yet, 1.0, np.nan))
    else:
        marked = grade.isin(list(codes)).fillna(False).to_numpy()
        value = np.where(grade.notna() | not_yet, marked.astype(float), np.nan)
    out = panel.copy()
    out[name] = pd.array(value, dtype="Float64")
    unknown = out[name].isna()
    why = reason.where(unknown, pd.NA).fillna(MissingReason.NOT_AVAILABLE.value)
    out[missing_column(name)] = why.where(unknown, pd.NA).astype("string")
    return out
