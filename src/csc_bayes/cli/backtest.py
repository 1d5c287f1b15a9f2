"""``csc-bayes backtest``: rolling-origin forecast scores of a spec against naive baselines."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperCommand

from csc_bayes.cli._common import (
    DRAWS_HELP,
    check_output,
    frame_table,
    note,
    parse_draws,
    print_wide,
    refusing,
    writing,
)

SCHEDULER_HELP = "Address of a running Dask scheduler (tcp://host:8786); default: a local cluster."
WORKERS_HELP = (
    "Worker processes of the local cluster (default: one per core); 1 runs the refits here, "
    "one after another."
)
#: options that take several values after one flag (``--horizon 1 2 3``)
MANY_VALUES = ("--origins", "--horizon")
_BRIEF = [
    "origin",
    "horizon",
    "method",
    "n_authorities",
    "coverage_50",
    "coverage_90",
    "mean_crps",
    "mae_median",
]


def spread_values(args: list[str], options: tuple[str, ...] = MANY_VALUES) -> list[str]:
    """``--horizon 1 2 3`` -> ``--horizon 1 --horizon 2 --horizon 3`` for ``options``.

    The whole numbers right after such a flag are its values; the first other token ends them.
    A flag without a value is left alone (click then says so); ``--`` ends the rewriting.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return out + args[i:]
        j = i + 1
        if arg in options:
            while j < len(args) and args[j].isdigit():
                out += [arg, args[j]]
                j += 1
            if j == i + 1:
                out.append(arg)
        else:
            out.append(arg)
        i = j
    return out


class ManyValuesCommand(TyperCommand):
    """A command whose :data:`MANY_VALUES` options take their values after one flag."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_values(list(args)))


def backtest_command(
    spec: str = typer.Argument(
        ..., help="A shipped model name (see `csc-bayes models`), a TOML file or a formula."
    ),
    data: Path | None = typer.Option(
        None, "--data", help="Panel parquet (`csc-bayes data build`); default: the synthetic one."
    ),
    origins: list[int] = typer.Option(
        ...,
        "--origins",
        help="The test years: A B scores every year from A to B; one year scores that year.",
    ),
    horizon: list[int] = typer.Option(
        [1],
        "--horizon",
        help="Years ahead (1 2 3): each origin t is forecast from a refit on the years up to "
        "t - h; a refit's years ahead are drawn jointly.",
    ),
    window: int | None = typer.Option(
        None,
        "--window",
        min=2,
        help="Train on the last K years only (default: every year from the spec's first).",
    ),
    baseline: list[str] = typer.Option(
        ["naive", "naive_trend"],
        "--baseline",
        help="Baselines to score (repeat): naive, naive_trend, naive_poisson.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for scores.csv (per authority), summary.csv, pooled.csv, fits.csv, "
        "summary.md, info.json.",
    ),
    fits_dir: Path = typer.Option(
        Path("fits/backtest"), "--fits", help="Where the refits go (a rerun reuses them)."
    ),
    refit: str = typer.Option(
        "on_change", help="on_change: reuse matching saved refits; always; never (only load)."
    ),
    draws: str | None = typer.Option(None, help=DRAWS_HELP),
    tune: int | None = typer.Option(None, min=1, help="Warm-up iterations per chain."),
    chains: int | None = typer.Option(None, min=1, help="Chains per refit."),
    seed: int = typer.Option(0, "--seed", help="Seed of the predictive and baseline draws."),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Backtest a spec's forecasts: refit on the past, forecast each origin, score against naive.

    For each origin t and horizon h the spec is refitted on its years up to t - h (no outcome
    after t - h is seen) and every authority with an observed count in t is scored: CRPS,
    absolute error of the median, coverage of the central 50% and 90% intervals; likewise the
    naive rule (last year's rate x this year's population, NB spread fitted on the training
    years) and the naive rule x the national trend. Prints the mean scores per origin and pooled
    over origins, with the paired difference model - baseline and its standard error
    (docs/methods.md, section 3e).
    """
    from csc_bayes.backtest import backtest, origin_years

    if refit not in ("on_change", "always", "never"):
        raise typer.BadParameter("use on_change, always or never", param_hint="--refit")
    if len(origins) not in (1, 2):
        raise typer.BadParameter(
            f"give one year or a first and last year, got {len(origins)} values",
            param_hint="--origins",
        )
    if min(horizon) < 1:
        raise typer.BadParameter("horizons are whole years of 1 or more", param_hint="--horizon")
    n_draws = parse_draws(draws)
    with refusing():
        years = origin_years(origins[0], origins[-1])
    if out is not None:
        check_output(out, folder=True)
    check_output(fits_dir, folder=True)
    if data is None:
        note("No --data: backtesting on the SYNTHETIC panel (csc_bayes.simulate).")
    with refusing():
        result = backtest(
            spec,
            data=data,
            origins=years,
            horizons=horizon,
            window=window,
            baselines=tuple(baseline),
            fits_dir=fits_dir,
            refit=refit,
            draws=n_draws,
            tune=tune,
            chains=chains,
            seed=seed,
            workers=workers,
            scheduler=scheduler,
            progress=True,
        )
    info = result.info
    title = f"Backtest of {info['model']} ({info['outcome']}) per origin"
    summary = result.summary
    diffs = [c for c in summary.columns if c.startswith(("crps_minus_", "se_minus_"))]
    print_wide(frame_table(summary[[*_BRIEF, *diffs]], title=title))
    if len(years) > 1:
        pooled = result.pooled
        shown = [c for c in pooled.columns if c not in ("n_authorities",)]
        print_wide(frame_table(pooled[shown], title="Pooled over origins (SE between origins)"))
    if info["gate_failures"]:
        note(
            f"{info['gate_failures']} of {len(result.fits)} refits failed the convergence gate "
            "(fits.csv, summary.md): their scores are not to be trusted"
        )
    reused = int(result.fits["reused"].sum())
    if reused:
        note(f"{reused} of {len(result.fits)} refits reused from {fits_dir}")
    if out is not None:
        with writing(out):
            result.save(out)
        note(f"wrote {out}")


