"""Reproduce the report's figures from a fit.

    python examples/report_figures.py [FIT] [--out figures/] [--draws 200 --tune 200]

FIT is a run folder or model folder (``fits/cpp_need``); without it the demo model
(``cpp_need``) is fitted to the package's synthetic panel with small sampler settings, which
takes a few minutes. Each figure of the HTML report is written as ``<out>/<name>.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from csc_bayes.fits import Fit, load_fit
from csc_bayes.plots import save_figure
from csc_bayes.report import report_answers, report_figures


def demo_fit(*, draws: int, tune: int, chains: int, seed: int) -> Fit:
    """The demo model fitted to the synthetic panel (kept in memory, not saved)."""
    from csc_bayes.fitting import fit

    return fit("cpp_need", data=None, out=None, draws=draws, tune=tune, chains=chains, seed=seed)


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fit", nargs="?", type=Path, help="run or model folder (default: demo)")
    parser.add_argument("--out", type=Path, default=Path("report-figures"))
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=200)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    if args.fit is not None:
        fit = load_fit(args.fit)
    else:
        fit = demo_fit(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed)
    if not fit.diagnostics_passed:
        print("warning: this fit failed the convergence gate; the figures may be wrong")
    written = []
    for name, fig in report_figures(fit, report_answers(fit)).items():
        written.append(save_figure(fig, args.out / f"{name}.png"))
        plt.close(fig)
        print(f"wrote {written[-1]}")
    return written


if __name__ == "__main__":
    main()
