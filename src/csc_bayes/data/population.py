"""Children aged 0-17: the exposure DfE divides by.

DfE rates for reporting year t (ending 31 March t) use the ONS mid-(t-1) estimate, so the row
``time_period = 2023`` of the ONS file (mid-2023) is the population of reporting year 2024.

* reporting years 2013-2025: ``ons_mid-year_population_estimates_2012_to_2024.csv``
  (mid-2012 to mid-2024). Dorset, Poole and Bournemouth are ``x`` (not available) for mid-2012
  to mid-2018, because ONS publishes them on current boundaries only.
* reporting year 2010: ``Mid2009Pop0-17`` in ``SFR27_2010_March.csv``.
* reporting years 2011-2012 (mid-2010, mid-2011): no file here, so ``no_source``.

A population of 0 or less is an error: it would make every rate infinite.
"""

from __future__ import annotations

from pathlib import Path

from csc_bayes.data.outcomes import Measure, read_ees_column
from csc_bayes.data.sfr import read_sfr_column
from csc_bayes.data.sources import check_positive, locate, read_csv

#: reporting years whose population comes from each file
SFR_YEAR = 2010


def read_ons_population(raw_dir: Path) -> Measure:
    """ONS 0-17 estimates keyed by the reporting year they serve (mid-year + 1)."""
    path = locate(raw_dir, "population")
    frame = read_csv(
        path,
        required=("time_period", "geographic_level", "old_la_code", "population_estimate"),
    )
    m = read_ees_column(path, "population_estimate", name="population", frame=frame)
    _positive(m)
    las = m.las.assign(year=m.las["year"] + 1)
    national = m.national.assign(year=m.national["year"] + 1)
    return Measure(m.name, m.file, m.column, las, national)


def read_sfr_population(raw_dir: Path) -> Measure:
    """Mid-2009 0-17 estimates from SFR27 (2010), the denominator of reporting year 2010."""
    path = locate(raw_dir, "sfr_2010")
    return _positive(read_sfr_column(path, "Mid2009Pop0-17", year=SFR_YEAR, name="population"))


def _positive(m: Measure) -> Measure:
    """A population of 0 or less is an error naming the file, row and value (never a rate)."""
    check_positive(m.las["value"], file=m.file, column=m.column, rows=m.las["row"], what=m.name)
    return m


def read_population(raw_dir: Path) -> list[Measure]:
    """Every population source, one :class:`Measure` per file, each covering its own years."""
    return [read_sfr_population(raw_dir), read_ons_population(raw_dir)]
