"""Funnel plot: each authority's need-standardised observed rate against its expected count.

An authority with expected count E that is exactly as expected has an observed count
O ~ NegativeBinomial(mean E, phi), with phi drawn from the posterior (a mixture over the draws),
or Poisson(E) for a Poisson fit. The limits are that predictive distribution's central
quantiles, interpolated between integers as in Spiegelhalter (2005), divided by E and
multiplied by the reference rate: the funnel narrows as E grows. The y value of an authority
is its standardised rate, (O / E) x reference rate, where the reference rate is the pooled
expected rate sum(E) / sum(population).

Table columns (as :func:`csc_bayes.excess.excess` returns them): la_code, la_name, region,
year, population, observed, expected_count_median (ons_code is used for highlights when there).

Only what a reader needs is named: the highlighted authorities and, beyond the widest limits,
at most ``max_labels`` on each side, the most extreme first (smallest predictive tail
probability of the observed count under the limits' distribution; :func:`outside_ranking`).
Labels are placed so that they do not overlap (:func:`csc_bayes.plots._labels.place_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import stats
from scipy.special import logsumexp

from csc_bayes.plots import _style
from csc_bayes.plots._labels import Label, highlighted_codes, place_labels

#: the two funnel limits drawn by default (central probabilities: about 2 and 3 SD)
DEFAULT_PROBS = (0.95, 0.998)
#: at most this many posterior draws of phi enter the predictive mixture
MAX_PHI_DRAWS = 200
PER = 10_000
#: at most this many authorities beyond the widest limits are named on each side
MAX_LABELS = 5


def _mixture_cdf(k: np.ndarray, expected: np.ndarray, phi: np.ndarray | None) -> np.ndarray:
    """P(O <= k) for each (k, E) pair, averaged over the phi draws (Poisson when None)."""
    if phi is None:
        return stats.poisson.cdf(k, expected)
    p = phi[None, :] / (phi[None, :] + expected[:, None])
    return stats.nbinom.cdf(k[:, None], phi[None, :], p).mean(axis=1)


def _quantile(expected: np.ndarray, q: float, phi: np.ndarray | None) -> np.ndarray:
    """Interpolated q-quantile of O for each E (Spiegelhalter 2005, appendix A.1.1)."""
    lo = np.zeros(len(expected))
    hi = np.maximum(expected * 20 + 100, 1.0)
    # binary search: the smallest integer r with F(r) >= q lies in (lo - 1, hi]
    while np.any(hi - lo > 0):
        mid = np.floor((lo + hi) / 2)
        ok = _mixture_cdf(mid, expected, phi) >= q
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    r = hi
    f_r = _mixture_cdf(r, expected, phi)
    f_prev = _mixture_cdf(r - 1, expected, phi)
    step = np.where(f_r > f_prev, f_r - f_prev, 1.0)
    return np.maximum(r - (f_r - q) / step, 0.0)


def _thin(phi: Sequence[float] | np.ndarray | float | None) -> np.ndarray | None:
    """At most :data:`MAX_PHI_DRAWS` evenly spaced draws of phi (None for Poisson)."""
    if phi is None:
        return None
    draws = np.atleast_1d(np.asarray(phi, dtype=float)).ravel()
    if len(draws) > MAX_PHI_DRAWS:
        draws = draws[np.linspace(0, len(draws) - 1, MAX_PHI_DRAWS).round().astype(int)]
    return draws


def tail_log_probability(
    observed: np.ndarray, expected: np.ndarray, phi: Sequence[float] | np.ndarray | float | None
) -> np.ndarray:
    """log P(O >= o) for an observed count above E, log P(O <= o) for one at or below E.

    O follows the limits' distribution for an authority as expected (the NB mixture over the
    phi draws, or Poisson(E)). The smaller, the further the authority lies beyond its limits.
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    above = o > e
    draws = _thin(phi)
    if draws is None:
        upper = stats.poisson.logsf(o - 1, e)
        lower = stats.poisson.logcdf(o, e)
    else:
        p = draws[None, :] / (draws[None, :] + e[:, None])
        n = np.log(len(draws))
        upper = logsumexp(stats.nbinom.logsf(o[:, None] - 1, draws[None, :], p), axis=1) - n
        lower = logsumexp(stats.nbinom.logcdf(o[:, None], draws[None, :], p), axis=1) - n
    return np.where(above, upper, lower)


