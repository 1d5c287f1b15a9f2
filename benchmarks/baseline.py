"""The textbook baseline a user would otherwise write: bambi + PyMC's default NUTS.

    cpp ~ idaci + ethnic_minority_share + spend_per_child + offset(log(population))
          + (1|la) + (1|region) + (1|year),   family = negativebinomial

fitted to the observed CPP rows of ``simulate_panel(seed=1)`` (2015-2024; the rows the
package's ``cpp_need_spending`` model fits: suppressed counts and the forecast year left out).
Reports wall time including model construction and compilation, gradient evaluations (sum of
``sample_stats.n_steps``: one leapfrog step = one gradient) and the minimum bulk ESS over every
posterior scalar, per second and per gradient evaluation. ``benchmarks/run_benchmark.py`` runs
this model as its ``bambi`` configuration, beside the package's own.

bambi is not a csc_bayes dependency (it is the ``bench`` extra); run this in a venv that has it:

    python benchmarks/baseline.py --draws 1000 --tune 1000 --chains 4
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd

from csc_bayes.simulate import simulate_panel

FORMULA = (
    "cpp ~ idaci + ethnic_minority_share + spend_per_child + offset(log(population))"
    " + (1|la) + (1|region) + (1|year)"
)


@dataclass(frozen=True)
class BaselineResult:
    """One baseline run: the DataTree and what it cost."""

    idata: object  # arviz DataTree
    wall_s: float  # model build + compile + tune + draw
    grad_evals: int  # sum of sample_stats.n_steps over chains and draws (tuning excluded)
    min_ess_bulk: float  # smallest bulk ESS over every scalar in the posterior

    @property
    def ess_per_s(self) -> float:
        return self.min_ess_bulk / self.wall_s

    @property
    def ess_per_grad(self) -> float:
        return self.min_ess_bulk / self.grad_evals


def baseline_data(panel: pd.DataFrame | None = None, *, seed: int = 1) -> pd.DataFrame:
    """The panel's observed CPP rows (default ``simulate_panel(seed=seed)``) as plain dtypes.

    Rows with a missing count (suppressed, or the forecast year) are left out, so the rows are
    exactly those ``build_model(find_spec("cpp_need_spending"), panel)`` fits.
    """
    if panel is None:
        panel = simulate_panel(seed=seed).panel
    panel = panel.loc[panel["cpp"].notna()]
    return pd.DataFrame(
        {
            "cpp": panel["cpp"].to_numpy(dtype=np.int64),
            "population": panel["population"].to_numpy(dtype=np.float64),
            "idaci": panel["idaci"].to_numpy(dtype=np.float64),
            "ethnic_minority_share": panel["ethnic_minority_share"].to_numpy(dtype=np.float64),
            "spend_per_child": panel["spend_per_child"].to_numpy(dtype=np.float64),
            "la": panel["la_code"].astype(str).to_numpy(dtype=object),
            "region": panel["region"].astype(str).to_numpy(dtype=object),
            "year": panel["year"].astype(str).to_numpy(dtype=object),
        }
    )


def bulk_ess_by_variable(idata) -> dict[str, float]:
    """Per posterior variable, the smallest rank-normalised bulk ESS over its elements."""
    ess = az.ess(idata, group="posterior", method="bulk")
    ess = getattr(ess, "dataset", ess)  # DataTree node -> Dataset
    return {str(k): float(np.nanmin(np.asarray(v))) for k, v in ess.data_vars.items()}


def min_bulk_ess(idata) -> float:
    """min over every posterior variable and element of the bulk ESS."""
    return min(bulk_ess_by_variable(idata).values())


def run_baseline(
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    seed: int = 0,
    panel_seed: int = 1,
) -> BaselineResult:
    """Build, compile and sample the bambi model with PyMC's default NUTS; time all of it."""
    import bambi as bmb  # optional: only the benchmark environment has it

    data = baseline_data(seed=panel_seed)
    start = time.perf_counter()
    model = bmb.Model(FORMULA, data, family="negativebinomial")
    idata = model.fit(
        draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed, progressbar=False
    )
    wall = time.perf_counter() - start
    stats = idata["sample_stats"]
    grad_evals = int(np.asarray(stats["n_steps"]).sum())
    return BaselineResult(idata, wall, grad_evals, min_bulk_ess(idata))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--cores", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--panel-seed", type=int, default=1, help="simulate_panel seed")
    args = parser.parse_args()
    result = run_baseline(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=args.cores,
        seed=args.seed,
        panel_seed=args.panel_seed,
    )
    summary = {
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "wall_s": round(result.wall_s, 2),
        "grad_evals": result.grad_evals,
        "min_ess_bulk": round(result.min_ess_bulk, 1),
        "min_ess_bulk_per_s": round(result.ess_per_s, 3),
        "min_ess_bulk_per_grad": round(result.ess_per_grad, 6),
        "worst_variables": sorted(bulk_ess_by_variable(result.idata).items(), key=lambda kv: kv[1])[
            :3
        ],
        "divergences": int(np.asarray(result.idata["sample_stats"]["diverging"]).sum()),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
