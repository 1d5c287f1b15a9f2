"""Backtests with real (tiny) refits: no refit sees its test year, a rerun reuses the refits, a
refit's years ahead are drawn jointly, the Dask path and the CLI end to end, and sums over
authorities (``predict --aggregate``).

One backtest of ``cpp_need_ar`` on 12 synthetic authorities (origins 2022-2023, horizons 1-2:
three refits of 2 chains x 100 draws) is shared by the module; the other tests reuse its refits.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.backtest import backtest, crps_from_draws
from csc_bayes.cli import app
from csc_bayes.data import load_panel, save_panel
from csc_bayes.fits import load_fit
from csc_bayes.predict import predict, predict_aggregate, predict_draws
from csc_bayes.simulate import default_authorities, simulate_panel

SAMPLER = {"draws": 100, "tune": 100, "chains": 2}
ORIGINS, HORIZONS = [2022, 2023], (1, 2)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("backtest")
    las = default_authorities(2023).sort_values("la_code").iloc[::12].head(12)
    panel = simulate_panel(
        first_year=2015, last_year=2023, seed=3, authorities=las.reset_index(drop=True)
    ).panel
    save_panel(panel, root / "panel.parquet")
    panel = load_panel(root / "panel.parquet")
    result = backtest(
        "cpp_need_ar",
        data=panel,
        origins=ORIGINS,
        horizons=HORIZONS,
        fits_dir=root / "fits",
        workers=1,
        progress=False,
        seed=7,
        **SAMPLER,
    )
    return root, panel, result


def test_no_refit_sees_its_test_year(case):
    _root, _panel, result = case
    fits = result.fits.set_index("fit")
    assert sorted(fits["train_last"]) == [2020, 2021, 2022]
    for name, row in fits.iterrows():
        saved = json.loads((Path(row["run"]) / "metadata.json").read_text())
        assert saved["years_fitted"] == list(range(2015, row["train_last"] + 1)), name
        assert max(saved["years_fitted"]) < min(row["forecast_years"])
        # the saved panel holds no outcome after the training years, not even unfitted ones
        kept = pd.read_parquet(Path(row["run"]) / "panel.parquet")
        later = kept[kept["year"] > row["train_last"]]
        assert len(later) and later[["cin", "cpp", "cla", "s47", "referrals"]].isna().all().all()
    scores = result.scores
    assert (scores["origin"] - scores["horizon"] == scores["train"].str[-4:].astype(int)).all()


def test_every_authority_with_a_count_is_scored_by_every_method(case):
    _root, panel, result = case
    scores = result.scores
    assert set(scores["method"]) == {"cpp_need_ar", "naive", "naive_trend"}
    for (origin, _horizon, _method), group in scores.groupby(["origin", "horizon", "method"]):
        observed = panel[(panel["year"] == origin) & panel["cpp"].notna()]
        assert sorted(group["la_code"]) == sorted(observed["la_code"].astype(str))
        truth = observed.set_index(observed["la_code"].astype(str))["cpp"].astype(float)
        np.testing.assert_array_equal(group["observed"], truth.loc[group["la_code"]])
    summary = result.summary.set_index(["origin", "horizon", "method"])
    assert len(summary) == len(ORIGINS) * len(HORIZONS) * 3
    one = scores[(scores["origin"] == 2023) & (scores["horizon"] == 2)]
    model, naive = (one[one["method"] == m].set_index("la_code") for m in ("cpp_need_ar", "naive"))
    row = summary.loc[(2023, 2, "cpp_need_ar")]
    assert row["mean_crps"] == pytest.approx(model["crps"].mean())
    assert row["coverage_90"] == pytest.approx(model["covered_90"].mean())
    diff = model["crps"] - naive["crps"].loc[model.index]
    assert row["crps_minus_naive"] == pytest.approx(diff.mean())
    assert row["se_minus_naive"] == pytest.approx(diff.std(ddof=1) / np.sqrt(len(diff)))
    pooled = result.pooled.set_index(["horizon", "method"])
    per_origin = result.summary.query("horizon == 1 and method == 'cpp_need_ar'")
    assert pooled.loc[(1, "cpp_need_ar"), "crps_minus_naive"] == pytest.approx(
        per_origin["crps_minus_naive"].mean()
    )
    assert pooled.loc[(1, "cpp_need_ar"), "se_minus_naive"] == pytest.approx(
        per_origin["crps_minus_naive"].std(ddof=1) / np.sqrt(2)
    )


def test_a_refits_years_ahead_come_from_one_joint_call(case):
    """The refit to 2021 forecasts 2022 (h = 1) and 2023 (h = 2) in one predict_draws call:
    its scores are those of that call's draws."""
    _root, _panel, result = case
    row = result.fits.set_index("train_last").loc[2021]
    assert row["forecast_years"] == [2022, 2023]
    fit = load_fit(row["run"])
    pred = predict_draws(fit, authority="all", year=[2022, 2023], seed=7)
    scores = result.scores.query("origin == 2023 and horizon == 2 and method == 'cpp_need_ar'")
    rows = pred.rows.reset_index(drop=True)
    column = {code: k for k, code in rows[rows["year"] == 2023]["la_code"].items()}
    draws = pred.count[:, [column[code] for code in scores["la_code"]]]
    np.testing.assert_allclose(crps_from_draws(draws, scores["observed"]), scores["crps"])