def outside_ranking(
    observed: np.ndarray,
    expected: np.ndarray,
    outside: np.ndarray,
    phi: Sequence[float] | np.ndarray | float | None,
    *,
    max_labels: int = MAX_LABELS,
) -> np.ndarray:
    """Positions of the authorities to name: of those ``outside`` the limits, at most
    ``max_labels`` above expected and ``max_labels`` below, the most extreme first (smallest
    :func:`tail_log_probability`; ties by the larger distance on the log scale)."""
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    logp = tail_log_probability(o, e, phi)
    distance = np.abs(np.log(np.maximum(o, 0.5) / e))
    chosen: list[int] = []
    for side in (o > e, o <= e):
        idx = np.flatnonzero(np.asarray(outside, dtype=bool) & side)
        order = np.lexsort((-distance[idx], logp[idx]))
        chosen += [int(i) for i in idx[order][:max_labels]]
    return np.asarray(chosen, dtype=int)


def funnel_limits(
    expected: Sequence[float] | np.ndarray,
    *,
    phi: Sequence[float] | np.ndarray | float | None = None,
    probs: Sequence[float] = DEFAULT_PROBS,
) -> pd.DataFrame:
    """Limits of observed / expected for an authority that is as expected, per expected count.

    Returns one row per value of ``expected`` with columns ``expected`` and, per probability p,
    ``lower_<p>`` and ``upper_<p>`` (ratios O / E; multiply by a rate to get rate limits).
    ``phi`` is the NB concentration (posterior draws; at most :data:`MAX_PHI_DRAWS` evenly
    spaced ones are used), None for Poisson limits.
    """
    expected = np.asarray(expected, dtype=float)
    if np.any(expected <= 0):
        raise ValueError("expected counts must be positive")
    phi_draws = _thin(phi)
    out = {"expected": expected}
    for p in probs:
        if not 0 < p < 1:
            raise ValueError(f"funnel probabilities must lie in (0, 1), got {p!r}")
        out[f"lower_{p:g}"] = _quantile(expected, (1 - p) / 2, phi_draws) / expected
        out[f"upper_{p:g}"] = _quantile(expected, (1 + p) / 2, phi_draws) / expected
    return pd.DataFrame(out)


