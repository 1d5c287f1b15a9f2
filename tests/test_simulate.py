"""The synthetic panel: schema, labelling, determinism, suppression and recoverable truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from csc_bayes.data.schema import (
    COVARIATES,
    OUTCOMES,
    REGIONS,
    MissingReason,
    required_columns,
    validate_panel,
)
from csc_bayes.simulate import (
    TRUE_PARAMETERS,
    simulate_outcome,
    simulate_panel,
    suppress_small_counts,
    true_log_rate,
)


@pytest.fixture(scope="module")
def sim():
    return simulate_panel(seed=11)


def test_panel_is_schema_valid_and_labelled_synthetic(sim):
    panel = sim.panel
    assert list(panel.columns[: len(required_columns())]) == required_columns()
    pd.testing.assert_frame_equal(validate_panel(panel), panel)
    assert panel.attrs["synthetic"] is True
    assert panel["synthetic"].dtype == bool and panel["synthetic"].all()


def test_authorities_regions_and_years(sim):
    panel = sim.panel
    assert 148 <= panel["la_code"].nunique() <= 153
    assert not panel["la_code"].isin(["201", "420"]).any()
    assert {"942", "943", "838", "839", "940", "941"} <= set(panel["la_code"])
    assert not panel["la_code"].isin(["909", "928", "835"]).any()
    assert sorted(panel["region"].unique()) == sorted(REGIONS)
    assert sorted(panel["year"].unique()) == list(range(2015, 2026))
    assert panel.groupby("la_code").size().eq(11).all()
    leeds = panel.loc[panel["la_code"] == "383"].iloc[0]
    assert (leeds["ons_code"], leeds["region"]) == ("E08000035", "Yorkshire and The Humber")


def test_forecast_row_has_exposure_and_covariates_but_no_outcomes(sim):
    panel = sim.panel
    future = panel.loc[panel["year"] == 2025]
    assert future[["population", *COVARIATES]].notna().all().all()
    for col in OUTCOMES:
        assert future[col].isna().all()
        assert future[f"{col}_missing"].eq(MissingReason.NOT_YET_PUBLISHED).all()
    past = panel.loc[panel["year"] <= 2024]
    assert past[f"{OUTCOMES[0]}_missing"].isna().all()
    truth = sim.truth["cpp"]
    assert 2025 in truth["year_effect"].index
    assert (truth["log_rate"].index.get_level_values("year") == 2025).sum() == len(future)


def test_no_forecast_row_when_not_asked():
    panel = simulate_panel(first_year=2020, last_year=2022, forecast_year=False).panel
    assert sorted(panel["year"].unique()) == [2020, 2021, 2022]
    assert panel[list(OUTCOMES)].notna().all().all()


def test_same_seed_same_panel_and_different_seeds_differ(sim):
    again = simulate_panel(seed=11)
    pd.testing.assert_frame_equal(again.panel, sim.panel)
    pd.testing.assert_series_equal(again.truth["cla"]["la_effect"], sim.truth["cla"]["la_effect"])
    other = simulate_panel(seed=12).panel
    assert not other["cpp"].equals(sim.panel["cpp"])
    assert not other["idaci"].equals(sim.panel["idaci"])


def test_covariates_are_realistic_and_correlated(sim):
    panel = sim.panel
    per_la = panel.groupby("la_code")[["idaci", "imd", "ethnic_minority_share"]].nunique()
    assert per_la.eq(1).all().all()  # constant within an authority
    idaci = panel["idaci"].astype(float)
    assert idaci.between(0.05, 0.35).all() and 0.14 < idaci.mean() < 0.20
    assert panel["imd"].astype(float).between(8, 45).all()
    assert np.corrcoef(idaci, panel["imd"].astype(float))[0, 1] > 0.85
    share = panel.groupby("region")["ethnic_minority_share"].mean()
    assert share["London"] > 2 * share.drop("London").max()
    spend = panel.groupby("year")["spend_per_child"].mean().astype(float)
    assert spend.iloc[-1] > spend.iloc[0]
    assert panel["spend_per_child"].astype(float).between(300, 1500).all()
    assert panel["population"].astype(float).between(15_000, 300_000).all()


def test_national_rates_are_close_to_the_stated_ones(sim):
    observed = sim.panel.loc[sim.panel["year"] <= 2024]
    for outcome, spec in TRUE_PARAMETERS.items():
        kept = observed[outcome].notna()
        rate = 1e4 * observed.loc[kept, outcome].sum() / observed.loc[kept, "population"].sum()
        assert 0.7 * spec["rate_per_10k"] < rate < 1.4 * spec["rate_per_10k"], outcome


def test_truth_follows_the_posterior_contract(sim):
    panel, truth = sim.panel, sim.truth["cpp"]
    observed = panel["year"] <= 2024
    for cov in COVARIATES:
        assert truth["centre"][cov] == pytest.approx(panel.loc[observed, cov].astype(float).mean())
    assert truth["beta_per_unit"]["imd"] == 0.0
    assert truth["intercept"] == pytest.approx(np.log(42 / 1e4))
    row = panel.iloc[7]
    eta = (
        truth["intercept"]
        + sum(b * (float(row[c]) - truth["centre"][c]) for c, b in truth["beta_per_unit"].items())
        + truth["la_effect"][row["la_code"]]
        + truth["region_effect"][row["region"]]
        + truth["year_effect"][row["year"]]
    )
    assert truth["log_rate"][(row["la_code"], row["year"])] == pytest.approx(eta)
    # observed log-rates scatter around the truth by roughly the NB noise
    obs = panel.loc[observed & panel["cla"].notna()]
    log_obs = np.log(obs["cla"].astype(float) / obs["population"].astype(float))
    resid = log_obs.to_numpy() - true_log_rate(obs, params=sim.truth["cla"]).to_numpy()
    assert abs(resid.mean()) < 0.03 and resid.std() < 0.2


def test_crude_regression_recovers_beta_per_unit(sim):
    """OLS of each LA's mean log(cpp / population) on its mean covariates plus region dummies.

    The LA effect (sd 0.3) is the residual, so each estimate should lie within 4 standard
    errors of the truth.
    """
    panel = sim.panel.loc[sim.panel["year"] <= 2024].copy()
    panel["log_rate"] = np.log(panel["cpp"].astype(float) / panel["population"].astype(float))
    covs = ["idaci", "ethnic_minority_share", "spend_per_child"]
    per_la = panel.groupby(["la_code", "region"])[["log_rate", *covs]].mean().reset_index()
    per_la[covs] = per_la[covs].astype(float)
    dummies = pd.get_dummies(per_la["region"], drop_first=True, dtype=float)
    design = np.column_stack([np.ones(len(per_la)), per_la[covs].to_numpy(), dummies.to_numpy()])
    y = per_la["log_rate"].to_numpy(dtype=float)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    s2 = resid @ resid / (len(y) - design.shape[1])
    se = np.sqrt(np.diag(s2 * np.linalg.inv(design.T @ design)))
    for k, cov in enumerate(covs, start=1):
        true = sim.truth["cpp"]["beta_per_unit"][cov]
        assert abs(coef[k] - true) < 4 * se[k], (cov, coef[k], true, se[k])
    assert coef[1] > 0  # deprivation raises the rate, clearly


def test_suppression_marks_small_counts():
    panel = simulate_panel(first_year=2023, last_year=2024, seed=3, forecast_year=False).panel
    assert not any(panel[c].lt(6).fillna(False).any() for c in OUTCOMES)
    tiny = panel.copy()
    tiny.loc[0, "cpp"] = 3
    tiny.loc[1, "cla"] = 5
    tiny.loc[2, "cin"] = 6
    tiny.loc[3, "s47"] = 0  # zero discloses no child: published, not suppressed
    out = suppress_small_counts(tiny)
    assert out.loc[3, "s47"] == 0 and out.loc[3, "s47_missing"] is pd.NA
    assert out.loc[0, "cpp"] is pd.NA and out.loc[0, "cpp_missing"] == "suppressed"
    assert out.loc[1, "cla"] is pd.NA and out.loc[1, "cla_missing"] == "suppressed"
    assert out.loc[2, "cin"] == 6 and out.loc[2, "cin_missing"] is pd.NA
    validate_panel(out)


def test_simulate_outcome_mean_and_overdispersion():
    """Var(y) = mu + mu^2 / phi for the gamma-Poisson draw."""
    panel = pd.DataFrame(
        {"la_code": ["1"] * 20_000, "region": "London", "year": 2020, "population": 10_000}
    )
    for cov in COVARIATES:
        panel[cov] = 0.0
    params = {
        "intercept": np.log(0.01),
        "centre": dict.fromkeys(COVARIATES, 0.0),
        "beta_per_unit": dict.fromkeys(COVARIATES, 0.0),
        "la_effect": pd.Series({"1": 0.0}),
        "region_effect": pd.Series({"London": 0.0}),
        "year_effect": pd.Series({2020: 0.0}),
        "phi": 20.0,
    }
    y = simulate_outcome(panel, params=params, rng=np.random.default_rng(0))
    assert y.mean() == pytest.approx(100, rel=0.02)
    assert y.var() == pytest.approx(100 + 100**2 / 20, rel=0.06)
