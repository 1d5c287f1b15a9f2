"""Family circumstances at assessment: the share of assessments that identified a factor.

Source: ``dfe_csc_outcomes_enablers/c3_factors_identified_at_end_of_assessment_2018_to_2025.csv``
(DfE *Characteristics of children in need*, factors identified at the end of assessment), one
row per authority and reporting year (``time_period`` = the year ending 31 March, as the panel).

    <factor>_rate[la, t] = <file column>[la, t] / Episodes_with_assessment_factor[la, t]

``Episodes_with_assessment_factor`` (panel column ``assessment_episodes``) counts the episodes
with an assessment completed in the year that recorded factor information; DfE's own
percentages use it as the denominator. An assessment can record several factors, so the rates
of different factors do not add up to 1. The file names each factor three times, by whom the
concern is about (``_child``, ``_parent`` for the parent(s) or carer(s), ``_person`` for
another person in the household); the panel takes the parent/carer columns (:data:`FACTORS`),
DfE's headline figures.

Authorities record the three differently: Leeds, for instance, recorded domestic abuse about
the child in 24% of its 2024 assessments and about the parent in 15%, against 11% and 32% in
England. ``domestic_abuse_mentions_rate`` adds the three domestic-abuse columns over the same
denominator: mentions per assessment, which is less sensitive to that choice (an assessment
can mention it for more than one person, so this is not the share with any mention).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from csc_bayes.data.outcomes import EES_IDENTITY, read_ees_column
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import locate, read_csv

#: panel column -> column of the c3 file (concerns about the parent(s) or carer(s))
FACTORS: dict[str, str] = {
    "domestic_abuse_parent_rate": "Domestic_Abuse_parent",
    "mental_health_parent_rate": "Mental_Health_parent",
    "drug_misuse_parent_rate": "Drug_Misuse_parent",
    "alcohol_misuse_parent_rate": "Alcohol_Misuse_parent",
}
#: panel column -> columns of the c3 file whose sum is divided by the denominator
SUMMED: dict[str, tuple[str, ...]] = {
    "domestic_abuse_mentions_rate": (
        "Domestic_Abuse_child",
        "Domestic_Abuse_parent",
        "Domestic_Abuse_person",
    ),
}
DENOMINATOR = "Episodes_with_assessment_factor"
EPISODES = "assessment_episodes"


def assessment_table(raw_dir: Path) -> tuple[pd.DataFrame, set[int]]:
    """``la_code, year``, ``assessment_episodes`` and each :data:`FACTORS` rate, each with its
    ``_missing`` reason, for every authority row of the file; and the years the file covers.

    A rate is missing with the reason of its count's marker (``c`` suppressed, ``x`` not
    available, ...), else of the denominator's; a denominator of 0 gives ``not_applicable``.
    """
    path = locate(raw_dir, "assessment_factors")
    summed = [c for cols in SUMMED.values() for c in cols]
    frame = read_csv(path, required=(*EES_IDENTITY, DENOMINATOR, *FACTORS.values(), *summed))
    episodes = read_ees_column(path, DENOMINATOR, name=EPISODES, frame=frame)
    las = episodes.las
    out = las[["la_code", "year"]].copy()
    out[EPISODES] = las["value"].astype("Int64")
    out[f"{EPISODES}_missing"] = las["reason"].astype("string")
    denominator = las["value"].astype("Float64")
    keys = pd.MultiIndex.from_frame(las[["la_code", "year"]])
    counts = {}
    for column in {*FACTORS.values(), *summed}:
        m = read_ees_column(path, column, name=column, frame=frame)
        counts[column] = m.las.set_index(["la_code", "year"]).reindex(keys)
    parts = {**{n: (c,) for n, c in FACTORS.items()}, **SUMMED}
    for name, columns in parts.items():
        numerator = sum(
            pd.Series(counts[c]["value"].to_numpy(), index=las.index, dtype="Float64")
            for c in columns
        )
        rate = numerator / denominator.where(denominator > 0)
        reason = pd.Series(pd.NA, index=las.index, dtype="string")
        for c in columns:  # the first part with a marker explains the gap
            reason = reason.fillna(
                pd.Series(counts[c]["reason"].to_numpy(), index=las.index, dtype="string")
            )
        reason = reason.fillna(las["reason"].astype("string"))
        zero = denominator.eq(0).fillna(False) & reason.isna()
        reason = reason.mask(zero, MissingReason.NOT_APPLICABLE.value)
        out[name] = rate.astype("Float64")
        out[f"{name}_missing"] = reason.where(rate.isna()).astype("string")
    return out.reset_index(drop=True), set(int(y) for y in las["year"])
