"""Names in figures: the funnel plot names only what a reader needs, and no two names overlap.

Structure, not pixels: how many labels, which authorities, and that the labels' boxes (the
renderer's window extents) neither overlap each other nor leave the axes.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from csc_bayes.authorities import authorities_in_year
from csc_bayes.errors import UnknownAuthorityError
from csc_bayes.plots import funnel
from csc_bayes.plots._labels import LABEL_GID, LEADER_GID, Label, place_labels
from csc_bayes.plots.funnel import MAX_LABELS, funnel_limits


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def crowded_table(seed: int = 3) -> pd.DataFrame:
    """Every 2024 authority with real names and codes; counts far more spread than Poisson, so
    that dozens lie outside Poisson limits (as on the real panel for the AR(1) models)."""
    rng = np.random.default_rng(seed)
    who = authorities_in_year(2024)[["la_code", "ons_code", "la_name", "region"]]
    n = len(who)
    population = rng.lognormal(np.log(60_000), 0.6, n).round()
    expected = population * 40 / 10_000
    observed = rng.poisson(expected * np.exp(rng.normal(0, 0.35, n)))
    return who.assign(
        year=2024,
        population=population,
        expected_count_median=expected,
        observed=observed.astype(float),
    ).reset_index(drop=True)


def labels_of(ax) -> list:
    return [t for t in ax.texts if t.get_gid() == LABEL_GID]


def assert_no_overlap_inside_axes(fig, ax) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels_of(ax)]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    area = ax.get_window_extent(renderer)
    for box in boxes:
        assert area.x0 - 1 <= box.x0 and box.x1 <= area.x1 + 1
        assert area.y0 - 1 <= box.y0 and box.y1 <= area.y1 + 1


def outside_sets(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Names beyond the 99.8% Poisson limits, above and below, most extreme first (computed
    here with scipy, independently of the plot's own ranking)."""
    e = table["expected_count_median"].to_numpy()
    o = table["observed"].to_numpy()
    limits = funnel_limits(e, probs=(0.998,))
    ratio = o / e
    above = ratio > limits["upper_0.998"].to_numpy()
    below = ratio < limits["lower_0.998"].to_numpy()
    p_above = stats.poisson.logsf(o - 1, e)
    p_below = stats.poisson.logcdf(o, e)
    names = table["la_name"].to_numpy()
    up = names[above][np.argsort(p_above[above], kind="stable")]
    down = names[below][np.argsort(p_below[below], kind="stable")]
    return list(up), list(down)


def test_funnel_names_at_most_five_each_side_the_most_extreme():
    table = crowded_table()
    up, down = outside_sets(table)
    assert len(up) > MAX_LABELS and len(down) > MAX_LABELS  # crowded, as on the real panel
    fig = funnel(table)
    ax = fig.axes[0]
    names = [t.get_text() for t in labels_of(ax)]
    assert len(names) == 2 * MAX_LABELS
    assert set(names) == set(up[:MAX_LABELS]) | set(down[:MAX_LABELS])
    assert f"{len(up) + len(down)} outside the 99.8% limits" in ax.get_title(loc="left")
    assert "the 10 most extreme named" in ax.get_title(loc="left")
    assert_no_overlap_inside_axes(fig, ax)


def test_funnel_highlight_is_always_named_bold_and_black():
    table = crowded_table()
    fig = funnel(table, highlight=["Hull", "E10000002", 383])
    ax = fig.axes[0]
    labels = {t.get_text(): t for t in labels_of(ax)}
    for name in ("Kingston upon Hull, City of", "Buckinghamshire", "Leeds"):
        assert labels[name].get_fontweight() == "bold"
    assert len(labels) <= 2 * MAX_LABELS + 3
    points = next(c for c in ax.collections if c.get_gid() == "points")
    black = np.all(np.isclose(points.get_facecolors()[:, :3], 0.0), axis=1)
    assert black.sum() == 3
    assert_no_overlap_inside_axes(fig, ax)


def test_funnel_labels_can_be_limited_or_turned_off():
    table = crowded_table()
    ax = funnel(table, max_labels=2).axes[0]
    assert len(labels_of(ax)) == 4
    ax = funnel(table, label_outside=False).axes[0]
    assert labels_of(ax) == []
    assert "named" not in ax.get_title(loc="left")


def test_funnel_unknown_highlight_suggests():
    with pytest.raises(UnknownAuthorityError, match="did you mean 383 Leeds"):
        funnel(crowded_table(), highlight=["Leds"])


def test_labels_of_crowded_points_do_not_overlap():
    # twenty labels on points almost on top of each other: the labels spread out and get leaders
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    x = np.linspace(10, 10.5, 20)
    ax.scatter(x, np.full(20, 5.0))
    ax.set_xlim(0, 20)
    ax.set_ylim(0, 10)
    texts = place_labels(ax, [Label(f"Authority number {i}", xi, 5.0) for i, xi in enumerate(x)])
    assert len(texts) == 20
    assert_no_overlap_inside_axes(fig, ax)
    assert sum(a.get_gid() == LEADER_GID for a in ax.texts) >= 10


@pytest.mark.realdata
def test_funnel_on_the_real_panel_names_few_without_overlap(real_build):
    """The official 2024 CPP counts against a deliberately crude expected count (the national
    rate): many authorities lie outside the Poisson limits, as for the AR(1) models."""

    panel = real_build[0]
    rows = panel[(panel["year"] == 2024) & panel["cpp"].notna()].copy()
    rate = rows["cpp"].sum() / rows["population"].sum()
    rows["expected_count_median"] = rows["population"].astype(float) * float(rate)
    rows["observed"] = rows["cpp"].astype(float)
    up, down = outside_sets(rows.reset_index(drop=True))
    assert len(up) + len(down) > 40
    fig = funnel(rows, highlight=["Hull"])
    ax = fig.axes[0]
    names = {t.get_text() for t in labels_of(ax)}
    assert "Kingston upon Hull, City of" in names
    assert len(names) <= 2 * MAX_LABELS + 1
    assert_no_overlap_inside_axes(fig, ax)
