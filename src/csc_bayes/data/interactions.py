"""Product (interaction) columns of two covariates, standardised before multiplying.

For columns a and b (e.g. spending per child in need and deprivation) the panel name
``<a>_x_<b>`` (``a:b`` in a formula) is, per row i,

    a_x_b[i] = z_a[i] * z_b[i],    z_a = (a - mean_a) / sd_a,   z_b = (b - mean_b) / sd_b

with the means and (population) SDs of a and b **over the rows a model fits** (the same
standardisation the model gives the main effects a and b, :mod:`csc_bayes.model`). Standardising
first makes the main effects of a and b their associations at the other's average (z = 0) and
keeps the product nearly uncorrelated with them (Aiken & West 1991); the model then standardises
the product column like any covariate, so its coefficient is per SD of z_a z_b and its
``beta_per_unit`` is the change in the log-odds (or log-rate) slope of a per SD of a for one SD
more of b. A product is missing where a or b is, with that column's reason.

An interaction is only allowed beside both of its main effects (the spec checks this), and its
value at new rows (a forecast, a held-out fold, a table of predicted probabilities) uses the
fit's own means and SDs of a and b (``scales``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from csc_bayes.data.schema import missing_column

#: the panel name of the interaction of two columns: ``<a>_x_<b>``
INTERACTION_SEPARATOR = "_x_"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def interaction_name(a: str, b: str) -> str:
    """Panel name of the product of ``a`` and ``b``: ``spend_per_cin_x_idaci``."""
    return f"{a}{INTERACTION_SEPARATOR}{b}"


def parse_interaction_name(name: str, columns: Any = None) -> tuple[str, str] | None:
    """``(a, b)`` for a name ``<a>_x_<b>``, else None.

    When a name holds ``_x_`` more than once, the split whose two parts are both in
    ``columns`` is taken (the first such); without ``columns`` the first split with two valid
    names. A column that merely contains ``_x_`` and is itself in ``columns`` is no interaction.
    """
    if INTERACTION_SEPARATOR not in name:
        return None
    known = set(columns) if columns is not None else None
    if known is not None and name in known:
        return None
    parts = name.split(INTERACTION_SEPARATOR)
    for k in range(1, len(parts)):
        a = INTERACTION_SEPARATOR.join(parts[:k])
        b = INTERACTION_SEPARATOR.join(parts[k:])
        if not (_IDENT.match(a) and _IDENT.match(b)):
            continue
        if known is None or (a in known and b in known):
            return a, b
    return None


def standardised_product(
    panel: pd.DataFrame,
    a: str,
    b: str,
    scales: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[pd.Series, pd.Series]:
    """``(values, reasons)`` of ``a_x_b`` for each row of ``panel`` (same index).

    ``scales`` maps a column to its ``(mean, sd)``; a column it lacks is standardised over the
    rows of ``panel`` where both a and b are present (population SD). ``reasons`` is NA where
    the product is present, else the missing reason of a (or of b).
    """
    va = panel[a].astype("Float64")
    vb = panel[b].astype("Float64")
    both = va.notna() & vb.notna()
    z = {}
    for col, values in ((a, va), (b, vb)):
        if scales is not None and col in scales:
            mean, sd = scales[col]
        else:
            present = values[both].to_numpy(dtype=float)
            mean, sd = (float(present.mean()), float(present.std())) if len(present) else (0, 0)
        if not sd > 0:
            raise ValueError(f"interaction {interaction_name(a, b)}: column {col!r} is constant")
        z[col] = (values - mean) / sd
    values = (z[a] * z[b]).where(both, pd.NA).astype("Float64")
    reasons = pd.Series(pd.NA, index=panel.index, dtype="string")
    for col, v in ((b, vb), (a, va)):  # a's reason wins where both are missing
        companion = missing_column(col)
        why = panel[companion].astype("string") if companion in panel else None
        fill = why if why is not None else pd.Series("missing", index=panel.index, dtype="string")
        reasons = reasons.mask(v.isna(), fill.fillna("missing"))
    return values, reasons


def add_interaction(
    panel: pd.DataFrame,
    a: str,
    b: str,
    scales: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """``panel`` with ``a_x_b`` and ``a_x_b_missing`` (:func:`standardised_product`)."""
    name = interaction_name(a, b)
    values, reasons = standardised_product(panel, a, b, scales)
    return panel.assign(**{name: values, missing_column(name): reasons})


__all__ = [
    "INTERACTION_SEPARATOR",
    "add_interaction",
    "interaction_name",
    "parse_interaction_name",
    "standardised_product",
]
