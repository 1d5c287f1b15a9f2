"""explain_variance: Shapley attribution, shares, SDs, R2 and between-LA R2 against the truth."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from answers_helpers import coverage, make_world, null_twin, point_fit
from csc_bayes.variance import (
    DEFAULT_CI_PROB,
    between_la_variance,
    explain_variance,
    shapley_variance,
)

TRUE_PARAMS = ("intercept", "beta", "la_effect", "region_effect", "year_effect", "la_slope")


def _brute_force_shapley(components: np.ndarray) -> np.ndarray:
    """Average over all orderings of each component's increment in Var(sum so far)."""
    m = components.shape[0]
    values = np.zeros(m)
    for order in itertools.permutations(range(m)):
        running = np.zeros(components.shape[1])
        before = 0.0
        for j in order:
            running = running + components[j]
            now = running.var(ddof=1)
            values[j] += now - before
            before = now
    return values / math.factorial(m)


def _correlated_components(seed: int, m: int = 4, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(m, n))
    mixing = rng.normal(size=(m, m)) + 2 * np.eye(m)
    return mixing @ base


def test_shapley_closed_form_equals_average_over_orderings():
    comps = _correlated_components(0)
    cov = np.cov(comps, ddof=1)
    np.testing.assert_allclose(shapley_variance(cov), _brute_force_shapley(comps), rtol=1e-10)
    assert shapley_variance(cov).sum() == pytest.approx(comps.sum(axis=0).var(ddof=1))


def test_shapley_does_not_depend_on_component_order():
    comps = _correlated_components(1)
    values = shapley_variance(np.cov(comps))
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(shapley_variance(np.cov(comps[perm])), values[perm])


def test_shapley_of_uncorrelated_components_is_their_own_variance():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 4))
    q, _ = np.linalg.qr(z - z.mean(axis=0))  # orthonormal, mean-zero columns
    comps = (q * np.array([3.0, 1.0, 0.5, 0.1])).T
    cov = np.cov(comps)
    np.testing.assert_allclose(shapley_variance(cov), np.diag(cov), atol=1e-12)
    np.testing.assert_allclose(_brute_force_shapley(comps), np.diag(cov), atol=1e-12)
    shares = np.diag(cov) / np.diag(cov).sum()
    np.testing.assert_allclose(shapley_variance(cov) / shapley_variance(cov).sum(), shares)


def test_shares_sum_to_one_per_draw_and_name_every_source():
    result = explain_variance(make_world(0).fit)
    np.testing.assert_allclose(result.shares.sum("component").values, 1.0)
    assert list(result.shares["component"].values) == [
        "deprivation",
        "ethnicity",
        "spending",
        "region",
        "year",
        "la",
        "overdispersion",
        "poisson_noise",
    ]
    frame = result.to_frame()
    assert (frame["lower"] <= frame["median"]).all() and (frame["median"] <= frame["upper"]).all()
    assert result.ci_prob == DEFAULT_CI_PROB
    assert {r["measure"] for r in result.to_dict()["rows"]} >= {"share", "finite_sd", "bayes_r2"}


def test_poisson_fit_has_no_overdispersion_and_slope_joins_the_la_term():
    result = explain_variance(make_world(3, family="poisson", slope=True).fit)
    labels = list(result.shares["component"].values)
    assert "overdispersion" not in labels and "poisson_noise" in labels
    np.testing.assert_allclose(result.shares.sum("component").values, 1.0)
    measures = set(zip(result.summary["measure"], result.summary["component"], strict=True))
    assert ("finite_sd", "la_slope") in measures
    assert ("superpopulation_sd", "la_slope") in measures


def test_wider_la_spread_gets_a_larger_la_share():
    small = explain_variance(make_world(4, sigma_la=0.1).fit).shares.sel(component="la")
    large = explain_variance(make_world(4, sigma_la=0.6).fit).shares.sel(component="la")
    assert float(large.median()) > float(small.median()) + 0.2


def test_intervals_cover_the_true_values_at_about_the_nominal_rate():
    """Exact conjugate posteriors around a truth drawn from the prior: 90% intervals of every
    share, finite-population SD and R2 should hold the truth about 90% of the time."""
    hits, total = 0.0, 0
    for seed in range(8):
        world = make_world(seed, slope=seed % 2 == 1)
        truth = {k: world.truth[k] for k in TRUE_PARAMS if k in world.truth}
        est = explain_variance(world.fit).summary
        true = explain_variance(point_fit(world.fit, truth)).summary
        informative = (est["measure"] != "superpopulation_sd").to_numpy()  # known sigmas here
        n = int(informative.sum())
        hits += n * coverage(
            est["lower"][informative], est["upper"][informative], true["median"][informative]
        )
        total += n
    assert 0.8 <= hits / total <= 0.98, hits / total


def test_between_la_explained_is_defined_as_documented_and_recovers_the_truth():
    for seed in range(3):
        world = make_world(seed)
        null_fit, null_truth = null_twin(world, seed=seed + 100)
        result = explain_variance(world.fit, null_fit=null_fit)
        # per paired draw: 1 - V_between(full) / V_between(null)
        per_draw = result.draws.sel(quantity="between_la_explained:finite").values
        expected = 1 - between_la_variance(world.fit) / between_la_variance(null_fit)
        np.testing.assert_allclose(per_draw, expected[: len(per_draw)])
        # the true value, by hand: variance across LAs of region + LA effects, full vs null
        t = world.truth
        region_of_la = np.bincount(t["la_idx"], weights=t["region_idx"]) / np.bincount(t["la_idx"])
        region = t["region_effect"][region_of_la.astype(int)]
        by_hand = 1 - np.var(region + t["la_effect"], ddof=1) / np.var(
            region + null_truth["la_effect"], ddof=1
        )
        truth_fit = point_fit(world.fit, {k: t[k] for k in TRUE_PARAMS if k in t})
        true_value = explain_variance(truth_fit, null_fit=point_fit(null_fit, null_truth))
        assert float(
            true_value.draws.sel(quantity="between_la_explained:finite")[0]
        ) == pytest.approx(by_hand)
        # and the posterior recovers it
        row = result.summary.set_index(["measure", "component"]).loc[
            ("between_la_explained", "finite")
        ]
        assert abs(row["median"] - by_hand) < 0.2
        assert row["lower"] < row["median"] < row["upper"]


def test_null_fit_must_match_the_full_fit():
    world = make_world(0)
    other = make_world(0, n_la=30)
    with pytest.raises(ValueError, match="'la' coordinate differs"):
        explain_variance(world.fit, null_fit=null_twin(other)[0])
    with pytest.raises(ValueError, match="random effects only"):
        explain_variance(world.fit, null_fit=world.fit)


def test_ci_prob_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="ci_prob"):
        explain_variance(make_world(0).fit, ci_prob=90)


def test_explain_command_prints_json_with_the_null_comparison(monkeypatch):
    import json

    from typer.testing import CliRunner

    from answers_helpers import answers_app

    world = make_world(0)
    app = answers_app(monkeypatch, {"full": world.fit, "null": null_twin(world)[0]})
    result = CliRunner().invoke(app, ["explain", "full", "--null", "null", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert ("between_la_explained", "finite") in {(r["measure"], r["component"]) for r in rows}
    table = CliRunner().invoke(app, ["explain", "full", "--no-null"])
    assert table.exit_code == 0 and "share" in table.stdout and "poisson_noise" in table.stdout
