"""Model formulas: parse, print, and the printed formula parses back to the same spec."""

from __future__ import annotations

import random

import pytest

from csc_bayes.errors import SpecError
from csc_bayes.formula import format_formula, lag_name, parse_formula
from csc_bayes.spec import ModelSpec, list_models, load_spec

SHIPPED = list_models()

BASE = {
    "name": "t_formula",
    "outcome": "cpp",
    "years": [2016, 2024],
    "random_effects": ["la", "region", "year"],
    "covariates": {"need": {"deprivation": ["idaci"], "ethnicity": ["ethnic_minority_share"]}},
}


def from_formula_like(spec: ModelSpec) -> ModelSpec:
    """``spec`` rebuilt from its printed formula plus the keys a formula does not hold."""
    return ModelSpec.from_formula(
        spec.formula,
        name=spec.name,
        family=spec.family,
        years=spec.years,
        priors={k: p.as_dict() for k, p in spec.priors.items()},
        sampler=spec.sampler.as_dict(),
        description=spec.description,
        rows=spec.rows,
    )


def model_keys(spec: ModelSpec) -> dict:
    """What :func:`parse_formula` should return for the printed formula of ``spec``."""
    d = spec.to_dict()
    keep = ("outcome", "exposure", "random_effects", "random_slope", "covariates")
    out = {k: d[k] for k in keep if k in d} | spec.optional_terms()
    if not spec.has_exposure:  # no offset: parse_formula gives the count default, which
        out["exposure"] = "population"  # from_formula replaces for an ordinal family
    return out


# ====================================================================== round trips
def test_there_are_shipped_specs():
    assert len(SHIPPED) >= 20


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_spec_round_trips_through_its_formula(path):
    spec = load_spec(path)
    again = from_formula_like(spec)
    assert again.canonical_hash() == spec.canonical_hash()
    assert again.to_dict() == spec.to_dict()
    assert again == spec
    assert parse_formula(spec.formula) == model_keys(spec)
    assert again.formula == spec.formula


def test_printed_formula_is_unchanged_for_shipped_specs():
    assert load_spec(SHIPPED[0].parent / "cpp_need.toml").formula == (
        "cpp ~ idaci + ethnic_minority_share + offset(log(population)) + (1|la) + (1|region)"
        " + (1|year)"
    )
    assert load_spec(SHIPPED[0].parent / "cla_need_ar.toml").formula == (
        "cla ~ idaci + ethnic_minority_share + offset(log(population)) + (1|la) + (1|region)"
        " + rw1(year) + ar1(year | la)"
    )
    assert load_spec(SHIPPED[0].parent / "cpp_need_trend.toml").formula == (
        "cpp ~ idaci + ethnic_minority_share + offset(log(population)) + (1 + year_c || la)"
        " + (1|region) + (1|year)"
    )


SYNTHETIC = {
    "slope": {"random_slope": "idaci"},
    "trend": {"la_trend": True},
    "slope_trend_la_year": {
        "random_slope": "ethnic_minority_share",
        "la_trend": True,
        "random_effects": ["la", "year"],
        "la_year": "ar1",
        "year_effect": "rw1",
        "family": "poisson",
    },
    "spending_block": {
        "covariates": {
            "need": {"deprivation": ["imd"]},
            "spending": {"spending": ["spend_per_child"]},
        },
        "random_slope": "spend_per_child",
    },
    "spending_first": {
        "covariates": {
            "spending": {"spending": ["spend_per_child"]},
            "need": {"ethnicity": ["ethnic_minority_share"], "deprivation": ["idaci"]},
        }
    },
    "multi_covariate_component": {
        "covariates": {"need": {"deprivation": ["imd", "idaci"]}},
        "random_effects": ["la"],
    },
    "non_default_components": {
        "covariates": {
            "need": {
                "area": ["ethnic_minority_share", "idaci"],
                "imd": ["imd"],
                "weird name": ["spend_per_child"],
            }
        },
        "random_slope": "imd",
        "priors": {"beta.imd": {"dist": "normal", "mu": 0.0, "sigma": 0.3}},
    },
    "no_covariates": {"covariates": {}, "random_effects": ["la", "region"]},
}


