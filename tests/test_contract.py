"""ARCHITECTURE.md's posterior contract is what fits hold: every variable a fit of any kind of
term saves is in the table (or named as internal) with the table's dims, and every variable the
table requires of all fits is there."""

from __future__ import annotations

import re

import pytest

from csc_bayes.spec import find_spec
from equivalence import prior_fit, small_panel
from test_architecture import MAP


def contract() -> dict[tuple[str, str], tuple[str, ...]]:
    """(group, variable) -> dims, from the table's rows."""
    out = {}
    for line in MAP.splitlines():
        cells = [c.strip() for c in line.replace("\\|", "/").strip().strip("|").split("|")]
        if len(cells) != 4 or not line.startswith("| ") or "`" not in cells[1]:
            continue
        groups = [g.strip() for g in cells[0].split(",")]
        if not set(groups) <= {"posterior", "constant_data", "observed_data",
                               "posterior_predictive", "log_likelihood"}:  # fmt: skip
            continue
        names = re.findall(r"`([a-zA-Z_]+)`", cells[1])
        dims = [d.strip() for d in cells[2].split(",")] if cells[2] else []
        per_name = len(names) > 1 and len(dims) == len(names)
        for k, name in enumerate(names):
            these = [dims[k]] if per_name else dims
            for group in groups:
                out[(group, name)] = tuple(d for d in these if d not in ("", "-"))
    return out


def internal() -> set[str]:
    sentence = MAP[MAP.index("Internal variables") :].split(") are how the sampler")[0]
    return set(re.findall(r"`([a-zA-Z_]+)`", sentence))


#: optional rows of the table (present only with their term), the NB-only phi, the
#: cumulative-logit-only cutpoints and the stock term's variables
OPTIONAL = {"phi", "sigma_la_slope", "la_slope", "sigma_la_trend", "la_trend", "sigma_la_year",
            "rho_la_year", "nu_la_year", "la_year", "year_c", "year_centre",
            "y_lower", "y_upper", "cutpoints", "beta_flow", "stock_log_previous",
            "stock_flow_growth"}  # fmt: skip


@pytest.fixture(scope="module")
def fits():
    panel = small_panel()
    every = find_spec("cpp_need_spending").with_options(
        random_slope="idaci", la_trend=True, la_year="ar1", year_effect="rw1"
    )
    student = find_spec("cin_need_ar").with_options(la_year="ar1_t")
    return [prior_fit(spec, panel, draws=4) for spec in (every, student, find_spec("cpp_null"))]


def test_every_saved_variable_is_in_the_contract_with_its_dims(fits):
    table, hidden = contract(), internal()
    for fit in fits:
        for group in ("posterior", "constant_data", "observed_data"):
            ds = fit.idata[group].to_dataset()
            for name, var in ds.data_vars.items():
                if name in hidden:
                    continue
                assert (group, name) in table, f"{group}/{name} is not in ARCHITECTURE.md"
                dims = tuple(d for d in var.dims if d not in ("chain", "draw"))
                assert dims == table[(group, name)], (group, name, dims)


def test_every_required_variable_is_saved(fits):
    for fit in fits:
        for (group, name), _ in contract().items():
            if group in ("posterior_predictive", "log_likelihood") or name in OPTIONAL:
                continue
            assert name in fit.idata[group].data_vars, f"{fit.spec.name}: {group}/{name}"
