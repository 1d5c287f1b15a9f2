"""How much "LA" is family circumstances? Child poverty as it changes, beside IDACI and ethnicity.

    python examples/family_circumstances.py --raw ../shared/data/raw [--outcomes cpp cin cla]

For each outcome, on the years DWP's child poverty covers (2015-2022), it fits (saved under
``--fits``, reused when nothing changed):

- ``<outcome>_need_poverty``: IDACI, ethnic minority share and child poverty split into the
  authority's mean over the years and its yearly deviation (``la_mean_low_income_rate``,
  ``la_dev_low_income_rate``; ``csc_bayes.data.within``);
- ``<outcome>_need`` on the same years and rows (the IDACI-only model);
- their null model (random effects only), for the between-LA variance the covariates explain,

With ``--practice`` it also fits, for each outcome,
the shipped ``<outcome>_need_practice`` specs (need + practice: children's social work
workforce, spending per child in need and the Ofsted ILACS judgement, each as its difference
from the year's mean across authorities, 2018-2024)
and the same model without its practice block on the same rows
(``csc_bayes.fitting.find_without_practice_fit``), and reports what ``csc-bayes explain``
reports for such a fit: each practice term's rate ratio per SD (per unit against "good or
better" for an Ofsted indicator) and the share of the need model's between-authority variance
that the practice terms account for, per index-paired draw,

    practice_share = 1 - V_between(need + practice) / V_between(need)

(V_between: ``csc_bayes.variance.between_la_variance``, docs/methods.md 1.4-1.5), an
association, not the effect of changing practice.

It writes ``results/family_circumstances/summary.md`` (and ``.csv``): the variance shares
(latent log-rate scale, Shapley attribution; docs/methods.md section 1), the proportion of
between-authority variance explained (finite population), the authority's own share, and the
poverty effects per 10 percentage points of child poverty with 90% intervals. Only summary
statistics are written.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

import csc_bayes
from csc_bayes.fits import write_text_atomic
from csc_bayes.fitting import find_null_fit

REPO = Path(__file__).resolve().parents[1]
POVERTY = ("la_mean_low_income_rate", "la_dev_low_income_rate")


def summarise(outcome: str, model: str, fit, null) -> list[dict]:
    """One row per reported quantity of one fit (median and 90% interval)."""
    result = csc_bayes.explain_variance(fit, null_fit=null).summary
    rows = []
    wanted = {("share", c) for c in result["component"]} | {
        ("between_la_explained", "finite"),
        ("bayes_r2", "rate"),
    }
    for r in result.itertuples():
        if (r.measure, r.component) in wanted and r.measure != "finite_sd":
            rows.append(
                {
                    "outcome": outcome,
                    "model": model,
                    "quantity": f"{r.measure}:{r.component}",
                    "median": r.median,
                    "lower": r.lower,
                    "upper": r.upper,
                }
            )
    per_unit = fit.idata["posterior"]["beta_per_unit"]
    for cov in [str(c) for c in per_unit["covariate"].values]:
        if cov in POVERTY:  # per 10 percentage points of child poverty, as a rate ratio
            draws = np.exp(0.10 * per_unit.sel(covariate=cov).values.ravel())
            lo, med, hi = np.quantile(draws, [0.05, 0.5, 0.95])
            rows.append(
                {
                    "outcome": outcome,
                    "model": model,
                    "quantity": f"rate_ratio_per_10pp:{cov}",
                    "median": med,
                    "lower": lo,
                    "upper": hi,
                }
            )
    gate = fit.metadata.get("diagnostics", {}).get("passed")
    rows.append(
        {"outcome": outcome, "model": model, "quantity": "gate_passed", "median": float(gate)}
    )
    return rows


def practice_rows(panel: pd.DataFrame, fits: Path, outcomes: list[str]) -> list[dict]:
    """Each outcome's practice model (the shipped ``<outcome>_need_practice``) against
    the same model without its practice block on the same rows: the practice share and the rate
    ratios, from ``csc_bayes.explain_variance`` (see the module docstring)."""
    from csc_bayes.fitting import find_without_practice_fit

    rows = []
    for outcome in outcomes:
        spec = csc_bayes.find_spec(f"{outcome}_need_practice")
        fit = csc_bayes.fit(spec, data=panel, out=fits, progress=False)
        reduced = find_without_practice_fit(fit, out=fits, progress=False)
        summary = csc_bayes.explain_variance(fit, without_practice_fit=reduced).summary
        for r in summary[summary["measure"].str.startswith("practice")].itertuples():
            rows.append(
                {
                    "outcome": outcome,
                    "model": spec.name,
                    "quantity": f"{r.measure}:{r.component}",
                    "median": r.median,
                    "lower": r.lower,
                    "upper": r.upper,
                }
            )
        for model, f in ((spec.name, fit), (reduced.spec.name, reduced)):
            gate = f.metadata.get("diagnostics", {}).get("passed")
            gate_row = {"outcome": outcome, "model": model, "quantity": "gate_passed"}
            rows.append({**gate_row, "median": float(gate)})
        print(f"{outcome} practice: done", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--fits", type=Path, default=REPO / "fits" / "realdata")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "family_circumstances")
    parser.add_argument("--outcomes", nargs="+", default=["cpp", "cin", "cla"])
    parser.add_argument(
        "--practice", action="store_true", help="also the practice models of --outcomes"
    )
    args = parser.parse_args(argv)

    panel = csc_bayes.build_panel(args.raw)
    rows: list[dict] = []
    for outcome in args.outcomes:
        poverty_spec = csc_bayes.find_spec(f"{outcome}_need_poverty")
        fit = csc_bayes.fit(poverty_spec, data=panel, out=args.fits, progress=False)
        null = find_null_fit(fit, out=args.fits, progress=False)
        rows += summarise(outcome, poverty_spec.name, fit, null)
        # the IDACI-only model on exactly the rows the poverty model fitted
        same_rows = panel.merge(fit.fitted_rows, on=["la_code", "year"], how="inner")
        need = dataclasses.replace(csc_bayes.find_spec(f"{outcome}_need"), years=poverty_spec.years)
        need = dataclasses.replace(need, name=f"{outcome}_need_2015_2022")
        # the same random-effect priors as the poverty model (e.g. CPP's sigma_year)
        shared = {k: p.as_dict() for k, p in poverty_spec.priors.items() if k.startswith("sigma")}
        need = need.with_priors(shared)
        need_fit = csc_bayes.fit(need, data=same_rows, out=args.fits, progress=False)
        need_null = find_null_fit(need_fit, out=args.fits, progress=False)
        rows += summarise(outcome, need.name, need_fit, need_null)
        print(f"{outcome}: done", flush=True)
    if args.practice:
        rows += practice_rows(panel, args.fits, args.outcomes)

    table = pd.DataFrame(rows)
    args.results.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results / "summary.csv", table.to_csv(index=False))
    lines = [
        "# Child poverty as it changes, beside IDACI and ethnicity (real panel, 2015-2022)",
        "",
        "Medians with 90% intervals. Shares of the latent log-rate variance (Shapley); "
        "`between_la_explained:finite`: 1 - V_between(model) / V_between(null); rate ratios "
        "per 10 percentage points of child poverty (between: authorities whose average is "
        "higher; within: a year in which an authority's own rate is higher than its average). "
        "`gate_passed`: 1 when the fit passed the convergence gate.",
        "",
        "| outcome | model | quantity | median | lower | upper |",
        "|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lo = "" if pd.isna(r.lower) else f"{r.lower:.3f}"
        hi = "" if pd.isna(r.upper) else f"{r.upper:.3f}"
        lines.append(f"| {r.outcome} | {r.model} | {r.quantity} | {r.median:.3f} | {lo} | {hi} |")
    write_text_atomic(args.results / "summary.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
