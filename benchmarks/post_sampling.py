"""Post-sampling work of a default fit: PyMC's recompiled model against the one linear predictor.

Fits ``cpp_need`` (4 x (1000 + 1000), the spec's defaults) to the package's synthetic panel once,
then, on the same posterior, times the two ways of making a fit's ``log_likelihood`` and
``posterior_predictive`` groups, side by side, each ``--repeats`` times: the first call (what a
fit pays: PyMC compiles its functions then) and the median of the later ones:

- ``pymc``: ``pm.compute_log_likelihood`` + ``pm.sample_posterior_predictive`` (what ``fit``
  did before);
- ``pointwise``: :func:`csc_bayes.pointwise.pointwise_groups` (numpy, from the one linear
  predictor; what ``fit`` does now).

It writes ``results/post_sampling.{md,csv}``: seconds, the share of the whole fit's wall time,
the ratio against ``pymc``, and the largest difference between the two log-likelihoods.

    .venv/bin/python benchmarks/post_sampling.py [--repeats 3] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import pymc as pm

    import csc_bayes
    from csc_bayes.model import build_model
    from csc_bayes.pointwise import pointwise_groups

    load = os.getloadavg()[0]
    started = time.perf_counter()
    fit = csc_bayes.fit("cpp_need", out=None, progress=False)
    fit_wall = time.perf_counter() - started
    model = build_model(fit.spec, fit.panel).model

    def pymc_way() -> np.ndarray:
        loglik = pm.compute_log_likelihood(
            fit.idata, model=model, extend_inferencedata=False, progressbar=False
        )
        pm.sample_posterior_predictive(fit.idata, model=model, random_seed=1, progressbar=False)
        return loglik["y"].values

    def pointwise_way() -> np.ndarray:
        loglik, _ = pointwise_groups(fit, seed=1)
        return loglik["y"].values

    rows, values = [], {}
    for name, run in (("pymc", pymc_way), ("pointwise", pointwise_way)):
        seconds = []
        for _ in range(args.repeats):
            tic = time.perf_counter()
            values[name] = run()
            seconds.append(time.perf_counter() - tic)
        rows.append(
            {
                "method": name,
                "first_call_seconds": seconds[0],  # in a fresh process: includes compilation
                "seconds": statistics.median(seconds[1:] or seconds),
            }
        )
    table = pd.DataFrame(rows)
    base = float(table.loc[table["method"] == "pymc", "seconds"].iloc[0])
    table["ratio_to_pymc"] = table["seconds"] / base
    sampling = fit.metadata["timings"]["sampling"]
    table["share_of_fit"] = table["first_call_seconds"] / (sampling + table["first_call_seconds"])
    diff = float(np.max(np.abs(values["pymc"] - values["pointwise"])))

    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "post_sampling.csv", index=False)
    lines = [
        "# Post-sampling work of a default `cpp_need` fit (synthetic panel, 4 x 1000 draws)",
        "",
        f"Whole fit (now, with `pointwise`): {fit_wall:.1f} s wall, of which sampling "
        f"{sampling:.1f} s. Machine load (1-min average) at the start: {load:.2f}; 2 cores.",
        f"Largest |difference| between the two log-likelihoods: {diff:.2e}.",
        "",
        "| method | first call, s (as in a fit: compilation included) | later calls, s (median) "
        "| ratio to pymc (later calls) | share of a fit's wall time (first call) |",
        "|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.method} | {r.first_call_seconds:.2f} | {r.seconds:.2f} | "
            f"{r.ratio_to_pymc:.3f} | {r.share_of_fit:.1%} |"
        )
    (args.out / "post_sampling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
