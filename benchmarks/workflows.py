"""Workflow timings: a fit, grouped K-fold CV and SBC of cpp_need, refit path against compiled.

Steps (each timed by wall clock, with the 1-minute load average at its start and end, on a
local cluster of ``--workers`` processes):

- ``fit``: ``csc_bayes.fit("cpp_need")`` on the panel (the spec's 4 x (1000 + 1000)); the fit
  that the K-fold steps compare.
- ``kfold_compiled`` / ``kfold_fit``: ``compare_fits([fit], kfold=5, engine=...)``: the compiled
  path (:mod:`csc_bayes.compiled`, one compiled model per task, held-out rows weighted 0) and
  the refit path (one saved ``fit`` per fold). Both elpd totals are recorded.
- ``sbc_compiled``: ``run_sbc("cpp_need", sims=--sims, engine="compiled")`` (the recorded SBC
  settings: 30 authorities x 6 years, 2 chains x (200 + 200)); its ranks, tests and figure go
  to ``results/sbc_compiled/``, and the time and memory of every replicate (peak and current
  RSS of its worker after it) to ``results/workflows_memory.csv``.
- ``sbc_fit``: the refit path on ``--old-sims`` replicates, for a per-replicate ratio.
- ``kfoldone_fit``: one fold of the refit path (``compare.kfold_task`` for fold 0 on a worker),
  for a per-fold ratio when the whole refit K-fold is too long to wait for.

Rows are appended to ``results/workflows.csv`` as each step ends and ``workflows.md`` is
rewritten from it, so an interrupted run keeps what it measured. Run it in the background:

    nice -n 5 .venv/bin/python benchmarks/workflows.py --sims 200 > /tmp/workflows.log 2>&1 &
    .venv/bin/python benchmarks/workflows.py --panel /tmp/real_panel.parquet --steps fit \
        kfold_compiled     # the real panel (the fits go to a scratch folder)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

STEPS = ("fit", "kfold_compiled", "sbc_compiled", "sbc_fit", "kfoldone_fit", "kfold_fit")
COLUMNS = [
    "date_utc",
    "panel",
    "step",
    "workflow",
    "engine",
    "units",
    "wall_s",
    "cpu_s",
    "cpu_s_per_unit",
    "worker_s",
    "worker_s_per_unit",
    "load_start",
    "load_end",
    "result",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--panel", default="synthetic", help="'synthetic' or a panel parquet")
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--old-sims", type=int, default=6)
    parser.add_argument("--kfold", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--scratch", type=Path, default=None, help="fits folder (default: tmp)")
    args = parser.parse_args()

    import csc_bayes
    from csc_bayes.batch import dask_client
    from csc_bayes.compare import compare_fits
    from csc_bayes.sbc import run_sbc

    args.out.mkdir(parents=True, exist_ok=True)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="csc-workflows-"))
    panel_name = "synthetic" if args.panel == "synthetic" else Path(args.panel).name
    data = None if args.panel == "synthetic" else args.panel

    def cpu_now() -> float:
        """CPU seconds used so far by this process and every worker process (all threads)."""
        workers = client.run(time.process_time)
        return time.process_time() + sum(workers.values())

    def record(
        step: str,
        workflow: str,
        engine: str,
        units: int,
        wall: float,
        worker: float,
        load: tuple[float, float],
        result: str,
    ) -> None:
        row = {
            "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
            "panel": panel_name,
            "step": step,
            "workflow": workflow,
            "engine": engine,
            "units": units,
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu_now() - cpu0, 1),
            "cpu_s_per_unit": round((cpu_now() - cpu0) / units, 2),
            "worker_s": round(worker, 1),
            "worker_s_per_unit": round(worker / units, 2),
            "load_start": round(load[0], 2),
            "load_end": round(load[1], 2),
            "result": result,
        }
        path = args.out / "workflows.csv"
        old = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=COLUMNS)
        table = pd.concat([old, pd.DataFrame([row])], ignore_index=True)[COLUMNS]
        table.to_csv(path, index=False)
        write_markdown(table, args.out / "workflows.md")
        print(row, flush=True)

    fit = None
    cpu0 = 0.0
    with dask_client(n_workers=args.workers) as client:
        if any(s.startswith(("fit", "kfold")) for s in args.steps):
            load0, cpu0 = os.getloadavg()[0], cpu_now()
            tic = time.perf_counter()
            started = datetime.now(UTC).isoformat(timespec="seconds")
            fit = csc_bayes.fit("cpp_need", data=data, out=scratch / "fits", progress=False)
            wall = time.perf_counter() - tic
            reused = str(fit.metadata.get("created_at", started)) < started
            record(
                "fit",
                "load the saved fit of cpp_need (reused)"
                if reused
                else "fit cpp_need (4 x (1000 + 1000))",
                "numpyro",
                1,
                wall,
                wall,
                (load0, os.getloadavg()[0]),
                f"gate {'passed' if fit.diagnostics_passed else 'failed'}",
            )
        for step in STEPS[1:]:
            if step not in args.steps:
                continue
            kind, engine = step.split("_")
            if kind == "kfoldone":
                from csc_bayes.compare import _fold_spec, authority_folds, kfold_task

                rows = fit.panel
                folds = authority_folds(sorted(rows["la_code"].astype(str).unique()), 5, seed=0)
                out = rows["la_code"].astype(str).map(folds) == 0
                load0, cpu0 = os.getloadavg()[0], cpu_now()
                tic = time.perf_counter()
                lpd = client.submit(
                    kfold_task,
                    spec=_fold_spec(fit.spec, 0, args.kfold),
                    train=rows[~out].reset_index(drop=True),
                    heldout=rows[out & rows[fit.spec.outcome].notna()],
                    fits_dir=str(scratch / "cv-one"),
                    seed=0,
                    refit="always",
                    pure=False,
                ).result()
                wall = time.perf_counter() - tic
                record(
                    step,
                    f"one fold of grouped {args.kfold}-fold CV of cpp_need",
                    engine,
                    1,
                    wall,
                    wall,
                    (load0, os.getloadavg()[0]),
                    f"{len(lpd)} authorities held out, elpd {sum(lpd.values()):.1f}",
                )
            elif kind == "kfold":
                load0, cpu0 = os.getloadavg()[0], cpu_now()
                tic = time.perf_counter()
                comparison = compare_fits(
                    [fit],
                    kfold=args.kfold,
                    seed=0,
                    fits_dir=scratch / f"cv-{engine}",
                    client=client,
                    progress=False,
                    engine=engine,
                )
                wall = time.perf_counter() - tic
                elpd = float(comparison.table["elpd_kfold"].iloc[0])
                se = float(comparison.table["se_kfold"].iloc[0])
                record(
                    f"kfold_{engine}",
                    f"grouped {args.kfold}-fold CV of cpp_need (LOO included)",
                    engine,
                    args.kfold,
                    wall,
                    wall * args.workers,
                    (load0, os.getloadavg()[0]),
                    f"elpd_kfold {elpd:.1f} (SE {se:.1f})",
                )
            else:
                sims = args.sims if engine == "compiled" else args.old_sims
                folder = scratch / f"sbc-{engine}"
                shutil.rmtree(folder, ignore_errors=True)
                load0, cpu0 = os.getloadavg()[0], cpu_now()
                tic = time.perf_counter()
                result = run_sbc(
                    "cpp_need",
                    sims=sims,
                    seed=2024,
                    fits_dir=folder,
                    client=client,
                    progress=False,
                    engine=engine,
                )
                wall = time.perf_counter() - tic
                worker = result.info["task_seconds_total"]
                smallest = float(result.tests["p_adjusted"].min())
                record(
                    f"sbc_{engine}",
                    f"SBC of cpp_need, {sims} simulations",
                    engine,
                    sims,
                    wall,
                    worker,
                    (load0, os.getloadavg()[0]),
                    f"{result.info['sims_done']} done; uniformity "
                    f"{'passes' if result.passed else 'fails'} (min adjusted p {smallest:.2f})",
                )
                if engine == "compiled":
                    result.save(args.out / "sbc_compiled")
                    memory = pd.DataFrame(result.info["replicates"]).sort_values("sim")
                    memory.to_csv(args.out / "workflows_memory.csv", index=False)
    print(f"done; scratch folder {scratch}", flush=True)


def write_markdown(table: pd.DataFrame, path: Path) -> None:
    """The CSV as a markdown table, with the machine."""
    lines = [
        "# Workflow timings (benchmarks/workflows.py)",
        "",
        "Wall seconds on a local Dask cluster; CPU seconds of the client and every worker "
        "process (all threads) over the step, which depend much less on other jobs' load than "
        "wall time; worker seconds are the sum of task wall times (for the K-fold rows: wall x "
        "workers). Load: 1-minute load average at the start / end of the step, on a 2-core "
        "machine shared with other jobs.",
        "",
        "| date (UTC) | panel | workflow | engine | units | wall s | CPU s | CPU s per unit | "
        "worker s | worker s per unit | load start / end | result |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.date_utc} | {r.panel} | {r.workflow} | {r.engine} | {r.units} | {r.wall_s} "
            f"| {r.cpu_s} | {r.cpu_s_per_unit} | {r.worker_s} | {r.worker_s_per_unit} "
            f"| {r.load_start} / {r.load_end} | {r.result} |"
        )
    lines += [
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}.",
        "",
    ]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
