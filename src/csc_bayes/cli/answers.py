"""``csc-bayes explain | excess | predict | grades``: the answers, from a saved fit.

FIT is a run folder (``fits/<model>/<run-id>``) or a model folder (its latest run).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import typer

from csc_bayes.cli._common import (
    FORMAT_HELP,
    OUT_HELP,
    RAW_OPT,
    OutputFormat,
    check_table_output,
    emit_table,
    file_format,
    frame_table,
    neighbour_group,
    note,
    print_wide,
    refusing,
    require_raw,
    write_table,
)
from csc_bayes.variance import DEFAULT_CI_PROB

FIT_ARG = typer.Argument(..., help="A run folder, or a model folder (its latest run).")
CI_OPT = typer.Option(DEFAULT_CI_PROB, "--ci-prob", help="Width of the credible intervals (0-1).")
FORMAT_OPT = typer.Option(OutputFormat.table, "--format", help=FORMAT_HELP)
OUT_OPT = typer.Option(None, "--out", help=OUT_HELP)

#: the columns a reader of the excess table sees first in the terminal
_EXCESS_BRIEF = [
    "la_code",
    "la_name",
    "region",
    "year",
    "observed_rate",
    "expected_rate_median",
    "excess_ratio_median",
    "excess_ratio_lower",
    "excess_ratio_upper",
    "p_excess",
    "rank_median",
]
_PREDICT_BRIEF = [
    "la_code",
    "la_name",
    "year",
    "kind",
    "population",
    "observed",
    "predicted_median",
    "predicted_lower",
    "predicted_upper",
    "rate_median",
    "rate_lower",
    "rate_upper",
    "expected_rate_median",
    "excess_ratio_median",
]


def _load(path: Path):
    from csc_bayes.fits import load_fit

    return load_fit(path)


def _whole_year(value: str) -> int:
    """One ``--year`` of ``predict``: a whole number, else a usage error naming the value."""
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a year: give a whole number such as 2025", param_hint="--year"
        ) from None


def parse_year(value: str | None) -> int | str | None:
    """``--year`` of ``excess``: None (the last fitted year), ``"all"`` or a year."""
    if value is None or value.strip().lower() == "all":
        return None if value is None else "all"
    try:
        return int(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a year: give a fitted year such as 2024, or 'all'",
            param_hint="--year",
        ) from None


def explain(
    fit_path: Path = FIT_ARG,
    null: Path | None = typer.Option(
        None, "--null", help="A null (random-effects-only) fit; default: the matching one."
    ),
    no_null: bool = typer.Option(
        False, "--no-null", help="Skip the null model (and the between-LA share it gives)."
    ),
    without_practice: Path | None = typer.Option(
        None,
        "--without-practice",
        help="For a model with practice covariates: the same model without them, on the same "
        "rows; default: the matching one.",
    ),
    no_practice: bool = typer.Option(
        False, "--no-practice", help="Skip the fit without practice (and the practice share)."
    ),
    fmt: OutputFormat = FORMAT_OPT,
    out: Path | None = OUT_OPT,
    ci_prob: float = CI_OPT,
) -> None:
    """How much variation each source explains, and how much is left unexplained.

    Without --null, the matching null model (random effects only, same outcome, years and data)
    is loaded from beside FIT if saved, else fitted and saved there. For a model with a
    practice block (workforce, spending, Ofsted judgement), also each practice term's rate
    ratio and the share of the need model's between-LA variance that the practice terms
    account for (an association), against the same model without them (loaded or fitted
    likewise unless --without-practice or --no-practice).
    """
    from csc_bayes.fitting import find_null_fit, find_without_practice_fit
    from csc_bayes.ordinal import require_count_fit
    from csc_bayes.variance import explain_variance

    check_table_output(fmt, out)
    fit = _load(fit_path)
    with refusing():  # before fitting a null model it could not use
        require_count_fit(fit, "explain")
    has_practice = "practice" in fit.spec.blocks
    if without_practice is not None and not has_practice:
        raise typer.BadParameter(
            f"model {fit.spec.name!r} has no practice covariates", param_hint="--without-practice"
        )
    if without_practice is not None:
        reduced = _load(without_practice)
    elif no_practice or not has_practice:
        reduced = None
    else:
        note(
            f"model without practice {fit.spec.without_block('practice').name}: loading the "
            "saved fit of the same data, or fitting it (use --without-practice FIT or "
            "--no-practice to choose otherwise)"
        )
        reduced = find_without_practice_fit(fit)
    if null is not None:
        null_fit = _load(null)
    elif no_null:
        null_fit = None
    else:
        note(
            f"null model {fit.spec.null_spec().name}: loading the saved fit of the same data, "
            "or fitting it (use --null FIT or --no-null to choose otherwise)"
        )
        null_fit = find_null_fit(fit)
    with refusing():
        result = explain_variance(
            fit, null_fit=null_fit, without_practice_fit=reduced, ci_prob=ci_prob
        )
    frame = result.to_frame()
    nested = json.dumps(result.to_dict(), indent=2)
    if fmt == OutputFormat.table and out is None:
        for measure, rows in frame.groupby("measure", sort=False):
            print_wide(
                frame_table(
                    rows.drop(columns="measure"), title=f"{measure} ({ci_prob:.0%} intervals)"
                )
            )
        return
    emit_table(frame, fmt, out, title=f"Variance explained ({ci_prob:.0%})", json_text=nested)


def excess_command(
    fit_path: Path = FIT_ARG,
    year: str | None = typer.Option(
        None, "--year", help="A fitted year, or 'all'; default the last fitted year."
    ),
    region_as_need: bool = typer.Option(
        False, "--region-as-need", help="Count region effects as need, not as excess."
    ),
    fmt: OutputFormat = FORMAT_OPT,
    out: Path | None = OUT_OPT,
    sort: str = typer.Option(
        "excess_ratio_median", "--sort", help="Column to sort by (descending)."
    ),
    ci_prob: float = CI_OPT,
    neighbours: str | None = typer.Option(
        None,
        "--neighbours",
        help="An authority (name, ONS code or DfE number): show it beside its DfE statistical "
        "neighbours, with its rank among them (needs --raw).",
    ),
    raw: Path | None = RAW_OPT,
) -> None:
    """Each authority's excess or shortfall relative to its expected need.

    The table on the terminal shows the main columns; csv, json, parquet and --out hold them all.
    """
    from csc_bayes.excess import excess, neighbour_excess

    chosen = parse_year(year)
    check_table_output(fmt, out)
    if neighbours is not None:
        require_raw(raw)  # before the fit is loaded
    fit = _load(fit_path)
    if neighbours is not None:
        me, *group = neighbour_group(fit, neighbours, raw)
        with refusing():
            table = neighbour_excess(
                fit, authority=me, neighbours=group, year=chosen, ci_prob=ci_prob,
                region_as_need=region_as_need,
            )  # fmt: skip
        if table.attrs["not_fitted"]:
            note(f"neighbours not in the fit that year: {', '.join(table.attrs['not_fitted'])}")
        title = f"{neighbours} beside its statistical neighbours ({ci_prob:.0%})"
        brief = [*_EXCESS_BRIEF, "group_rank_median", "group_rank_lower", "group_rank_upper"]
        emit_table(table, fmt, out, title=title, brief=[c for c in brief if c != "rank_median"])
        return
    with refusing():
        table = excess(fit, year=chosen, ci_prob=ci_prob, region_as_need=region_as_need)
    if sort not in table.columns:
        raise typer.BadParameter(
            f"unknown column {sort!r}; one of {', '.join(table.columns)}", param_hint="--sort"
        )
    # descending within each year (one block per year when --year all)
    table = table.sort_values(["year", sort], ascending=[True, False], kind="stable")
    table = table.reset_index(drop=True)
    title = f"Excess over expected need ({ci_prob:.0%})"
    emit_table(table, fmt, out, title=title, brief=_EXCESS_BRIEF)


def predict_command(
    fit_path: Path = FIT_ARG,
    authority: str = typer.Option(
        ..., "--authority", help="Name, ONS code or DfE number, or 'all'."
    ),
    year: list[str] | None = typer.Option(None, "--year", help="Year(s); repeat for several."),
    population: float | None = typer.Option(
        None, "--population", help="Children aged 0-17 in forecast years, instead of the panel's."
    ),
    fmt: OutputFormat = FORMAT_OPT,
    out: Path | None = OUT_OPT,
    ci_prob: float = CI_OPT,
    seed: int = typer.Option(0, "--seed", help="Seed of the predictive draws."),
    aggregate: str | None = typer.Option(
        None,
        "--aggregate",
        help="With --authority all: sum the authorities' draws per region or for england "
        "(per draw, so the intervals carry their correlation).",
    ),
) -> None:
    """Posterior predictions for a named authority (or all of them) and year."""
    from csc_bayes.predict import AGGREGATES, predict, predict_aggregate

    if aggregate is not None:
        aggregate = aggregate.strip().lower()
        if aggregate not in AGGREGATES:
            raise typer.BadParameter(
                f"{aggregate!r}: use {' or '.join(AGGREGATES)}", param_hint="--aggregate"
            )
        if authority.strip().lower() != "all":
            raise typer.BadParameter(
                "sums over authorities: give --authority all", param_hint="--aggregate"
            )
        if population is not None:
            raise typer.BadParameter(
                "one --population for every authority cannot make a sum; leave it out",
                param_hint="--aggregate",
            )
    check_table_output(fmt, out)
    fit = _load(fit_path)
    years = [_whole_year(y) for y in year] if year else None
    with refusing(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its notes are printed below, once
        if aggregate is not None:
            table = predict_aggregate(fit, by=aggregate, year=years, ci_prob=ci_prob, seed=seed)
        else:
            table = predict(
                fit,
                authority=authority,
                year=years,
                population=population,
                ci_prob=ci_prob,
                seed=seed,
            )
    for text in table.attrs.get("notes") or []:
        note(f"note: {text}")
    carried = table.attrs.get("carried_forward") or []
    if carried:
        note(
            f"the panel has no {_carried_phrase(carried)}: the latest earlier value of each "
            "authority is used (a forecast assumes it is unchanged)"
        )
    brief = _PREDICT_BRIEF
    title = f"Predictions ({ci_prob:.0%})"
    if aggregate is not None:
        brief = ["la_name", "year", "kind", "n_authorities", *_PREDICT_BRIEF[4:]]
        title = f"Predictions summed {'per region' if aggregate == 'region' else 'for England'}"
        title += f" ({ci_prob:.0%})"
    emit_table(table, fmt, out, title=title, brief=brief)


def _carried_phrase(carried: list[dict[str, Any]]) -> str:
    """``x for 2026, 2027 (from 2025); y for 2027 (from 2026)``: per covariate, the years that
    were carried forward and the years they came from."""
    parts = []
    for covariate in sorted({c["covariate"] for c in carried}):
        mine = [c for c in carried if c["covariate"] == covariate]
        years = ", ".join(map(str, sorted({c["year"] for c in mine})))
        sources = ", ".join(map(str, sorted({c["from_year"] for c in mine})))
        parts.append(f"{covariate} for {years} (from {sources})")
    return "; ".join(parts)


def grades_command(
    fit_path: Path = FIT_ARG,
    vary: list[str] | None = typer.Option(
        None,
        "--vary",
        help="The two covariates to set low and high (default: the parts of the spec's "
        "interaction); give --vary twice.",
    ),
    quantiles: tuple[float, float] = typer.Option(
        (0.1, 0.9), "--quantiles", help="'low' and 'high': these quantiles over the fitted rows."
    ),
    typical: bool = typer.Option(
        False,
        "--typical",
        help="An authority with random effects at zero, instead of the average over "
        "authorities drawn from the fitted random effects.",
    ),
    fmt: OutputFormat = FORMAT_OPT,
    out: Path | None = OUT_OPT,
    effects_out: Path | None = typer.Option(
        None, "--effects-out", help="Also write the coefficient table here (.csv or .json)."
    ),
    ci_prob: float = typer.Option(0.9, "--ci-prob", help="Width of the intervals (0-1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the new authorities' draws."),
) -> None:
    """An ordinal model's answers: coefficients (log odds ratios) and predicted grade shares.

    First the coefficients (per SD of each covariate; a positive one goes with worse grades),
    then the probability of each grade at low and high values of two covariates, with the
    high - low differences.
    """
    from csc_bayes.ordinal import grade_probabilities, ordinal_effects

    check_table_output(fmt, out)
    if vary is not None and len(vary) != 2:
        raise typer.BadParameter("give --vary twice (two covariates)", param_hint="--vary")
    fit = _load(fit_path)
    with refusing():
        effects = ordinal_effects(fit, prob=ci_prob)
        table = grade_probabilities(
            fit,
            vary=tuple(vary) if vary else None,
            quantiles=tuple(quantiles),
            over_authorities=not typical,
            prob=ci_prob,
            seed=seed,
        )
    if effects_out is not None:
        write_table(effects, effects_out, file_format(OutputFormat.table, effects_out))
        note(f"wrote {effects_out}")
    if fmt == OutputFormat.table:
        print_wide(
            frame_table(
                _significant(effects),
                title=f"Coefficients: log cumulative odds ratios per SD ({ci_prob:.0%} intervals)",
            )
        )
    a, b = table.attrs["a"], table.attrs["b"]
    who = "an authority with random effects at zero" if typical else "averaged over authorities"
    title = f"P(grade) at low/high {a} (a) and {b} (b), {who} ({ci_prob:.0%} intervals)"
    emit_table(_significant(table) if out is None else table, fmt, out, title=title)


def _significant(frame: Any, digits: int = 4) -> Any:
    """``frame`` with its float columns rounded to ``digits`` significant digits (display)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype.kind == "f":
            out[column] = out[column].map(lambda v: float(f"{v:.{digits}g}"))
    return out


def register(app: typer.Typer) -> None:
    """Add ``explain``, ``excess``, ``predict`` and ``grades`` to the ``csc-bayes`` app."""
    app.command("explain")(explain)
    app.command("excess")(excess_command)
    app.command("predict")(predict_command)
    app.command("grades")(grades_command)
