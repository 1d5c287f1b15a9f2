"""Context columns of the panel: family circumstances, practice and flows.

:func:`context_for` adds, for each authority-year of a built panel (``docs/covariates.md``,
"Context columns"):

* ``low_income_children``, ``low_income_rate`` (2015-2022): :mod:`~csc_bayes.data.poverty`;
* ``assessment_episodes``, ``*_parent_rate``, ``domestic_abuse_mentions_rate`` (2018-2024):
  :mod:`~csc_bayes.data.assessment`;
* ``sw_turnover_rate``, ``sw_agency_rate``, ``sw_vacancy_rate``, ``sw_caseload`` (2018-2025):
  :mod:`~csc_bayes.data.workforce`;
* ``ilacs_overall``, ``ilacs_overall_label`` and ``ilacs_overall_published`` (2018-2025):
  :mod:`~csc_bayes.data.inspections`;
* ``spend_per_cin`` (the years of ``spend_per_child``): :func:`spend_per_cin`.

The flows ``icpc``, ``cla_started`` and ``cla_ceased`` (:mod:`~csc_bayes.data.flows`) are
counts like the outcomes, so :func:`csc_bayes.data.build.build_panel_report` fills them the
way it fills the outcomes (including ``not_yet_published`` for 2025) and reconciles them with
the national totals.

Every column ``x`` has ``x_missing``: the source's marker reason; ``not_available`` when a file
that covers the year has no value for the authority; ``no_source`` for a year no file covers;
``not_yet_inspected`` for ``ilacs_overall`` before the authority's first ILACS judgement.
These columns are beyond the schema's required columns:
:func:`~csc_bayes.data.schema.validate_panel` checks them as it checks a user's ``--extra``
columns, and a panel without them stays valid.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from csc_bayes.data.assessment import FACTORS, SUMMED, assessment_table
from csc_bayes.data.flows import FLOWS
from csc_bayes.data.inspections import ilacs_table
from csc_bayes.data.poverty import low_income_table
from csc_bayes.data.schema import MissingReason, missing_column
from csc_bayes.data.spending import s251_total
from csc_bayes.data.workforce import WORKFORCE, workforce_table

POVERTY = ("low_income_children", "low_income_rate")
ASSESSMENT = ("assessment_episodes", *FACTORS, *SUMMED)
PRACTICE = (*WORKFORCE, "ilacs_overall", "spend_per_cin")
#: columns :func:`context_for` returns values for, in panel order
CONTEXT = (*POVERTY, *ASSESSMENT, *PRACTICE)
#: every column the context adds with a ``_missing`` companion (flows filled by the build)
CONTEXT_COLUMNS = (*CONTEXT, *FLOWS)
#: columns without a companion: the words of a coded column (missing where the code is)
LABELS = {"ilacs_overall_label": "ilacs_overall", "ilacs_overall_published": "ilacs_overall"}
#: whole-number columns (Int64); the rest are Float64
COUNTS = ("low_income_children", "assessment_episodes", "ilacs_overall", *FLOWS)


def context_for(frame: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    """The :data:`CONTEXT` columns, their ``_missing`` reasons and ``ilacs_overall_label`` for
    each row of ``frame`` (``la_code, year``, ``cin`` and ``cin_missing``), same index and
    order."""
    raw_dir = Path(raw_dir)
    keys = frame[["la_code", "year"]].astype({"la_code": "string", "year": "int64"})
    out = pd.DataFrame(index=frame.index)

    poverty, years = low_income_table(raw_dir)
    for name in POVERTY:
        out[name], out[missing_column(name)] = _join(keys, poverty, name, years)

    assessment, years = assessment_table(raw_dir)
    for name in ASSESSMENT:
        out[name], out[missing_column(name)] = _join(keys, assessment, name, years)

    workforce, years = workforce_table(raw_dir)
    for name in WORKFORCE:
        out[name], out[missing_column(name)] = _join(keys, workforce, name, years)

    ilacs = ilacs_table(raw_dir, keys)
    for column in ilacs.columns:
        out[column] = ilacs[column]

    out["spend_per_cin"], out["spend_per_cin_missing"] = spend_per_cin(
        keys, frame["cin"], frame["cin_missing"], raw_dir
    )

    for name in CONTEXT:
        dtype = "Int64" if name in COUNTS else "Float64"
        if dtype == "Int64":
            out[name] = out[name].round().astype("Int64")
        out[name] = out[name].astype(dtype)
        out[missing_column(name)] = out[missing_column(name)].astype("string")
    order = [c for name in CONTEXT for c in (name, missing_column(name))]
    at = order.index("ilacs_overall_missing") + 1
    order[at:at] = ["ilacs_overall_label", "ilacs_overall_published"]
    return out[order]


def spend_per_cin(
    keys: pd.DataFrame, cin: pd.Series, cin_missing: pd.Series, raw_dir: Path
) -> tuple[pd.Series, pd.Series]:
    """s251 gross spend of the four blocks (as ``spend_per_child``) over the children in need
    at 31 March of the same year (the panel's ``cin``), for each row of ``keys``.

    Missing: ``no_source`` in a year without a finance source; else the reason of the first
    missing block; else ``cin``'s own reason (``cin`` 0 is ``not_applicable``).
    """
    total = s251_total(raw_dir)
    covered = set(total.index.get_level_values("year"))
    found = total.reindex(pd.MultiIndex.from_frame(keys))
    spend = pd.Series(found["total"].to_numpy(), index=keys.index, dtype="Float64")
    cin = cin.astype("Float64")
    value = spend / cin.where(cin > 0)
    reason = pd.Series(found["total_reason"].to_numpy(), index=keys.index, dtype="string")
    reason = reason.mask(spend.isna() & reason.isna(), MissingReason.NOT_AVAILABLE.value)
    cin_reason = cin_missing.astype("string").fillna(MissingReason.NOT_AVAILABLE.value)
    cin_reason = cin_reason.mask(cin.eq(0).fillna(False), MissingReason.NOT_APPLICABLE.value)
    reason = reason.fillna(cin_reason)
    reason = reason.mask(~keys["year"].isin(covered), MissingReason.NO_SOURCE.value)
    return value.astype("Float64"), reason.where(value.isna()).astype("string")


def _join(
    keys: pd.DataFrame, table: pd.DataFrame, name: str, years: set[int]
) -> tuple[pd.Series, pd.Series]:
    """``name`` and its reason from ``table`` (``la_code, year, name, name_missing``) for each
    row of ``keys``: ``not_available`` for an authority the table lacks in a year it covers,
    ``no_source`` for a year it does not cover."""
    indexed = table.set_index(["la_code", "year"])[[name, missing_column(name)]]
    if indexed.index.duplicated().any():
        la, year = indexed.index[indexed.index.duplicated()][0]
        raise ValueError(f"{name}: authority {la} has two rows for {year}")
    found = indexed.reindex(pd.MultiIndex.from_frame(keys))
    value = pd.Series(found[name].to_numpy(), index=keys.index, dtype="Float64")
    reason = pd.Series(found[missing_column(name)].to_numpy(), index=keys.index, dtype="string")
    default = (
        keys["year"]
        .isin(years)
        .map({True: MissingReason.NOT_AVAILABLE.value, False: MissingReason.NO_SOURCE.value})
    )
    reason = reason.mask(value.isna() & reason.isna(), default.astype("string"))
    return value, reason.where(value.isna()).astype("string")
