"""The ordinal (cumulative-logit) model: its likelihood equals PyMC's, one row per inspection,
interaction columns standardised before multiplying, its answers, and the count answers refuse
it. The recovery of known coefficients and cutpoints on a simulated panel is slow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import special

from csc_bayes.data.interactions import parse_interaction_name, standardised_product
from csc_bayes.data.judgements import first_year_in_force
from csc_bayes.errors import AnswerError, SpecError
from csc_bayes.model import build_model
from csc_bayes.ordinal import grade_probabilities, ordinal_effects
from csc_bayes.pointwise import pointwise_groups
from csc_bayes.spec import ModelSpec, find_spec, select_rows
from csc_bayes.terms.family import ordinal_draw, ordinal_log_pmf, ordinal_probabilities
from equivalence import prior_fit, small_panel

SPEC = "ilacs_spending"


@pytest.fixture(scope="module")
def panel():
    return small_panel()


def drawn_fit(spec, panel, *, chains: int = 2, draws: int = 20, seed: int = 0):
    """A Fit of ``spec`` whose posterior holds random draws of the contract's names (ordered
    cutpoints), without compiling anything: for the answers, which read only those names."""
    from csc_bayes.fits import Fit
    from csc_bayes.model import attach_coords

    built = build_model(spec, panel)
    model = built.model
    rng = np.random.default_rng(seed)
    dims = {"chain": np.arange(chains), "draw": np.arange(draws)}
    coords = {k: np.asarray(v) for k, v in model.coords.items() if k != "obs"}

    def normal(*shape, scale=1.0):
        return rng.normal(0.0, scale, (chains, draws, *shape))

    n_la, n_region, n_year = (len(coords[k]) for k in ("la", "region", "year"))
    sigma_la, sigma_region = np.abs(normal()) + 0.2, np.abs(normal()) + 0.1
    variables = {
        "intercept": ((), np.zeros((chains, draws))),
        "beta": (("covariate",), normal(len(spec.covariates), scale=0.5)),
        "sigma_la": ((), sigma_la),
        "la_effect": (("la",), normal(n_la) * sigma_la[..., None]),
        "sigma_region": ((), sigma_region),
        "region_effect": (("region",), normal(n_region) * sigma_region[..., None]),
        "sigma_year": ((), np.zeros((chains, draws))),
        "year_effect": (("year",), np.zeros((chains, draws, n_year))),
        "cutpoints": (("cutpoint",), np.sort(normal(3, scale=1.5), axis=-1)),
    }
    posterior = xr.Dataset(
        {k: (("chain", "draw", *d), v) for k, (d, v) in variables.items()},
        coords={
            **dims,
            **{k: coords[k] for k in ("la", "region", "year", "covariate", "cutpoint")},
        },
    )
    obs = {"obs": np.arange(len(built.data))}
    names = ("X", "covariate_mean", "covariate_sd", "la_idx", "region_idx", "year_idx")
    constant = {n: model[n].get_value() for n in (*names, "log_exposure")}
    constant_dims = {"X": ("obs", "covariate"), "covariate_mean": ("covariate",)}
    constant_dims["covariate_sd"] = ("covariate",)
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "observed_data": xr.Dataset(
                {"y": ("obs", built.data[spec.outcome].to_numpy("int64"))}, coords=obs
            ),
            "constant_data": xr.Dataset(
                {n: (constant_dims.get(n, ("obs",)), v) for n, v in constant.items()},
                coords={**obs, "covariate": coords["covariate"]},
            ),
        }
    )
    tree = attach_coords(tree, built)
    keep = panel[panel["year"] >= spec.years[0]].reset_index(drop=True)
    return Fit(idata=tree, spec=spec, panel=keep, metadata={"synthetic": True})


@pytest.fixture(scope="module")
def ordinal_fit(panel):
    return drawn_fit(find_spec(SPEC), panel)


def spec_dict(**changes):
    d = find_spec(SPEC).to_dict()
    d.update(changes)
    return d


# ====================================================================== likelihood
def test_category_probabilities_are_the_differences_of_the_cumulative_logits():
    eta = np.array([[0.0, 1.5], [-2.0, 0.3]])
    cut = np.array([[-1.0, 0.5, 2.0], [-0.5, 0.0, 1.0]])
    p = ordinal_probabilities(eta, cut)
    assert p.shape == (2, 2, 4)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    # P(y <= 2) at draw 0, row 1 = logistic(c_2 - eta)
    np.testing.assert_allclose(p[0, 1, :2].sum(), special.expit(0.5 - 1.5))
    y = np.array([4, 1])
    np.testing.assert_allclose(
        ordinal_log_pmf(y, eta, cut), np.log([[p[0, 0, 3], p[0, 1, 0]], [p[1, 0, 3], p[1, 1, 0]]])
    )


def test_predictive_draws_have_the_models_category_shares():
    rng = np.random.default_rng(3)
    eta = np.full((1, 40_000), 0.4)
    cut = np.array([[-1.0, 0.2, 1.7]])
    drawn = ordinal_draw(eta, cut, rng)
    shares = np.bincount(drawn[0], minlength=5)[1:] / drawn.size
    np.testing.assert_allclose(shares, ordinal_probabilities(eta[:, :1], cut)[0, 0], atol=0.01)


def test_log_pmf_equals_pymcs_ordered_logistic():
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(1)
    eta = rng.normal(0, 2, (3, 50))
    cut = np.sort(rng.normal(0, 2, (3, 3)), axis=1)
    y = rng.integers(1, 5, 50)
    e, c = pt.dvector("eta"), pt.dvector("cut")
    graph = pm.logp(pm.OrderedLogistic.dist(eta=e, cutpoints=c), y - 1)
    logp = pytensor.function([e, c], graph, mode="FAST_COMPILE")  # no C compilation
    theirs = np.stack([logp(e_s, c_s) for e_s, c_s in zip(eta, cut, strict=True)])
    np.testing.assert_allclose(ordinal_log_pmf(y, eta, cut), theirs, rtol=1e-9, atol=1e-12)


def test_pointwise_groups_of_an_ordinal_fit(ordinal_fit):
    loglik, replicated = pointwise_groups(ordinal_fit, seed=0)
    assert loglik["y"].dims == ("chain", "draw", "obs")
    assert np.isfinite(loglik["y"].values).all() and (loglik["y"].values < 0).all()
    assert set(np.unique(replicated["y"].values)) <= {1, 2, 3, 4}


@pytest.mark.slow
def test_log_likelihood_equals_pymcs_model(panel):
    """The stored log-likelihood equals PyMC's for the whole model (eta and all)."""
    fit = prior_fit(find_spec(SPEC), panel, draws=40)
    post = fit.idata["posterior"].to_dataset()  # forward sampling ignores the ordering
    post["cutpoints"] = post["cutpoints"].copy(data=np.sort(post["cutpoints"].values, axis=-1))
    fit.idata["posterior"] = xr.DataTree(post)
    ours, _ = pointwise_groups(fit, seed=0)
    model = build_model(find_spec(SPEC), panel).model
    for rv in model.rvs_to_initial_values:  # an initial value does not change the density;
        model.rvs_to_initial_values[rv] = None  # PyMC's conversion refuses one
    theirs = pm.compute_log_likelihood(
        fit.idata, model=model, extend_inferencedata=False, progressbar=False
    )
    np.testing.assert_allclose(ours["y"].values, theirs["y"].values, rtol=1e-9, atol=1e-9)
    observed = fit.idata["observed_data"]["y"].values
    assert set(np.unique(observed)) <= {1, 2, 3, 4}  # the codes as published, not 0-based


