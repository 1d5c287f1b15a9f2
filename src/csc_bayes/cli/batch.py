"""``csc-bayes batch``, ``sbc`` and ``compare``: many fits on Dask, calibration, comparison."""

from __future__ import annotations

from pathlib import Path

import typer

from csc_bayes.cli._common import OutputFormat, console, emit_frame, frame_table, print_wide

SCHEDULER_HELP = "Address of a running Dask scheduler (tcp://host:8786); default: a local cluster."
WORKERS_HELP = "Worker processes of the local cluster (default: one per core)."


def batch(
    plan: Path = typer.Argument(..., help="Plan TOML file (see plans/example.toml)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Run every fit of a plan; re-running resumes (finished, matching fits are reused)."""
    from csc_bayes.batch import run_plan

    result = run_plan(plan, scheduler=scheduler, n_workers=workers, progress=True)
    table = result.table.drop(columns=["error"]).assign(run=result.table["run"].fillna(""))
    print_wide(frame_table(table, title=f"{plan}: {result.wall_seconds:.0f} s wall"))
    for row in result.table[result.table["status"] == "failed"].itertuples():
        console.print(f"[red]failed[/] {row.task}: {row.error}")
    if not result.ok:
        raise typer.Exit(1)


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
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Simulation-based calibration: rank statistics and uniformity tests (docs/scale.md)."""
    from csc_bayes.sbc import run_sbc

    result = run_sbc(
        spec,
        sims=sims,
        seed=seed,
        fit_prior_scale=prior_scale,
        fits_dir=fits_dir,
        scheduler=scheduler,
        n_workers=workers,
        saved_only=saved_only,
    )
    print_wide(frame_table(result.tests, title=f"SBC of {result.info['fitted_spec']}"))
    verdict = "[green]passed[/]" if result.passed else "[red]FAILED[/]"
    console.print(f"{result.info['sims_done']}/{sims} simulations; uniformity {verdict}")
    if out is not None:
        console.print(f"written to {result.save(out)}")


def compare(
    fits: list[Path] = typer.Argument(..., help="Saved fits: run folders or model folders."),
    kfold: int | None = typer.Option(
        None, "--kfold", min=2, help="Grouped K-fold CV leaving out whole authorities."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and new-group draws."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, csv or json."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the comparison figure here."),
    out: Path | None = typer.Option(None, "--out", help="Folder for table/pareto_k/info files."),
    fits_dir: Path = typer.Option(Path("fits/cv"), "--fits", help="Where the fold fits go."),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Compare models by PSIS-LOO and (with --kfold) cross-validation over authorities."""
    import matplotlib.pyplot as plt

    from csc_bayes.compare import compare_fits
    from csc_bayes.plots import save_figure

    result = compare_fits(
        list(fits),
        kfold=kfold,
        seed=seed,
        fits_dir=fits_dir,
        scheduler=scheduler,
        n_workers=workers,
        progress=fmt == OutputFormat.table,
    )
    emit_frame(result.table, fmt, title="Model comparison (elpd: higher is better)")
    if fmt == OutputFormat.table and len(result.pareto_k):
        print_wide(frame_table(result.pareto_k, title="Pareto k above threshold (PSIS-LOO)"))
    if plot is not None:
        fig = result.plot()
        save_figure(fig, plot, dpi=110)
        plt.close(fig)
    if out is not None:
        result.save(out)


def register(app: typer.Typer) -> None:
    """Add the ``batch``, ``sbc`` and ``compare`` commands."""
    app.command()(batch)
    app.command()(sbc)
    app.command()(compare)
