"""Posterior predictive check: the observed distribution of rates against replicated ones.

Rates are counts per 10,000 children over every fitted authority-year: observed
``observed_data.y`` and, for a random subset of draws, ``posterior_predictive.y``, both
divided by ``exp(constant_data.log_exposure)``. Each is drawn as a kernel density estimate on
a common grid (the observed data's bandwidth for all), so that replicated curves that
surround the observed one mean the model reproduces the spread and shape of the rates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from csc_bayes.plots import _style

PER = 10_000
REPLICATE_COLOUR = "#88CCEE"


def ppc_rates(fit: Any, *, n_replicates: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observed rates (n,) and ``n_replicates`` replicated rate vectors (n_replicates, n), over
    the fitted rows with an observed count (an interval-censored row has none: it is left out
    of both, so observed and replicated rates cover the same rows)."""
    exposure = np.exp(np.asarray(fit.idata["constant_data"]["log_exposure"].values, dtype=float))
    observed = np.asarray(fit.idata["observed_data"]["y"].values, dtype=float) / exposure * PER
    rep = fit.idata["posterior_predictive"]["y"].stack(sample=("chain", "draw"))
    rep = np.asarray(rep.transpose("sample", ...).values, dtype=float)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rep), size=min(n_replicates, len(rep)), replace=False)
    seen = np.isfinite(observed)
    replicated = rep[np.sort(pick)] / exposure[None, :] * PER
    return observed[seen], replicated[:, seen]


def ppc(
    fit: Any,
    *,
    n_replicates: int = 50,
    seed: int = 0,
    title: str | None = None,
    synthetic: bool | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Densities of observed and replicated rates, with the tail probability of their SD.

    Args:
        fit: a Fit (its ``idata`` needs posterior_predictive, observed_data, constant_data).
        n_replicates: how many posterior predictive draws to draw.
        seed: which draws (reproducibly).
        title: replaces the default title.
        synthetic: stamp "SYNTHETIC DATA"; default from ``fit.metadata["synthetic"]``.
        ax: draw on this axes instead of a new figure.

    Returns:
        The matplotlib Figure.
    """
    observed, replicated = ppc_rates(fit, n_replicates=n_replicates, seed=seed)
    kde = stats.gaussian_kde(observed)
    top = np.quantile(np.concatenate([observed, replicated.ravel()]), 0.995)
    grid = np.linspace(0, top * 1.05, 300)
    p_sd = float((replicated.std(axis=1) >= observed.std()).mean())
    with _style.style():
        fig, ax = _style.figure_and_axes(ax, (_style.A4_WIDTH, 4.0))
        for i, rep in enumerate(replicated):
            ax.plot(
                grid,
                stats.gaussian_kde(rep, bw_method=kde.factor)(grid),
                color=REPLICATE_COLOUR,
                lw=0.6,
                alpha=0.6,
                gid="replicate",
                label="replicated (posterior predictive draws)" if i == 0 else None,
            )
        ax.plot(grid, kde(grid), color="#000000", lw=1.8, label="observed", gid="observed")
        ax.set_xlabel("Rate per 10,000 children (every fitted authority-year)")
        ax.set_ylabel("Density")
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        ax.legend(loc="upper right")
        ax.text(
            0.99,
            0.70,
            f"P(SD of replicated rates >= observed SD) = {p_sd:.2f}",
            transform=ax.transAxes,
            ha="right",
            fontsize=8,
        )
        if title is None:
            years = _style.window_text(_style.fit_years(fit))
            title = (
                f"Posterior predictive check, {years}: {len(observed)} authority-years, "
                f"{len(replicated)} replicated data sets"
            )
        ax.set_title(title, loc="left")
        synthetic = _style.fit_synthetic(fit) if synthetic is None else synthetic
        return _style.finish(fig, synthetic=synthetic)
