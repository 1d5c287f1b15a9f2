"""The NAO's own window: how much of its 44 / 15 / 10 split is the years, the model, the covariates.

    python examples/nao_window.py --raw ../shared/data/raw

The NAO (2019) analysed child protection plan rates up to 2017-18 with deprivation and a year
term and no ethnicity. On the years 2013-2018 of the real panel this fits, each with its null
model (random effects only):

- ``nao_like``: ``cpp ~ idaci + offset(log(population)) + (1|la) + (1|region) + (1|year)``
  (deprivation and year, no ethnicity), as a formula;
- ``cpp_need`` (IDACI and ethnicity) on the same years and rows,

and writes ``results/nao_window/summary.md``: the variance shares (latent log-rate scale,
Shapley; docs/methods.md 1.1) of deprivation, ethnicity, the authority, the region and the
year, and the between-authority variance the covariates explain (1.4). Set beside section 2 of
docs/real_data_results.md (``cpp_need`` on 2013-2024), the reader sees what changes with the
years (2013-2018 against 2013-2024) and with the covariates (with and without ethnicity).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

import csc_bayes
from csc_bayes.fits import write_text_atomic
from csc_bayes.fitting import find_null_fit

REPO = Path(__file__).resolve().parents[1]
YEARS = (2013, 2018)
NAO_LIKE = "cpp ~ idaci + offset(log(population)) + (1|la) + (1|region) + (1|year)"
QUANTITIES = (
    "share:deprivation",
    "share:ethnicity",
    "share:la",
    "share:region",
    "share:year",
    "share:overdispersion",
    "share:poisson_noise",
    "between_la_explained:finite",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--fits", type=Path, default=REPO / "fits" / "realdata")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "nao_window")
    args = parser.parse_args(argv)

    panel = csc_bayes.build_panel(args.raw)
    ours = dataclasses.replace(csc_bayes.find_spec("cpp_need"), years=YEARS)
    ours = dataclasses.replace(ours, name="cpp_need_2013_2018")
    ours_fit = csc_bayes.fit(ours, data=panel, out=args.fits, progress=False)
    rows_used = panel.merge(ours_fit.fitted_rows, on=["la_code", "year"], how="inner")
    nao_fit = csc_bayes.fit(
        NAO_LIKE, name="cpp_nao_like", years=YEARS, data=rows_used, out=args.fits, progress=False
    )
    rows = []
    for label, fit in (
        ("nao_like (IDACI, year)", nao_fit),
        ("cpp_need (IDACI, ethnicity)", ours_fit),
    ):
        null = find_null_fit(fit, out=args.fits, progress=False)
        table = csc_bayes.explain_variance(fit, null_fit=null).summary
        table["quantity"] = table["measure"] + ":" + table["component"]
        for q in QUANTITIES:
            hit = table[table["quantity"] == q]
            if len(hit):
                r = hit.iloc[0]
                rows.append({"model": label, "quantity": q, "median": r["median"],
                             "lower": r["lower"], "upper": r["upper"]})  # fmt: skip
        gate = fit.metadata.get("diagnostics", {}).get("passed")
        rows.append({"model": label, "quantity": "gate_passed", "median": float(gate)})
    out = pd.DataFrame(rows)
    args.results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results / "summary.csv", out.to_csv(index=False))
    lines = [
        f"# CPP on the NAO's years ({YEARS[0]}-{YEARS[1]}): an NAO-like model beside ours",
        "",
        "Medians with 90% intervals; shares of the latent log-rate variance (Shapley, "
        "docs/methods.md 1.1); `between_la_explained:finite` = 1 - V_between(model) / "
        "V_between(null) (1.4).",
        "",
        "| model | quantity | median | lower | upper |",
        "|---|---|---|---|---|",
    ]
    for r in out.itertuples():
        lo = "" if pd.isna(r.lower) else f"{r.lower:.3f}"
        hi = "" if pd.isna(r.upper) else f"{r.upper:.3f}"
        lines.append(f"| {r.model} | {r.quantity} | {r.median:.3f} | {lo} | {hi} |")
    write_text_atomic(args.results / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