@pytest.mark.parametrize("changes", SYNTHETIC.values(), ids=list(SYNTHETIC))
def test_synthetic_specs_round_trip(changes):
    spec = ModelSpec.from_dict(BASE | changes)
    again = from_formula_like(spec)
    assert again.canonical_hash() == spec.canonical_hash()
    assert again.to_dict() == spec.to_dict()
    assert parse_formula(spec.formula) == model_keys(spec)


def test_synthetic_printing():
    spec = ModelSpec.from_dict(BASE | SYNTHETIC["non_default_components"])
    assert spec.formula == (
        "cpp ~ need(area = ethnic_minority_share + idaci) + need(imd) + "
        "need(`weird name` = spend_per_child) + offset(log(population)) + (1 + imd || la) + "
        "(1|region) + (1|year)"
    )
    spec = ModelSpec.from_dict(BASE | SYNTHETIC["spending_first"])
    assert spec.formula.startswith("cpp ~ spend_per_child + ethnic_minority_share + idaci + off")
    spec = ModelSpec.from_dict(BASE | SYNTHETIC["slope_trend_la_year"])
    assert spec.formula.endswith(
        "(1 + ethnic_minority_share + year_c || la) + rw1(year) + ar1(year | la)"
    )


def _random_spec(rng: random.Random, i: int) -> ModelSpec:
    """A spec built directly (no covariate check), with names the formula must carry."""
    pool = [
        "idaci",
        "imd",
        "ethnic_minority_share",
        "spend_per_child",
        "x1",
        "lag_idaci_1",
        "lag_spend_per_child_12",
        "deprivation",
        "need",
    ]
    covs = rng.sample(pool, rng.randint(0, len(pool)))
    blocks: dict[str, dict[str, tuple[str, ...]]] = {}
    comp_names = ["deprivation", "ethnicity", "spending", "area", "x1", "my comp", "lag_idaci_1"]
    while covs:
        n = rng.randint(1, 3)
        take, covs = covs[:n], covs[n:]
        block = rng.choice(["need", "spending"])
        comps = blocks.setdefault(block, {})
        choices = [c for c in comp_names if c not in comps]
        if len(take) == 1 and rng.random() < 0.5:
            choices.append(take[0])  # the component named after its covariate
        comps[rng.choice(choices)] = tuple(take)
    blocks = {b: c for b, c in blocks.items() if c}
    # a block order that is not the canonical one sometimes
    if rng.random() < 0.5:
        blocks = dict(reversed(list(blocks.items())))
    covariates = [c for comps in blocks.values() for cs in comps.values() for c in cs]
    effects = ["la", *[g for g in ("region", "year") if rng.random() < 0.7]]
    options = {
        "random_slope": rng.choice([None, *covariates]),
        "la_trend": rng.random() < 0.4,
        "la_year": rng.choice([None, "ar1"]),
        "year_effect": "rw1" if "year" in effects and rng.random() < 0.5 else "iid",
    }
    defaults = {"random_slope": None, "la_trend": False, "la_year": None, "year_effect": "iid"}
    return ModelSpec(
        name=f"r{i}",
        outcome=rng.choice(["cpp", "cla"]),
        blocks=blocks,
        random_effects=tuple(effects),
        options={k: v for k, v in options.items() if v != defaults[k]},
    )


def test_random_specs_print_and_parse_back():
    rng = random.Random(20240331)
    for i in range(300):
        spec = _random_spec(rng, i)
        text = format_formula(spec)
        parsed = parse_formula(text)
        expected = {
            "outcome": spec.outcome,
            "exposure": spec.exposure,
            "random_effects": list(spec.random_effects),
            "covariates": {b: {c: list(v) for c, v in cs.items()} for b, cs in spec.blocks.items()},
        }
        if spec.random_slope:
            expected["random_slope"] = spec.random_slope
        expected |= spec.optional_terms()
        assert parsed == expected, text
        # order is part of the model: blocks, components and covariates keep theirs
        assert list(parsed["covariates"]) == list(spec.blocks), text
        for b, cs in spec.blocks.items():
            assert list(parsed["covariates"][b]) == list(cs), text


# ====================================================================== parsing
def test_printed_formula_of_a_parsed_formula_is_a_fixed_point():
    texts = [
        "cpp~idaci+ethnic_minority_share+(1|la)+(1|region)+(1|year)",
        "cpp ~ ethnic_minority_share + idaci + imd + (1 + imd || la)",
        "cla ~ need(deprivation = idaci + imd) + spending(spend_per_child) + (1|la) + rw1(year)",
        "cla ~ need(area = imd + idaci) + (1 + year_c + idaci || la) + ar1(year|la)",
        "cpp ~ 1 + (1|la)",
    ]
    for text in texts:
        spec = ModelSpec.from_formula(text)
        once = spec.formula
        assert ModelSpec.from_formula(once).formula == once
        assert ModelSpec.from_formula(once).canonical_hash() == spec.canonical_hash()