def test_the_model_has_ordered_cutpoints_no_intercept_and_no_offset(panel):
    built = build_model(find_spec(SPEC), panel)
    names = {v.name for v in built.model.free_RVs}
    assert "cutpoints" in names and "intercept" not in names
    assert list(built.model.coords["cutpoint"]) == ["1|2", "2|3", "3|4"]
    assert "la_z" in names  # an authority's level is non-centred (a grade every few years)
    np.testing.assert_array_equal(built.model["log_exposure"].get_value(), 0.0)


# ====================================================================== spec
def test_an_ordinal_spec_takes_no_exposure_and_a_count_spec_no_row_selection():
    with pytest.raises(SpecError, match="takes no exposure"):
        ModelSpec.from_dict(spec_dict(exposure="population"), source="t.toml")
    with pytest.raises(SpecError, match="needs an ordinal family"):
        ModelSpec.from_dict(spec_dict(family="poisson", exposure="population"), source="t.toml")
    with pytest.raises(SpecError, match="needs an exposure"):
        d = spec_dict(family="poisson", outcome="cpp")
        d.pop("rows")
        ModelSpec.from_dict(d, source="t.toml")


def test_the_outcome_must_be_an_ordered_category(panel):
    spec = ModelSpec.from_dict(spec_dict(outcome="cpp", rows="all"), source="t.toml")
    with pytest.raises(SpecError, match=r"t.toml: family 'cumulative_logit' needs an ordered"):
        select_rows(spec, panel)


