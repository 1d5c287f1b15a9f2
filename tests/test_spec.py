"""Model specifications: validation errors, formulas, hashes, discovery, default priors."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from csc_bayes.errors import SpecError
from csc_bayes.model import build_model
from csc_bayes.simulate import default_authorities, simulate_panel
from csc_bayes.spec import (
    ModelSpec,
    default_priors,
    find_spec,
    list_models,
    load_spec,
    models_dir,
    select_rows,
)

OUTCOMES = ("cin", "cpp", "cla", "s47", "referrals")

GOOD = """
name = "t_model"
outcome = "cpp"
years = [2016, 2024]
random_effects = ["la", "region", "year"]

[covariates.need]
deprivation = ["idaci"]
ethnicity = ["ethnic_minority_share"]

[covariates.spending]
spending = ["spend_per_child"]

[priors]
sigma_la = { dist = "halfnormal", sigma = 0.5 }

[sampler]
draws = 200
"""


def write(tmp_path: Path, text: str, name: str = "t_model.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def small_panel():
    las = default_authorities(2024).iloc[::8].reset_index(drop=True)  # 19 authorities
    return simulate_panel(seed=5, first_year=2019, last_year=2024, authorities=las).panel


def test_good_spec_names(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.blocks == {
        "need": {"deprivation": ("idaci",), "ethnicity": ("ethnic_minority_share",)},
        "spending": {"spending": ("spend_per_child",)},
    }
    assert spec.groups == {
        "deprivation": ("idaci",),
        "ethnicity": ("ethnic_minority_share",),
        "spending": ("spend_per_child",),
    }
    assert spec.need_groups == {
        "deprivation": ("idaci",),
        "ethnicity": ("ethnic_minority_share",),
    }
    assert spec.covariates == ("idaci", "ethnic_minority_share", "spend_per_child")
    assert spec.exposure == "population" and spec.family == "negative_binomial"
    assert spec.years == (2016, 2024)
    assert spec.sampler.draws == 200 and spec.sampler.backend == "numpyro"
    assert spec.sampler.chains == 4 and spec.sampler.target_accept == 0.85


@pytest.mark.parametrize(
    ("edit", "key_in_message"),
    [
        (('name = "t_model"', 'name = "t_model"\ncolour = "red"'), "colour"),
        (('deprivation = ["idaci"]', 'deprivation = ["2poverty"]'), "covariates.need.deprivation"),
        (('outcome = "cpp"', 'outcome = "cp p"'), "outcome"),
        (('outcome = "cpp"', 'outcome = "cpp"\nexposure = "house-holds"'), "exposure"),
        (('outcome = "cpp"', 'outcome = "cpp"\nfamily = "binomial"'), "family"),
        (("years = [2016, 2024]", 'years = ["2016", 2024]'), "years"),
        (("years = [2016, 2024]", "years = [2024, 2016]"), "years"),
        (("draws = 200", 'draws = "200"'), "sampler.draws"),
        (("draws = 200", "target_accept = 1.5"), "sampler.target_accept"),
        (("draws = 200", 'backend = "stan"'), "sampler.backend"),
        (("draws = 200", "thin = 2"), "sampler.thin"),
        (("[covariates.spending]", "[covariates.controls]"), "covariates.controls"),
        (
            ('random_effects = ["la", "region", "year"]', 'random_effects = ["la", "ward"]'),
            "random_effects",
        ),
        (
            ('random_effects = ["la", "region", "year"]', 'random_effects = ["region"]'),
            "random_effects",
        ),
        (('random_effects = ["la", "region", "year"]', 'random_slope = "imd"'), "random_slope"),
        (("sigma = 0.5 }", "sigma = -0.5 }"), "priors.sigma_la.sigma"),
        (("sigma = 0.5 }", "sigma = 0 }"), "priors.sigma_la.sigma"),
        (('dist = "halfnormal"', 'dist = "cauchy"'), "priors.sigma_la.dist"),
        (('dist = "halfnormal"', 'dist = "normal"'), "priors.sigma_la.dist"),
        (
            ('sigma_la = { dist = "halfnormal", sigma = 0.5 }', 'sigma_la = { dist = "gamma" }'),
            "priors.sigma_la",
        ),
        (("sigma_la = {", "sigma_la_slope = {"), "priors.sigma_la_slope"),
        (("sigma_la = {", '"beta.imd" = {'), "priors.beta.imd"),
        (("sigma_la = {", "sigma_la_trend = {"), "priors.sigma_la_trend"),  # no la_trend
        (
            ('random_effects = ["la", "region", "year"]', 'la_trend = "yes"'),
            "la_trend",
        ),
        (('random_effects = ["la", "region", "year"]', "la_trend = 1"), "la_trend"),
        (
            ('sigma_la = { dist = "halfnormal", sigma = 0.5 }', 'phi = { sigma = "wide" }'),
            "priors.phi",
        ),
        (('sigma_la = { dist = "halfnormal", sigma = 0.5 }', "sigma_la = 0.5"), "priors.sigma_la"),
    ],
)
def test_bad_input_names_file_and_key(tmp_path, edit, key_in_message):
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert key_in_message in str(err.value)


def test_prior_for_parameter_model_lacks(tmp_path):
    poisson = GOOD.replace('outcome = "cpp"', 'outcome = "cpp"\nfamily = "poisson"')
    path = write(
        tmp_path, poisson.replace("sigma_la = {", "phi = {").replace("halfnormal", "gamma")
    )
    with pytest.raises(SpecError, match=r"priors\.phi.*no parameter 'phi'"):
        load_spec(path)
    no_region = GOOD.replace('["la", "region", "year"]', '["la", "year"]')
    path = write(tmp_path, no_region.replace("sigma_la = {", "sigma_region = {"))
    with pytest.raises(SpecError, match=r"priors\.sigma_region"):
        load_spec(path)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "name = "))
    with pytest.raises(SpecError, match="no such specification file"):
        load_spec(tmp_path / "absent.toml")


def test_formula():
    spec = find_spec("cpp_need_spending")
    assert spec.formula == (
        "cpp ~ idaci + ethnic_minority_share + spend_per_child + offset(log(population))"
        " + (1|la) + (1|region) + (1|year)"
    )
    assert spec.null_spec().formula == (
        "cpp ~ 1 + offset(log(population)) + (1|la) + (1|region) + (1|year)"
    )
    d = spec.to_dict() | {"random_slope": "idaci", "random_effects": ["la", "year"]}
    sloped = ModelSpec.from_dict(d)
    assert sloped.formula.endswith("offset(log(population)) + (1 + idaci || la) + (1|year)")
    trended = ModelSpec.from_dict(spec.to_dict() | {"la_trend": True})
    assert trended.formula.endswith(
        "offset(log(population)) + (1 + year_c || la) + (1|region) + (1|year)"
    )
    both = ModelSpec.from_dict(d | {"la_trend": True})
    assert both.formula.endswith("(1 + idaci + year_c || la) + (1|year)")
    # the null model of a trend model keeps the trend
    assert trended.null_spec().la_trend
    assert trended.null_spec().formula == (
        "cpp ~ 1 + offset(log(population)) + (1 + year_c || la) + (1|region) + (1|year)"
    )


def test_la_trend_key_priors_and_round_trip(tmp_path):
    spec = find_spec("cla_need_trend")
    assert spec.la_trend and not find_spec("cla_need").la_trend
    assert "sigma_la_trend" in spec.parameters
    assert "sigma_la_trend" not in find_spec("cla_need").parameters
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert load_spec(write(tmp_path, spec.to_toml())) == spec
    # the default trend prior is fixed, HalfNormal(0.5) per decade; it can be overridden
    panel = simulate_panel(seed=1, first_year=2019, last_year=2021).panel
    spec = dataclasses.replace(spec, years=(2019, 2021))
    priors = default_priors(spec, panel).set_index("parameter")
    assert priors.loc["sigma_la_trend", "dist"] == "halfnormal"
    assert priors.loc["sigma_la_trend", "params"] == "sigma=0.5"
    wide = ModelSpec.from_dict(spec.to_dict() | {"priors": {"sigma_la_trend": {"sigma": 1.0}}})
    priors = default_priors(wide, panel).set_index("parameter")
    assert priors.loc["sigma_la_trend", ["params", "source"]].tolist() == ["sigma=1", "user"]


def test_hashes_of_specs_without_la_trend_are_unchanged():
    """Adding the la_trend key must not change the hash of any existing spec (saved fits)."""
    assert find_spec("cla_need").canonical_hash() == (
        "efb974816b9a8254a84a063f74241c4ac74f425f230fc95e0a08f697f9e0b33f"
    )
    assert find_spec("cpp_need_spending").canonical_hash() == (
        "3879547264e2e83566c2da960acb464bd64a69422b4bcc450286baa0d1a4b55d"
    )
    spec = find_spec("cla_need")
    assert "la_trend" not in spec.canonical_dict()
    trended = spec.with_options(la_trend=True)
    assert trended.canonical_dict()["la_trend"] is True
    assert trended.canonical_hash() != spec.canonical_hash()


def test_hash_stable_under_reordering_and_sensitive_to_priors(tmp_path):
    base = load_spec(write(tmp_path, GOOD))
    doc = tomllib.loads(GOOD)
    reordered = {k: doc[k] for k in reversed(list(doc))}
    reordered["priors"]["intercept"] = {"sigma": 2.0}
    reordered["priors"] = dict(reversed(list(reordered["priors"].items())))
    doc["priors"]["intercept"] = {"sigma": 2.0}
    a = ModelSpec.from_dict(doc, source="a")
    b = ModelSpec.from_dict(reordered, source="b")
    assert a.canonical_hash() == b.canonical_hash()
    assert a.canonical_hash() != base.canonical_hash()  # a prior changed
    changed = dict(doc, priors={"intercept": {"sigma": 2.5}})
    assert ModelSpec.from_dict(changed).canonical_hash() != a.canonical_hash()
    # sampler settings and the name do not change the model hash, only the sampler hash
    faster = a.with_sampler(draws=50, seed=7)
    assert faster.canonical_hash() == a.canonical_hash()
    assert faster.sampler_hash() != a.sampler_hash()
    assert ModelSpec.from_dict(dict(doc, name="other")).canonical_hash() == a.canonical_hash()
    assert len(a.canonical_hash()) == 64


def test_with_sampler_validates():
    spec = find_spec("cpp_need")
    assert spec.with_sampler(chains=2).sampler.chains == 2
    with pytest.raises(SpecError, match=r"sampler\.chains"):
        spec.with_sampler(chains=0)
    with pytest.raises(SpecError, match=r"sampler\.speed"):
        spec.with_sampler(speed=2)


def test_max_treedepth_is_a_sampler_setting_that_leaves_old_hashes_alone():
    spec = find_spec("cpp_need")
    assert spec.sampler.max_treedepth == 10
    deeper = spec.with_sampler(max_treedepth=12)
    assert deeper.sampler.max_treedepth == 12
    assert deeper.sampler_hash() != spec.sampler_hash()
    # the default is not written, so runs saved before the setting existed still match
    assert "max_treedepth" not in spec.sampler.as_dict()
    assert spec.with_sampler(max_treedepth=10).sampler_hash() == spec.sampler_hash()
    for bad in (0, 16, 2.5):
        with pytest.raises(SpecError, match=r"sampler\.max_treedepth"):
            spec.with_sampler(max_treedepth=bad)


def test_draws_auto_is_a_sampler_setting_that_leaves_fixed_hashes_alone(tmp_path):
    spec = find_spec("cpp_need")
    # the hash of a fixed-draw spec is what it was before draws = "auto" existed
    assert spec.sampler_hash() == (
        "100183d72b72a8d1ec1ce238890dbbbb527ebc19be4563d7c8a284b1e7cc0abb"
    )
    assert not {"min_draws", "block_draws", "max_draws"} & set(spec.sampler.as_dict())
    auto = spec.with_sampler(draws="auto")
    assert auto.sampler.auto and auto.sampler.draws == "auto"
    assert (auto.sampler.min_draws, auto.sampler.block_draws, auto.sampler.max_draws) == (
        1000,
        500,
        4000,
    )
    assert auto.sampler_hash() != spec.sampler_hash()
    assert auto.with_sampler(max_draws=6000).sampler_hash() != auto.sampler_hash()
    # a number of draws replaces "auto" and its keys: back to the fixed spec's hash
    assert auto.with_sampler(draws=1000).sampler_hash() == spec.sampler_hash()
    # a TOML round trip keeps it
    path = tmp_path / "auto.toml"
    path.write_text(auto.with_sampler(max_draws=2500).to_toml())
    again = load_spec(path)
    assert again.sampler.draws == "auto" and again.sampler.max_draws == 2500


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"draws": "many"}, r"'sampler\.draws' must be an integer or \"auto\""),
        ({"max_draws": 5000}, r"'sampler\.max_draws' applies only with sampler\.draws = \"auto\""),
        ({"draws": "auto", "backend": "nutpie"}, r"needs backend = \"numpyro\""),
        ({"draws": "auto", "block_draws": 0}, r"'sampler\.block_draws' must be >= 1"),
        ({"draws": "auto", "max_draws": 2.5}, r"'sampler\.max_draws' must be an integer"),
    ],
)
def test_draws_auto_bad_settings_are_named(overrides, message):
    with pytest.raises(SpecError, match=message):
        find_spec("cpp_need").with_sampler(**overrides)


def test_shipped_forecasting_specs_draw_to_target_with_a_cap_at_least_their_old_budget():
    for name, old_budget in {
        "cpp_need_ar": 4000,
        "cin_need_ar": 4000,
        "cin_need_ar_t": 4000,
        "cla_need_ar": 2000,
    }.items():
        sampler = find_spec(name).sampler
        assert sampler.draws == "auto", name
        assert sampler.max_draws >= old_budget, name


def test_round_trip_toml(tmp_path):
    doc = tomllib.loads(GOOD)
    doc["priors"] = {
        "sigma_la": doc["priors"]["sigma_la"],
        "beta.idaci": {"dist": "student_t", "nu": 4, "mu": 0, "sigma": 1},
        "intercept": {"mu": -5},
    }
    doc["random_slope"] = "idaci"
    spec = ModelSpec.from_dict(doc, source="x")
    again = load_spec(write(tmp_path, spec.to_toml(), "again.toml"))
    assert again == spec
    assert again.canonical_hash() == spec.canonical_hash()


def test_unquoted_dotted_prior_key(tmp_path):
    text = GOOD.replace("[priors]", "[priors]\nbeta.idaci = { mu = 0.2 }")
    spec = load_spec(write(tmp_path, text))
    assert spec.priors["beta.idaci"].kwargs == {"mu": 0.2}


def test_null_spec():
    spec = find_spec("cla_need_spending")
    null = spec.null_spec()
    assert null.name == "cla_null" and null.covariates == () and null.blocks == {}
    assert (null.outcome, null.years, null.random_effects) == (
        spec.outcome,
        spec.years,
        spec.random_effects,
    )
    assert null.canonical_hash() == find_spec("cla_null").canonical_hash()


def test_discovery(tmp_path, monkeypatch):
    names = {p.stem for p in list_models()}
    for outcome in OUTCOMES:
        assert {f"{outcome}_need", f"{outcome}_need_spending", f"{outcome}_null"} <= names
    assert find_spec("cpp_need").name == "cpp_need"
    assert find_spec(models_dir() / "cpp_need.toml").name == "cpp_need"
    with pytest.raises(SpecError, match=r"available: .*cpp_need"):
        find_spec("cpp_needs")
    write(tmp_path, GOOD)
    monkeypatch.setenv("CSC_BAYES_MODELS", str(tmp_path))
    assert [p.stem for p in list_models()] == ["t_model"]
    assert find_spec("t_model").years == (2016, 2024)


def test_shipped_specs_load_and_build(small_panel):
    for path in list_models():
        spec = load_spec(path)
        assert spec.name == path.stem
        # the panel's outcome years; an ILACS judgement in force at 31 March 2025 is published
        last = 2025 if spec.ordinal else 2024
        assert 2013 <= spec.years[0] <= spec.years[1] <= last
        built = build_model(spec, small_panel)
        assert built.model.observed_RVs[0].name == "y"
        observed = built.model.rvs_to_values[built.model["y"]].data
        assert observed.shape == (len(built.data),)
        assert (observed == built.data[spec.outcome].to_numpy()).all()


def test_default_priors_are_data_scaled(small_panel):
    spec = find_spec("cpp_need")
    table = default_priors(spec, small_panel).set_index("parameter")
    assert list(table.index) == [
        "intercept",
        "beta",
        "beta.idaci",
        "beta.ethnic_minority_share",
        "sigma_la",
        "sigma_region",
        "sigma_year",
        "phi",
    ]
    rows = small_panel[small_panel["cpp"].notna()]
    y = rows["cpp"].to_numpy(dtype=float)
    pop = rows["population"].to_numpy(dtype=float)
    s = np.std(np.log((y + 0.5) / pop))
    assert table.loc["intercept", "params"] == (
        f"mu={math.log(y.sum() / pop.sum()):.4g}, sigma={2.5 * s:.4g}"
    )
    assert table.loc["beta.idaci", "params"] == f"mu=0, sigma={s:.4g}"
    assert table.loc["sigma_la", "dist"] == "halfnormal"
    assert set(table["source"]) == {"default"}

    d = spec.to_dict()
    d["priors"] = {"intercept": {"sigma": 0.5}, "beta": {"dist": "normal", "mu": 0, "sigma": 1}}
    user = default_priors(ModelSpec.from_dict(d), small_panel).set_index("parameter")
    assert user.loc["intercept", "params"] == f"mu={math.log(y.sum() / pop.sum()):.4g}, sigma=0.5"
    assert user.loc["beta.idaci", "params"] == "mu=0, sigma=1"
    assert user.loc["intercept", "source"] == "user"
    assert user.loc["sigma_la", "source"] == "default"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('deprivation = ["idaci"]', 'deprivation = ["poverty"]'), "covariates 'poverty'"),
        (('outcome = "cpp"', 'outcome = "cpps"'), "outcome 'cpps'"),
        (('outcome = "cpp"', 'outcome = "cpp"\nexposure = "households"'), "exposure 'households'"),
        (('outcome = "cpp"', 'outcome = "la_name"'), "outcome 'la_name'"),
    ],
)
def test_columns_the_panel_lacks_are_errors_when_the_model_meets_the_panel(tmp_path, edit, message):
    """Any panel column may be named; one the panel lacks (or of the wrong kind) is an error
    naming the spec file, the key and the numeric columns there are."""
    old, new = edit
    path = write(tmp_path, GOOD.replace(old, new, 1))
    spec = load_spec(path)
    panel = simulate_panel(seed=0).panel
    with pytest.raises(SpecError, match=message) as err:
        select_rows(spec, panel)
    assert str(path) in str(err.value) and "idaci" in str(err.value)


def test_a_count_outcome_must_be_whole_numbers(tmp_path):
    panel = simulate_panel(seed=0).panel
    panel["cpp_share"] = panel["cpp"].astype(float) / 3
    spec = load_spec(write(tmp_path, GOOD.replace('outcome = "cpp"', 'outcome = "cpp_share"')))
    with pytest.raises(SpecError, match="must be a count"):
        select_rows(spec, panel)
