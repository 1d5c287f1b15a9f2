"""Variance decomposition as horizontal bars (posterior median share) with interval whiskers.

Takes the result of :func:`csc_bayes.variance.explain_variance` (or its ``to_frame()``: columns
measure, component, median, lower, upper) and draws the rows of one ``measure``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from csc_bayes.plots import _style

#: readable names of the variance components
COMPONENT_LABELS = {
    "la": "Authority (not explained by covariates)",
    "region": "Region",
    "year": "Year (common shocks)",
    "overdispersion": "Overdispersion (residual)",
    "poisson_noise": "Poisson noise (residual)",
    "la_slope": "Authority slope",
    "la_trend": "Authority trend",
    "la_year": "Authority-year (AR(1) persistence)",
}
MEASURE_LABELS = {
    "share": "Share of latent-scale variance",
    "finite_sd": "Finite-population SD (log scale)",
    "superpopulation_sd": "Superpopulation SD (log scale)",
}
_RANDOM = {"la", "region", "year", "la_slope", "la_trend", "la_year"}
_RESIDUAL = {"overdispersion", "poisson_noise"}
_COLOURS = {"covariate": "#117733", "random": "#332288", "residual": "#AAAAAA"}


def component_label(component: str) -> str:
    """A readable name: fixed ones for random effects and residuals, else the group name."""
    return COMPONENT_LABELS.get(component, str(component).replace("_", " ").capitalize())


def _kind(component: str) -> str:
    if component in _RESIDUAL:
        return "residual"
    return "random" if component in _RANDOM else "covariate"


def variance_rows(result: Any, *, measure: str = "share") -> pd.DataFrame:
    """The rows of ``measure`` from an ``explain_variance`` result or its summary table."""
    table = result.to_frame() if hasattr(result, "to_frame") else pd.DataFrame(result)
    rows = table[table["measure"] == measure].reset_index(drop=True)
    if rows.empty:
        raise ValueError(
            f"no rows with measure {measure!r}; the table has {sorted(table['measure'].unique())}"
        )
    return rows


def variance(
    result: Any,
    *,
    measure: str = "share",
    ci_prob: float | None = None,
    title: str | None = None,
    synthetic: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Bars of each component's posterior median ``measure`` with ``ci_prob`` whiskers.

    Args:
        result: an ``explain_variance`` result or its ``to_frame()`` table.
        measure: ``"share"`` (default), ``"finite_sd"`` or ``"superpopulation_sd"``.
        ci_prob: interval width for the caption; default the result's own ``ci_prob`` or 0.9.
        title: replaces the default title.
        synthetic: stamp the figure "SYNTHETIC DATA".
        ax: draw on this axes instead of a new figure.

    Returns:
        The matplotlib Figure; bars are listed top to bottom in table order.
    """
    rows = variance_rows(result, measure=measure)
    if ci_prob is None:
        ci_prob = float(getattr(result, "ci_prob", 0.9))
    y = np.arange(len(rows))
    median = rows["median"].to_numpy(dtype=float)
    err = np.vstack([median - rows["lower"].to_numpy(), rows["upper"].to_numpy() - median])
    kinds = [_kind(c) for c in rows["component"]]
    with _style.style():
        fig, ax = _style.figure_and_axes(ax, (_style.A4_WIDTH, 0.35 * len(rows) + 1.6))
        bars = ax.barh(
            y, median, color=[_COLOURS[k] for k in kinds], height=0.6, gid="bars", zorder=2
        )
        for bar, component in zip(bars, rows["component"], strict=True):
            bar.set_gid(f"bar_{component}")
        ax.errorbar(median, y, xerr=err, fmt="none", ecolor="#222222", lw=1.0, capsize=2.5)
        ax.axvline(0, color=_style.REFERENCE_COLOUR, lw=0.8)
        ax.set_yticks(y, [component_label(c) for c in rows["component"]])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.tick_params(axis="y", length=0)
        ax.set_xlabel(MEASURE_LABELS.get(measure, measure.replace("_", " ")))
        if measure == "share":
            ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        if title is None:
            title = (
                f"Where the variation comes from: {MEASURE_LABELS.get(measure, measure).lower()}"
                f"\nmedian and {ci_prob:.0%} interval; green: covariates, blue: random effects,"
                "\ngrey: residual"
            )
        ax.set_title(title, loc="left")
        return _style.finish(fig, synthetic=synthetic)
