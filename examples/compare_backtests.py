"""Paired CRPS difference between two models' backtests on the same authorities.

    python examples/compare_backtests.py results/backtest/cin_ar_t results/backtest/cin_ar

Each folder is a ``csc-bayes backtest ... --out DIR`` result (its ``scores.csv``). For every
origin and horizon, over the authorities both models forecast, with d_j = CRPS_j(first model)
- CRPS_j(second model):

    mean difference = mean_j d_j,     SE = sd_j(d_j) / sqrt(n)

(authorities as independent replicates, so the SE is optimistic; docs/methods.md 3e). Negative:
the first model is better. Prints a markdown table; no per-authority values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def model_scores(folder: Path) -> tuple[str, pd.DataFrame]:
    """(model name, its per-authority scores) from a backtest folder: the non-baseline method."""
    scores = pd.read_csv(folder / "scores.csv", dtype={"la_code": str})
    models = [m for m in scores["method"].unique() if not str(m).startswith("naive")]
    if len(models) != 1:
        raise SystemExit(f"{folder}: expected one model in scores.csv, found {models}")
    return models[0], scores[scores["method"] == models[0]]


def paired(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Mean paired CRPS difference and its SE per origin and horizon."""
    keys = ["origin", "horizon", "la_code"]
    both = first[[*keys, "crps"]].merge(second[[*keys, "crps"]], on=keys, suffixes=("_a", "_b"))
    both["d"] = both["crps_a"] - both["crps_b"]
    out = both.groupby(["origin", "horizon"])["d"].agg(["count", "mean", "std"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    return out.drop(columns="std")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    args = parser.parse_args(argv)
    (name_a, a), (name_b, b) = model_scores(args.first), model_scores(args.second)
    print(f"CRPS of {name_a} minus {name_b} (children; negative: {name_a} is better)\n")
    print("| origin | horizon | authorities | mean difference | SE |")
    print("|---|---|---|---|---|")
    for r in paired(a, b).itertuples():
        print(f"| {r.origin} | {r.horizon} | {r.count} | {r.mean:.2f} | {r.se:.2f} |")


if __name__ == "__main__":
    main()
