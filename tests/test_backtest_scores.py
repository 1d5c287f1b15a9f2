"""Backtest arithmetic without fits: CRPS against closed forms, coverage, the naive rules on a
hand-made panel, the masking of later outcomes, summaries and pooling, the CLI's value lists and
the per-draw sums behind ``predict --aggregate``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from csc_bayes.backtest import (
    backtest,
    covered,
    crps_from_draws,
    forecast_table,
    markdown_table,
    masked_panel,
    naive_concentration,
    naive_forecast,
    national_growth,
    origin_years,
    paired_difference,
    pool,
    score_draws,
    summarise,
)
from csc_bayes.cli.backtest import spread_values
from csc_bayes.errors import AnswerError
from csc_bayes.predict import PredictiveDraws, aggregate_draws
from csc_bayes.simulate import default_authorities, simulate_panel


# ====================================================================== CRPS and coverage
def test_crps_from_draws_equals_the_pairwise_definition():
    rng = np.random.default_rng(1)
    samples = rng.poisson(30, size=(200, 3)).astype(float)
    y = np.array([25.0, 30.0, 41.0])
    by_definition = np.abs(samples - y).mean(axis=0) - 0.5 * np.abs(
        samples[:, None, :] - samples[None, :, :]
    ).mean(axis=(0, 1))
    np.testing.assert_allclose(crps_from_draws(samples, y), by_definition, rtol=1e-12)


def test_crps_of_a_point_mass_is_the_absolute_error():
    samples = np.full((50, 3), 10.0)
    np.testing.assert_allclose(crps_from_draws(samples, np.array([7.0, 10.0, 12.5])), [3, 0, 2.5])


def test_crps_of_normal_draws_approaches_the_closed_form():
    """CRPS(N(mu, sigma^2), y) = sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)],
    z = (y - mu) / sigma (Gneiting, Raftery, Westveld & Goldman 2005)."""
    mu, sigma = 100.0, 15.0
    y = np.array([100.0, 110.0, 70.0, 160.0])
    # evenly spaced quantiles: a deterministic sample of the normal, error O(1/S)
    s = 20_000
    samples = stats.norm.ppf((np.arange(s) + 0.5) / s, mu, sigma)[:, None] * np.ones((1, len(y)))
    z = (y - mu) / sigma
    closed = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    np.testing.assert_allclose(crps_from_draws(samples, y), closed, rtol=2e-3)
    # and with random draws, within Monte Carlo error
    rng = np.random.default_rng(0)
    random = rng.normal(mu, sigma, size=(20_000, len(y)))
    np.testing.assert_allclose(crps_from_draws(random, y), closed, rtol=0.03)


def test_coverage_counts_the_interval_ends_as_inside():
    samples = np.repeat(np.arange(1.0, 102.0)[:, None], 5, axis=1)  # 1..101: quantiles exact
    # central 50%: the 25% and 75% quantiles, 26 and 76; 90%: 6 and 96
    y = np.array([25.0, 26.0, 76.0, 77.0, 50.0])
    np.testing.assert_array_equal(covered(samples, y, 0.5), [False, True, True, False, True])
    y90 = np.array([5.0, 6.0, 96.0, 97.0, 50.0])
    np.testing.assert_array_equal(covered(samples, y90, 0.9), [False, True, True, False, True])
    table = score_draws(samples, y)
    assert list(table["lower_50"]) == [26.0] * 5 and list(table["upper_90"]) == [96.0] * 5
    np.testing.assert_array_equal(table["abs_error"], np.abs(51.0 - y))
    np.testing.assert_allclose(table["crps_over_y"], table["crps"] / y)


def test_a_calibrated_forecast_covers_at_the_nominal_rate():
    rng = np.random.default_rng(3)
    samples = rng.normal(size=(4000, 2000))
    y = rng.normal(size=2000)
    assert covered(samples, y, 0.5).mean() == pytest.approx(0.5, abs=0.04)
    assert covered(samples, y, 0.9).mean() == pytest.approx(0.9, abs=0.03)


def test_paired_difference_and_its_standard_error():
    a = np.array([1.0, 2.0, 3.0, 6.0])
    b = np.array([2.0, 2.0, 2.0, 2.0])
    mean, se = paired_difference(a, b)
    diff = a - b
    assert mean == pytest.approx(diff.mean())
    assert se == pytest.approx(diff.std(ddof=1) / 2)
    assert paired_difference(b, b) == (0.0, 0.0)


# ====================================================================== naive rules
def hand_panel() -> pd.DataFrame:
    """Two authorities 2015-2021: A's count grows by 1 a year from 100, B's is 400 then
    doubles in 2018; population grows 1% a year."""
    rows = []
    for la, base in (("A", 100.0), ("B", 400.0)):
        for year in range(2015, 2022):
            pop = 1000.0 * (1 + 0.01 * (year - 2015))
            count = base + year - 2015 if la == "A" else base * (2 if year >= 2018 else 1)
            rows.append({"la_code": la, "year": year, "population": pop, "cla": count})
    return pd.DataFrame(rows)


def test_naive_rule_is_last_years_rate_times_this_years_population():
    panel = hand_panel()
    m = naive_forecast(panel, "cla", last=2018, year=2019)
    assert m["A"] == pytest.approx(103.0 / 1030.0 * 1040.0)
    # two years ahead: the rate of the last training year, the population of the target year
    m2 = naive_forecast(panel, "cla", last=2017, year=2019)
    assert m2["B"] == pytest.approx(400.0 / 1020.0 * 1040.0)


def test_naive_trend_multiplies_by_the_national_rate_growth():
    panel = hand_panel()
    # national rate: (sum of counts) / (sum of populations) over A and B
    r17, r18 = (102 + 400) / 2040.0, (103 + 800) / 2060.0
    assert national_growth(panel, "cla", 2018) == pytest.approx(r18 / r17)
    plain = naive_forecast(panel, "cla", last=2018, year=2020)
    trend = naive_forecast(panel, "cla", last=2018, year=2020, trend=True)
    np.testing.assert_allclose(trend, plain * (r18 / r17) ** 2)
    # an authority missing in one of the two years is left out of both national rates
    gap = panel[~((panel["la_code"] == "B") & (panel["year"] == 2017))]
    assert national_growth(gap, "cla", 2018) == pytest.approx((103 / 1030) / (102 / 1020))


def test_naive_concentration_uses_only_the_training_years():
    panel = hand_panel()
    phi = naive_concentration(panel, "cla", first=2015, last=2019)
    wild = panel.copy()
    wild.loc[(wild["la_code"] == "A") & (wild["year"] == 2021), "cla"] = 5000.0
    assert naive_concentration(wild, "cla", first=2015, last=2019) == pytest.approx(phi)
    # B's doubling in 2018 is inside the window: it is what makes the rule uncertain
    calm = naive_concentration(panel, "cla", first=2018, last=2021)
    assert calm > 10 * phi
    # horizon 2 pairs years two apart (2015 -> 2017, ...); trend needs a year more
    assert naive_concentration(panel, "cla", first=2015, last=2019, horizon=2) > 0
    with pytest.raises(AnswerError, match="no authority"):
        naive_concentration(panel, "cla", first=2018, last=2019, horizon=2)
    with pytest.raises(AnswerError, match="national"):
        naive_concentration(panel, "cla", first=2018, last=2019, trend=True)


def test_naive_concentration_recovers_a_known_dispersion():
    rng = np.random.default_rng(5)
    n, years, phi = 400, range(2015, 2021), 40.0
    rows = []
    for j in range(n):
        mean = rng.uniform(50, 500)
        for year in years:
            y = rng.negative_binomial(phi, phi / (phi + mean)) if year > 2015 else mean
            rows.append({"la_code": str(j), "year": year, "population": 1.0, "cla": y})
            mean = y  # next year's mean is this year's count: the naive rule is the truth
    fitted = naive_concentration(pd.DataFrame(rows), "cla", first=2015, last=2020)
    assert fitted == pytest.approx(phi, rel=0.15)


def test_later_outcomes_are_masked_with_a_reason():
    panel = simulate_panel(first_year=2018, last_year=2021, seed=1).panel
    masked = masked_panel(panel, ["cpp", "cla"], 2019)
    later = masked["year"] > 2019
    assert masked.loc[later, ["cpp", "cla"]].isna().all().all()
    assert (masked.loc[later, "cpp_missing"] == "not_yet_published").all()
    assert masked.loc[~later, "cpp"].equals(panel.loc[~later, "cpp"])
    assert masked.loc[later, "cin"].equals(panel.loc[later, "cin"])  # not asked for: kept
    from csc_bayes.data.schema import validate_panel

    validate_panel(masked)


# ====================================================================== summaries
def scores_table() -> pd.DataFrame:
    """Hand-made per-authority scores: model m and naive, two origins; authority "c" has no
    naive forecast in 2021."""
    rows = []
    values = {
        (2021, "m"): {"a": 1.0, "b": 3.0, "c": 100.0},
        (2021, "naive"): {"a": 2.0, "b": 4.0},
        (2022, "m"): {"a": 5.0, "b": 5.0},
        (2022, "naive"): {"a": 4.0, "b": 4.0},
    }
    for (origin, method), crps in values.items():
        for code, c in crps.items():
            rows.append(
                {
                    "origin": origin,
                    "horizon": 1,
                    "train": f"2015-{origin - 1}",
                    "method": method,
                    "la_code": code,
                    "crps": c,
                    "crps_over_y": c / 10,
                    "abs_error": 2 * c,
                    "covered_50": code == "a",
                    "covered_90": True,
                    "phi": 30.0 if method == "naive" else np.nan,
                }
            )
    return pd.DataFrame(rows)


def test_summary_scores_the_authorities_every_method_forecast():
    summary = summarise(scores_table(), "m").set_index(["origin", "method"])
    model = summary.loc[(2021, "m")]
    assert model["n_authorities"] == 2 and model["n_model_only"] == 1
    assert model["mean_crps"] == pytest.approx(2.0)  # "c" left out
    assert model["mae_median"] == pytest.approx(4.0)
    assert model["coverage_50"] == pytest.approx(0.5)
    assert model["crps_minus_naive"] == pytest.approx(-1.0)
    assert model["se_minus_naive"] == pytest.approx(0.0)
    assert summary.loc[(2021, "naive"), "phi"] == 30.0
    assert summary.loc[(2022, "m"), "crps_minus_naive"] == pytest.approx(1.0)


def test_pooled_weights_origins_by_authorities_and_takes_the_se_between_origins():
    summary = summarise(scores_table(), "m")
    summary.loc[summary["origin"] == 2022, "n_authorities"] = 6  # as if 6 were scored in 2022
    pooled = pool(summary).set_index("method")
    assert pooled.loc["m", "mean_crps"] == pytest.approx((2 * 2.0 + 6 * 5.0) / 8)
    assert pooled.loc["m", "crps_minus_naive"] == pytest.approx((2 * -1.0 + 6 * 1.0) / 8)
    assert pooled.loc["m", "se_minus_naive"] == pytest.approx(np.std([-1, 1], ddof=1) / np.sqrt(2))
    assert pooled.loc["naive", "origins"] == "2021-2022 (2)"
    assert "crps_minus_naive" not in pooled.dropna(axis=1).loc[["naive"]].columns


def test_markdown_leaves_a_missing_value_blank():
    table = pd.DataFrame([{"a": 1, "b": 2.5}, {"a": 2}])
    assert markdown_table(table, ["a", "b"])[2:] == ["| 1 | 2.5 |", "| 2 |  |"]


# ====================================================================== requests
def small_panel() -> pd.DataFrame:
    las = default_authorities(2021).sort_values("la_code").head(3).reset_index(drop=True)
    return simulate_panel(first_year=2017, last_year=2021, seed=2, authorities=las).panel


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"origins": [2023]}, r"origin year\(s\) \[2023\] have no observed cpp"),
        ({"origins": [2019]}, "too few"),  # 2017-2018 holds no pair for naive_trend
        ({"origins": [2021], "horizons": [0]}, "horizons"),
        ({"origins": [2021], "baselines": ["persistence"]}, "unknown baseline"),
        ({"origins": [2021], "window": 1}, "window"),
        ({"origins": []}, "at least one origin"),
    ],
)
def test_bad_requests_fail_before_any_fit(kwargs, message):
    with pytest.raises(AnswerError, match=message):
        backtest("cpp_need", data=small_panel(), fits_dir=None, workers=1, **kwargs)


def test_origin_years_span_first_to_last():
    assert origin_years(2019, 2022) == [2019, 2020, 2021, 2022]
    assert origin_years(2024, 2024) == [2024]
    with pytest.raises(AnswerError):
        origin_years(2024, 2019)


def test_cli_takes_several_values_after_one_flag():
    args = ["cpp_need", "--origins", "2019", "2024", "--horizon", "1", "2", "3", "--out", "x"]
    assert spread_values(args) == [
        "cpp_need",
        *("--origins", "2019", "--origins", "2024"),
        *("--horizon", "1", "--horizon", "2", "--horizon", "3"),
        *("--out", "x"),
    ]
    assert spread_values(["--horizon", "--out", "x"]) == ["--horizon", "--out", "x"]
    assert spread_values(["--horizon=2", "s"]) == ["--horizon=2", "s"]


# ====================================================================== aggregation
def test_aggregate_draws_sum_per_draw():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "la_code": ["1", "2", "3", "1", "2", "3"],
            "ons_code": ["E1", "E2", "E3"] * 2,
            "la_name": ["a", "b", "c"] * 2,
            "region": ["North East", "North East", "London"] * 2,
            "year": [2024] * 3 + [2025] * 3,
            "kind": ["observed"] * 3 + ["forecast"] * 3,
            "population": [100.0, 200.0, 300.0] * 2,
            "observed": [5.0, 6.0, 7.0, np.nan, np.nan, np.nan],
        }
    )
    count = rng.poisson(10, size=(40, 6)).astype(float)
    eta = rng.normal(size=(40, 6))
    draws = PredictiveDraws(rows=rows, count=count, eta=eta, expected=eta - 0.1)
    region = aggregate_draws(draws, "region")
    assert list(zip(region.rows["region"], region.rows["year"], strict=True)) == [
        ("London", 2024),
        ("London", 2025),
        ("North East", 2024),
        ("North East", 2025),
    ]
    np.testing.assert_array_equal(region.count[:, 2], count[:, 0] + count[:, 1])
    np.testing.assert_allclose(np.exp(region.eta[:, 3]), np.exp(eta[:, 3]) + np.exp(eta[:, 4]))
    assert list(region.rows["n_authorities"]) == [1, 1, 2, 2]
    assert region.rows.loc[2, "observed"] == 11.0 and np.isnan(region.rows.loc[3, "observed"])
    england = aggregate_draws(draws, "england")
    assert list(england.rows["la_name"]) == ["England", "England"]
    np.testing.assert_array_equal(england.count[:, 1], count[:, 3:].sum(axis=1))
    assert list(england.rows["population"]) == [600.0, 600.0]
    with pytest.raises(AnswerError, match="aggregate"):
        aggregate_draws(draws, "county")


# ====================================================================== the forecast table
def _saved(folder, model, outcome, model_scores, naive_scores):
    """A hand-made saved backtest: pooled.csv and info.json (one horizon, two methods)."""
    folder.mkdir(parents=True)
    rows = []
    for method, (crps, mae, c50, c90) in ((model, model_scores), ("naive", naive_scores)):
        rows.append(
            {
                "horizon": 1,
                "method": method,
                "origins": "2019-2024 (6)",
                "n_authorities": 900,
                "coverage_50": c50,
                "coverage_90": c90,
                "mean_crps": crps,
                "mean_crps_over_y": 0.1,
                "mae_median": mae,
                "crps_minus_naive": crps - naive_scores[0] if method == model else np.nan,
                "se_minus_naive": 1.0 if method == model else np.nan,
            }
        )
    pd.DataFrame(rows).to_csv(folder / "pooled.csv", index=False)
    (folder / "info.json").write_text(f'{{"model": "{model}", "outcome": "{outcome}"}}')
    return folder


def test_forecast_table_checks_each_target_at_its_boundary(tmp_path):
    good = _saved(tmp_path / "a", "m_a", "cpp", (9.0, 90.0, 0.45, 0.93), (10.0, 100.0, 0.6, 0.9))
    bad = _saved(tmp_path / "b", "m_b", "cin", (10.0, 90.1, 0.56, 0.86), (10.0, 100.0, 0.5, 0.9))
    table = forecast_table([good, bad]).set_index("outcome")
    assert table.loc["cpp", "mae_ratio"] == pytest.approx(0.9)
    assert table.loc["cpp", ["meets_mae", "meets_crps", "meets_coverage_50"]].all()
    assert table.loc["cpp", "meets_coverage_90"] and table.loc["cpp", "meets_all"]
    assert table.loc["cpp", "naive_crps"] == 10.0 and table.loc["cpp", "refits"] is None
    # a tie in CRPS is not "below"; 0.901 is above 0.9; 0.56 and 0.86 are outside their bands
    assert not table.loc["cin", ["meets_mae", "meets_crps", "meets_coverage_50"]].any()
    assert not table.loc["cin", "meets_coverage_90"] and not table.loc["cin", "meets_all"]


def test_forecast_table_names_what_is_missing(tmp_path):
    with pytest.raises(AnswerError, match="give at least one"):
        forecast_table([])
    with pytest.raises(AnswerError, match=r"not a saved backtest .*pooled.csv"):
        forecast_table([tmp_path])
    folder = _saved(tmp_path / "a", "m_a", "cpp", (9.0, 90.0, 0.5, 0.9), (10.0, 100.0, 0.5, 0.9))
    with pytest.raises(AnswerError, match="no row for 'naive_trend'"):
        forecast_table([folder], baseline="naive_trend")