def test_whitespace_and_normalisation():
    tight = parse_formula("cpp~idaci+ethnic_minority_share+offset(log(population))+(1|la)")
    loose = parse_formula(
        "  cpp  ~\n idaci +  ethnic_minority_share + offset( log( population ) ) + ( 1 | la ) "
    )
    assert (
        tight
        == loose
        == {
            "outcome": "cpp",
            "exposure": "population",
            "random_effects": ["la"],
            "covariates": {
                "need": {"deprivation": ["idaci"], "ethnicity": ["ethnic_minority_share"]}
            },
        }
    )
    # the offset defaults to population
    assert parse_formula("cpp ~ idaci + (1|la)") == tight | {
        "covariates": {"need": {"deprivation": ["idaci"]}}
    }


def test_no_covariates():
    assert parse_formula("cpp ~ 1 + (1|la)") == {
        "outcome": "cpp",
        "exposure": "population",
        "random_effects": ["la"],
        "covariates": {},
    }
    assert parse_formula("cpp ~ (1|la)") == parse_formula("cpp ~ 1 + (1|la)")
    spec = ModelSpec.from_formula("cpp ~ 1 + (1|la)")
    assert spec.name == "cpp_formula" and spec.covariates == () and spec.random_effects == ("la",)
    assert spec.formula == "cpp ~ 1 + offset(log(population)) + (1|la)"


def test_lag():
    assert lag_name("idaci", 1) == "lag_idaci_1"
    parsed = parse_formula("cpp ~ lag(idaci,1) + lag( spend_per_child , 2 ) + idaci + (1|la)")
    assert parsed["covariates"] == {
        "need": {
            "lag_idaci_1": ["lag_idaci_1"],
            "lag_spend_per_child_2": ["lag_spend_per_child_2"],
            "deprivation": ["idaci"],
        }
    }
    spec = ModelSpec(
        name="lagged", outcome="cpp", blocks={"need": {"lag_idaci_1": ("lag_idaci_1",)}}
    )
    assert format_formula(spec).startswith("cpp ~ lag(idaci, 1) + offset")
    # a lagged covariate can carry the random slope
    parsed = parse_formula("cpp ~ lag(idaci, 1) + (1 + lag(idaci,1) || la)")
    assert parsed["random_slope"] == "lag_idaci_1"


def test_default_and_explicit_groups():
    parsed = parse_formula(
        "cpp ~ idaci + ethnic_minority_share + imd + spend_per_child + x + (1|la)"
    )
    assert parsed["covariates"] == {
        "need": {
            "deprivation": ["idaci", "imd"],
            "ethnicity": ["ethnic_minority_share"],
            "x": ["x"],
        },
        "spending": {"spending": ["spend_per_child"]},
    }
    parsed = parse_formula(
        "cpp ~ spending(money = spend_per_child) + need(deprivation = imd + idaci)"
        " + need(ethnic_minority_share) + (1|la)"
    )
    assert parsed["covariates"] == {
        "spending": {"money": ["spend_per_child"]},
        "need": {
            "deprivation": ["imd", "idaci"],
            "ethnic_minority_share": ["ethnic_minority_share"],
        },
    }
    # a plain covariate joins its default component, however that was started
    parsed = parse_formula("cpp ~ need(deprivation = imd) + ethnic_minority_share + idaci + (1|la)")
    assert parsed["covariates"] == {
        "need": {"deprivation": ["imd", "idaci"], "ethnicity": ["ethnic_minority_share"]}
    }
    # component names that are not identifiers are written in backticks
    parsed = parse_formula("cpp ~ need(`area-level` = idaci + imd) + (1|la)")
    assert parsed["covariates"] == {"need": {"area-level": ["idaci", "imd"]}}


