"""Time to a passing convergence gate: ``draws = "auto"`` against a fixed budget of draws.

For each spec, fits the panel twice, each in a fresh Python with JAX's compilation cache off
(so that neither run reuses the other's compiled programs):

- ``fixed``: the spec's sampler settings with ``draws = --fixed`` per chain (the budget the
  shipped forecasting specs used, 4 x (2000 + 4000));
- ``auto``: ``draws = "auto"`` with the spec's ``min_draws`` / ``block_draws`` and
  ``max_draws = --fixed`` (the same worst case).

It writes ``<out>/draws_to_target.{md,csv,json}``: wall seconds of the whole fit (model build,
compilation, warm-up, draws, gate, pointwise groups), sampling seconds, the draws per chain used,
why sampling stopped, the gate's verdict, the smallest bulk / tail ESS and the largest R-hat over
the gated variables, divergences, the chain method, and the machine's 1-minute load average at
the start and end of each fit. Fits are not saved (``out=None``); only these summaries are.

    nice -n 5 .venv/bin/python benchmarks/draws_to_target.py --data /tmp/real_panel.parquet \\
        --specs cpp_need_ar cin_need_ar --fixed 4000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd


def one(spec_name: str, mode: str, data: str | None, fixed: int) -> dict:
    """Fit ``spec_name`` once (``mode`` fixed or auto) and summarise it (runs in a child)."""
    import arviz_stats as azs
    import numpy as np

    from csc_bayes import fit
    from csc_bayes.diagnostics import default_var_names
    from csc_bayes.spec import find_spec

    spec = find_spec(spec_name)
    if mode == "fixed":
        spec = spec.with_sampler(draws=fixed)
    else:
        first = spec.with_sampler(draws="auto").sampler.min_draws
        spec = spec.with_sampler(draws="auto", max_draws=fixed, min_draws=min(first, fixed))
    load_start = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    result = fit(spec, data=data, out=None, progress=False)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    load_end = os.getloadavg()[0]
    meta = result.metadata
    idata = result.idata
    post = idata["posterior"].dataset[default_var_names(idata)]
    with np.errstate(invalid="ignore", divide="ignore"):
        bulk = azs.ess(post, method="bulk")
        tail = azs.ess(post, method="tail")
        rhat = azs.rhat(post, method="rank")

    def extreme(ds, fn) -> float:
        values = np.concatenate([np.ravel(v.values) for v in ds.data_vars.values()])
        values = values[np.isfinite(values)]
        return float(fn(values))

    auto = meta["sampler"].get("auto", {})
    # draws = "auto" continues the same chains, so the fixed run's first k draws are what an
    # auto run of the same seed has at its look after k draws: where it would have stopped
    would_stop: int | str | None = None
    if mode == "fixed":
        try:
            from csc_bayes.diagnostics import check_convergence
            from csc_bayes.fitting import TARGET_REASONS
            from csc_bayes.sampling import DrawsToTarget

            first = find_spec(spec_name).with_sampler(draws="auto").sampler
            plan = DrawsToTarget(min(first.min_draws, fixed), first.block_draws, fixed)
            drawn = 0
            for size, look in plan.blocks():
                drawn += size
                if not look:
                    continue
                part = idata.isel(draw=slice(0, drawn))
                gate = check_convergence(part)
                if not [f for f in gate.failures if str(f.reason) in TARGET_REASONS]:
                    would_stop = drawn
                    break
        except Exception as exc:  # a summary must not cost the fit it summarises
            would_stop = f"not computed: {exc!r}"
    gate = meta["diagnostics"]
    return {
        "spec": spec_name,
        "mode": mode,
        "budget": f"4 x ({spec.sampler.tune} + {fixed})"
        if mode == "fixed"
        else f"4 x ({spec.sampler.tune} + auto <= {fixed})",
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "sampling_s": round(meta["timings"]["sampling"], 1),
        "draws_per_chain": int(idata["posterior"].sizes["draw"]),
        "blocks": auto.get("blocks"),
        "auto_would_stop_at": auto.get("draws") if mode == "auto" else would_stop,
        "stopped": auto.get("stopped", "fixed budget"),
        "gate_passed": bool(gate["passed"]),
        "gate_failures": " ".join(f["reason"] for f in gate["failures"]) or "-",
        "min_ess_bulk": round(extreme(bulk, np.min)),
        "min_ess_tail": round(extreme(tail, np.min)),
        "max_rhat": round(extreme(rhat, np.max), 4),
        "divergences": int(idata["sample_stats"]["diverging"].sum()),
        "chain_method": meta["sampler"].get("chain_method"),
        "load_start": round(load_start, 2),
        "load_end": round(load_end, 2),
        "looks": auto.get("looks", []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="panel parquet; default: synthetic")
    parser.add_argument("--specs", nargs="+", default=["cpp_need_ar", "cin_need_ar"])
    parser.add_argument("--fixed", type=int, default=4000, help="fixed draws per chain = cap")
    parser.add_argument("--modes", nargs="+", default=["auto", "fixed"])
    parser.add_argument("--jobs", type=int, default=1, help="fits at once (compare CPU s then)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--one", nargs=2, metavar=("SPEC", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        print("RESULT " + json.dumps(one(args.one[0], args.one[1], args.data, args.fixed)))
        return

    env = {**os.environ, "CSC_BAYES_JAX_CACHE": "off"}
    runs = [(spec, mode) for spec in args.specs for mode in args.modes]

    def run(spec: str, mode: str) -> dict:
        cmd = [sys.executable, __file__, "--one", spec, mode, "--fixed", str(args.fixed)]
        if args.data:
            cmd += ["--data", args.data]
        print(f"{datetime.now(UTC):%H:%M:%S} {spec} {mode} ...", flush=True)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(done.stdout[-2000:], done.stderr[-4000:], flush=True)
            raise SystemExit(f"{spec} {mode} failed (exit {done.returncode})")
        row = json.loads(line[len("RESULT ") :])
        print(json.dumps({k: v for k, v in row.items() if k != "looks"}), flush=True)
        return row

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda r: run(*r), runs))

    args.out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "looks"} for r in rows])
    frame["blocks"] = frame["blocks"].astype("Int64")
    frame.to_csv(args.out / "draws_to_target.csv", index=False)
    # the table shows why a run stopped without the offenders (they are in the csv and json)
    frame["stopped"] = frame["stopped"].str.split(" with ").str[0]
    machine = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "data": "synthetic" if args.data is None else Path(args.data).name,
    }
    (args.out / "draws_to_target.json").write_text(
        json.dumps({"machine": machine, "runs": rows}, indent=1) + "\n"
    )
    cols = [c for c in frame.columns if c not in ("spec",)]
    lines = [
        f"# Draws to target against a fixed budget ({machine['when']})",
        "",
        f"Panel: {machine['data']}; {machine['cpus']} cores shared with other work (load = "
        f"1-minute average at the start / end of each fit); {args.jobs} fit(s) at a time. Each "
        "fit in a fresh Python, JAX compilation cache off. Wall and CPU seconds cover the whole "
        "`fit` (build, compile, warm-up, draws, gate, pointwise groups); on a loaded machine "
        "compare CPU seconds.",
        "",
    ]
    for spec, part in frame.groupby("spec", sort=False):
        lines += [f"## {spec}", "", "| " + " | ".join(cols) + " |"]
        lines += ["|" + "---|" * len(cols)]
        for r in part[cols].to_numpy():
            lines.append("| " + " | ".join("-" if pd.isna(v) else str(v) for v in r) + " |")
        lines.append("")
        for r in rows:
            if r["spec"] == spec and r["looks"]:
                looks = "; ".join(
                    f"{x['draws']} draws at {x['seconds']:.0f} s wall, "
                    f"{x.get('cpu_seconds', float('nan')):.0f} s CPU: "
                    + (", ".join(u.split(":")[0] for u in x["unmet"]) or "met")
                    for x in r["looks"]
                )
                lines += [f"Looks of the auto run: {looks}.", ""]
    (args.out / "draws_to_target.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
