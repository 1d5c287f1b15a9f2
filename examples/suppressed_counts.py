"""How many real counts are suppressed, and how many of those have a known range.

    python examples/suppressed_counts.py --raw ../shared/data/raw

Reads every count the panel takes from the official files (the outcomes ``cin cpp cla s47
referrals`` and the flows ``icpc cla_started cla_ceased``), every authority included (City of
London 201 and the Isles of Scilly 420 too, which the panel leaves out), and counts per
measure and year the cells marked suppressed, those of excluded authorities, and those with a
known range (``csc_bayes.data.markers.SUPPRESSED_RANGES``: none for the official markers). It
then builds the panel and counts the suppressed rows it holds in the modelled years 2013-2024
(the rows a fit with ``suppressed = "censored"`` could enter as interval-censored counts if
they had a range). Writes ``results/suppressed/summary.md`` (counts only, no authority's count).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from csc_bayes.backtest import markdown_table
from csc_bayes.data import build_panel_report
from csc_bayes.data.cla_history import read_cla
from csc_bayes.data.flows import read_flows
from csc_bayes.data.identity import EXCLUDED
from csc_bayes.data.outcomes import read_outcome
from csc_bayes.data.schema import OUTCOMES, MissingReason, bounds_columns, missing_column
from csc_bayes.fits import write_text_atomic

REPO = Path(__file__).resolve().parents[1]
MODELLED = (2013, 2024)
SUPPRESSED = MissingReason.SUPPRESSED.value


def file_cells(raw: Path) -> pd.DataFrame:
    """measure, year, suppressed cells, of which excluded authorities', of which with a range."""
    measures = {name: [read_outcome(raw, name)] for name in ("cin", "cpp", "s47", "referrals")}
    measures["cla"] = read_cla(raw)
    measures.update(read_flows(raw))
    rows = []
    for name, found in measures.items():
        las = pd.concat([m.las for m in found], ignore_index=True)
        suppressed = las[las["reason"].eq(SUPPRESSED).fillna(False)]
        for year, cells in suppressed.groupby("year"):
            rows.append(
                {
                    "measure": name,
                    "year": int(year),
                    "suppressed": len(cells),
                    "excluded_authorities": int(cells["la_code"].isin(list(EXCLUDED)).sum()),
                    "with_known_range": int(cells["lower"].notna().sum()),
                }
            )
    return pd.DataFrame(rows).sort_values(["measure", "year"]).reset_index(drop=True)


def panel_rows(panel: pd.DataFrame) -> pd.DataFrame:
    """Per count column: suppressed panel rows in the modelled years, and with a known range."""
    first, last = MODELLED
    window = panel[panel["year"].between(first, last)]
    rows = []
    for name in (*OUTCOMES, "icpc", "cla_started", "cla_ceased"):
        suppressed = window[missing_column(name)].eq(SUPPRESSED).fillna(False)
        lo_col, _ = bounds_columns(name)
        ranged = window[lo_col].notna() if lo_col in window else pd.Series(False, window.index)
        rows.append(
            {
                "column": name,
                "rows_2013_2024": len(window),
                "suppressed": int(suppressed.sum()),
                "with_known_range": int((suppressed & ranged).sum()),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--results", type=Path, default=REPO / "results" / "suppressed")
    args = parser.parse_args()

    cells = file_cells(args.raw)
    panel, _ = build_panel_report(args.raw)
    in_panel = panel_rows(panel)
    excluded = ", ".join(f"{c} ({r.split(':')[0]})" for c, r in EXCLUDED.items())
    first, last = MODELLED
    text = "\n".join(
        [
            "# Suppressed counts in the official files (`examples/suppressed_counts.py`)",
            "",
            "Cells marked suppressed, per measure and year, every authority of the files",
            f"(the panel excludes {excluded}):",
            "",
            *markdown_table(cells),
            "",
            f"Suppressed rows of the built panel in the modelled years {first}-{last}:",
            "",
            *markdown_table(in_panel),
            "",
        ]
    )
    args.results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results / "summary.md", text)
    print(text)


if __name__ == "__main__":
    main()
