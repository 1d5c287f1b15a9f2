"""Chains in parallel (one XLA host device per chain) against vectorised chains (one program).

numpyro runs 4 chains either ``"parallel"`` (``pmap`` over XLA host devices: each chain its own
trajectory lengths, the chains share the machine's cores) or ``"vectorized"`` (``vmap``: one
program, every iteration waits for the chain with the longest trajectory, batched arithmetic).
For each spec and method this fits the package's synthetic panel in a fresh Python (JAX's
compilation cache off) with ``csc_bayes.sampling.sample`` and records sampling seconds
(compilation, warm-up and draws), the smallest bulk ESS over the gated variables, ESS per second,
gradient evaluations, and the 1-minute load average at the start and end.

It writes ``<out>/chain_method.{md,csv}``; ``csc_bayes.sampling.AUTO_CHAIN_METHOD`` (the chain
method of ``draws = "auto"``) follows its verdict.

    nice -n 5 .venv/bin/python benchmarks/chain_method.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

#: (spec, draws, tune): the default cpp_need fit, and an AR(1) forecasting spec at 1000 + 1000
CONFIGS = {"cpp_need": (1000, 1000), "cpp_need_ar": (1000, 1000)}


def one(spec_name: str, method: str, draws: int, tune: int, authorities: int = 0) -> dict:
    """Sample ``spec_name`` on the synthetic panel with ``method`` (runs in a child)."""
    import arviz_stats as azs
    import numpy as np

    from csc_bayes.diagnostics import default_var_names
    from csc_bayes.model import attach_coords, build_model
    from csc_bayes.sampling import prepare_jax, sample
    from csc_bayes.simulate import simulate_panel
    from csc_bayes.spec import find_spec

    prepare_jax(4)
    spec = find_spec(spec_name)
    s = spec.sampler
    panel = simulate_panel().panel
    if authorities:  # the first N authorities only (a smaller, cheaper panel)
        keep = sorted(panel["la_code"].unique())[:authorities]
        panel = panel[panel["la_code"].isin(keep)].reset_index(drop=True)
    built = build_model(spec, panel)
    load_start = os.getloadavg()[0]
    cpu = time.process_time()
    result = sample(
        built.model,
        draws=draws,
        tune=tune,
        chains=4,
        seed=s.seed,
        target_accept=s.target_accept,
        max_treedepth=s.max_treedepth,
        progress=False,
        log_likelihood=False,
        posterior_predictive=False,
        chain_method=method,
    )
    cpu = time.process_time() - cpu
    load_end = os.getloadavg()[0]
    idata = attach_coords(result.idata, built)
    post = idata["posterior"].dataset[default_var_names(idata)]
    with np.errstate(invalid="ignore", divide="ignore"):
        bulk = azs.ess(post, method="bulk")
    values = np.concatenate([np.ravel(v.values) for v in bulk.data_vars.values()])
    min_bulk = float(np.min(values[np.isfinite(values)]))
    seconds = result.timings["sampling"]
    return {
        "spec": spec_name,
        "chain_method": result.settings["chain_method"],
        "budget": f"4 x ({tune} + {draws})",
        "authorities": int(panel["la_code"].nunique()),
        "sampling_s": round(seconds, 1),
        "cpu_s": round(cpu, 1),
        "min_ess_bulk": round(min_bulk),
        "ess_per_s": round(min_bulk / seconds, 2),
        "gradients": int(idata["sample_stats"]["n_steps"].sum()),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "load_start": round(load_start, 2),
        "load_end": round(load_end, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--draws", type=int, help="draws per chain (default: CONFIGS)")
    parser.add_argument("--tune", type=int, help="warm-up per chain (default: CONFIGS)")
    parser.add_argument("--authorities", type=int, default=0, help="first N authorities only")
    parser.add_argument("--append", action="store_true", help="add to the existing csv")
    parser.add_argument("--render", action="store_true", help="only rewrite the md from the csv")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec, method, draws, tune, authorities = args.one
        print("RESULT " + json.dumps(one(spec, method, int(draws), int(tune), int(authorities))))
        return
    if args.render:
        render(pd.read_csv(args.out / "chain_method.csv"), args.out)
        return

    env = {**os.environ, "CSC_BAYES_JAX_CACHE": "off"}
    rows = []
    for spec in args.specs:
        draws, tune = CONFIGS.get(spec, (1000, 1000))
        draws, tune = args.draws or draws, args.tune or tune
        for method in ("parallel", "vectorized"):
            cmd = [sys.executable, __file__, "--one", spec, method, str(draws), str(tune)]
            cmd.append(str(args.authorities))
            print(f"{datetime.now(UTC):%H:%M:%S} {spec} {method} ...", flush=True)
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(done.stdout[-2000:], done.stderr[-4000:], flush=True)
                raise SystemExit(f"{spec} {method} failed (exit {done.returncode})")
            rows.append(json.loads(line[len("RESULT ") :]))
            print(json.dumps(rows[-1]), flush=True)

    frame = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "chain_method.csv"
    if args.append and csv.exists():
        frame = pd.concat([pd.read_csv(csv), frame], ignore_index=True)
    frame.to_csv(csv, index=False)
    render(frame, args.out)


def render(frame: pd.DataFrame, out: Path) -> None:
    """``chain_method.md`` from the table of runs, with ESS per wall and per CPU second."""
    frame = frame.copy()
    frame["ess_per_cpu_s"] = (frame["min_ess_bulk"] / frame["cpu_s"]).round(2)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    verdicts = []
    for (spec, budget), part in frame.groupby(["spec", "budget"], sort=False):
        if len(part) < 2:
            continue
        wall = part.loc[part["ess_per_s"].idxmax(), "chain_method"]
        cpu = part.loc[part["ess_per_cpu_s"].idxmax(), "chain_method"]
        ratio = part["ess_per_s"].max() / part["ess_per_s"].min()
        cpu_ratio = part["ess_per_cpu_s"].max() / part["ess_per_cpu_s"].min()
        verdicts.append(
            f"- {spec}, {budget}: per wall second {wall} ({ratio:.2f}x); per CPU second "
            f"{cpu} ({cpu_ratio:.2f}x)"
        )
    lines = [
        f"# Parallel against vectorised chains (rendered {when})",
        "",
        f"Synthetic panel (`simulate_panel()`, or its first `authorities`); {os.cpu_count()} "
        f"cores shared with other work ({platform.machine()}); each run in a fresh Python with "
        "JAX's compilation cache off. Sampling seconds (wall) include compilation and warm-up; "
        "cpu_s is the process's CPU time; load = 1-minute average at the start / end of the run. "
        "On a machine loaded far beyond its cores, wall seconds measure the load more than the "
        "method: compare per CPU second there.",
        "",
        "| " + " | ".join(frame.columns) + " |",
        "|" + "---|" * len(frame.columns),
        *("| " + " | ".join(str(v) for v in r) + " |" for r in frame.to_numpy()),
        "",
        "Faster (smallest bulk ESS per second):",
        "",
        *verdicts,
        "",
    ]
    (out / "chain_method.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
