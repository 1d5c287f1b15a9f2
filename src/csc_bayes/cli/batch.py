"""``csc-bayes batch``, ``sbc`` and ``compare``: many fits on Dask, calibration, comparison."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from csc_bayes.cli._common import (
    ExitCode,
    OutputFormat,
    check_output,
    check_table_output,
    emit_table,
    fail,
    frame_table,
    note,
    print_wide,
    refusing,
    write_table,
    writing,
)

SCHEDULER_HELP = (
    "A running Dask scheduler: its address (tcp://host:8786) or the file written by "
    "`dask scheduler --scheduler-file FILE.json`; default: a local cluster."
)
WORKERS_HELP = "Worker processes of the local cluster (default: one per core)."


def batch(
    plan: Path = typer.Argument(..., help="Plan TOML file (see plans/example.toml)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Run every fit of a plan; re-running resumes (finished, matching fits are reused).

    The plan is checked (keys, specs, sampler settings, years against the data) before any
    worker starts. Exit 1 when a fit failed; each failure is named on standard error.
    """
    from csc_bayes.batch import run_plan

    result = run_plan(plan, scheduler=scheduler, n_workers=workers, progress=True)
    table = result.table.drop(columns=["error"]).assign(run=result.table["run"].fillna(""))
    print_wide(frame_table(table, title=f"{plan}: {result.wall_seconds:.0f} s wall"))
    failed = result.table[result.table["status"] == "failed"]
    for row in failed.itertuples():
        note(f"failed {row.task}: {last_line(row.error)}")
    if not result.ok:
        raise fail(f"{len(failed)} of {len(result.table)} fits failed", ExitCode.ERROR)


def last_line(text: str | None) -> str:
    """The last non-empty line of a worker's error text (the exception, not its traceback)."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


class Engine(StrEnum):
    """How SBC replicates and K-fold folds are fitted (docs/scale.md)."""

    fit = "fit"
    compiled = "compiled"


ENGINE_HELP = (
    "fit: a saved csc_bayes.fit per replicate / fold (resumable, the convergence gate run); "
    "compiled: the model compiled once per worker and sampled for every replicate / fold "
    "(much faster; docs/scale.md)."
)


def sbc(
    spec: str = typer.Argument(..., help="Model name (e.g. cpp_need) or spec TOML path."),
    sims: int = typer.Option(200, "--sims", min=1, help="Number of simulated data sets."),
    seed: int = typer.Option(0, "--seed", help="Seed of the panel, the draws and the sampler."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for ranks.csv, tests.csv, info.json, ranks_ecdf.png."
    ),
    fits_dir: Path = typer.Option(Path("fits/sbc"), "--fits", help="Where replicate fits go."),
    prior_scale: float = typer.Option(
        1.0, "--fit-prior-scale", help="Scale the FITTED priors only (0.5: negative control)."
    ),
    saved_only: bool = typer.Option(
        False, "--saved-only", help="Fit nothing: summarise the replicates already saved."
    ),
    engine: Engine = typer.Option(Engine.fit, "--engine", help=ENGINE_HELP),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Simulation-based calibration: rank statistics and uniformity tests (docs/scale.md).

    Exit 5 when uniformity is rejected for any quantity (the model or the sampler is not
    calibrated), 0 when it is not.
    """
    from csc_bayes.sbc import run_sbc

    if out is not None:
        check_output(out, folder=True)
    result = run_sbc(
        spec,
        sims=sims,
        seed=seed,
        fit_prior_scale=prior_scale,
        fits_dir=fits_dir,
        scheduler=scheduler,
        n_workers=workers,
        saved_only=saved_only,
        engine=engine.value,
    )
    print_wide(frame_table(result.tests, title=f"SBC of {result.info['fitted_spec']}"))
    verdict = "passed" if result.passed else "REJECTED"
    note(f"{result.info['sims_done']}/{sims} simulations; uniformity {verdict}")
    if out is not None:
        with writing(out):
            note(f"wrote {result.save(out)}")
    if not result.passed:
        failed = result.tests.loc[~result.tests["passed"].astype(bool), "quantity"]
        raise fail(
            f"SBC rejected uniformity of the ranks of {', '.join(map(str, failed))}",
            ExitCode.CHECK_FAILED,
        )


def compare(
    fits: list[Path] = typer.Argument(..., help="Saved fits: run folders or model folders."),
    kfold: int | None = typer.Option(
        None, "--kfold", min=2, help="Grouped K-fold CV leaving out whole authorities."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and new-group draws."),
    fmt: OutputFormat = typer.Option(
        OutputFormat.table,
        "--format",
        help="table, csv or json on standard output; parquet: table.parquet in the --out folder.",
    ),
    plot: Path | None = typer.Option(None, "--plot", help="Write the comparison figure here."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for table.csv/json, pareto_k.csv, info.json, compare.png."
    ),
    fits_dir: Path = typer.Option(Path("fits/cv"), "--fits", help="Where the fold fits go."),
    engine: Engine = typer.Option(Engine.fit, "--engine", help=ENGINE_HELP),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Compare models by PSIS-LOO and (with --kfold) cross-validation over authorities."""
    import matplotlib.pyplot as plt

    from csc_bayes.compare import compare_fits
    from csc_bayes.errors import TaskFailedError
    from csc_bayes.plots import save_figure
    from csc_bayes.plots._style import figure_format

    check_table_output(fmt, out, folder=True)
    if plot is not None:
        figure_format(plot)
        check_output(plot)
    try:
        with refusing():
            result = compare_fits(
                list(fits),
                kfold=kfold,
                seed=seed,
                fits_dir=fits_dir,
                scheduler=scheduler,
                n_workers=workers,
                progress=fmt == OutputFormat.table,
                engine=engine.value,
            )
    except TaskFailedError as exc:  # K-fold refits or compiled fold tasks that failed
        # the workers' tracebacks follow in the message: its first line and the last error
        first = str(exc).splitlines()[0]
        raise fail(f"{first} ... {last_line(str(exc))}", ExitCode.ERROR, exc) from None
    if fmt != OutputFormat.parquet:
        emit_table(result.table, fmt, title="Model comparison (elpd: higher is better)")
    if fmt == OutputFormat.table and len(result.pareto_k):
        print_wide(frame_table(result.pareto_k, title="Pareto k above threshold (PSIS-LOO)"))
    if plot is not None:
        fig = result.plot()
        try:
            save_figure(fig, plot, dpi=110)
        finally:
            plt.close(fig)
        note(f"wrote {plot}")
    if out is not None:
        with writing(out):
            result.save(out)
            if fmt == OutputFormat.parquet:
                write_table(result.table, out / "table.parquet", "parquet")
        note(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``batch``, ``sbc`` and ``compare`` commands."""
    app.command()(batch)
    app.command()(sbc)
    app.command()(compare)
