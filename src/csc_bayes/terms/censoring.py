"""Suppressed counts with a known range enter the likelihood as interval-censored counts.

``spec.suppressed`` (default ``"censored"``) says what a fit does with a fitted-year row whose
outcome is suppressed but whose range ``lo <= y <= hi`` is known (the panel's
``<outcome>_lower`` / ``<outcome>_upper``, :func:`csc_bayes.data.schema.bounds_columns`):

* ``"censored"``: the row is fitted, and contributes the probability of its interval

      log P(lo <= y <= hi | mu, phi) = log(F(hi | mu, phi) - F(lo - 1 | mu, phi))
                                     = log sum_{k=lo}^{hi} p(k | mu, phi)

  under the family's p and F (negative binomial or Poisson; Klein & Moeschberger 2003,
  section 3.3; Stan User's Guide, "Censored data");
* ``"drop"``: the row is left out with its reason, like any other missing count.

A suppressed count without a known range is left out either way (reason ``suppressed``): no
marker of the official files read by this package has a documented range, so on a panel built
from them both settings fit the same rows (``docs/data.md``). A panel without the bound columns
builds exactly the model it built before this term existed.

The term adds no part to eta. In the model it stores the bounds of every fitted row as
``constant_data`` ``y_lower`` / ``y_upper`` (for an observed row both equal y), only when some
row is censored; the family term reads them and builds the interval likelihood.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from csc_bayes.data.schema import MissingReason, bounds_columns, missing_column
from csc_bayes.errors import SpecError
from csc_bayes.terms.base import BuildContext, Term

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.spec import ModelSpec

SUPPRESSED_MODES = ("censored", "drop")
#: the widest interval a censored row may have (hi - lo + 1 terms are summed per row and draw)
MAX_WIDTH = 200


def censorable(spec: ModelSpec, rows: pd.DataFrame) -> np.ndarray:
    """Per row of ``rows``: its outcome is suppressed with a known range and ``spec`` censors
    such rows (``suppressed = "censored"``)."""
    outcome = spec.outcome
    lo_col, hi_col = bounds_columns(outcome)
    if spec.option("suppressed") != "censored" or lo_col not in rows or hi_col not in rows:
        return np.zeros(len(rows), dtype=bool)
    if missing_column(outcome) not in rows:
        return np.zeros(len(rows), dtype=bool)
    reason = rows[missing_column(outcome)]
    keep = (
        rows[outcome].isna()
        & reason.eq(MissingReason.SUPPRESSED.value).fillna(False)
        & rows[lo_col].notna()
        & rows[hi_col].notna()
    )
    return keep.to_numpy(dtype=bool)


def row_bounds(spec: ModelSpec, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) per row as floats: y and y for an observed count, the known range for a
    censored one (:func:`censorable`), NaN and NaN otherwise."""
    y = rows[spec.outcome].to_numpy(dtype=float, na_value=np.nan)
    lo, hi = y.copy(), y.copy()
    censored = censorable(spec, rows)
    if censored.any():
        lo_col, hi_col = bounds_columns(spec.outcome)
        lo[censored] = rows[lo_col].to_numpy(dtype=float, na_value=np.nan)[censored]
        hi[censored] = rows[hi_col].to_numpy(dtype=float, na_value=np.nan)[censored]
        wide = np.flatnonzero(censored & (hi - lo + 1 > MAX_WIDTH))
        if len(wide):
            i = wide[0]
            raise SpecError(
                f"{spec.source}: the suppressed range of {spec.outcome} for authority "
                f"{rows['la_code'].iloc[i]} {rows['year'].iloc[i]} is {int(lo[i])}-{int(hi[i])}, "
                f"wider than {MAX_WIDTH} counts; the interval likelihood sums one term per count"
            )
    return lo, hi


class SuppressedCounts(Term):
    """What a fit does with suppressed counts of known range (``spec.suppressed``)."""

    name = "censoring"
    key = "suppressed"
    default = "censored"
    values = SUPPRESSED_MODES
    order = 98

    @classmethod
    def parse_key(cls, value: Any, *, source: str, model: dict[str, Any]) -> Any:
        if value not in SUPPRESSED_MODES:
            raise SpecError(
                f"{source}: key 'suppressed' must be one of {list(SUPPRESSED_MODES)}, got {value!r}"
            )
        return value

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm

        if not censorable(self.spec, ctx.data).any():
            return
        lo, hi = row_bounds(self.spec, ctx.data)
        ctx.tensors["y_bounds"] = (lo.astype(np.int64), hi.astype(np.int64))
        pm.Data("y_lower", lo.astype(np.int64), dims="obs")
        pm.Data("y_upper", hi.astype(np.int64), dims="obs")

    def describe(self) -> tuple[str | None, str | None]:
        return None, None
