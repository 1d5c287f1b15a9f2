"""Fit every shipped model on the real panel with its default sampler settings; gate each fit.

    python examples/gate_all_models.py --raw ../shared/data/raw
    python examples/gate_all_models.py --raw ../shared/data/raw --models cpp_need cla_need

Fits run one at a time (each uses every core through its chains) and are saved under
``--fits`` (default ``fits/realdata``), so a rerun reuses finished fits (``refit="on_change"``)
and an interrupted run resumes. After every model the table is rewritten to
``<results>/gate_results.csv`` and ``.md``: model, passed, failure reason codes, min bulk / tail
ESS and max rank R-hat over the gated parameters, divergences, draws at maximum tree depth, min
E-BFMI, the worst offenders, sampling wall time (incl. compilation) and the settings used.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd

import csc_bayes
from csc_bayes.diagnostics import GateResult, default_var_names
from csc_bayes.fits import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
#: the five need models first (the brief's minimum), then the null and spending variants
ORDER = ("_need", "_null", "_need_spending")


def shipped_models(models_dir: Path) -> list[str]:
    """Names of the shipped specs, need models first."""
    names = sorted(p.stem for p in models_dir.glob("*.toml"))
    rank = {suffix: i for i, suffix in enumerate(ORDER)}
    return sorted(names, key=lambda n: (next((rank[s] for s in ORDER if n.endswith(s)), 9), n))


def _extreme(ds: Any, reduce: Any) -> float:
    """``reduce`` (np.nanmin / np.nanmax) over every element of every non-empty variable."""
    return float(reduce([reduce(v.values) for v in ds.data_vars.values() if v.size]))


def gate_row(fit: csc_bayes.Fit, wall_seconds: float) -> dict[str, Any]:
    """One row of the gate table for a fit (diagnostics over the gated parameters)."""
    idata = fit.idata
    posterior = idata["posterior"].dataset[default_var_names(idata)]
    stats = idata["sample_stats"].dataset
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = azs.rhat(posterior, method="rank")
        bulk = azs.ess(posterior, method="bulk")
        tail = azs.ess(posterior, method="tail")
        ebfmi = np.asarray(azs.bfmi(stats["energy"]))

    gate = GateResult.from_dict(fit.metadata["diagnostics"])
    sampler = fit.metadata["sampler"]
    timings = fit.metadata.get("timings", {})
    return {
        "model": fit.spec.name,
        "outcome": fit.spec.outcome,
        "passed": gate.passed,
        "reasons": " ".join(str(r) for r in gate.reasons) or "-",
        "min_ess_bulk": round(_extreme(bulk, np.nanmin), 1),
        "min_ess_tail": round(_extreme(tail, np.nanmin), 1),
        "max_rhat": round(_extreme(rhat, np.nanmax), 4),
        "divergences": int(stats["diverging"].sum()),
        "treedepth_hits": int(stats["reached_max_treedepth"].sum()),
        "min_ebfmi": round(float(np.nanmin(ebfmi)), 3),
        "worst": "; ".join(f.message for f in gate.failures) or "-",
        "sampling_s": round(float(timings.get("total", np.nan)), 1),
        "wall_s": round(wall_seconds, 1),
        "n_obs": fit.metadata["n_obs"],
        "n_authorities": fit.metadata["n_authorities"],
        "years": f"{min(fit.metadata['years_fitted'])}-{max(fit.metadata['years_fitted'])}",
        "settings": (
            f"{sampler['backend']} {sampler['chains']}x({sampler['tune']}+{sampler['draws']}) "
            f"ta={sampler['target_accept']}"
            + (
                f" depth<={sampler['max_treedepth']}"
                if sampler.get("max_treedepth", 10) != 10
                else ""
            )
        ),
        "run": fit.path.name if fit.path is not None else "",
    }


def write_tables(rows: list[dict[str, Any]], results: Path, note: str) -> None:
    """``gate_results.csv`` and a Markdown table of the same rows."""
    results.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    write_text_atomic(results / "gate_results.csv", table.to_csv(index=False))
    shown = table.drop(columns=["worst", "run"])
    lines = [
        "# Convergence gate on the real panel, default sampler settings",
        "",
        note,
        "",
        "| " + " | ".join(shown.columns) + " |",
        "|" + "---|" * len(shown.columns),
        *("| " + " | ".join(str(v) for v in r) + " |" for r in shown.itertuples(index=False)),
        "",
        "Failures (worst offenders first):",
        "",
        *(f"- `{r['model']}`: {r['worst']}" for r in rows if not r["passed"]),
    ]
    if all(r["passed"] for r in rows):
        lines.append("- none")
    write_text_atomic(results / "gate_results.md", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--fits", type=Path, default=REPO / "fits" / "realdata")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "gate")
    parser.add_argument("--models", nargs="*", help="model names (default: every shipped spec)")
    args = parser.parse_args(argv)

    panel = csc_bayes.build_panel(args.raw)
    names = args.models or shipped_models(REPO / "models")
    rows: list[dict[str, Any]] = []
    for name in names:
        started = time.perf_counter()
        fit = csc_bayes.fit(name, data=panel, out=args.fits, progress=False)
        rows.append(gate_row(fit, time.perf_counter() - started))
        print(
            f"{name}: passed={rows[-1]['passed']} {rows[-1]['reasons']} ({rows[-1]['wall_s']} s)",
            flush=True,
        )
        note = (
            f"{len(rows)} of {len(names)} requested models fitted "
            f"({', '.join(names)}); wall_s includes reuse of a saved run (then near 0), "
            "sampling_s is the original sampling time incl. JAX compilation."
        )
        write_tables(rows, args.results, note)


if __name__ == "__main__":
    main()
