"""Practice terms: the share of the need model's between-LA variance they account for, their
rate ratios, the fit without them, the Ofsted indicators and the yearly deviations."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from answers_helpers import make_world, point_fit
from csc_bayes.data.grades import add_ilacs_indicator
from csc_bayes.data.within import add_year_dev
from csc_bayes.errors import SpecError
from csc_bayes.fits import Fit
from csc_bayes.spec import ModelSpec, select_rows
from csc_bayes.variance import between_la_variance, explain_variance, practice_draws

PRACTICE = "spend_per_child"  # the hand-built world's third covariate, here a practice term


def practice_spec(*, practice: bool = True) -> ModelSpec:
    """The hand-built world's spec with its third covariate as a practice term (or without)."""
    blocks: dict[str, Any] = {
        "need": {"deprivation": ["idaci"], "ethnicity": ["ethnic_minority_share"]}
    }
    if practice:
        blocks["practice"] = {"workforce": [PRACTICE]}
    d = {"name": "hand_built_practice", "outcome": "cla", "years": [2020, 2023]}
    return ModelSpec.from_dict({**d, "covariates": blocks}, source="<hand-built>")


@lru_cache(maxsize=1)
def practice_world(seed: int) -> tuple[Fit, Fit, dict[str, Any], float]:
    """(practice fit, fit without practice, truth of the first, true practice share).

    The fit without the practice term is that of the same data: its true LA effects absorb the
    authority's mean practice contribution c_j (centred), its need coefficients are unchanged.
    The true share is 1 - Var_j(region + la) / Var_j(region + la + c_j), by hand.
    """
    world = make_world(seed)
    fit = Fit(idata=world.fit.idata, spec=practice_spec(), panel=world.panel)
    t = world.truth
    n_la = len(t["la_codes"])
    k = 2  # spend_per_child's column
    counts = np.bincount(t["la_idx"], minlength=n_la)
    c = np.bincount(t["la_idx"], weights=t["X"][:, k] * t["beta"][k], minlength=n_la) / counts
    reduced_la = t["la_effect"] + c - c.mean()
    region_of_la = (np.bincount(t["la_idx"], weights=t["region_idx"]) / counts).astype(int)
    region = t["region_effect"][region_of_la]
    share = 1 - np.var(region + t["la_effect"], ddof=1) / np.var(region + reduced_la, ddof=1)

    rng = np.random.default_rng(seed + 50)
    post = world.fit.idata["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    new = post.isel(covariate=[0, 1]).copy()
    noise = rng.normal(0, 0.05, (chains, draws, n_la))
    new["la_effect"] = (("chain", "draw", "la"), reduced_la + noise)
    const = world.fit.idata["constant_data"].to_dataset().isel(covariate=[0, 1])
    groups = {
        g: world.fit.idata[g].to_dataset()
        for g in world.fit.idata.children
        if g not in ("posterior", "constant_data")
    }
    tree = xr.DataTree.from_dict({"posterior": new, "constant_data": const, **groups})
    reduced = Fit(idata=tree, spec=practice_spec().without_block("practice"), panel=world.panel)
    truth = {k: t[k] for k in ("intercept", "beta", "la_effect", "region_effect", "year_effect")}
    return fit, reduced, {**truth, "reduced_la": reduced_la}, float(share)


def test_practice_share_is_the_documented_ratio_and_its_true_value_is_the_hand_one():
    fit, reduced, truth, share = practice_world(0)
    draws = practice_draws(fit, without_practice_fit=reduced)
    expected = 1 - between_la_variance(fit) / between_la_variance(reduced)
    np.testing.assert_allclose(draws["practice_share:finite"], expected)
    # the rate ratio per SD of the practice covariate is exp(beta)
    beta = fit.idata["posterior"]["beta"].values.reshape(-1, 3)[:, 2]
    np.testing.assert_allclose(draws[f"practice_rate_ratio_per_sd:{PRACTICE}"], np.exp(beta))
    # at the true values the answer is the hand-computed share
    true_fit = point_fit(fit, {k: truth[k] for k in ("beta", "la_effect", "region_effect")})
    true_reduced = point_fit(
        reduced, {"la_effect": truth["reduced_la"], "region_effect": truth["region_effect"]}
    )
    at_truth = practice_draws(true_fit, without_practice_fit=true_reduced)
    assert float(at_truth["practice_share:finite"][0]) == pytest.approx(share)
    # and explain reports it with an interval around it
    summary = explain_variance(fit, without_practice_fit=reduced).summary
    row = summary.set_index(["measure", "component"]).loc[("practice_share", "finite")]
    assert row["lower"] < row["median"] < row["upper"]
    assert abs(row["median"] - share) < 0.1


def test_a_fit_without_practice_that_does_not_match_is_refused():
    fit, reduced, _, _ = practice_world(0)
    with pytest.raises(ValueError, match="has a practice block itself"):
        practice_draws(fit, without_practice_fit=fit)
    other = make_world(0, n_la=30)
    with pytest.raises(ValueError, match="'la' coordinate differs"):
        practice_draws(fit, without_practice_fit=Fit(other.fit.idata, reduced.spec, other.panel))
    with pytest.raises(ValueError, match="no practice covariates"):
        practice_draws(reduced, without_practice_fit=reduced)
    assert practice_draws(reduced) == {}


def test_without_block_keeps_the_rest_and_refuses_a_missing_block():
    spec = practice_spec().with_priors(
        {f"beta.{PRACTICE}": {"sigma": 0.1}, "sigma_la": {"sigma": 0.5}}
    )
    reduced = spec.without_block("practice")
    assert reduced.name == "hand_built_practice_without_practice"
    assert reduced.covariates == ("idaci", "ethnic_minority_share")
    assert f"beta.{PRACTICE}" not in reduced.priors and "sigma_la" in reduced.priors
    assert reduced.sampler == spec.sampler
    with pytest.raises(SpecError, match="no covariate block 'practice'"):
        reduced.without_block("practice")


def test_explain_command_reports_the_practice_section(monkeypatch):
    from typer.testing import CliRunner

    from answers_helpers import answers_app

    fit, reduced, _, _ = practice_world(0)
    app = answers_app(monkeypatch, {"full": fit, "reduced": reduced})
    args = ["explain", "full", "--no-null", "--without-practice", "reduced", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {(r["measure"], r["component"]) for r in json.loads(result.stdout)["rows"]}
    assert ("practice_share", "finite") in rows
    assert ("practice_rate_ratio_per_sd", PRACTICE) in rows
    table = CliRunner().invoke(app, ["explain", "full", "--no-null", "--no-practice"])
    assert table.exit_code == 0, table.output
    assert "practice_rate_ratio_per_sd" in table.stdout and "practice_share" not in table.stdout
    refused = CliRunner().invoke(
        app, ["explain", "reduced", "--no-null", "--without-practice", "full"]
    )
    assert refused.exit_code != 0 and "no practice covariates" in refused.output


def _ilacs_panel() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "la_code": ["1", "1", "2", "2", "3", "3"],
            "year": [2017, 2019, 2017, 2019, 2017, 2019],
            "ilacs_overall": pd.array([None, 3, None, None, None, 1], dtype="Int64"),
            "ilacs_overall_missing": pd.array(
                ["no_source", None, "no_source", "not_yet_inspected", "no_source", None],
                dtype="string",
            ),
        }
    )


