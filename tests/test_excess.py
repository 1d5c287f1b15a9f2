"""excess: expected need, excess ratios, exceedance, ranks and the safe CSV writer."""

from __future__ import annotations

import csv
import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from answers_helpers import answers_app, coverage, make_world, point_fit
from csc_bayes.excess import excess, excess_draws, to_safe_csv

TRUE_PARAMS = ("intercept", "beta", "la_effect", "region_effect", "year_effect", "la_slope")


def _true_fit(world):
    return point_fit(world.fit, {k: world.truth[k] for k in TRUE_PARAMS if k in world.truth})


def test_one_row_per_authority_with_names_and_codes():
    world = make_world(0)
    table = excess(world.fit)
    assert len(table) == len(world.truth["la_codes"])
    assert set(table["year"]) == {2023}
    for col in ("la_code", "ons_code", "la_name", "region"):
        assert table[col].notna().all() and (table[col].astype(str) != "").all()
    hull = table.set_index("la_code").loc["810"]
    assert hull["la_name"] == "Kingston upon Hull, City of" and hull["ons_code"] == "E06000010"
    assert table["excess_ratio_median"].is_monotonic_decreasing
    assert (table["excess_ratio_lower"] <= table["excess_ratio_lower50"]).all()
    assert (table["excess_ratio_upper50"] <= table["excess_ratio_upper"]).all()
    everything = excess(world.fit, year="all")
    assert len(everything) == 4 * len(table)
    with pytest.raises(ValueError, match="not fitted"):
        excess(world.fit, year=2024)


def test_excess_ratio_is_the_la_effect_plus_non_need_terms_at_the_truth():
    world = make_world(1)
    t = world.truth
    true = excess(_true_fit(world), year="all").sort_values(["year", "la_code"])
    fitted = t["fitted"].assign(
        region_idx=t["region_idx"],
        log_ratio=t["la_effect"][t["la_idx"]]
        + t["region_effect"][t["region_idx"]]
        + t["X"][:, 2] * t["beta"][2],  # spending is not need: held at its average
    )
    fitted = fitted.sort_values(["year", "la_code"])
    np.testing.assert_allclose(true["excess_ratio_median"], np.exp(fitted["log_ratio"]))
    # with region counted as need, the region effect moves into the expected rate
    as_need = excess(_true_fit(world), year="all", region_as_need=True)
    as_need = as_need.sort_values(["year", "la_code"])
    np.testing.assert_allclose(
        as_need["excess_ratio_median"],
        np.exp(fitted["log_ratio"] - t["region_effect"][fitted["region_idx"]]),
    )
    # latent count - expected count, and rates per 10,000
    np.testing.assert_allclose(
        true["expected_rate_median"], true["expected_count_median"] / true["population"] * 1e4
    )


def test_excess_intervals_cover_the_truth_at_about_the_nominal_rate():
    hits, total = 0.0, 0
    for seed in range(6):
        world = make_world(seed, slope=seed % 2 == 0)
        est = excess(world.fit, year="all").sort_values(["year", "la_code"])
        true = excess(_true_fit(world), year="all").sort_values(["year", "la_code"])
        for name in ("excess_ratio", "expected_count", "excess_children"):
            truth = true[f"{name}_median"]
            hits += len(est) * coverage(est[f"{name}_lower"], est[f"{name}_upper"], truth)
            total += len(est)
    assert 0.82 <= hits / total <= 0.97, hits / total


def test_ranks_are_a_permutation_per_draw_within_each_year():
    draws = excess_draws(make_world(2).fit, year="all")
    years = draws.rows["year"].to_numpy()
    for year in np.unique(years):
        ranks = draws.rank[:, years == year]
        n = ranks.shape[1]
        np.testing.assert_array_equal(
            np.sort(ranks, axis=1), np.tile(np.arange(1, n + 1), (len(ranks), 1))
        )
        top = np.argmax(draws.ratio[:, years == year], axis=1)
        assert (ranks[np.arange(len(ranks)), top] == 1).all()


def test_an_authority_with_a_large_true_effect_is_clearly_in_excess():
    world = make_world(3, sigma_la=0.5)
    t = world.truth
    biggest = t["la_codes"][int(np.argmax(t["la_effect"]))]
    smallest = t["la_codes"][int(np.argmin(t["la_effect"]))]
    assert t["la_effect"].max() > 0.5
    table = excess(world.fit).set_index("la_code")
    assert table.loc[biggest, "p_excess"] > 0.95
    assert table.loc[biggest, "p_excess_10pct"] > 0.9
    assert table.loc[smallest, "p_excess"] < 0.05
    assert table.loc[biggest, "rank_median"] <= 3


