"""Publication figures: one plot per module, data first, options keyword-only, optional ``ax``.

Every plot function returns the matplotlib Figure; :func:`save_figure` writes it (PNG, SVG or
PDF by suffix) atomically. :func:`figure_from_fit` makes any of them straight from a Fit and
also returns the table drawn, for the CLI, the report and ``examples/report_figures.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from csc_bayes.plots._style import REGION_COLOURS, save_figure
from csc_bayes.plots.caterpillar import caterpillar, caterpillar_table
from csc_bayes.plots.funnel import funnel, funnel_limits
from csc_bayes.plots.ppc import ppc
from csc_bayes.plots.trend import trend
from csc_bayes.plots.variance import variance, variance_rows
from csc_bayes.posterior import reader
from csc_bayes.variance import DEFAULT_CI_PROB

__all__ = [
    "KINDS",
    "REGION_COLOURS",
    "caterpillar",
    "caterpillar_table",
    "figure_from_fit",
    "funnel",
    "funnel_limits",
    "phi_draws",
    "ppc",
    "save_figure",
    "trend",
    "variance",
    "variance_rows",
]

#: the plot kinds :func:`figure_from_fit` (and ``csc-bayes plot``) can make
KINDS = ("caterpillar", "funnel", "variance", "trend", "ppc")


def phi_draws(fit: Any) -> np.ndarray | None:
    """Posterior draws of the NB concentration ``phi``, or None for a Poisson fit."""
    post = reader(fit)
    return post.draws("phi").ravel() if post.has("phi") else None


def figure_from_fit(
    kind: str,
    fit: Any,
    *,
    year: int | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    value: str = "excess_ratio",
    by_region: bool = False,
    region: str | None = None,
    highlight: Sequence[str] = (),
    show_prob: bool = False,
    authority: str | None = None,
    null_fit: Any | None = None,
    excess_table: pd.DataFrame | None = None,
    variance_result: Any | None = None,
) -> tuple[Figure, pd.DataFrame | None]:
    """Compute the answer a plot needs from ``fit``, draw it, and return (figure, table drawn).

    ``year`` applies to caterpillar and funnel (default: the last fitted year), and so does
    ``highlight`` (authorities drawn distinctly and named, resolved by
    :func:`csc_bayes.authorities.resolve_authority`); ``authority``
    is required for trend; ``null_fit`` adds the between-LA rows to the variance table. The
    table is None for ppc, whose data are the fit's draws. ``excess_table`` (an ``excess(fit,
    year=..., ci_prob=...)`` table) and ``variance_result`` (an ``explain_variance`` result)
    are used instead of computing them again, e.g. by the report, which draws several figures.
    """
    synthetic = bool(fit.metadata.get("synthetic", False))
    if kind in ("caterpillar", "funnel"):
        from csc_bayes.excess import excess

        table = excess(fit, year=year, ci_prob=ci_prob) if excess_table is None else excess_table
        if kind == "funnel":
            label = None
            if reader(fit).term("la_year") is not None and phi_draws(fit) is None:
                # the extra-Poisson variation is the AR(1) LA-year term, part of the excess
                label = "Poisson (AR(1) LA-year deviations count as the authority's own)"
            fig = funnel(
                table,
                phi=phi_draws(fit),
                limits_label=label,
                highlight=highlight,
                synthetic=synthetic,
            )
            return fig, table
        fig = caterpillar(
            table,
            value=value,
            by_region=by_region,
            region=region,
            highlight=highlight,
            prob="p_excess" if show_prob else None,
            synthetic=synthetic,
        )
        return fig, caterpillar_table(table, value=value, region=region, highlight=highlight)
    if kind == "variance":
        from csc_bayes.variance import explain_variance

        result = variance_result
        if result is None:
            result = explain_variance(fit, null_fit=null_fit, ci_prob=ci_prob)
        return variance(result, synthetic=synthetic), result.to_frame()
    if kind == "trend":
        if authority is None:
            raise ValueError("a trend plot needs an authority (name, ONS code or DfE number)")
        from csc_bayes.predict import predict

        table = predict(fit, authority=authority, ci_prob=ci_prob)
        return trend(table, synthetic=synthetic), table
    if kind == "ppc":
        return ppc(fit, synthetic=synthetic), None
    raise ValueError(f"unknown plot kind {kind!r}; choose one of {', '.join(KINDS)}")
