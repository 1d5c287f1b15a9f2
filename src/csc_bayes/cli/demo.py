"""``csc-bayes demo``: the whole pipeline on the embedded synthetic panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from csc_bayes.cli._common import console, frame_table, print_wide

SYNTHETIC_BANNER = (
    "[bold yellow]SYNTHETIC DATA[/]: simulated by csc_bayes.simulate over real authority names "
    "and regions. These numbers describe no real authority. Use `csc-bayes data build` and "
    "`--data` for official data."
)


def panel_summary(panel: pd.DataFrame) -> pd.DataFrame:
    """Per-outcome national rates, authorities and years of a panel, as a small DataFrame."""
    from csc_bayes.data.schema import OUTCOMES

    observed = panel[panel["cpp"].notna()]
    rows = []
    for outcome in OUTCOMES:
        have = panel[panel[outcome].notna()]
        rows.append(
            {
                "outcome": outcome,
                "years": f"{have['year'].min()}-{have['year'].max()}",
                "authorities": int(have["la_code"].nunique()),
                "rate per 10k (pooled)": float(
                    have[outcome].sum() / have["population"].sum() * 10_000
                ),
                "missing cells": int(
                    panel.loc[panel["year"] <= observed["year"].max(), outcome].isna().sum()
                ),
            }
        )
    return pd.DataFrame(rows)


def demo(
    out: Path = typer.Option(Path("demo-output"), help="Folder for the demo's fits and figures."),
    quick: bool = typer.Option(
        False,
        help="300 draws on 2 chains: a smoke run in about a minute. It fails the convergence "
        "gate on purpose (too few chains and draws); the report is then marked as such.",
    ),
    seed: int = typer.Option(0, help="Seed of the synthetic panel."),
) -> None:
    """Simulate the synthetic panel, fit the CPP need model, and print its first answers.

    Steps: simulate -> fit `cpp_need` (saved under OUT/fits, reused on a rerun) -> variance
    explained -> excess over expected need (top and bottom 5) -> Leeds next year ->
    caterpillar plot and HTML report under OUT.
    """
    import csc_bayes
    from csc_bayes.fitting import find_null_fit
    from csc_bayes.plots import caterpillar, save_figure
    from csc_bayes.report import write_report
    from csc_bayes.simulate import simulate_panel

    console.print(SYNTHETIC_BANNER)
    sim = simulate_panel(seed=seed)
    panel = sim.panel
    years = sorted(panel["year"].unique())
    console.print(
        f"Panel: {panel['la_code'].nunique()} authorities in {panel['region'].nunique()} regions, "
        f"reporting years {years[0]}-{years[-1]} ({years[-1]} = next year: population only)."
    )
    print_wide(frame_table(panel_summary(panel), title="Synthetic panel (counts per outcome)"))

    spec = csc_bayes.find_spec("cpp_need")
    settings = {"draws": 300, "tune": 300, "chains": 2} if quick else {}
    spec = spec.with_sampler(**settings, seed=seed) if settings else spec
    console.print(f"\n[bold]Model[/] {spec.name}: {spec.formula}")
    fit = csc_bayes.fit(spec, data=panel, out=out / "fits")
    console.print(f"Saved fit: {fit.path}")
    gate = fit.metadata["diagnostics"]
    console.print(
        "Convergence gate: "
        + (
            "[green]passed[/]"
            if gate["passed"]
            else "[red]FAILED[/] " + ", ".join(f["reason"] for f in gate["failures"])
        )
    )

    null_fit = find_null_fit(fit)
    console.print(f"Null model (random effects only) for comparison: {null_fit.path}")
    explained = csc_bayes.explain_variance(fit, null_fit=null_fit)
    frame = explained.to_frame()
    shares = frame[frame["measure"].isin(["share", "between_la_explained"])]
    print_wide(frame_table(shares, title="Variance explained on the log-rate scale (90% CI)"))

    table = csc_bayes.excess(fit)
    shown = {
        "la_name": "authority", "region": "region", "observed_rate": "observed rate",
        "expected_rate_median": "expected rate", "excess_ratio_median": "excess ratio",
        "excess_ratio_lower": "90% low", "excess_ratio_upper": "90% high",
        "p_excess": "P(ratio>1)", "rank_median": "rank",
    }  # fmt: skip
    ranked = table.sort_values("excess_ratio_median", ascending=False)
    ranked = ranked[list(shown)].rename(columns=shown)
    year = int(table["year"].iloc[0])
    note = "excess ratio = latent rate / expected need; rates per 10,000 children"
    print_wide(frame_table(ranked.head(5), title=f"Highest excess, {year} ({note})"))
    print_wide(frame_table(ranked.tail(5), title=f"Largest shortfall, {year}"))

    leeds = csc_bayes.predict(fit, authority="Leeds", year=[year, year + 1])
    leeds_shown = {
        "year": "year", "kind": "kind", "observed": "observed", "predicted_median": "predicted",
        "predicted_lower": "90% low", "predicted_upper": "90% high",
        "expected_rate_median": "expected rate",
    }  # fmt: skip
    leeds = leeds[list(leeds_shown)].rename(columns=leeds_shown)
    print_wide(frame_table(leeds, title="Leeds: children on plans, this year and next"))

    figure = caterpillar(table, highlight=["Leeds"], synthetic=True)
    save_figure(figure, out / "caterpillar.png")
    report = write_report(fit, out / "report.html", force=not gate["passed"], null_fit=null_fit)
    console.print(f"\nFigures and report: {out / 'caterpillar.png'}, {report}")
    console.print(SYNTHETIC_BANNER)


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command()(demo)