def test_joint_draws_give_a_sum_over_years_its_spread(case):
    """AR(1) LA-year deviations and random-walk year effects make an authority's next two
    years positively correlated: the variance of their sum from the joint draws exceeds the
    variance of a sum of independent draws with the same margins, Var(Y1) + Var(Y2)."""
    _root, _panel, result = case
    fit = load_fit(result.fits.set_index("train_last").loc[2021, "run"])
    pred = predict_draws(fit, authority="all", year=[2022, 2023], seed=1)
    assert list(pred.rows["year"][:2]) == [2022, 2023]  # authority-major
    first, second = pred.count[:, 0::2], pred.count[:, 1::2]
    joint = (first + second).var(axis=0)
    independent = first.var(axis=0) + second.var(axis=0)
    assert joint.sum() > 1.1 * independent.sum(), joint.sum() / independent.sum()
    corr = [np.corrcoef(pred.eta[:, 2 * k], pred.eta[:, 2 * k + 1])[0, 1] for k in range(12)]
    assert np.mean(corr) > 0.3, corr
    # years asked for in separate calls are drawn independently: no such correlation
    a = predict_draws(fit, authority="all", year=2022, seed=2)
    b = predict_draws(fit, authority="all", year=2023, seed=3)
    alone = [np.corrcoef(a.eta[:, k], b.eta[:, k])[0, 1] for k in range(12)]
    assert np.mean(corr) > np.mean(alone) + 0.2, (corr, alone)


def test_a_rerun_reuses_the_refits_and_gives_the_same_scores(case):
    root, panel, result = case
    again = backtest(
        "cpp_need_ar",
        data=panel,
        origins=ORIGINS,
        horizons=HORIZONS,
        fits_dir=root / "fits",
        workers=1,
        progress=False,
        seed=7,
        **SAMPLER,
    )
    assert again.fits["reused"].all()
    assert list(again.fits["run"]) == list(result.fits["run"])
    # a reused refit still reports the sampling time it took when it was made
    assert (again.fits["sampling_seconds"] > 0).all()
    assert list(again.fits["sampling_seconds"]) == list(result.fits["sampling_seconds"])
    pd.testing.assert_frame_equal(again.scores, result.scores)


def test_refits_on_the_dask_engine_match_the_sequential_ones(case):
    root, panel, result = case
    on_dask = backtest(
        "cpp_need_ar",
        data=panel,
        origins=[2023],
        horizons=(1,),
        fits_dir=root / "fits",
        workers=2,
        progress=False,
        seed=7,
        **SAMPLER,
    )
    assert on_dask.fits["reused"].all()
    expected = result.scores.query("origin == 2023 and horizon == 1").reset_index(drop=True)
    pd.testing.assert_frame_equal(on_dask.scores, expected)


