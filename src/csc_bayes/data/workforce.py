"""Children's social work workforce: turnover, agency workers, vacancies and caseloads.

Source: ``dfe_csc_outcomes_enablers/csww_indicators_2017_to_2025.csv`` (DfE *Children's social
work workforce*), one row per authority per census. The census is taken **at 30 September**:
the file's ``time_period`` T is the position at 30 September T (the data dictionary of LAIT says
so, and the boundaries agree: T = 2019 already lists Dorset 838 and BCP 839, created in April
2019, and T = 2023 Cumberland and Westmorland and Furness, created in April 2023). 30 September
T falls in the middle of the DfE reporting year T+1 (April T to March T+1), so

    panel year t  <-  census of 30 September (t-1)        (time_period = t - 1)

the same half-year offset as the panel's population (mid-(t-1) for year t). The file's
time_periods 2017-2024 are panel years 2018-2025.

* ``sw_turnover_rate`` (``turnover_rate_fte``): FTE leavers in the year to 30 September /
  FTE in post at 30 September;
* ``sw_agency_rate`` (``agency_rate_fte``): FTE agency workers / (agency + employed FTE);
* ``sw_vacancy_rate`` (``vacancy_rate_fte``): FTE vacancies / (vacancies + employed FTE);
* ``sw_caseload`` (``caseload_fte``): cases held / FTE case-holding social workers.

The rates are published as percentages and stored as proportions (0-1). **Joint returns**:
Kingston upon Thames and Richmond upon Thames (one service, Achieving for Children) report
together as ``314 / 318`` in every year, and North and West Northamptonshire as ``940 / 941``
(from 2021); the joint figures are given to both authorities.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from csc_bayes.data.markers import parse_numbers
from csc_bayes.data.outcomes import EES_IDENTITY
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import (
    check_codes,
    check_unique,
    check_year_coverage,
    locate,
    read_csv,
)
from csc_bayes.errors import DataFileError

#: panel column -> (file column, divisor: percentages become proportions)
WORKFORCE: dict[str, tuple[str, float]] = {
    "sw_turnover_rate": ("turnover_rate_fte", 100.0),
    "sw_agency_rate": ("agency_rate_fte", 100.0),
    "sw_vacancy_rate": ("vacancy_rate_fte", 100.0),
    "sw_caseload": ("caseload_fte", 1.0),
}
#: census at 30 September T serves panel year T + YEAR_OFFSET
YEAR_OFFSET = 1


def workforce_table(raw_dir: Path) -> tuple[pd.DataFrame, set[int]]:
    """``la_code, year`` (panel year) and each :data:`WORKFORCE` column with its ``_missing``
    reason, one row per authority (joint returns split to each member); and the panel years
    the file covers. ``x`` means not available (EES).
    """
    path = locate(raw_dir, "workforce")
    file = str(path)
    columns = [c for c, _ in WORKFORCE.values()]
    raw = read_csv(path, required=(*EES_IDENTITY, *columns))
    raw = raw.assign(row=raw.index.to_numpy())
    las = raw.loc[raw["geographic_level"].str.strip() == "Local authority"].copy()
    bad_year = ~las["time_period"].str.strip().str.fullmatch(r"\d{4}")
    if bad_year.any():
        row = las.loc[bad_year].iloc[0]
        raise DataFileError(
            "time_period is not a 4-digit year",
            file=file,
            row=int(row["row"]),
            column="time_period",
            value=row["time_period"],
        )
    las["census_year"] = las["time_period"].str.strip().astype(int)
    # a joint return "314 / 318" (ONS codes "E09000021 / E09000027") is one row per member
    pieces = []
    for _, r in las.iterrows():
        codes = [c.strip() for c in r["old_la_code"].split("/")]
        ons = [c.strip() for c in r["new_la_code"].split("/")]
        if len(ons) != len(codes):
            raise DataFileError(
                "a joint return lists different numbers of DfE and ONS codes",
                file=file,
                row=int(r["row"]),
                column="new_la_code",
                value=r["new_la_code"],
            )
        for code, onscode in zip(codes, ons, strict=True):
            pieces.append({**r.to_dict(), "la_code": code, "ons_code": onscode})
    split = pd.DataFrame(pieces)
    split["year"] = split["census_year"]
    check_codes(split, file=file, code_column="old_la_code", ons_column="new_la_code")
    check_year_coverage(split, file=file)
    check_unique(split, file=file)
    out = pd.DataFrame({"la_code": split["la_code"], "year": split["census_year"] + YEAR_OFFSET})
    for name, (column, divisor) in WORKFORCE.items():
        values, reasons = parse_numbers(
            split[column].reset_index(drop=True),
            file=file,
            column=column,
            rows=split["row"].tolist(),
            x_means=MissingReason.NOT_AVAILABLE,
        )
        out[name] = (values / divisor).astype("Float64").to_numpy()
        out[f"{name}_missing"] = reasons.astype("string").to_numpy()
    years = set(int(y) for y in out["year"])
    return out.reset_index(drop=True), years
