"""One authority over time: observed rate, fitted rate, expected need and next-year forecast.

Takes the table of :func:`csc_bayes.predict.predict` for one authority (every fitted year plus
the next year, its default): columns la_name, year, kind (observed / forecast / new_group),
observed_rate, rate_median / lower / upper (posterior predictive rate per 10,000) and
expected_rate_median / lower / upper.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from csc_bayes.plots import _style

FITTED_COLOUR = "#332288"
EXPECTED_COLOUR = "#117733"
FORECAST_COLOUR = "#CC6677"


def trend(
    table: pd.DataFrame,
    *,
    ci_prob: float | None = None,
    title: str | None = None,
    synthetic: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Draw observed, fitted (predictive interval), expected need and the forecast by year.

    Args:
        table: ``predict(fit, authority=...)`` rows of one authority.
        ci_prob: interval width for the caption; default ``table.attrs["ci_prob"]`` or 0.9.
        title: replaces the default title.
        synthetic: stamp the figure "SYNTHETIC DATA".
        ax: draw on this axes instead of a new figure.

    Returns:
        The matplotlib Figure.
    """
    names = table["la_name"].astype(str).unique()
    if len(names) != 1:
        raise ValueError(f"trend draws one authority; the table has {len(names)}: {names[:5]}")
    if ci_prob is None:
        ci_prob = float(table.attrs.get("ci_prob", 0.9))
    rows = table.sort_values("year").reset_index(drop=True)
    fitted = rows[rows["kind"] == "observed"]
    ahead = rows[rows["kind"] != "observed"]
    with _style.style():
        fig, ax = _style.figure_and_axes(ax, (_style.A4_WIDTH, 4.0))
        ax.fill_between(
            rows["year"],
            rows["expected_rate_lower"],
            rows["expected_rate_upper"],
            color=EXPECTED_COLOUR,
            alpha=0.15,
            lw=0,
            gid="expected_band",
        )
        ax.plot(
            rows["year"],
            rows["expected_rate_median"],
            color=EXPECTED_COLOUR,
            ls="--",
            label=f"expected need (median, {ci_prob:.0%} interval)",
            gid="expected",
        )
        if not fitted.empty:
            ax.fill_between(
                fitted["year"],
                fitted["rate_lower"],
                fitted["rate_upper"],
                color=FITTED_COLOUR,
                alpha=0.2,
                lw=0,
                gid="fitted_band",
            )
            ax.plot(
                fitted["year"],
                fitted["rate_median"],
                color=FITTED_COLOUR,
                label=f"fitted (posterior predictive median, {ci_prob:.0%} interval)",
                gid="fitted",
            )
        observed = rows[rows["observed_rate"].notna()]
        ax.plot(
            observed["year"],
            observed["observed_rate"],
            "o",
            color="#000000",
            ms=4,
            label="observed",
            gid="observed",
        )
        if not ahead.empty:
            mid = ahead["rate_median"]
            ax.errorbar(
                ahead["year"],
                mid,
                yerr=[mid - ahead["rate_lower"], ahead["rate_upper"] - mid],
                fmt="D",
                color=FORECAST_COLOUR,
                ms=5,
                capsize=3,
                label=f"forecast (median, {ci_prob:.0%} predictive interval)",
                gid="forecast",
            )
        ax.set_xticks(rows["year"], [str(y) for y in rows["year"]])
        ax.set_xlabel("Reporting year (ending 31 March)")
        ax.set_ylabel("Rate per 10,000 children")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        if title is None:
            years = [int(y) for y in rows["year"]]
            title = f"{names[0]}: observed, fitted and expected rates, {_style.window_text(years)}"
        ax.set_title(title, loc="left")
        return _style.finish(fig, synthetic=synthetic)