def test_random_effect_terms():
    base = "cpp ~ idaci + ethnic_minority_share"
    assert parse_formula(f"{base} + (1 + idaci || la) + (1|year)") == parse_formula(
        base + "+(1|la)"
    ) | {
        "random_effects": ["la", "year"],
        "random_slope": "idaci",
    }
    trend = parse_formula(f"{base} + (1 + year_c || la) + (1|region)")
    assert trend["la_trend"] is True and "random_slope" not in trend
    assert trend["random_effects"] == ["la", "region"]
    both = parse_formula(f"{base} + (1 + year_c + idaci || la)")
    assert both["la_trend"] is True and both["random_slope"] == "idaci"
    assert parse_formula(f"{base} + (1 + idaci + year_c || la)") == both
    assert parse_formula(f"{base} + (idaci || la)") == parse_formula(f"{base} + (1+idaci||la)")
    ar = parse_formula(f"{base} + (1|la) + (1|region) + rw1(year) + ar1(year | la)")
    assert ar["la_year"] == "ar1" and ar["year_effect"] == "rw1"
    assert ar["random_effects"] == ["la", "region", "year"]
    # random effects may come in any order; the dict lists them canonically
    assert parse_formula("cpp ~ (1|year) + (1|region) + (1|la)")["random_effects"] == [
        "la",
        "region",
        "year",
    ]


def test_from_formula_priors_sampler_and_validation():
    spec = ModelSpec.from_formula(
        "cpp ~ idaci + (1|la) + (1|year)",
        name="my_model",
        family="poisson",
        years=(2015, 2023),
        priors={
            "sigma_la": {"sigma": 0.5},
            "beta.idaci": {"dist": "normal", "mu": 0, "sigma": 0.3},
        },
        sampler={"draws": 200, "chains": 2},
        description="a test",
        source="notebook cell 3",
    )
    assert spec.name == "my_model" and spec.family == "poisson" and spec.years == (2015, 2023)
    assert spec.priors["sigma_la"].as_dict() == {"sigma": 0.5}
    assert spec.priors["beta.idaci"].as_dict() == {"dist": "normal", "mu": 0.0, "sigma": 0.3}
    assert spec.sampler.draws == 200 and spec.sampler.chains == 2
    assert spec.description == "a test" and spec.source == "notebook cell 3"
    # the spec's own validation still applies, naming the source
    with pytest.raises(SpecError, match=r"notebook cell 3: key 'priors\.sigma_region'"):
        ModelSpec.from_formula(
            "cpp ~ (1|la)", priors={"sigma_region": {"sigma": 1.0}}, source="notebook cell 3"
        )