def backtest_table_command(
    folders: list[Path] = typer.Argument(
        ..., help="Saved backtest folders (`csc-bayes backtest ... --out DIR`), one per outcome."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for forecast_table.csv and forecast_table.md."
    ),
    baseline: str = typer.Option(
        "naive", "--baseline", help="The baseline the targets compare with (naive, naive_trend)."
    ),
) -> None:
    """One table of several backtests (e.g. one per outcome) with the forecasting targets.

    Per folder and horizon: the model's pooled mean CRPS and MAE of the median next to the
    baseline's, MAE ratio, coverage of the central 50% / 90% intervals, and whether they meet
    the targets: MAE ratio <= 0.9, CRPS below the baseline's, 50% coverage in [0.45, 0.55],
    90% in [0.87, 0.93]. Reads only the folders' summaries (pooled.csv, info.json, fits.csv).
    """
    from csc_bayes.backtest import forecast_table, save_forecast_table

    if out is not None:
        check_output(out, folder=True)
    with refusing():
        if out is None:
            table = forecast_table(folders, baseline=baseline)
        else:
            with writing(out):
                table = save_forecast_table(folders, out, baseline=baseline)
    shown = [c for c in table.columns if c not in ("refits", "origins")]
    print_wide(frame_table(table[shown], title=f"Forecast backtests against {baseline}"))
    failed = table.loc[~table["meets_all"].astype(bool), "outcome"].tolist()
    if failed:
        note(f"not every target met for: {', '.join(map(str, failed))}")
    if out is not None:
        note(f"wrote {out}")


def backtest_compare_command(
    folder_a: Path = typer.Argument(..., help="A saved backtest folder (with its scores.csv)."),
    folder_b: Path = typer.Argument(..., help="Another, of the same outcome."),
    out: Path | None = typer.Option(None, "--out", help="Write the comparison to this CSV."),
    baseline: str = typer.Option(
        "naive", "--baseline", help="The baseline shown beside them (from the first folder)."
    ),
    by_origin: bool = typer.Option(
        False, "--by-origin", help="One row per origin (SE between authorities)."
    ),
    name_a: str | None = typer.Option(None, "--name-a", help="Label of the first model."),
    name_b: str | None = typer.Option(None, "--name-b", help="Label of the second model."),
) -> None:
    """Two backtests of one outcome, paired on the forecasts both made: which spec is better?

    Per horizon, each model's pooled CRPS, MAE of the median and 50% / 90% coverage over the
    origins and authorities both forecast, and crps_minus_<B> = CRPS of A - CRPS of B
    (negative: A is better) with its standard error between origins (--by-origin: per origin,
    SE between authorities).
    """
    from csc_bayes.backtest import compare_backtests
    from csc_bayes.excess import to_safe_csv

    if out is not None:
        check_output(out)
    with refusing():
        table = compare_backtests(
            folder_a, folder_b, baseline=baseline, by_origin=by_origin, names=(name_a, name_b)
        )
    if out is not None:
        with writing(out):
            to_safe_csv(table, out)
    print_wide(frame_table(table, title=f"{folder_a} against {folder_b}"))
    if out is not None:
        note(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``backtest``, ``backtest-table`` and ``backtest-compare`` commands."""
    app.command("backtest", cls=ManyValuesCommand)(backtest_command)
    app.command("backtest-table")(backtest_table_command)
    app.command("backtest-compare")(backtest_compare_command)
