"""Naming authorities in figures: which ones (highlights) and where (labels that do not overlap).

:func:`highlighted_codes` reads ``highlight`` arguments through the package's one authority
resolver. :func:`place_labels` writes text labels next to points, moving each one, greedily and
in order of importance, to the first nearby position where it overlaps no label placed before
it, no labelled point and nothing outside the axes; a label moved off its point gets a thin
leader line. Positions are measured with the figure's own renderer after its layout has run, as
offsets in points from the data point, so they hold at any dpi.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.text import Text
from matplotlib.transforms import Bbox, offset_copy

from csc_bayes.authorities import resolve_authorities
from csc_bayes.errors import UnknownAuthorityError

#: gap kept between two labels, and between a label and its point, in points
LABEL_GAP = 2.0
#: how far (in label heights) a label may move up or down from its point
MAX_STEPS = 12
#: half the width of a labelled point's marker, in points (labels keep clear of it)
MARKER_RADIUS = 3.5
#: gid of every label :func:`place_labels` writes (tests and callers find them by it)
LABEL_GID = "point-label"
#: gid of the leader line from a moved label to its point
LEADER_GID = "point-label-leader"


def highlighted_codes(table: pd.DataFrame, highlight: Sequence[str | int] | str | int) -> set[str]:
    """DfE numbers of the authorities of ``table`` named in ``highlight``.

    Each name goes through :func:`csc_bayes.authorities.resolve_authority` (names, short names
    such as "Hull", DfE numbers, current and former ONS codes); an unknown one raises
    :class:`~csc_bayes.errors.UnknownAuthorityError` with the closest matches.
    """
    if isinstance(highlight, str | int):
        highlight = [highlight]
    if not len(highlight):
        return set()
    candidates = table.drop_duplicates("la_code")
    if "ons_code" not in candidates.columns:
        candidates = candidates.assign(ons_code="")
    try:
        return set(resolve_authorities(list(highlight), candidates))
    except UnknownAuthorityError as exc:
        raise UnknownAuthorityError(f"highlight: {exc}") from None


@dataclass(frozen=True)
class Label:
    """One label to place: its text, its point (data coordinates) and how it is drawn."""

    text: str
    x: float
    y: float
    bold: bool = False
    colour: str = "#222222"


def _candidate_offsets(height: float, step_gap: float) -> list[tuple[float, float, str]]:
    """(dx, dy, ha) in points, nearest first: beside the point, then further up or down."""
    out: list[tuple[float, float, str]] = []
    dx = MARKER_RADIUS + step_gap + 0.5
    for k in range(MAX_STEPS + 1):
        for sign in (0,) if k == 0 else (1, -1):
            dy = sign * k * (height + step_gap)
            out += [(dx, dy, "left"), (-dx, dy, "right")]
    return out


def _overlap(box: Bbox, others: list[Bbox]) -> float:
    """Total area of ``box`` that overlaps the ``others``."""
    total = 0.0
    for other in others:
        w = min(box.x1, other.x1) - max(box.x0, other.x0)
        h = min(box.y1, other.y1) - max(box.y0, other.y0)
        if w > 0 and h > 0:
            total += w * h
    return total


def place_labels(ax: Axes, labels: Sequence[Label], *, fontsize: float = 7.0) -> list[Text]:
    """Write ``labels`` (most important first) on ``ax`` without overlaps; return the texts.

    Each label goes to the first position, nearest its point first, whose box (grown by
    :data:`LABEL_GAP`) overlaps no earlier label and no labelled point and lies inside the
    axes; when none does, the one with the least overlap. A label moved up or down from its
    point gets a thin leader line to it (gid :data:`LEADER_GID`). The figure's layout is run
    first and the labels are kept out of it (``in_layout=False``), so the axes do not move
    afterwards; the texts have gid :data:`LABEL_GID`.
    """
    if not labels:
        return []
    fig = ax.figure
    fig.draw_without_rendering()  # run the layout: the axes' final place and size
    renderer = fig.canvas.get_renderer()
    to_px = fig.dpi / 72.0
    gap = LABEL_GAP * to_px
    area = ax.get_window_extent(renderer)
    centres = ax.transData.transform(np.array([[lab.x, lab.y] for lab in labels], dtype=float))
    marker = MARKER_RADIUS * to_px
    taken = [
        Bbox.from_extents(cx - marker, cy - marker, cx + marker, cy + marker) for cx, cy in centres
    ]
    placed: list[Text] = []
    for label in labels:
        text = ax.text(
            label.x,
            label.y,
            label.text,
            va="center",
            ha="left",
            fontsize=fontsize,
            fontweight="bold" if label.bold else "normal",
            color=label.colour,
            clip_on=False,
            gid=LABEL_GID,
            zorder=5,
        )
        text.set_in_layout(False)

        def put(dx: float, dy: float, ha: str, text: Text = text) -> Bbox:
            text.set_transform(offset_copy(ax.transData, fig=fig, x=dx, y=dy, units="points"))
            text.set_ha(ha)
            return text.get_window_extent(renderer)

        height = put(0.0, 0.0, "left").height / to_px
        best: tuple[float, Bbox, tuple[float, float, str]] | None = None
        for dx, dy, ha in _candidate_offsets(height, LABEL_GAP):
            box = put(dx, dy, ha)
            grown = Bbox.from_extents(box.x0 - gap, box.y0 - gap, box.x1 + gap, box.y1 + gap)
            outside = (
                max(area.x0 - box.x0, 0.0)
                + max(box.x1 - area.x1, 0.0)
                + max(area.y0 - box.y0, 0.0)
                + max(box.y1 - area.y1, 0.0)
            )
            cost = _overlap(grown, taken) + outside * box.height * 10
            if best is None or cost < best[0]:
                best = (cost, box, (dx, dy, ha))
            if cost == 0:
                break
        assert best is not None
        _, box, (dx, dy, ha) = best
        put(dx, dy, ha)
        if dy != 0:  # moved off its point: a leader line says which point it names
            leader = ax.annotate(
                "",
                (label.x, label.y),
                xytext=(dx, dy),
                textcoords="offset points",
                arrowprops={
                    "arrowstyle": "-",
                    "color": "#7F7F7F",
                    "lw": 0.5,
                    "shrinkA": 0,
                    "shrinkB": 2,
                },
                annotation_clip=False,
                gid=LEADER_GID,
                zorder=4,
            )
            leader.set_in_layout(False)
        taken.append(box)
        placed.append(text)
    return placed
