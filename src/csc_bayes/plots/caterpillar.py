"""Caterpillar plot: every authority ranked by an LA-level quantity, with its intervals.

The table has one row per authority with ``la_code``, ``la_name``, ``region`` and, for the
plotted quantity ``value``, the columns named by :func:`interval_columns`: the point estimate
(``value_median`` or ``value``), the ``ci_prob`` interval (``value_lower``, ``value_upper``) and,
when present, the 50% interval (``value_lower50``, ``value_upper50``): the columns that
:func:`csc_bayes.excess.excess` returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter

from csc_bayes.errors import UnknownAuthorityError
from csc_bayes.plots import _style
from csc_bayes.plots._labels import highlighted_codes

#: readable names of the quantities the answers layer reports, for axis labels and titles
LABELS = {
    "excess_ratio": "Observed / expected need (excess ratio)",
    "excess_children": "Children above expected need",
    "rank": "Rank of excess ratio (1 = highest)",
}
#: tick marks of a log-scale ratio axis (symmetric around 1: 0.5 and 2, 0.8 and 1.25, ...)
RATIO_TICKS = (0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5)


def interval_columns(table: pd.DataFrame, value: str) -> dict[str, str | None]:
    """Column names for ``value``: point, lower, upper (required), lower_50, upper_50 (optional).

    The point estimate is ``value_median`` or, failing that, ``value``.
    """
    point = f"{value}_median" if f"{value}_median" in table.columns else value
    names: dict[str, str | None] = {
        "point": point,
        "lower": f"{value}_lower",
        "upper": f"{value}_upper",
        "lower_50": f"{value}_lower50",
        "upper_50": f"{value}_upper50",
    }
    missing = [names[k] for k in ("point", "lower", "upper") if names[k] not in table.columns]
    if missing:
        raise KeyError(
            f"the table has no column(s) {missing} for value {value!r}; it has "
            f"{list(table.columns)}"
        )
    for key in ("lower_50", "upper_50"):
        if names[key] not in table.columns:
            names[key] = None
    return names


def _match_highlight(
    rows: pd.DataFrame, table: pd.DataFrame, highlight: Sequence[str | int], region: str | None
) -> np.ndarray:
    """Boolean mask of ``rows`` (``table``, or its rows of ``region``) named in ``highlight``."""
    codes = highlighted_codes(table, highlight)
    outside = codes - set(rows["la_code"].astype(str))
    if outside:
        who = table[table["la_code"].astype(str).isin(outside)].drop_duplicates("la_code")
        listed = ", ".join(f"{n} ({r})" for n, r in zip(who["la_name"], who["region"], strict=True))
        raise UnknownAuthorityError(
            f"highlight: {listed} not in the region shown ({region}); drop the highlight or "
            "show all regions"
        )
    return rows["la_code"].astype(str).isin(codes).to_numpy()


def caterpillar_table(
    table: pd.DataFrame,
    *,
    value: str = "excess_ratio",
    region: str | None = None,
    highlight: Sequence[str] = (),
) -> pd.DataFrame:
    """The rows a caterpillar plot draws, top to bottom: highest point estimate first.

    Columns: la_code, ons_code, la_name, region, the interval columns of ``value`` and
    ``highlighted``; ``region`` keeps one region only.
    """
    cols = interval_columns(table, value)
    rows = table
    if region is not None:
        regions = sorted(table["region"].astype(str).unique())
        if region not in regions:
            raise ValueError(f"region {region!r} is not in the table; it has {regions}")
        rows = table[table["region"].astype(str) == region]
    rows = rows.assign(highlighted=_match_highlight(rows, table, highlight, region))
    rows = rows.sort_values([cols["point"], "la_name"], ascending=[False, True], kind="stable")
    ident = [c for c in ("la_code", "ons_code", "la_name", "region", "year") if c in rows.columns]
    keep = ident + [c for c in cols.values() if c is not None]
    extra = [c for c in rows.columns if c.startswith("p_")]
    return rows[keep + extra + ["highlighted"]].reset_index(drop=True)


def _draw(
    ax: Axes,
    rows: pd.DataFrame,
    cols: dict[str, str | None],
    *,
    colour_by_region: bool,
    prob: str | None,
    reference: float | None,
    log_scale: bool,
    fontsize: float,
) -> None:
    """Draw one block of ranked rows (row 0 at the top) on ``ax``."""
    y = np.arange(len(rows))
    highlighted = rows["highlighted"].to_numpy()
    colours = [
        _style.HIGHLIGHT_COLOUR
        if h
        else (_style.region_colour(r) if colour_by_region else _style.NEUTRAL_COLOUR)
        for h, r in zip(highlighted, rows["region"], strict=True)
    ]
    if reference is not None:
        ax.axvline(reference, color=_style.REFERENCE_COLOUR, lw=0.8, ls="--", zorder=0)
    thin = ax.hlines(y, rows[cols["lower"]], rows[cols["upper"]], colors=colours, lw=0.7)
    thin.set_gid("interval_ci")
    if cols["lower_50"] is not None:
        thick = ax.hlines(y, rows[cols["lower_50"]], rows[cols["upper_50"]], colors=colours, lw=2.2)
        thick.set_gid("interval_50")
    sizes = np.where(highlighted, 28, 10)
    points = ax.scatter(rows[cols["point"]], y, c=colours, s=sizes, zorder=3, linewidths=0)
    points.set_gid("point")
    ax.set_yticks(y, rows["la_name"].astype(str), fontsize=fontsize)
    for label, h in zip(ax.get_yticklabels(), highlighted, strict=True):
        if h:
            label.set_fontweight("bold")
            label.set_color(_style.HIGHLIGHT_COLOUR)
        else:
            label.set_color("#333333")
    ax.set_ylim(len(rows) - 0.5, -0.5)  # row 0 at the top
    ax.tick_params(axis="y", length=0, pad=2)
    if log_scale:
        ax.set_xscale("log")
    if prob is not None:
        for yi, p in zip(y, rows[prob], strict=True):
            ax.annotate(
                f"{p:.2f}",
                (1.0, yi),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=fontsize * 0.9,
                color="#555555",
            )


def caterpillar(
    table: pd.DataFrame,
    *,
    value: str = "excess_ratio",
    by_region: bool = False,
    region: str | None = None,
    highlight: Sequence[str] = (),
    prob: str | None = None,
    log_scale: bool | None = None,
    reference: float | None = None,
    ci_prob: float | None = None,
    title: str | None = None,
    synthetic: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Rank every authority by ``value`` and draw its point estimate and intervals.

    Args:
        table: one row per authority (see the module docstring for the columns).
        value: the quantity to rank and plot, e.g. ``"excess_ratio"``.
        by_region: one panel per region (needs a new figure, so no ``ax``).
        region: show one region only.
        highlight: authorities drawn in black with bold labels: names, short names, DfE
            numbers or ONS codes, as :func:`csc_bayes.authorities.resolve_authority` reads them.
        prob: a probability column printed at the right of each row, e.g. ``"p_excess"``
            (P(excess > 0)).
        log_scale: log x axis; default True for ratios (``value`` ending in ``ratio``).
        reference: the "as expected" line; default 1 for ratios, 0 for other quantities
            named ``excess*``, else none.
        ci_prob: width of the thin interval, for the caption; default ``table.attrs["ci_prob"]``
            or 0.9.
        title: replaces the default title (what is shown, how many authorities, the year).
        synthetic: stamp the figure "SYNTHETIC DATA".
        ax: draw on this axes instead of a new A4-sized figure.

    Returns:
        The matplotlib Figure.
    """
    if by_region and ax is not None:
        raise ValueError("by_region draws one panel per region and cannot use a given ax")
    cols = interval_columns(table, value)
    rows = caterpillar_table(table, value=value, region=region, highlight=highlight)
    if prob is not None and prob not in rows.columns:
        raise KeyError(f"probability column {prob!r} is not in the table")
    is_ratio = value.endswith("ratio")
    log_scale = is_ratio if log_scale is None else log_scale
    if reference is None:
        reference = 1.0 if is_ratio else (0.0 if value.startswith("excess") else None)
    ci_prob = float(table.attrs.get("ci_prob", 0.9)) if ci_prob is None else ci_prob
    colour_by_region = region is None and not by_region and rows["region"].nunique() > 1
    n = len(rows)
    fontsize = float(np.clip(0.8 * 72 * (_style.A4_HEIGHT - 1.5) / max(n, 1), 4.5, 8.0))
    height = float(np.clip(0.12 * n + 1.8, 3.0, _style.A4_HEIGHT))
    label = LABELS.get(value, value.replace("_", " "))
    kwargs = dict(prob=prob, reference=reference, log_scale=log_scale, fontsize=fontsize)

    with _style.style():
        if by_region:
            groups = [(r, g.reset_index(drop=True)) for r, g in rows.groupby("region", sort=True)]
            fig, axes = plt.subplots(
                len(groups),
                1,
                sharex=True,
                figsize=(_style.A4_WIDTH, height),
                height_ratios=[len(g) + 2 for _, g in groups],
                layout="constrained",
                squeeze=False,
            )
            for panel_ax, (name, group) in zip(axes[:, 0], groups, strict=True):
                _draw(panel_ax, group, cols, colour_by_region=False, **kwargs)
                panel_ax.set_title(name, loc="left", fontsize=9, color=_style.region_colour(name))
            bottom = axes[-1, 0]
        else:
            fig, bottom = _style.figure_and_axes(ax, (_style.A4_WIDTH, height))
            _draw(bottom, rows, cols, colour_by_region=colour_by_region, **kwargs)
            if colour_by_region:
                handles = [
                    Line2D([], [], color=_style.region_colour(r), marker="o", lw=2, label=r)
                    for r in sorted(rows["region"].unique())
                ]
                bottom.legend(
                    handles=handles,
                    loc="upper center",
                    bbox_to_anchor=(0.5, -0.06 if n > 40 else -0.15),
                    ncols=3,
                )
        bottom.set_xlabel(label)
        if log_scale:
            lo = float(rows[cols["lower"]].min())
            hi = float(rows[cols["upper"]].max())
            ticks = [t for t in RATIO_TICKS if lo / 1.1 <= t <= hi * 1.1]
            bottom.set_xticks(ticks, [f"{t:g}" for t in ticks])
            bottom.xaxis.set_minor_formatter(NullFormatter())
        if title is None:
            years = sorted({int(y) for y in table["year"]}) if "year" in table.columns else None
            where = f"{region}, " if region else ""
            title = (
                f"{label}: {n} authorities, {where}{_style.window_text(years)}\n"
                f"median, 50% and {ci_prob:.0%} intervals"
            )
        if by_region:
            fig.suptitle(title, fontsize=10, fontweight="bold")
        else:
            bottom.set_title(title, loc="left")
        return _style.finish(fig, synthetic=synthetic)