def funnel(
    table: pd.DataFrame,
    *,
    phi: Sequence[float] | np.ndarray | float | None = None,
    probs: Sequence[float] = DEFAULT_PROBS,
    label_outside: bool = True,
    max_labels: int = MAX_LABELS,
    highlight: Sequence[str | int] = (),
    title: str | None = None,
    limits_label: str | None = None,
    synthetic: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """Draw the funnel plot of one year's authorities.

    Args:
        table: one row per authority (see the module docstring); rows without an observed
            count are left out.
        phi: posterior draws of the NB concentration (None: Poisson limits).
        probs: central probabilities of the limits, narrowest first.
        label_outside: name the authorities outside the widest limits: at most
            ``max_labels`` on each side (above and below), the most extreme first.
        max_labels: how many to name on each side.
        highlight: authorities always named and drawn in black (names, short names, DfE
            numbers or ONS codes, as :func:`csc_bayes.authorities.resolve_authority` reads them).
        title: replaces the default title.
        limits_label: what the limits are, for the default title (default: "Poisson" or
            "negative binomial (posterior phi)").
        synthetic: stamp the figure "SYNTHETIC DATA".
        ax: draw on this axes instead of a new figure.

    Returns:
        The matplotlib Figure.
    """
    rows = table[table["observed"].notna()].reset_index(drop=True)
    if rows.empty:
        raise ValueError("no authority in the table has an observed count")
    expected = rows["expected_count_median"].to_numpy(dtype=float)
    observed = rows["observed"].to_numpy(dtype=float)
    ratio = observed / expected
    reference = float(expected.sum() / rows["population"].to_numpy(dtype=float).sum() * PER)
    y = ratio * reference
    grid = np.geomspace(expected.min() * 0.8, expected.max() * 1.25, 160)
    limits = funnel_limits(grid, phi=phi, probs=probs)
    widest = sorted(probs)[-1]
    narrowest = sorted(probs)[0]
    point_limits = funnel_limits(expected, phi=phi, probs=(narrowest, widest))
    outside_wide = (ratio < point_limits[f"lower_{widest:g}"]) | (
        ratio > point_limits[f"upper_{widest:g}"]
    )
    outside_narrow = (ratio < point_limits[f"lower_{narrowest:g}"]) | (
        ratio > point_limits[f"upper_{narrowest:g}"]
    )

    with _style.style():
        fig, ax = _style.figure_and_axes(ax, (_style.A4_WIDTH, 5.0))
        ax.axhline(reference, color=_style.REFERENCE_COLOUR, lw=0.9, gid="reference")
        styles = ["--", ":", "-."]
        for i, p in enumerate(sorted(probs)):
            for side in ("lower", "upper"):
                ax.plot(
                    grid,
                    limits[f"{side}_{p:g}"] * reference,
                    color=_style.REFERENCE_COLOUR,
                    ls=styles[i % len(styles)],
                    lw=0.9,
                    gid=f"limit_{side}_{p:g}",
                    label=f"{p:.1%} limits" if side == "lower" else None,
                )
        chosen = highlighted_codes(table, highlight) if len(highlight) else set()
        unseen = chosen - set(rows["la_code"].astype(str))
        if unseen:
            who = table[table["la_code"].astype(str).isin(unseen)]["la_name"].unique()
            raise ValueError(f"highlight: {', '.join(map(str, who))} has no observed count here")
        is_highlight = rows["la_code"].astype(str).isin(chosen).to_numpy()
        colours = [
            _style.HIGHLIGHT_COLOUR if h else _style.region_colour(r)
            for h, r in zip(is_highlight, rows["region"], strict=True)
        ]
        edge = np.where(outside_narrow, "#000000", "none")
        ax.scatter(
            expected,
            y,
            c=colours,
            s=np.where(is_highlight, 40, 18),
            marker="o",
            edgecolors=edge,
            linewidths=0.8,
            zorder=3,
            gid="points",
        )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        ax.set_xlabel("Expected count (need-adjusted, posterior median)")
        ax.set_ylabel("Observed rate standardised for need\n(per 10,000 children)")
        handles, _ = ax.get_legend_handles_labels()
        handles += [
            Line2D([], [], color=_style.region_colour(r), marker="o", ls="", label=r)
            for r in sorted(rows["region"].unique())
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        named = (
            outside_ranking(observed, expected, outside_wide, phi, max_labels=max_labels)
            if label_outside
            else np.zeros(0, dtype=int)
        )
        if title is None:
            years = sorted({int(v) for v in rows["year"]}) if "year" in rows.columns else None
            family = limits_label or (
                "Poisson" if phi is None else "negative binomial (posterior phi)"
            )
            n_out = int(outside_wide.sum())
            title = (
                f"Funnel plot, {_style.window_text(years)}: {len(rows)} authorities; "
                f"{family} limits for an authority as expected; "
                f"{n_out} outside the {widest:.1%} limits"
                + (f", the {len(named)} most extreme named" if 0 < len(named) < n_out else "")
            )
        ax.set_title(title, loc="left", wrap=True)
        order = [int(i) for i in np.flatnonzero(is_highlight)]
        order += [int(i) for i in named if not is_highlight[i]]
        place_labels(
            ax,
            [
                Label(
                    text=str(rows["la_name"].iloc[i]),
                    x=float(expected[i]),
                    y=float(y[i]),
                    bold=bool(is_highlight[i]),
                    colour=_style.HIGHLIGHT_COLOUR if is_highlight[i] else "#333333",
                )
                for i in order
            ],
        )
        return _style.finish(fig, synthetic=synthetic)
