"""Batch timing: the same small plans on 1 and 2 local workers (fresh out/ each, no reuse)."""

import sys
from pathlib import Path

import pandas as pd

from csc_bayes.batch import parse_plan, run_plan


def main():
    root = Path(sys.argv[1])
    rows = []
    for n_fits, outcomes in ((4, ["cpp"]), (8, ["cpp", "cla"])):
        for workers in (1, 2):
            out = root / f"fits{n_fits}-w{workers}"
            plan = parse_plan(
                {
                    "out": str(out),
                    "specs": ["cpp_need", "cpp_null"],
                    "outcomes": outcomes,
                    "years": [[2019, 2021], [2022, 2024]],
                    "data": {
                        "source": "synthetic",
                        "authorities": 12,
                        "first_year": 2019,
                        "last_year": 2024,
                    },
                    "sampler": {"draws": 100, "tune": 100, "chains": 1},
                }
            )
            r = run_plan(plan, n_workers=workers, progress=False)
            assert r.ok, r.table
            rows.append(
                {
                    "n_fits": n_fits,
                    "workers": workers,
                    "wall_seconds": round(r.wall_seconds, 1),
                    "sum_task_seconds": round(float(r.table["seconds"].sum()), 1),
                    "mean_task_seconds": round(float(r.table["seconds"].mean()), 1),
                }
            )
            print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(root / "timing.csv", index=False)


if __name__ == "__main__":
    main()