def test_safe_csv_defuses_formulas_keeps_numbers_and_writes_atomically(tmp_path, monkeypatch):
    df = pd.DataFrame(
        {
            "la_name": [
                '=HYPERLINK("http://x")',
                "+44",
                "-1+2",
                "@SUM(A1)",
                "\tTab",
                "\rCR",
                "Leeds",
            ],
            "excess_ratio_median": [-1.5, 2.0, 3.25, 0.5, 1.0, 1.0, 1.1],
            "observed": pd.array([1, 2, 3, 4, None, 6, 7], dtype="Int64"),
        }
    )
    path = to_safe_csv(df, tmp_path / "excess.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    names = [r[0] for r in rows[1:]]
    assert names == [
        '\'=HYPERLINK("http://x")',
        "'+44",
        "'-1+2",
        "'@SUM(A1)",
        "'\tTab",
        "'\rCR",
        "Leeds",
    ]
    assert [r[1] for r in rows[1:]][:3] == ["-1.5", "2.0", "3.25"]
    assert rows[5][2] == ""
    assert pd.read_csv(path)["excess_ratio_median"].dtype == float
    assert [p.name for p in tmp_path.iterdir()] == ["excess.csv"]

    # a failure while replacing leaves the previous file intact and no temporary file behind
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        to_safe_csv(df.assign(la_name="changed"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["excess.csv"]


def test_excess_command_sorts_writes_safe_csv_and_refuses_unfitted_years(monkeypatch, tmp_path):
    app = answers_app(monkeypatch, {"run": make_world(0).fit})
    out = tmp_path / "excess.csv"
    args = ["excess", "run", "--year", "all", "--format", "csv", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--sort", "p_excess"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, dtype={"la_code": str})
    assert len(written) == 4 * 40 and written["year"].is_monotonic_increasing
    assert all(g["p_excess"].is_monotonic_decreasing for _, g in written.groupby("year"))
    bad = CliRunner().invoke(app, ["excess", "run", "--year", "2030"])
    assert bad.exit_code == 1 and "not fitted" in bad.output  # a domain error


@pytest.mark.slow
def test_real_fits_calibrate_excess_predictions_and_shares():
    """Real NUTS fits of simulated panels (3 seeds): intervals cover the simulation's truth."""
    from answers_helpers import real_fit_world
    from csc_bayes.predict import predict
    from csc_bayes.variance import explain_variance

    excess_hits, predict_hits, share_hits = [], [], []
    for seed in (11, 12, 13):
        fit, truth, panel, values = real_fit_world(seed)
        # excess ratio: truth = LA + region + spending held at the fitted mean
        table = excess(fit, year="all")
        rows = panel.set_index(["la_code", "year"]).loc[
            list(zip(table["la_code"], table["year"], strict=True))
        ]
        spend_mean = float(
            fit.idata["constant_data"]["covariate_mean"].sel(covariate="spend_per_child")
        )
        log_ratio = (
            truth["la_effect"].reindex(table["la_code"]).to_numpy()
            + truth["region_effect"].reindex(table["region"]).to_numpy()
            + truth["beta_per_unit"]["spend_per_child"]
            * (rows["spend_per_child"].astype(float).to_numpy() - spend_mean)
        )
        excess_hits.append(
            coverage(table["excess_ratio_lower"], table["excess_ratio_upper"], np.exp(log_ratio))
        )
        # next-year counts drawn from the truth
        ahead = predict(fit, authority="all", year=2024, seed=seed)
        rng = np.random.default_rng(seed)
        log_rate = (
            truth["log_rate"]
            .loc[list(zip(ahead["la_code"], ahead["year"], strict=True))]
            .to_numpy()
        )
        mu = ahead["population"].to_numpy() * np.exp(log_rate)
        y_next = rng.poisson(rng.gamma(truth["phi"], mu / truth["phi"]))
        predict_hits.append(coverage(ahead["predicted_lower"], ahead["predicted_upper"], y_next))
        # variance shares at the truth
        est = explain_variance(fit).summary
        true = explain_variance(point_fit(fit, {**values, "phi": truth["phi"]})).summary
        share = (est["measure"] == "share").to_numpy()
        share_hits.append(coverage(est["lower"][share], est["upper"][share], true["median"][share]))
    assert 0.75 <= np.mean(excess_hits) <= 0.99, excess_hits
    assert 0.75 <= np.mean(predict_hits) <= 1.0, predict_hits
    assert np.mean(share_hits) >= 0.6, share_hits


def test_an_authority_beside_its_neighbours_ranks_within_the_group():
    from csc_bayes.excess import neighbour_excess

    world = make_world(0)
    full = excess(world.fit)
    others = [c for c in full["la_code"] if c != "383"][:5]
    table = neighbour_excess(world.fit, authority="Leeds", neighbours=[*others, "999"])
    assert len(table) == 6 and table["is_authority"].sum() == 1
    assert table.attrs["not_fitted"] == ["999"]
    assert table["group_rank_median"].between(1, 6).all()
    # ranks within the group follow the excess ratios
    assert table["excess_ratio_median"].is_monotonic_decreasing or (
        np.corrcoef(table["group_rank_median"], table["excess_ratio_median"])[0, 1] < -0.8
    )


def test_cli_excess_neighbours_needs_the_groupings(monkeypatch, raw_dir):
    world = make_world(0)
    app = answers_app(monkeypatch, {"fitdir": world.fit})
    result = CliRunner().invoke(app, ["excess", "fitdir", "--neighbours", "Leeds"])
    assert result.exit_code == 2 and "--raw" in result.output
    result = CliRunner().invoke(
        app, ["excess", "fitdir", "--neighbours", "Leeds", "--raw", str(raw_dir), "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert "Leeds" in result.stdout and "group_rank_median" in result.stdout
    assert "neighbours not in the fit" in result.stderr  # the hand-built fit lacks them