def test_ilacs_indicators_keep_not_yet_inspected_rows_and_name_other_reasons():
    panel = _ilacs_panel()
    for name in ("ilacs_requires_improvement", "ilacs_inadequate", "ilacs_not_yet_inspected"):
        panel = add_ilacs_indicator(panel, name)
    later = panel[panel["year"] == 2019]
    assert later["ilacs_requires_improvement"].tolist() == [1, 0, 0]
    assert later["ilacs_inadequate"].tolist() == [0, 0, 0]
    assert later["ilacs_not_yet_inspected"].tolist() == [0, 1, 0]
    earlier = panel[panel["year"] == 2017]
    assert earlier["ilacs_inadequate"].isna().all()
    assert (earlier["ilacs_inadequate_missing"] == "no_source").all()
    bad = _ilacs_panel().assign(ilacs_overall=pd.array([None, 5, None, None, None, 1], "Int64"))
    with pytest.raises(ValueError, match="authority 1 year 2019 has 5"):
        add_ilacs_indicator(bad, "ilacs_inadequate")


def test_year_dev_is_the_difference_from_the_years_mean_and_a_spec_can_name_it():
    panel = pd.DataFrame(
        {
            "la_code": ["1", "2", "3", "1", "2", "3"],
            "year": [2019, 2019, 2019, 2020, 2020, 2020],
            "x": pd.array([1.0, 2.0, None, 4.0, 8.0, 6.0], dtype="Float64"),
            "x_missing": pd.array([None, None, "suppressed", None, None, None], "string"),
        }
    )
    out = add_year_dev(panel, "x")
    assert out["year_dev_x"].tolist()[:2] == [-0.5, 0.5]
    assert out["year_dev_x"].tolist()[3:] == [-2.0, 2.0, 0.0]
    assert out["year_dev_x_missing"].tolist()[2] == "suppressed"
    # a spec names the deviation of a derived indicator; not-yet-inspected rows are fitted
    spec = ModelSpec.from_dict(
        {
            "name": "t",
            "outcome": "y",
            "years": [2019, 2019],
            "covariates": {"practice": {"ofsted": ["year_dev_ilacs_not_yet_inspected"]}},
        }
    )
    rows = _ilacs_panel().assign(y=1, population=100.0)
    fitted, excluded = select_rows(spec, rows)
    assert len(fitted) == 3 and excluded.empty
    assert fitted["year_dev_ilacs_not_yet_inspected"].round(3).tolist() == [-0.333, 0.667, -0.333]


