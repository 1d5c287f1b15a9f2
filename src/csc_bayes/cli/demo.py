"""``csc-bayes demo``: the whole pipeline on the embedded synthetic panel."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from csc_bayes.cli._common import console, frame_table

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
        False, help="Few draws and 2 chains: a smoke run in seconds (fails the gate on purpose)."
    ),
    seed: int = typer.Option(0, help="Seed of the synthetic panel and of the sampler."),
) -> None:
    """Simulate the synthetic panel, fit the CPP need model, and print its first answers."""
    from csc_bayes.simulate import simulate_panel

    console.print(SYNTHETIC_BANNER)
    sim = simulate_panel(seed=seed)
    panel = sim.panel
    years = sorted(panel["year"].unique())
    console.print(
        f"Panel: {panel['la_code'].nunique()} authorities in {panel['region'].nunique()} regions, "
        f"reporting years {years[0]}-{years[-1]} ({years[-1]} = next year: population only)."
    )
    console.print(frame_table(panel_summary(panel), title="Synthetic panel (counts per outcome)"))


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""
    app.command()(demo)