def test_an_interaction_needs_its_main_effects():
    d = spec_dict()
    d["covariates"] = {"spending": {"x": ["lag_spend_per_cin_1_x_idaci"], "s": ["idaci"]}}
    with pytest.raises(SpecError, match="put both main effects"):
        ModelSpec.from_dict(d, source="t.toml")


def test_the_formula_reads_and_writes_an_interaction():
    spec = find_spec(SPEC)
    assert "lag(spend_per_cin, 1):idaci" in spec.formula
    assert "offset" not in spec.formula
    again = ModelSpec.from_formula(
        "ilacs_overall ~ idaci + lag(spend_per_cin, 1) + lag(spend_per_cin, 1):idaci + (1|la)",
        family="cumulative_logit",
        years=(2018, 2025),
        rows="first_year_in_force",
    )
    assert again.exposure == "none"
    assert again.covariates[-1] == "lag_spend_per_cin_1_x_idaci"
    assert parse_interaction_name("lag_spend_per_cin_1_x_idaci", again.covariates[:2]) == (
        "lag_spend_per_cin_1",
        "idaci",
    )


# ====================================================================== rows
def test_one_row_per_inspection_even_when_the_grade_repeats():
    dates = [None, "2018-10-01", "2018-10-01", "2018-10-01", "2021-12-01", "2021-12-01"]
    panel = pd.DataFrame(
        {
            "la_code": ["1"] * 6 + ["2"] * 3,
            "year": [2018, 2019, 2020, 2021, 2022, 2023, 2019, 2020, 2021],
            "ilacs_overall": pd.array([None, 3, 3, 3, 3, 2, 4, 4, 2], dtype="Int64"),
            "ilacs_overall_published": pd.array(
                [*dates, "2019-01-05", "2019-01-05", "2021-02-02"], dtype="string"
            ),
        }
    )
    keep, reason = first_year_in_force(panel, "ilacs_overall")
    # 2022 gives grade 3 again but is a new inspection (new publication date): counted
    assert keep.tolist() == [True, True, False, False, True, False, True, False, True]
    assert reason[2] == "ilacs_overall: the judgement counted in an earlier year, still in force"
    # 2023's row is the 2021-12-01 inspection in force again (the panel says grade 2 here
    # only to show that the date, not the grade, decides)
    assert reason[5] == reason[2] and reason.notna().tolist() == [not k for k in keep]
    # without the publication dates: runs of the same grade, and the reason says so
    keep, reason = first_year_in_force(
        panel.drop(columns="ilacs_overall_published"), "ilacs_overall"
    )
    assert keep.tolist() == [True, True, False, False, False, True, True, False, True]
    assert "same grade taken as the same inspection" in reason[4]


def test_select_rows_keeps_one_row_per_inspection_and_lists_the_repeats(panel):
    spec = find_spec(SPEC)
    fitted, excluded = select_rows(spec, panel)
    window = panel[panel["year"].between(*spec.years)]
    assert len(fitted) + len(excluded) == len(window)  # nothing silently dropped
    inspections = window.dropna(subset=["ilacs_overall"]).drop_duplicates(
        ["la_code", "ilacs_overall_published"]
    )
    repeats = excluded["reason"].str.startswith("repeat: ")
    assert repeats.sum() == window["ilacs_overall"].notna().sum() - len(inspections)
    assert not fitted.duplicated(["la_code", "ilacs_overall_published"]).any()
    # the interaction: the product of the parts standardised over the fitted rows
    a, b = fitted["lag_spend_per_cin_1"].astype(float), fitted["idaci"].astype(float)
    expected = ((a - a.mean()) / a.std(ddof=0)) * ((b - b.mean()) / b.std(ddof=0))
    np.testing.assert_allclose(fitted["lag_spend_per_cin_1_x_idaci"].astype(float), expected)


def test_a_product_is_missing_where_a_part_is():
    frame = pd.DataFrame(
        {
            "a": pd.array([1.0, 2.0, None, 4.0], dtype="Float64"),
            "a_missing": pd.array([None, None, "suppressed", None], dtype="string"),
            "b": pd.array([0.5, 0.1, 0.2, 0.4], dtype="Float64"),
        }
    )
    values, reasons = standardised_product(frame, "a", "b")
    assert values.isna().tolist() == [False, False, True, False]
    assert reasons[2] == "suppressed"