def _simulated_practice_panel(seed: int, effect: float) -> tuple[pd.DataFrame, float]:
    """A synthetic panel (150 authorities, 2019-2023) whose CPP rate has a known practice term.

    ``sw_agency_rate`` = the authority's own level (independent of need) + a national drift +
    yearly noise; log rate = the simulation's need truth + ``effect`` x (agency rate - mean).
    Returns the panel and the true practice share of the need model's between-LA variance:
    1 - Var_j(a_j) / Var_j(a_j + r_j), a_j = region_j + la_j (true), r_j the authority's mean
    practice term with what the need covariates' authority means can absorb removed (OLS).
    """
    from csc_bayes.simulate import simulate_panel, true_log_rate

    sim = simulate_panel(first_year=2019, last_year=2023, seed=seed)
    panel = sim.panel.copy()
    truth = dict(sim.truth["cpp"])
    truth["beta_per_unit"] = {**truth["beta_per_unit"], "spend_per_child": 0.0}
    rng = np.random.default_rng(seed + 1000)
    codes = panel["la_code"].astype(str)
    own = pd.Series(rng.normal(0.15, 0.08, codes.nunique()), index=codes.unique())
    drift = 0.01 * (panel["year"] - 2019)
    agency = codes.map(own).to_numpy() + drift + rng.normal(0, 0.02, len(panel))
    panel["sw_agency_rate"] = pd.array(agency, dtype="Float64")
    practice = effect * (agency - agency.mean())
    log_rate = true_log_rate(panel, params=truth).to_numpy() + practice
    mu = panel["population"].to_numpy(float) * np.exp(log_rate)
    phi = truth["phi"]
    panel["cpp"] = pd.array(rng.negative_binomial(phi, phi / (phi + mu)), dtype="Int64")
    panel["cpp_missing"] = pd.array([None] * len(panel), dtype="string")

    by_la = panel.assign(c=practice).groupby(codes)
    la = by_la[["c", "idaci", "ethnic_minority_share"]].mean().astype(float)
    design = np.column_stack([np.ones(len(la)), la["idaci"], la["ethnic_minority_share"]])
    coef, *_ = np.linalg.lstsq(design, la["c"].to_numpy(), rcond=None)
    r = la["c"].to_numpy() - design @ coef
    region = by_la["region"].first().map(truth["region_effect"]).to_numpy(float)
    a = region + truth["la_effect"].reindex(la.index).to_numpy(float)
    return panel, float(1 - np.var(a, ddof=1) / np.var(a + r, ddof=1))