# ====================================================================== errors
ERRORS = {
    "empty": ("   ", r"src: empty formula; expected 'outcome ~ terms'"),
    "no tilde": ("cpp idaci + (1|la)", r"src: formula 'cpp idaci \+ \(1\|la\)': no '~'"),
    "two tildes": ("cpp ~ idaci ~ (1|la)", r"2 '~'; expected one"),
    "no outcome": ("~ idaci + (1|la)", r"left of '~' is 'nothing'; expected one outcome"),
    "nothing right": ("cpp ~ ", r"nothing right of '~'; expected terms with at least \(1\|la\)"),
    "unclosed": ("cpp ~ idaci + (1|la", r"unbalanced parentheses: '\(' at column 15 is never"),
    "unopened": ("cpp ~ idaci) + (1|la)", r"unbalanced parentheses: '\)' at column 12 closes"),
    "empty term": ("cpp ~ idaci + + (1|la)", r"an empty term"),
    "unknown function": (
        "cpp ~ log(idaci) + (1|la)",
        r"src: formula term 'log\(idaci\)': unknown function 'log'; expected one of offset",
    ),
    "unknown function in group": (
        "cpp ~ need(dep = sqrt(idaci)) + (1|la)",
        r"term 'need\(dep = sqrt\(idaci\)\)': unknown function 'sqrt'",
    ),
    "repeated covariate": (
        "cpp ~ idaci + need(deprivation = idaci) + (1|la)",
        r"term 'need\(deprivation = idaci\)': repeated term: covariate 'idaci' already given "
        r"by 'idaci'",
    ),
    "repeated la": (
        "cpp ~ idaci + (1|la) + (1 + idaci || la)",
        r"term '\(1 \+ idaci \|\| la\)': repeated term: the LA intercept already given by "
        r"'\(1\|la\)'",
    ),
    "repeated year": (
        "cpp ~ (1|la) + (1|year) + rw1(year)",
        r"term 'rw1\(year\)': repeated term: the year effect",
    ),
    "repeated component": (
        "cpp ~ need(a = idaci) + need(a = imd) + (1|la)",
        r"repeated term: component need.a",
    ),
    "repeated offset": (
        "cpp ~ offset(log(population)) + (1|la) + offset(log(population))",
        r"repeated term: the offset",
    ),
    "la missing": ("cpp ~ idaci + (1|region)", r"src: formula for 'cpp': the LA term \(1\|la\) is"),
    "unknown group": (
        "cpp ~ (1|la) + (1|authority)",
        r"term '\(1\|authority\)': unknown grouping factor 'authority'; expected one of "
        r"\['la', 'region', 'year'\]",
    ),
    "slope on non-covariate": (
        "cpp ~ idaci + (1 + imd || la)",
        r"term '\(1 \+ imd \|\| la\)': random slope on 'imd', which is not a covariate",
    ),
    "correlated": (
        "cpp ~ idaci + (1 + idaci | la)",
        r"term '\(1 \+ idaci \| la\)': correlated random effects \('\|'\) are not supported; "
        r"expected '\|\|'",
    ),
    "slope by region": ("cpp ~ idaci + (1|la) + (1 + idaci || region)", r"by 'la' only"),
    "two slopes": ("cpp ~ idaci + imd + (1 + idaci + imd || la)", r"at most one slope"),
    "zero": ("cpp ~ 0 + idaci + (1|la)", r"term '0': the model always has an intercept"),
    "minus one": ("cpp ~ idaci - 1 + (1|la)", r"term 'idaci - 1': the model always has an"),
    "minus": ("cpp ~ idaci - imd + (1|la)", r"'-' is not supported; expected terms joined"),
    "no intercept in la": ("cpp ~ idaci + (0 + idaci || la)", r"intercept cannot be removed"),
    "triple product": ("cpp ~ idaci*imd*spend_per_child + (1|la)", r"exactly two covariates"),
    "product in a group": ("cpp ~ need(x = idaci*imd) + (1|la)", r"'\*' inside a function"),
    "product and its part": ("cpp ~ idaci + idaci*imd + (1|la)", r"repeated term"),
    "number": ("cpp ~ 2 + (1|la)", r"term '2': a number is not a term"),
    "lag zero": ("cpp ~ lag(idaci, 0) + (1|la)", r"lag 0 is not a positive integer"),
    "lag without k": ("cpp ~ lag(idaci) + (1|la)", r"term 'lag\(idaci\)': found '\)' where ','"),
    "offset without log": (
        "cpp ~ offset(population) + (1|la)",
        r"found 'population' where 'log' should be; expected offset\(log\(column\)\)",
    ),
    "bad ar1": ("cpp ~ (1|la) + ar1(year | region)", r"expected ar1\(year \| la\)"),
    "bad rw1": ("cpp ~ (1|la) + rw1(la)", r"expected rw1\(year\)"),
    "year_c as covariate": ("cpp ~ year_c + (1|la)", r"'year_c' is the LA trend's time variable"),
    "group without name": ("cpp ~ need(idaci + imd) + (1|la)", r"need a component name"),
    "empty group": ("cpp ~ need() + (1|la)", r"need\(\) lists no covariates"),
    "two terms in one": ("cpp ~ idaci imd + (1|la)", r"unexpected 'imd' after the end"),
}


@pytest.mark.parametrize("text,message", ERRORS.values(), ids=list(ERRORS))
def test_errors_name_source_term_and_expectation(text, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_formula(text, source="src")
    assert str(info.value).startswith("src: ")
    with pytest.raises(SpecError, match=message):
        ModelSpec.from_formula(text, source="src")


def test_a_product_is_both_parts_and_their_interaction_as_in_r():
    crossed = parse_formula("cpp ~ lag(spend_per_cin, 1)*idaci + (1|la)")
    written = parse_formula(
        "cpp ~ lag(spend_per_cin, 1) + idaci + lag(spend_per_cin, 1):idaci + (1|la)"
    )
    assert crossed == written
    covariates = [
        c for group in crossed["covariates"].values() for cs in group.values() for c in cs
    ]
    assert covariates == ["lag_spend_per_cin_1", "idaci", "lag_spend_per_cin_1_x_idaci"]


def test_not_a_string():
    with pytest.raises(SpecError, match="a formula must be a string"):
        parse_formula(None)  # type: ignore[arg-type]
