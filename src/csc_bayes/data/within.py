"""An authority's mean of a time-varying column and its yearly deviation (between and within).

For a column x (e.g. child poverty ``low_income_rate``) and the years a model fits, per row of
authority j in year t::

    la_mean_x[j, t] = mean of x[j, s] over the fitted years s in which j has a value
    la_dev_x[j, t]  = x[j, t] - la_mean_x[j, t]

(Mundlak 1978; Bell & Jones 2015). With both in a model, the coefficient of ``la_dev_x`` is the
*within-authority* association (how an authority's rate moves when its own x moves, every
stable difference between authorities held fixed), and that of ``la_mean_x`` the
*between-authority* one (how authorities with higher average x differ). Only the within
coefficient can be read as the effect of a change in x, and only under the usual caveats of
observational data; the between one mixes x with whatever else differs between authorities.

The mean is over the fitted years only, so it is the same in every row of the authority,
including forecast years; the deviation of a forecast year needs that year's x. A missing mean
(no value of x in the window) has reason ``not_available``; a missing deviation has x's own
reason. Names: ``la_mean_<x>`` and ``la_dev_<x>`` (usable in specs and formulas like any column).

``year_dev_<x>[j, t] = x[j, t] - mean of x[k, t]`` over the authorities k of the panel with a
value in year t: the authority's difference from the other authorities *in the same year*. A
model with year effects then leaves every national movement of x to the year effects, and the
coefficient compares authorities within a year (the practice terms use it, docs/methods.md 1.5).
A missing x keeps its reason.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from csc_bayes.data.schema import MissingReason, missing_column

#: the panel names of an authority's mean and yearly deviation of a column
WITHIN_NAME = re.compile(r"^la_(?P<part>mean|dev)_(?P<column>[A-Za-z_][A-Za-z0-9_]*)$")
#: the panel name of a column's deviation from its year's mean across authorities
YEAR_DEV_NAME = re.compile(r"^year_dev_(?P<column>[A-Za-z_][A-Za-z0-9_]*)$")


def parse_within_name(name: str) -> tuple[str, str] | None:
    """``("mean" | "dev", column)`` for ``la_mean_<column>`` / ``la_dev_<column>``, else None."""
    m = WITHIN_NAME.match(name)
    return (m["part"], m["column"]) if m else None


def add_within(panel: pd.DataFrame, column: str, years: tuple[int, int]) -> pd.DataFrame:
    """``panel`` with ``la_mean_<column>``, ``la_dev_<column>`` and their ``_missing`` reasons,
    the mean taken over ``years`` (first, last) (see the module docstring)."""
    if column not in panel.columns:
        raise ValueError(f"cannot split {column!r} into between and within: no such column")
    values = panel[column].astype("Float64")
    in_window = panel["year"].between(*years) & values.notna()
    means = values.where(in_window).groupby(panel["la_code"].astype(str)).mean()
    mean = panel["la_code"].astype(str).map(means).astype("Float64")
    out = panel.copy()
    name_mean, name_dev = f"la_mean_{column}", f"la_dev_{column}"
    out[name_mean] = mean
    out[missing_column(name_mean)] = pd.array(
        np.where(mean.isna(), MissingReason.NOT_AVAILABLE.value, None), dtype="string"
    )
    out[name_dev] = (values - mean).astype("Float64")
    companion = missing_column(column)
    own = (
        panel[companion].astype("string")
        if companion in panel
        else pd.Series(pd.NA, index=panel.index, dtype="string")
    )
    no_mean = pd.Series(
        np.where(mean.isna(), MissingReason.NOT_AVAILABLE.value, None),
        index=panel.index,
        dtype="string",
    )
    reason = own.where(values.isna(), pd.NA).fillna(no_mean)
    out[missing_column(name_dev)] = reason.where(out[name_dev].isna(), pd.NA).astype("string")
    return out


def parse_year_dev_name(name: str) -> str | None:
    """The column of ``year_dev_<column>``, else None."""
    m = YEAR_DEV_NAME.match(name)
    return m["column"] if m else None


def add_year_dev(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """``panel`` with ``year_dev_<column>`` = x minus the mean of x over the panel's authorities
    with a value that year, and its ``_missing`` reason (x's own where x is missing)."""
    if column not in panel.columns:
        raise ValueError(f"cannot centre {column!r} on its yearly mean: no such column")
    values = panel[column].astype("Float64")
    year_mean = values.groupby(panel["year"]).transform("mean").astype("Float64")
    name = f"year_dev_{column}"
    out = panel.copy()
    out[name] = (values - year_mean).astype("Float64")
    companion = missing_column(column)
    own = (
        panel[companion].astype("string")
        if companion in panel
        else pd.Series(pd.NA, index=panel.index, dtype="string")
    )
    reason = own.fillna(MissingReason.NOT_AVAILABLE.value)
    out[missing_column(name)] = reason.where(out[name].isna(), pd.NA).astype("string")
    return out
