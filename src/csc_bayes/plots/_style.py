"""Shared publication styling and output for every figure in :mod:`csc_bayes.plots`.

One place decides fonts, the region palette, the highlight colour, titles, the "SYNTHETIC DATA"
stamp and how figures and the tables behind them are written to disk.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import OutputError, OutputFormatError

#: Paul Tol's "muted" scheme: nine colours distinguishable under the common colour-vision
#: deficiencies, one per region, fixed so that a region has the same colour in every figure.
REGION_COLOURS: dict[str, str] = dict(
    zip(
        REGIONS,
        (
            "#332288",
            "#88CCEE",
            "#44AA99",
            "#117733",
            "#999933",
            "#DDCC77",
            "#CC6677",
            "#882255",
            "#AA4499",
        ),
        strict=True,
    )
)
#: colour of authorities named with ``highlight`` (no region uses it)
HIGHLIGHT_COLOUR = "#000000"
#: colour of points and intervals when no region colouring applies
NEUTRAL_COLOUR = "#4D4D4D"
#: colour of reference lines ("as expected") and limits
REFERENCE_COLOUR = "#7F7F7F"
#: figure width that fits an A4 page with margins, in inches
A4_WIDTH = 7.5
#: tallest figure that fits an A4 page with margins, in inches
A4_HEIGHT = 10.5
#: permissions of written figures and reports: readable by others (mkstemp's default is 0600)
SHARED_FILE_MODE = 0o644
#: file types :func:`save_figure` writes, by suffix
FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

_RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}


@contextmanager
def style() -> Iterator[None]:
    """The house matplotlib settings, applied only inside the ``with`` block."""
    with mpl.rc_context(_RC):
        yield


def region_colour(region: str) -> str:
    """The fixed colour of a region (neutral grey for a name outside the nine regions)."""
    return REGION_COLOURS.get(str(region), NEUTRAL_COLOUR)


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax``'s figure and ``ax`` when given, else a new figure of ``figsize`` with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, new_ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, new_ax


def stamp_synthetic(fig: Figure) -> None:
    """Write a large, unmissable "SYNTHETIC DATA" stamp across the figure."""
    fig.text(
        0.5,
        0.5,
        "SYNTHETIC DATA",
        transform=fig.transFigure,
        ha="center",
        va="center",
        rotation=30,
        fontsize=40,
        fontweight="bold",
        color="#CC3311",
        alpha=0.18,
        zorder=1000,
        gid="synthetic-stamp",
    )


def window_text(years: Sequence[int] | None) -> str:
    """The data window as a short phrase, e.g. ``"2015-2024"`` or ``"2024"``."""
    if not years:
        return "years not recorded"
    first, last = min(years), max(years)
    return f"{first}" if first == last else f"{first}-{last}"


def finish(fig: Figure, *, synthetic: bool) -> Figure:
    """Apply the last touches every figure gets (the synthetic stamp) and return it."""
    if synthetic:
        stamp_synthetic(fig)
    return fig


def fit_synthetic(fit: Any) -> bool:
    """Whether a Fit (or anything with ``metadata``) was made on synthetic data."""
    return bool(getattr(fit, "metadata", {}).get("synthetic", False))


def fit_years(fit: Any) -> list[int]:
    """The years a fit was fitted on: ``metadata["years_fitted"]``, else the ``year`` coord."""
    years = getattr(fit, "metadata", {}).get("years_fitted")
    if years:
        return [int(y) for y in years]
    return [int(y) for y in fit.idata["posterior"]["year"].values]


# ------------------------------------------------------------------------------ output


def figure_format(path: str | Path) -> str:
    """The file format :func:`save_figure` writes ``path`` in, from its suffix.

    Raises:
        OutputFormatError: the suffix is not one of :data:`FIGURE_FORMATS` (also a ValueError).
    """
    path = Path(path)
    fmt = FIGURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        suffix = repr(path.suffix) if path.suffix else "no suffix"
        raise OutputFormatError(
            path,
            f"cannot tell the figure format from {suffix}; use one of {', '.join(FIGURE_FORMATS)}",
        )
    return fmt


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 200) -> Path:
    """Write ``fig`` to ``path`` atomically; the suffix (.png, .svg, .pdf) picks the format.

    The figure is drawn into a temporary file in the same folder and moved into place with
    ``os.replace``, so an interrupted save never leaves a half-written figure at ``path``.

    Raises:
        OutputFormatError: unknown suffix (:func:`figure_format`).
        OutputError: the file or its folder cannot be written (names the path and the reason).
    """
    path = Path(path)
    fmt = figure_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(path, exc.strerror or str(exc)) from None
        raise
    return path
