"""How much "LA" is family circumstances? Child poverty as it changes, beside IDACI and ethnicity.

    python examples/family_circumstances.py --raw ../shared/data/raw [--outcomes cpp cin cla]

For each outcome, on the years DWP's child poverty covers (2015-2022), it fits (saved under
``--fits``, reused when nothing changed):

- ``<outcome>_need_poverty``: IDACI, ethnic minority share and child poverty split into the
  authority's mean over the years and its yearly deviation (``la_mean_low_income_rate``,
  ``la_dev_low_income_rate``; ``csc_bayes.data.within``);
- ``<outcome>_need`` on the same years and rows (the IDACI-only model);
- their null model (random effects only), for the between-LA variance the covariates explain,

With ``--practice`` it also fits ``results/family_circumstances/cpp_need_practice.toml`` (need +
children's social work workforce, 2018-2024, a non-need ``practice`` block) and ``cpp_need`` on
the same rows, and reports the share of the need model's between-authority variance that the
practice covariates account for, per index-paired draw,

    practice_share = 1 - V_between(need + practice) / V_between(need)

(V_between: ``csc_bayes.variance.between_la_variance``, docs/methods.md 1.4), an association,
not the effect of changing practice.

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


def practice_rows(panel: pd.DataFrame, fits: Path) -> list[dict]:
    """CPP: need + practice against need on the same rows (see the module docstring)."""
    from csc_bayes.variance import between_la_variance

    spec = csc_bayes.load_spec(REPO / "results" / "family_circumstances" / "cpp_need_practice.toml")
    fit = csc_bayes.fit(spec, data=panel, out=fits, progress=False)
    same_rows = panel.merge(fit.fitted_rows, on=["la_code", "year"], how="inner")
    need = dataclasses.replace(csc_bayes.find_spec("cpp_need"), years=spec.years)
    need = dataclasses.replace(need, name="cpp_need_2018_2024")
    shared = {k: p.as_dict() for k, p in spec.priors.items() if k.startswith("sigma")}
    need = need.with_priors(shared).with_sampler(target_accept=spec.sampler.target_accept)
    need_fit = csc_bayes.fit(need, data=same_rows, out=fits, progress=False)
    with_practice, without = between_la_variance(fit), between_la_variance(need_fit)
    n = min(len(with_practice), len(without))
    share = 1 - with_practice[:n] / without[:n]
    lo, med, hi = np.quantile(share, [0.05, 0.5, 0.95])
    rows = [
        {
            "outcome": "cpp",
            "model": spec.name,
            "quantity": "practice_share_of_need_model_between_la_variance",
            "median": med,
            "lower": lo,
            "upper": hi,
        }
    ]
    per_unit = fit.idata["posterior"]["beta_per_unit"]
    sd = fit.idata["constant_data"]["covariate_sd"]
    for cov in spec.blocks["practice"]["workforce"]:
        # per SD of the covariate across authority-years, as a rate ratio
        draws = np.exp(float(sd.sel(covariate=cov)) * per_unit.sel(covariate=cov).values.ravel())
        q = np.quantile(draws, [0.05, 0.5, 0.95])
        rows.append(
            {
                "outcome": "cpp",
                "model": spec.name,
                "quantity": f"rate_ratio_per_sd:{cov}",
                "median": q[1],
                "lower": q[0],
                "upper": q[2],
            }
        )
    for model, f in ((spec.name, fit), (need.name, need_fit)):
        gate = f.metadata.get("diagnostics", {}).get("passed")
        rows.append(
            {"outcome": "cpp", "model": model, "quantity": "gate_passed", "median": float(gate)}
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=REPO.parent / "shared" / "data" / "raw")
    parser.add_argument("--fits", type=Path, default=REPO / "fits" / "realdata")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "family_circumstances")
    parser.add_argument("--outcomes", nargs="+", default=["cpp", "cin", "cla"])
    parser.add_argument("--practice", action="store_true", help="also the CPP practice model")
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
        rows += practice_rows(panel, args.fits)

    table = pd.DataFrame(rows)
    args.results.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.results / "summary.csv", index=False)
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
    (args.results / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
