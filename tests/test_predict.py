"""predict: naming an authority, observed / forecast / new-group rows, and predictive coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from answers_helpers import coverage, make_world
from csc_bayes.errors import UnknownAuthorityError
from csc_bayes.predict import predict

COLUMNS = [
    "la_code",
    "ons_code",
    "la_name",
    "region",
    "year",
    "kind",
    "population",
    "observed",
    "predicted_mean",
    "predicted_median",
    "predicted_lower",
    "predicted_upper",
    "rate_median",
    "rate_lower",
    "rate_upper",
    "expected_rate_median",
    "excess_ratio_median",
    "excess_ratio_lower",
    "excess_ratio_upper",
]


@pytest.fixture(scope="module")
def world():
    return make_world(0, extra_authority=True, n_draws=1000)


def _width(row: pd.Series, name: str) -> float:
    """Relative width of an interval: (upper - lower) / median."""
    return (row[f"{name}_upper"] - row[f"{name}_lower"]) / row[f"{name}_median"]


def test_name_ons_code_and_dfe_number_give_the_same_rows(world):
    tables = [
        predict(world.fit, authority=q)
        for q in ("Kingston upon Hull", "kingston-upon-hull, city of", "Hull", "E06000010", 810)
    ]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0])
    first = tables[0]
    assert list(first.columns[:8]) == COLUMNS[:8]
    assert set(COLUMNS) <= set(first.columns)
    assert (first["la_code"] == "810").all() and (first["ons_code"] == "E06000010").all()
    assert list(first["year"]) == [2020, 2021, 2022, 2023, 2024]
    assert list(first["kind"]) == ["observed"] * 4 + ["forecast"]


def test_unknown_name_suggests_the_closest_matches(world):
    with pytest.raises(UnknownAuthorityError, match="Leeds"):
        predict(world.fit, authority="Leedz")


def test_observed_years_carry_the_observed_count(world):
    table = predict(world.fit, authority="Leeds", year=[2021, 2022])
    t = world.truth
    j = t["la_codes"].index("383")
    for _, row in table.iterrows():
        k = np.flatnonzero((t["la_idx"] == j) & (t["fitted"]["year"].to_numpy() == row["year"]))[0]
        assert row["observed"] == t["y"][k]
        assert row["population"] == pytest.approx(np.exp(t["log_exposure"][k]))


def test_forecast_uses_the_panels_population_and_is_wider(world):
    table = predict(world.fit, authority="Leeds", year=[2023, 2024]).set_index("year")
    panel_pop = world.panel.set_index(["la_code", "year"]).loc[("383", 2024), "population"]
    assert table.loc[2024, "population"] == panel_pop
    assert table.loc[2024, "kind"] == "forecast" and np.isnan(table.loc[2024, "observed"])
    # the new year effect adds uncertainty: the expected rate's interval is much wider
    assert _width(table.loc[2024], "expected_rate") > 1.2 * _width(table.loc[2023], "expected_rate")
    assert _width(table.loc[2024], "rate") > _width(table.loc[2023], "rate")
    supplied = predict(world.fit, authority="Leeds", year=2024, population=50_000)
    assert supplied["population"].iloc[0] == 50_000
    assert supplied["predicted_median"].iloc[0] < table.loc[2024, "predicted_median"]


def test_new_group_prediction_is_wider_and_says_so(world):
    new = predict(world.fit, authority="Synthetown 36", year=2023).iloc[0]
    assert new["kind"] == "new_group" and np.isnan(new["observed"])
    fitted = predict(world.fit, authority="Synthetown 35", year=2023).iloc[0]
    assert fitted["kind"] == "observed"
    assert _width(new, "rate") > 1.3 * _width(fitted, "rate")
    assert _width(new, "excess_ratio") > 2 * _width(fitted, "excess_ratio")


def test_all_returns_every_authority_for_the_year(world):
    table = predict(world.fit, authority="all")
    expected = set(world.truth["las"]["la_code"])
    assert set(table["la_code"]) == expected and len(table) == len(expected)
    assert set(table["year"]) == {world.next_year}
    assert set(table["kind"]) == {"forecast", "new_group"}
    assert table[["la_code", "ons_code", "la_name", "region"]].notna().all().all()


def test_predictive_intervals_cover_new_data_at_about_the_nominal_rate():
    """Observed counts in fitted years and the true next-year counts, over several seeds."""
    hits, total = 0.0, 0
    for seed in range(4):
        w = make_world(seed, n_draws=400, family="poisson" if seed == 3 else "negative_binomial")
        fitted = predict(w.fit, authority="all", year=[2022, 2023]).dropna(subset=["observed"])
        hits += len(fitted) * coverage(
            fitted["predicted_lower"], fitted["predicted_upper"], fitted["observed"]
        )
        total += len(fitted)
        ahead = predict(w.fit, authority="all", year=w.next_year).set_index("la_code")
        truth = pd.Series(w.truth["y_next"], index=w.truth["la_codes"])
        ahead = ahead.loc[truth.index]
        hits += len(ahead) * coverage(ahead["predicted_lower"], ahead["predicted_upper"], truth)
        total += len(ahead)
    assert 0.83 <= hits / total <= 0.97, hits / total


def test_same_seed_same_numbers_and_bad_arguments_are_refused(world):
    a = predict(world.fit, authority="Camden", seed=3)
    pd.testing.assert_frame_equal(a, predict(world.fit, authority="Camden", seed=3))
    with pytest.raises(ValueError, match="population"):
        predict(world.fit, authority="Camden", population=-5)
    with pytest.raises(ValueError, match="precede"):
        predict(world.fit, authority="Camden", year=2001)


def test_predict_command_returns_the_same_rows_as_the_api(monkeypatch, world):
    import json

    from typer.testing import CliRunner

    from answers_helpers import answers_app

    app = answers_app(monkeypatch, {"run": world.fit})
    args = ["predict", "run", "--authority", "St Helens", "--year", "2024", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    api = predict(world.fit, authority="342", year=2024).iloc[0]
    assert row["la_name"] == "St. Helens" and row["kind"] == "forecast"
    assert row["predicted_median"] == api["predicted_median"]


def test_a_long_horizon_says_how_its_interval_was_made():
    """Five years past the last fitted year: a note (and a warning) with the horizon and how
    each term made the forecast; within three years, none."""
    world = make_world(0)
    last = max(world.fit.spec.years)
    with pytest.warns(UserWarning, match=f"{last + 5} is 5 years after the last fitted year"):
        far = predict(world.fit, authority="Leeds", year=last + 5)
    (text,) = far.attrs["notes"]
    assert "fresh draw N(0, sigma_year^2)" in text and "carried forward" in text
    near = predict(world.fit, authority="Leeds", year=last + 1)
    assert near.attrs["notes"] == []


@pytest.mark.parametrize("year", [2023.5, "banana", True])
def test_a_year_that_is_not_a_whole_number_is_refused(year):
    from csc_bayes.errors import AnswerError

    world = make_world(0)
    with pytest.raises(AnswerError, match="whole number"):
        predict(world.fit, authority="Leeds", year=year)
