"""``csc-bayes fit``, ``csc-bayes models`` and ``csc-bayes priors``: specs in, saved fits out."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from csc_bayes.cli._common import (
    DRAWS_HELP,
    ExitCode,
    check_output,
    frame_table,
    note,
    parse_draws,
    print_wide,
)

SPEC_ARG = typer.Argument(
    None,
    help="A shipped model name (see `csc-bayes models`) or a TOML file; or give --formula.",
)
DATA_OPT = typer.Option(
    None, "--data", help="Panel parquet from `csc-bayes data build`; default: the synthetic panel."
)


def fit_command(
    spec: str | None = SPEC_ARG,
    data: Path | None = DATA_OPT,
    formula: str | None = typer.Option(
        None,
        "--formula",
        help="The model as a formula instead of SPEC, e.g. 'cpp ~ idaci + "
        "offset(log(population)) + (1|la) + (1|region) + rw1(year)' (docs/model.md).",
    ),
    family: str | None = typer.Option(
        None,
        help="negative_binomial (a formula's default), poisson, or cumulative_logit (an "
        "ordered category such as ilacs_overall; no offset); overrides the spec.",
    ),
    years: tuple[int, int] | None = typer.Option(
        None, help="First and last year to fit (a formula's default: 2013 2024)."
    ),
    name: str | None = typer.Option(None, help="Model name (a formula's: <outcome>_formula)."),
    suppressed: str | None = typer.Option(
        None,
        help="A count known only to lie in a range: censored (a formula's default: its "
        "likelihood is P(lo <= y <= hi)) or drop (the row is left out); overrides the spec.",
    ),
    prior: list[str] = typer.Option(
        [],
        "--prior",
        help="A prior by parameter name, as a line of the TOML [priors] table, e.g. "
        "'sigma_la = { sigma = 0.5 }'; repeat for several.",
    ),
    out: Path = typer.Option(Path("fits"), "--out", help="Root folder for saved fits."),
    backend: str | None = typer.Option(
        None, help="numpyro (default), blackjax, nutpie or pymc; overrides the spec."
    ),
    draws: str | None = typer.Option(None, help=DRAWS_HELP),
    max_draws: int | None = typer.Option(
        None, "--max-draws", min=1, help="With --draws auto: the cap, draws per chain."
    ),
    tune: int | None = typer.Option(None, help="Warm-up iterations per chain."),
    chains: int | None = typer.Option(None, help="Chains (the gate needs at least 4)."),
    seed: int | None = typer.Option(None, help="Sampler seed (same data, spec, seed: same draws)."),
    target_accept: float | None = typer.Option(None, help="NUTS target acceptance rate."),
    max_treedepth: int | None = typer.Option(
        None, help="Most NUTS tree doublings per draw (spec default, else 10)."
    ),
    refit: str = typer.Option(
        "on_change",
        help="on_change: reuse a saved fit with the same spec, data and sampler settings; "
        "always: sample anew; never: only load.",
    ),
    progress: bool = typer.Option(True, help="Show the sampler's progress bar."),
) -> None:
    """Fit a model and save it under OUT/<model>/<run-id>/; exit 3 if the convergence gate fails.

    Standard output gets the convergence gate's table and the saved run's folder; progress and
    notes go to standard error.
    """
    import csc_bayes
    from csc_bayes.diagnostics import GateResult
    from csc_bayes.fitting import as_spec

    if refit not in ("on_change", "always", "never"):
        raise typer.BadParameter("use on_change, always or never", param_hint="--refit")
    policy: Literal["on_change", "always", "never"] = refit  # type: ignore[assignment]
    n_draws = parse_draws(draws)
    if (spec is None) == (formula is None):
        raise typer.BadParameter("give a model name, a TOML file or --formula (one of them)")
    model = as_spec(formula or spec, family=family, years=years, name=name, suppressed=suppressed)
    if prior:
        model = model.with_priors(_priors(prior))
    check_output(out, folder=True)
    note(f"{model.name}: {model.formula}")
    if data is None:
        note("No --data: fitting the SYNTHETIC panel (csc_bayes.simulate).")
    result = csc_bayes.fit(
        model, data=data, out=out, backend=backend, draws=n_draws, tune=tune, chains=chains,
        seed=seed, target_accept=target_accept, max_treedepth=max_treedepth, max_draws=max_draws,
        refit=policy, progress=progress,
    )  # fmt: skip
    meta = result.metadata
    excluded = meta.get("excluded", {})
    note(
        f"Fitted {meta['n_obs']} authority-years ({meta['n_authorities']} authorities, "
        f"years {meta['years_fitted'][0]}-{meta['years_fitted'][-1]}); "
        f"{excluded.get('n_rows', 0)} rows of the spec's years not fitted (reasons in "
        f"metadata.json)."
    )
    auto = meta.get("sampler", {}).get("auto")
    if auto:
        note(f"Draws to target: {auto['stopped']} ({auto['blocks']} blocks).")
    timings = meta.get("timings", {})
    if "total" in timings:
        note(f"Back end {meta['backend']}: {timings['total']:.1f} s sampling in total.")
    gate = GateResult.from_dict(meta["diagnostics"])
    print_wide(gate.to_rich_table())
    print(f"Saved: {result.path}")
    if not gate.passed:
        note(
            "The fit failed the convergence gate: its answers are not to be trusted "
            "(see docs/diagnostics.md for what to do)."
        )
        raise typer.Exit(ExitCode.GATE_FAILED)


def _priors(lines: list[str]) -> dict:
    """``--prior`` lines (``name = { ... }``) as a ``[priors]`` table."""
    import tomllib

    from csc_bayes.errors import SpecError

    table: dict = {}
    for line in lines:
        try:
            parsed = tomllib.loads(line)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(
                f"--prior {line!r} is not a TOML line such as 'sigma_la = {{ sigma = 0.5 }}': {exc}"
            ) from None
        table.update(parsed)
    return table


def models_command() -> None:
    """List the shipped model specifications with their formulas."""
    import pandas as pd

    from csc_bayes.spec import list_models, load_spec

    rows = []
    for path in list_models():
        spec = load_spec(path)
        rows.append({"model": spec.name, "formula": spec.formula,
                     "years": f"{spec.years[0]}-{spec.years[1]}"})  # fmt: skip
    print_wide(frame_table(pd.DataFrame(rows), title="Shipped models (models/*.toml)"))


def priors_command(spec: str = SPEC_ARG, data: Path | None = DATA_OPT) -> None:
    """Every prior a spec's [priors] table can set, with its data-scaled default."""
    import csc_bayes
    from csc_bayes.fitting import resolve_panel
    from csc_bayes.spec import default_priors

    model = csc_bayes.find_spec(spec)
    panel, synthetic = resolve_panel(data)
    title = f"Priors of {model.name}" + (" (scaled to the SYNTHETIC panel)" if synthetic else "")
    print_wide(frame_table(default_priors(model, panel), title=title))


def register(app: typer.Typer) -> None:
    """Add the ``fit``, ``models`` and ``priors`` commands."""
    app.command("fit")(fit_command)
    app.command("models")(models_command)
    app.command("priors")(priors_command)