# ====================================================================== answers
def test_grade_probabilities_of_a_typical_authority_match_a_direct_computation(ordinal_fit):
    """With random effects at zero: P(grade) = ordinal_probabilities(z . beta, cutpoints) at
    the 10th / 90th percentiles of the two parts of the interaction, their product's
    standardised value included; contrasts are per-draw differences."""
    table = grade_probabilities(ordinal_fit, over_authorities=False)
    assert table.attrs["a"] == "lag_spend_per_cin_1" and table.attrs["b"] == "idaci"
    post = ordinal_fit.idata["posterior"]
    const = ordinal_fit.idata["constant_data"]
    mean, sd = const["covariate_mean"].values, const["covariate_sd"].values
    raw = const["X"].values * sd + mean
    beta = post["beta"].values.reshape(-1, 3)
    cut = post["cutpoints"].values.reshape(-1, 3)
    idaci, spend = (np.quantile(raw[:, j], [0.1, 0.9]) for j in (0, 1))
    p = {}
    for i, (la, lb) in enumerate(
        [("low", "low"), ("high", "low"), ("low", "high"), ("high", "high")]
    ):
        zs = (spend[i % 2] - mean[1]) / sd[1]
        zd = (idaci[i // 2] - mean[0]) / sd[0]
        x = np.array([zd, zs, (zs * zd - mean[2]) / sd[2]])
        p[la, lb] = ordinal_probabilities((beta @ x)[:, None], cut)[:, 0, :]
        row = table[(table["a_level"] == la) & (table["b_level"] == lb)].set_index("grade")
        np.testing.assert_allclose(row.loc[["1", "2", "3", "4"], "median"], np.median(p[la, lb], 0))
        np.testing.assert_allclose(
            row.loc["3 or worse", "median"], np.median(p[la, lb][:, 2:].sum(1))
        )
    contrast = table[(table["a_level"] == "high - low") & (table["b_level"] == "high")]
    worse = contrast.set_index("grade").loc["3 or worse"]
    diff = p["high", "high"][:, 2:].sum(1) - p["low", "high"][:, 2:].sum(1)
    np.testing.assert_allclose(worse["median"], np.median(diff))
    np.testing.assert_allclose(worse["p_positive"], np.mean(diff > 0))
    averaged = grade_probabilities(ordinal_fit, n_authorities=50)
    assert set(averaged["grade"]) == {"1", "2", "3", "4", "3 or worse"}
    effects = ordinal_effects(ordinal_fit).set_index("covariate")
    assert list(effects.index[:3]) == list(find_spec(SPEC).covariates)
    np.testing.assert_allclose(effects.loc["idaci", "beta_median"], np.median(beta[:, 0]))
    np.testing.assert_allclose(
        effects.loc["idaci", "per_unit_median"], np.median(beta[:, 0] / sd[0])
    )
    assert {"cutpoint 1|2", "cutpoint 3|4", "sigma_la"} <= set(effects.index)


def test_count_answers_refuse_an_ordinal_fit(ordinal_fit):
    from csc_bayes.excess import excess
    from csc_bayes.predict import predict
    from csc_bayes.variance import explain_variance

    for call in (
        lambda: explain_variance(ordinal_fit, null_fit=None),
        lambda: excess(ordinal_fit),
        lambda: predict(ordinal_fit, authority="all"),
    ):
        with pytest.raises(AnswerError, match="is an ordinal model of 'ilacs_overall'"):
            call()


def test_ordinal_answers_refuse_a_count_fit(panel):
    fit = drawn_fit(find_spec(SPEC), panel)
    fit.spec = find_spec("cpp_need")  # the answers read the family from the spec
    with pytest.raises(AnswerError, match="answer of an ordinal model"):
        grade_probabilities(fit)


# ====================================================================== recovery
TRUTH = {
    "beta": np.array([0.6, -0.5, 0.3]),  # idaci, spending, their interaction (per SD)
    "cutpoints": np.array([-1.5, 0.5, 2.2]),
    "sigma_la": 0.5,
}


@pytest.mark.slow
def test_recovers_known_coefficients_and_cutpoints(tmp_path):
    """Ordinal outcomes drawn from known coefficients and cutpoints on the model's own scale
    (one row per inspection of the synthetic panel: about 430 inspections of 150 authorities) are
    recovered: truth inside the 90% intervals, the intervals reasonably tight."""
    from csc_bayes.fitting import fit
    from csc_bayes.simulate import simulate_panel

    spec = find_spec(SPEC)  # its own sampler settings (1000 draws, 4 chains)
    panel = simulate_panel(seed=21).panel
    built = build_model(spec, panel)
    X = built.model["X"].get_value()
    rng = np.random.default_rng(5)
    la = built.data["la_code"].astype(str)
    effect = pd.Series(rng.normal(0, TRUTH["sigma_la"], la.nunique()), index=la.unique())
    eta = X @ TRUTH["beta"] + la.map(effect).to_numpy()
    y = ordinal_draw(eta[None, :], TRUTH["cutpoints"][None, :], rng)[0]
    key = pd.MultiIndex.from_frame(built.data[["la_code", "year"]].astype({"year": int}))
    codes = pd.Series(y, index=key)
    at = pd.MultiIndex.from_frame(panel[["la_code", "year"]].astype({"year": int}))
    drawn = codes.reindex(at).to_numpy()
    panel["ilacs_overall"] = pd.array(
        np.where(np.isnan(drawn), panel["ilacs_overall"].astype(float), drawn), dtype="Int64"
    ).astype("Int64")
    result = fit(spec, data=panel, out=tmp_path, progress=False)
    assert result.diagnostics_passed, result.metadata["diagnostics"]
    # 7 quantities: with calibrated 90% intervals about 0.7 of them miss by chance, so every
    # one must be inside its 99% interval and at least 4 of 7 inside their 90% ones (a
    # calibrated posterior fails that with probability 0.003)
    truths = {
        **dict(zip(spec.covariates, TRUTH["beta"], strict=True)),
        **{f"cutpoint {j + 1}|{j + 2}": c for j, c in enumerate(TRUTH["cutpoints"])},
        "sigma_la": TRUTH["sigma_la"],
    }
    inside = {}
    for prob in (0.9, 0.99):
        effects = ordinal_effects(result, prob=prob).set_index("covariate")
        rows = effects.loc[list(truths)]
        inside[prob] = (rows["beta_lower"] < pd.Series(truths)) & (
            pd.Series(truths) < rows["beta_upper"]
        )
        if prob == 0.9:
            widths = (rows["beta_upper"] - rows["beta_lower"]).loc[list(spec.covariates)]
            assert (widths < 0.8).all(), widths  # reasonably tight: +-0.4 on the logit scale
    assert inside[0.99].all(), inside
    assert inside[0.9].sum() >= 4, inside


def test_grades_command_prints_and_writes_the_tables(ordinal_fit, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import csc_bayes.cli.answers as answers
    from csc_bayes.cli import app

    monkeypatch.setattr(answers, "_load", lambda path: ordinal_fit)
    out, effects = tmp_path / "grades.csv", tmp_path / "effects.csv"
    result = CliRunner().invoke(
        app, ["grades", "FIT", "--out", str(out), "--effects-out", str(effects)]
    )
    assert result.exit_code == 0, result.output
    assert "log cumulative odds ratios" in result.output
    table = pd.read_csv(out)
    assert len(table) == 6 * 5 and {"median", "lower", "upper"} <= set(table.columns)
    assert pd.read_csv(effects)["covariate"].iloc[0] == "idaci"
    refused = CliRunner().invoke(app, ["predict", "FIT", "--authority", "all"])
    assert refused.exit_code != 0 and "csc-bayes grades" in refused.output


def test_the_synthetic_panel_has_ilacs_judgements_and_spending_per_child_in_need(panel):
    coded = panel.dropna(subset=["ilacs_overall"])
    assert coded["ilacs_overall"].between(1, 4).all() and coded["year"].min() >= 2018
    assert coded["ilacs_overall_published"].notna().all()
    assert panel.loc[panel["ilacs_overall"].isna(), "ilacs_overall_missing"].notna().all()
    assert set(panel.loc[panel["year"] < 2018, "ilacs_overall_missing"]) == {"no_source"}
    rows = panel.dropna(subset=["spend_per_cin"])
    expected = rows["spend_per_child"] * rows["population"] / rows["cin"]
    np.testing.assert_allclose(
        rows["spend_per_cin"].astype(float), expected.astype(float), atol=0.5
    )