@pytest.mark.slow
@pytest.mark.parametrize("effect", [2.0, 0.0])
def test_practice_share_recovers_a_known_share_and_finds_none_where_there_is_none(effect):
    import csc_bayes
    from csc_bayes.fitting import find_without_practice_fit

    panel, true_share = _simulated_practice_panel(seed=7, effect=effect)
    spec = ModelSpec.from_dict(
        {
            "name": "cpp_practice_recovery",
            "outcome": "cpp",
            "years": [2019, 2023],
            "covariates": {
                "need": {"deprivation": ["idaci"], "ethnicity": ["ethnic_minority_share"]},
                "practice": {"workforce": ["year_dev_sw_agency_rate"]},
            },
            "sampler": {"draws": 500, "tune": 500, "chains": 2, "seed": 11},
        }
    )
    fit = csc_bayes.fit(spec, data=panel, out=None, progress=False)
    reduced = find_without_practice_fit(fit, out=None, progress=False)
    summary = explain_variance(fit, without_practice_fit=reduced).summary
    row = summary.set_index(["measure", "component"]).loc[("practice_share", "finite")]
    ratio = summary.set_index(["measure", "component"]).loc[
        ("practice_rate_ratio_per_sd", "year_dev_sw_agency_rate")
    ]
    sd = float(fit.idata["constant_data"]["covariate_sd"].sel(covariate="year_dev_sw_agency_rate"))
    if effect:
        assert 0.2 < true_share < 0.45, true_share  # the world is what it is meant to be
        assert row["lower"] <= true_share <= row["upper"], (row.to_dict(), true_share)
        assert ratio["lower"] <= np.exp(effect * sd) <= ratio["upper"]
    else:
        assert true_share == 0.0
        # near zero; the interval is the spread of a ratio of two independent posteriors'
        # V_between (about +-0.13 with 150 authorities x 5 years, docs/methods.md 1.5)
        assert abs(row["median"]) < 0.05 and row["lower"] <= 0.0 <= row["upper"], row.to_dict()
        assert ratio["lower"] <= 1.0 <= ratio["upper"]


def test_synthetic_workforce_columns_leave_every_other_column_unchanged(monkeypatch):
    import csc_bayes.simulate as simulate

    with_workforce = simulate.simulate_panel(seed=3).panel
    monkeypatch.setattr(simulate, "_add_workforce", lambda panel, seed: panel)
    without = simulate.simulate_panel(seed=3).panel
    added = [c for c in with_workforce.columns if c not in without.columns]
    assert sorted(added) == sorted(
        [*simulate._WORKFORCE, *(f"{c}_missing" for c in simulate._WORKFORCE)]
    )
    pd.testing.assert_frame_equal(with_workforce[list(without.columns)], without)
    early = with_workforce[with_workforce["year"] < simulate.WORKFORCE_FIRST_YEAR]
    assert early["sw_caseload"].isna().all() and (early["sw_caseload_missing"] == "no_source").all()
    later = with_workforce[with_workforce["year"] >= simulate.WORKFORCE_FIRST_YEAR]
    assert later["sw_agency_rate"].between(0, 0.6).all() and later["sw_caseload"].notna().all()