def test_cli_end_to_end(case):
    """A sliding window makes one new refit (2018-2022); the rest of the output is checked."""
    root, _panel, _result = case
    out = root / "report"
    args = ["backtest", "cpp_need_ar", "--data", str(root / "panel.parquet")]
    args += ["--origins", "2022", "2023", "--horizon", "1", "--window", "5"]
    args += ["--fits", str(root / "fits"), "--workers", "1", "--out", str(out), "--seed", "7"]
    args += ["--draws", "100", "--tune", "100", "--chains", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "Backtest of cpp_need_ar (cpp) per origin" in result.stdout
    assert "Pooled over origins" in result.stdout and "naive_trend" in result.stdout
    assert f"wrote {out}" in result.stderr
    assert "refits failed the convergence gate" in result.stderr  # tiny fits: honest warning
    for name in ("scores.csv", "summary.csv", "pooled.csv", "fits.csv", "summary.md"):
        assert (out / name).is_file(), name
    fits = pd.read_csv(out / "fits.csv")
    assert list(fits["train_first"]) == [2017, 2018] and list(fits["train_last"]) == [2021, 2022]
    assert "## Pooled over origins" in (out / "summary.md").read_text()
    info = json.loads((out / "info.json").read_text())
    assert info["window"] == 5 and info["origins"] == [2022, 2023]


def test_cli_bad_origins_fail_in_one_line(case):
    root, _panel, _result = case
    args = ["backtest", "cpp_need_ar", "--data", str(root / "panel.parquet"), "--origins"]
    result = CliRunner().invoke(
        app, [*args, "2030", "--fits", str(root / "fits"), "--workers", "1"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: origin year(s) [2030] have no observed cpp")
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, [*args, "2021", "2022", "2023"])
    assert result.exit_code == 2


def test_an_authority_without_inputs_is_skipped_with_its_reason(case):
    """predict_draws(skip_unknown=True), as the backtest calls it: an authority whose forecast
    row lacks an input (here: no population in any year) is left out and named; without the
    option the call fails as before."""
    import dataclasses

    _root, _panel, result = case
    run = result.fits.sort_values("train_last")["run"].iloc[-1]
    fit = load_fit(run)
    gone = str(fit.panel["la_code"].astype(str).iloc[0])
    panel = fit.panel.copy()
    panel.loc[panel["la_code"].astype(str) == gone, "population"] = pd.NA
    broken = dataclasses.replace(fit, panel=panel)
    year = max(fit.metadata["years_fitted"]) + 1
    with pytest.raises(Exception, match=f"no known population for authority {gone}"):
        predict_draws(broken, authority="all", year=year)
    pred = predict_draws(broken, authority="all", year=year, skip_unknown=True)
    assert gone not in set(pred.rows["la_code"]) and len(pred.rows) == pred.count.shape[1]
    assert list(pred.skipped["la_code"]) == [gone]
    assert "no known population" in pred.skipped["reason"].iloc[0]
    full = predict_draws(fit, authority="all", year=year)
    assert len(full.rows) == len(pred.rows) + 1 and full.skipped is None


def test_backtest_table_combines_saved_backtests_and_checks_the_targets(case):
    """Two saved backtests (here the same one twice, as two 'outcomes') -> one table whose
    numbers are the pooled summaries' and whose target flags follow from them."""
    root, _panel, result = case
    folders = []
    for name in ("a", "b"):
        folders.append(result.save(root / "table_input" / name))
    out = root / "table"
    run = CliRunner().invoke(app, ["backtest-table", *map(str, folders), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "Forecast backtests against naive" in run.stdout
    table = pd.read_csv(out / "forecast_table.csv")
    assert len(table) == 2 * len(HORIZONS)
    pooled = result.pooled.set_index(["horizon", "method"])
    for row in table.to_dict("records"):
        m, b = pooled.loc[(row["horizon"], "cpp_need_ar")], pooled.loc[(row["horizon"], "naive")]
        assert row["outcome"] == "cpp" and row["model"] == "cpp_need_ar"
        assert row["mae_ratio"] == pytest.approx(m["mae_median"] / b["mae_median"])
        assert row["naive_crps"] == pytest.approx(b["mean_crps"])
        assert row["crps_minus_naive"] == pytest.approx(m["crps_minus_naive"])
        assert row["meets_mae"] == (row["mae_ratio"] <= 0.9)
        assert row["meets_crps"] == (row["crps_minus_naive"] < 0)
        assert row["meets_coverage_50"] == (0.45 <= row["coverage_50"] <= 0.55)
        assert row["meets_coverage_90"] == (0.87 <= row["coverage_90"] <= 0.93)
        assert row["refits"] == 3 and row["gate_failures"] == result.info["gate_failures"]
    text = (out / "forecast_table.md").read_text()
    assert "mae_ratio = MAE / naive MAE <= 0.9" in text and "| cpp | cpp_need_ar |" in text
    # the per-authority scores are not needed: the table reads summaries only
    (folders[0] / "scores.csv").unlink()
    args = ["backtest-table", str(folders[0]), "--baseline", "naive_trend"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output


def test_backtest_table_refuses_a_folder_that_is_not_a_backtest(case):
    root, _panel, _result = case
    run = CliRunner().invoke(app, ["backtest-table", str(root / "fits")])
    assert run.exit_code == 1
    assert run.stderr.startswith("error: ") and "is not a saved backtest" in run.stderr
    assert "Traceback" not in run.output


# ====================================================================== sums over authorities
def test_aggregate_median_and_interval_against_the_authorities(case):
    _root, _panel, result = case
    fit = load_fit(result.fits.set_index("train_last").loc[2022, "run"])
    each = predict(fit, authority="all", year=2023, seed=4)
    england = predict_aggregate(fit, by="england", year=2023, seed=4).iloc[0]
    assert england["n_authorities"] == 12 and england["la_name"] == "England"
    assert england["population"] == pytest.approx(each["population"].sum())
    assert each["predicted_lower"].sum() < england["predicted_median"]
    assert england["predicted_median"] < each["predicted_upper"].sum()
    width = england["predicted_upper"] - england["predicted_lower"]
    assert width < (each["predicted_upper"] - each["predicted_lower"]).sum()
    # the sum is per draw: the same draws as predict_draws, summed
    draws = predict_draws(fit, authority="all", year=2023, seed=4)
    assert england["predicted_mean"] == pytest.approx(draws.count.sum(axis=1).mean())
    regions = predict_aggregate(fit, by="region", year=2023, seed=4)
    assert regions["n_authorities"].sum() == 12
    assert set(regions["region"]) == set(each["region"])


def test_aggregate_counts_only_authorities_that_exist_in_the_year(case):
    _root, _panel, result = case
    fit = load_fit(result.fits.set_index("train_last").loc[2022, "run"])
    gone = str(fit.panel["la_code"].iloc[0])
    fit.panel = fit.panel[~((fit.panel["la_code"] == gone) & (fit.panel["year"] == 2023))]
    total = predict_aggregate(fit, by="england", year=[2022, 2023]).set_index("year")
    assert total.loc[2022, "n_authorities"] == 12 and total.loc[2023, "n_authorities"] == 11


def test_cli_predict_aggregate(case):
    _root, _panel, result = case
    run = result.fits.set_index("train_last").loc[2022, "run"]
    args = ["predict", run, "--authority", "all", "--year", "2023"]
    out = CliRunner().invoke(app, [*args, "--aggregate", "england", "--format", "csv"])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(io.StringIO(out.stdout))
    assert list(table["la_name"]) == ["England"] and table["n_authorities"].iloc[0] == 12
    shown = CliRunner().invoke(app, [*args, "--aggregate", "region"])
    assert shown.exit_code == 0 and "summed per region" in shown.stdout
    bad = CliRunner().invoke(
        app, ["predict", run, "--authority", "Camden", "--aggregate", "region"]
    )
    assert bad.exit_code == 2 and "--authority all" in bad.output
    bad = CliRunner().invoke(app, [*args, "--aggregate", "county"])
    assert bad.exit_code == 2


def test_a_refit_that_can_forecast_no_authority_says_why(case, monkeypatch):
    """When every authority is left out (here: the refit's panel has no population at all) the
    refit fails with the reason instead of an empty score table."""
    import dataclasses
    import importlib

    module = importlib.import_module("csc_bayes.predict")  # csc_bayes.predict is the function
    root, panel, _result = case
    real = module.predict_draws

    def without_population(fit, **kwargs):
        broken = dataclasses.replace(fit, panel=fit.panel.assign(population=np.nan))
        return real(broken, **kwargs)

    monkeypatch.setattr(module, "predict_draws", without_population)
    with pytest.raises(Exception, match=r"no authority could be forecast for \[2023\].*population"):
        backtest(
            "cpp_need_ar",
            data=panel,
            origins=[2023],
            fits_dir=root / "fits",
            refit="never",
            workers=1,
            progress=False,
            seed=7,
            **SAMPLER,
        )


def test_aggregate_scores_sum_each_methods_draws_over_the_common_authorities():
    """Sums draw by draw over the authorities every method forecast (a, b, c; not d), per
    region and for England, scored against the observed totals."""
    from csc_bayes.backtest import aggregate_scores

    observed = pd.Series({"a": 10.0, "b": 20.0, "c": 5.0, "d": 7.0})
    region = pd.Series({"a": "North", "b": "North", "c": "South", "d": "South"})
    model = np.array([[10.0, 20.0, 5.0, 7.0], [12.0, 22.0, 6.0, 8.0]])  # S = 2 draws
    naive = np.array([[11.0, 5.0, 19.0], [9.0, 5.0, 21.0]])  # columns a, c, b
    out = aggregate_scores(
        {"m": (np.array(list("abcd")), model), "naive": (np.array(list("acb")), naive)},
        observed,
        region,
    ).set_index(["method", "area"])
    assert out.loc[("m", "England"), "n_authorities"] == 3  # d: only the model forecast it
    assert out.loc[("m", "England"), "observed"] == 35.0
    assert out.loc[("m", "North"), "observed"] == 30.0 and out.loc[("m", "South"), "observed"] == 5
    # the model's England draws are 35 and 40: median 37.5; naive's 35 and 35
    assert out.loc[("m", "England"), "abs_error"] == pytest.approx(2.5)
    assert out.loc[("naive", "England"), "abs_error"] == pytest.approx(0.0)
    assert out.loc[("naive", "North"), "median"] == pytest.approx(30.0)
    assert out.loc[("m", "England"), "rel_error"] == pytest.approx(2.5 / 35)  # median 37.5
    expected = crps_from_draws(np.array([[35.0], [40.0]]), np.array([35.0]))[0]
    assert out.loc[("m", "England"), "crps"] == pytest.approx(expected)
    assert set(out["level"]) == {"england", "region"}


def test_a_backtest_scores_sums_over_regions_and_england(case, tmp_path):
    _root, panel, result = case
    sums = result.aggregates
    assert set(sums["method"]) == {"cpp_need_ar", "naive", "naive_trend"}
    assert set(sums["horizon"]) == set(HORIZONS) and set(sums["origin"]) == set(ORIGINS)
    england = sums[(sums["level"] == "england") & (sums["method"] == "naive")]
    for row in england.to_dict("records"):  # the total of the authorities scored by all methods
        scored = result.scores[
            (result.scores["origin"] == row["origin"])
            & (result.scores["horizon"] == row["horizon"])
        ]
        common = set.intersection(*(set(g["la_code"]) for _, g in scored.groupby("method")))
        year = panel[panel["year"] == row["origin"]]
        truth = year[year["la_code"].astype(str).isin(common)]["cpp"].sum()
        assert row["observed"] == truth and row["n_authorities"] == len(common)
    regions = sums[(sums["level"] == "region") & (sums["method"] == "naive")]
    assert len(regions) == len(ORIGINS) * len(HORIZONS) * panel["region"].nunique()
    folder = result.save(tmp_path / "bt")
    assert "## Sums over authorities" in (folder / "summary.md").read_text()
    pooled = pd.read_csv(folder / "pooled_sums.csv")
    assert set(pooled["level"]) == {"england", "region"}
    assert (pooled.groupby(["horizon", "level"])["method"].nunique() == 3).all()
    naive = sums[sums["method"] == "naive"]
    pooled_naive = pooled[pooled["method"] == "naive"].set_index(["horizon", "level"])
    expected = naive.groupby(["horizon", "level"])["rel_error"].mean()
    np.testing.assert_allclose(pooled_naive["mean_rel_error"].loc[expected.index], expected)
    np.testing.assert_allclose(
        naive["rel_error"], (naive["median"] - naive["observed"]) / naive["observed"]
    )
