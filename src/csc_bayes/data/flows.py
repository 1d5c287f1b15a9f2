"""Flows: initial child protection conferences, children starting and ceasing to be looked after.

Counts over the reporting year (April to March), one source per year range, as
:mod:`csc_bayes.data.cla_history` does for CLA at 31 March:

* ``icpc`` 2013-2024: ``c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv``, ``ICPC``;
* ``cla_started`` 2010: ``SFR27_2010_Started.csv``, ``StartTotal_2010``; 2011-2017: the SFR
  ``..._ADM`` files, ``CLA_started<year>`` (2015: ``CLA_started2014``, misnamed in the source);
  2018: LAIT ``bds_long_0.parquet``, ``LACnum_Start``; 2019-2020: the EES CLA file of the 2023
  release, ``number``, "starting to be looked after"; 2021-2024: the 2025 release,
  ``children_count``;
* ``cla_ceased`` 2010: ``SFR27_2010_Ceased.csv``, ``CeasedTotal_2010``; 2011-2017: the SFR
  ``..._CEA`` files, ``CLA_cease`` (2017: ``CLA_cease2017``); 2018: LAIT ``LACceased``;
  2019-2024: the EES CLA files, "ceasing to be looked after".

``icpc`` counts conferences (a child with two ICPCs in the year counts twice; ``ICPC_child``
would count children). ``cla_started`` and ``cla_ceased`` count children. The CLA sources are
those of ``cla`` at 31 March (see ``docs/data.md``), so the three series join at the same years.
"""

from __future__ import annotations

from pathlib import Path

from csc_bayes.data.cla_history import LAIT_YEAR, SFR_YEARS, read_cla_ees, read_cla_lait
from csc_bayes.data.outcomes import Measure, read_ees_column
from csc_bayes.data.sfr import read_sfr_column
from csc_bayes.data.sources import locate

FLOWS = ("icpc", "cla_started", "cla_ceased")

#: SFR column of each year's starts / ceased file
SFR_STARTED = {
    2010: "StartTotal_2010",
    **{y: f"CLA_started{y}" for y in range(2011, 2018)},
    2015: "CLA_started2014",  # misnamed in SFR34_ADM2015.csv
}
SFR_CEASED = {
    2010: "CeasedTotal_2010",
    **{y: "CLA_cease" for y in range(2011, 2017)},
    2017: "CLA_cease2017",
}
LAIT_INDICATOR = {"cla_started": "LACnum_Start", "cla_ceased": "LACceased"}
EES_POPULATION = {"cla_started": "starting", "cla_ceased": "ceasing"}


def read_icpc(raw_dir: Path) -> Measure:
    """Initial child protection conferences in the year (c4 file, ``ICPC``)."""
    return read_ees_column(locate(raw_dir, "s47"), "ICPC", name="icpc")


def read_cla_flow(raw_dir: Path, name: str) -> list[Measure]:
    """``cla_started`` or ``cla_ceased``, one :class:`Measure` per file and year range."""
    kind = {"cla_started": "started", "cla_ceased": "ceased"}[name]
    columns = SFR_STARTED if name == "cla_started" else SFR_CEASED
    out = [
        read_sfr_column(locate(raw_dir, f"sfr_{kind}_{y}"), columns[y], year=y, name=name)
        for y in SFR_YEARS
    ]
    out.append(read_cla_lait(raw_dir, year=LAIT_YEAR, indicator=LAIT_INDICATOR[name], name=name))
    for release in (2023, 2025):  # EES_2023_YEARS, EES_2025_YEARS, as for cla
        out.append(
            read_cla_ees(raw_dir, release=release, population=EES_POPULATION[name], name=name)
        )
    return out


def read_flows(raw_dir: Path) -> dict[str, list[Measure]]:
    """Every flow as its list of source files (see the module table)."""
    return {
        "icpc": [read_icpc(raw_dir)],
        "cla_started": read_cla_flow(raw_dir, "cla_started"),
        "cla_ceased": read_cla_flow(raw_dir, "cla_ceased"),
    }
