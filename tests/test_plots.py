"""Structural tests of the figures: order, highlighting, interval end points, limits, ``ax``."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.errors import UnknownAuthorityError
from csc_bayes.fits import save_fit
from csc_bayes.plots import (
    caterpillar,
    caterpillar_table,
    funnel,
    funnel_limits,
    ppc,
    save_figure,
    trend,
    variance,
)
from csc_bayes.plots._labels import LABEL_GID
from plots_helpers import excess_like_table, make_fit


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fit():
    return make_fit(n_la=30, n_draws=60)


def _collection(ax, gid):
    return next(c for c in ax.collections if c.get_gid() == gid)


def _ytick_names(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


# ------------------------------------------------------------------------------ caterpillar


def test_caterpillar_orders_authorities_by_the_table_ranking():
    table = excess_like_table(12)
    fig = caterpillar(table)
    expected = table.sort_values("excess_ratio_median", ascending=False)["la_name"].tolist()
    ax = fig.axes[0]
    assert _ytick_names(ax) == expected
    assert ax.yaxis_inverted()  # the first (highest) authority is drawn at the top


def test_caterpillar_interval_end_points_equal_the_table():
    table = excess_like_table(9)
    ax = caterpillar(table).axes[0]
    ordered = table.set_index("la_name").loc[_ytick_names(ax)]
    for gid, lo, hi in (
        ("interval_ci", "excess_ratio_lower", "excess_ratio_upper"),
        ("interval_50", "excess_ratio_lower50", "excess_ratio_upper50"),
    ):
        segments = np.array(_collection(ax, gid).get_segments())  # (n, 2 points, xy)
        np.testing.assert_allclose(segments[:, 0, 0], ordered[lo])
        np.testing.assert_allclose(segments[:, 1, 0], ordered[hi])
    points = _collection(ax, "point").get_offsets()
    np.testing.assert_allclose(points[:, 0], ordered["excess_ratio_median"])
    assert ax.get_xscale() == "log"
    assert any(np.allclose(line.get_xdata(), 1.0) for line in ax.lines)  # "as expected"


def test_caterpillar_highlight_is_drawn_distinctly():
    table = excess_like_table(10)
    target = table["la_name"].iloc[4]
    ax = caterpillar(table, highlight=[table["la_code"].iloc[4]]).axes[0]
    labels = {t.get_text(): t for t in ax.get_yticklabels()}
    others = [t for name, t in labels.items() if name != target]
    assert labels[target].get_fontweight() == "bold"
    assert all(t.get_fontweight() != "bold" for t in others)
    assert all(t.get_color() != labels[target].get_color() for t in others)
    colours = _collection(ax, "point").get_facecolors()
    row = _ytick_names(ax).index(target)
    assert sum(np.allclose(c, colours[row]) for c in colours) == 1


def test_caterpillar_unknown_highlight_names_the_closest_match():
    with pytest.raises(UnknownAuthorityError, match="Authority B"):
        caterpillar(excess_like_table(5), highlight=["Authorty B"])


def test_caterpillar_by_region_and_single_region():
    table = excess_like_table(12)
    fig = caterpillar(table, by_region=True)
    regions = sorted(table["region"].unique())
    assert [ax.get_title(loc="left") for ax in fig.axes] == regions
    for ax, region in zip(fig.axes, regions, strict=True):
        part = table[table["region"] == region]
        assert (
            _ytick_names(ax)
            == part.sort_values("excess_ratio_median", ascending=False)["la_name"].tolist()
        )
    one = caterpillar(table, region="London").axes[0]
    assert set(_ytick_names(one)) == set(table.loc[table["region"] == "London", "la_name"])


def test_caterpillar_prob_labels_and_ax_are_honoured():
    table = excess_like_table(6)
    fig, ax = plt.subplots()
    returned = caterpillar(table, prob="p_excess", ax=ax)
    assert returned is fig
    ordered = table.sort_values("excess_ratio_median", ascending=False)
    assert [t.get_text() for t in ax.texts] == [f"{p:.2f}" for p in ordered["p_excess"]]
    with pytest.raises(ValueError, match="by_region"):
        caterpillar(table, by_region=True, ax=ax)


def test_caterpillar_table_is_the_plotted_order():
    table = excess_like_table(8)
    rows = caterpillar_table(table, highlight=["Authority C"])
    assert rows["excess_ratio_median"].is_monotonic_decreasing
    assert rows.loc[rows["highlighted"], "la_name"].tolist() == ["Authority C"]


def test_caterpillar_on_a_full_fit_is_a4_sized_with_small_names(fit):
    from csc_bayes.excess import excess

    full = make_fit(n_la=None, n_draws=20)
    fig = caterpillar(excess(full))
    width, height = fig.get_size_inches()
    assert width <= 8.3 and height <= 11.7  # fits an A4 page
    labels = fig.axes[0].get_yticklabels()
    assert len(labels) == full.idata["posterior"].sizes["la"] > 140
    assert labels[0].get_fontsize() < 8


# ------------------------------------------------------------------------------ funnel


def test_funnel_limits_widen_as_expected_counts_shrink():
    expected = np.array([5.0, 20, 100, 500, 2000])
    phi = np.random.default_rng(0).normal(40, 3, 300)
    limits = funnel_limits(expected, phi=phi)
    for p in ("0.95", "0.998"):
        width = limits[f"upper_{p}"] - limits[f"lower_{p}"]
        assert np.all(np.diff(width) < 0)
    assert np.all(limits["upper_0.998"] > limits["upper_0.95"])
    # negative binomial limits stay wider than Poisson ones at large counts
    poisson = funnel_limits(expected)
    assert limits["upper_0.95"].iloc[-1] > poisson["upper_0.95"].iloc[-1] + 0.1


def test_funnel_limits_match_poisson_quantiles():
    from scipy import stats

    limits = funnel_limits([1000.0], probs=(0.95,))
    upper = stats.poisson.ppf(0.975, 1000) / 1000
    assert abs(limits["upper_0.95"].iloc[0] - upper) < 1.5 / 1000


def test_funnel_figure_draws_limits_and_labels_outliers(fit):
    from csc_bayes.excess import excess

    table = excess(fit)
    fig, ax = plt.subplots()
    assert funnel(table, phi=fit.idata["posterior"]["phi"].values.ravel(), ax=ax) is fig
    lines = {line.get_gid(): line for line in ax.lines}
    lower, upper = lines["limit_lower_0.998"], lines["limit_upper_0.998"]
    width = upper.get_ydata() - lower.get_ydata()
    assert np.all(np.diff(width) <= 1e-9)  # x grows along the line: the funnel narrows
    assert np.all(lower.get_ydata() <= lines["limit_lower_0.95"].get_ydata())
    labelled = {t.get_text() for t in ax.texts if t.get_gid() == LABEL_GID}
    assert labelled <= set(table["la_name"])
    assert "negative binomial (posterior phi) limits" in ax.get_title(loc="left")
    fig, ax = plt.subplots()
    funnel(table, limits_label="Poisson (a note)", ax=ax)
    assert "Poisson (a note) limits" in ax.get_title(loc="left")


# ------------------------------------------------------------------------------ variance


def test_variance_bars_equal_the_table_shares(fit):
    from csc_bayes.variance import explain_variance

    result = explain_variance(fit)
    shares = result.to_frame().query("measure == 'share'")
    fig, ax = plt.subplots()
    assert variance(result, ax=ax) is fig
    bars = [p for p in ax.patches if str(p.get_gid()).startswith("bar_")]
    assert [b.get_gid() for b in bars] == [f"bar_{c}" for c in shares["component"]]
    np.testing.assert_allclose([b.get_width() for b in bars], shares["median"])


def test_variance_rejects_an_unknown_measure(fit):
    table = pd.DataFrame({"measure": ["share"], "component": ["la"], "median": [1.0]})
    with pytest.raises(ValueError, match="no rows"):
        variance(table, measure="nonsense")


# ------------------------------------------------------------------------------ trend, ppc


def test_trend_shows_fitted_years_and_the_forecast(fit):
    from csc_bayes.predict import predict

    name = fit.authorities["la_name"].iloc[0]
    table = predict(fit, authority=name)
    fig, ax = plt.subplots()
    assert trend(table, ax=ax) is fig
    lines = {line.get_gid(): line for line in ax.lines}
    observed = table[table["kind"] == "observed"]
    np.testing.assert_allclose(lines["fitted"].get_ydata(), observed["rate_median"])
    np.testing.assert_allclose(lines["observed"].get_xdata(), observed["year"])
    forecast_year = table.loc[table["kind"] == "forecast", "year"].tolist()
    assert forecast_year == [max(observed["year"]) + 1]
    assert name in ax.get_title(loc="left")


def test_ppc_draws_observed_and_replicates_and_stamps_synthetic(fit):
    fig = ppc(fit, n_replicates=7)
    ax = fig.axes[0]
    gids = [line.get_gid() for line in ax.lines]
    assert gids.count("replicate") == 7 and gids.count("observed") == 1
    assert any(t.get_text() == "SYNTHETIC DATA" for t in fig.texts)
    plain = ppc(fit, n_replicates=3, synthetic=False)
    assert not any(t.get_text() == "SYNTHETIC DATA" for t in plain.texts)


# ------------------------------------------------------------------------------ saving, CLI


@pytest.mark.parametrize(("suffix", "magic"), [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_save_figure_writes_by_suffix_atomically(tmp_path, suffix, magic):
    fig = caterpillar(excess_like_table(4))
    path = save_figure(fig, tmp_path / f"f{suffix}")
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"f{suffix}"]  # no temporary left behind


def test_save_figure_svg_and_unknown_suffix(tmp_path):
    fig = caterpillar(excess_like_table(4))
    assert b"<svg" in save_figure(fig, tmp_path / "f.svg").read_bytes()
    with pytest.raises(ValueError, match=r"\.jpg"):
        save_figure(fig, tmp_path / "f.jpg")
    assert [p.name for p in tmp_path.iterdir()] == ["f.svg"]


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    root = tmp_path_factory.mktemp("fits")
    return save_fit(make_fit(n_la=20, n_draws=40), root)


def test_cli_plot_caterpillar_with_safe_data_out(saved_fit, tmp_path):
    from csc_bayes.cli import app
    from csc_bayes.fits import load_fit

    name = load_fit(saved_fit).authorities["la_name"].iloc[3]
    out, data = tmp_path / "cat.svg", tmp_path / "cat.csv"
    result = CliRunner().invoke(
        app,
        ["plot", "caterpillar", str(saved_fit), "-o", str(out), "--data-out", str(data),
         "--highlight", name, "--show-prob"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().lstrip().startswith((b"<?xml", b"<svg"))
    table = pd.read_csv(data, dtype={"la_code": str})
    assert table["excess_ratio_median"].is_monotonic_decreasing
    assert len(table) == 20
    assert table.loc[table["highlighted"], "la_name"].tolist() == [name]


def test_data_out_defuses_formula_text(tmp_path):
    from csc_bayes.excess import to_safe_csv

    table = caterpillar_table(excess_like_table(3).assign(la_name=["=cmd()", "+1", "Leeds"]))
    to_safe_csv(table, tmp_path / "t.csv")
    text = (tmp_path / "t.csv").read_text()
    assert "'=cmd()" in text and "'+1" in text and ",Leeds," in text


@pytest.mark.parametrize("kind", ["funnel", "variance", "ppc"])
def test_cli_plot_other_kinds(saved_fit, tmp_path, kind):
    from csc_bayes.cli import app

    out = tmp_path / f"{kind}.png"
    result = CliRunner().invoke(app, ["plot", kind, str(saved_fit), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")


def test_cli_trend_needs_an_authority(saved_fit, tmp_path):
    from csc_bayes.cli import app

    result = CliRunner().invoke(
        app, ["plot", "trend", str(saved_fit), "-o", str(tmp_path / "t.png")]
    )
    assert result.exit_code != 0
    assert "authority" in str(result.exception)


def test_cli_caterpillar_highlights_an_authority_and_its_statistical_neighbours(tmp_path, raw_dir):
    """--neighbours: the authority and those of its DfE neighbours the fit holds are drawn
    distinctly; the others are named on stderr."""
    from csc_bayes.cli import app
    from csc_bayes.data.neighbours import statistical_neighbours
    from csc_bayes.fits import load_fit

    saved = save_fit(make_fit(n_la=None, n_draws=20), tmp_path / "fits")
    fitted = set(load_fit(saved).authorities["la_code"].astype(str))
    group = ["383", *statistical_neighbours("383", raw_dir)]
    data = tmp_path / "cat.csv"
    args = ["plot", "caterpillar", str(saved), "-o", str(tmp_path / "cat.png"), "--data-out",
            str(data), "--neighbours", "Leeds"]  # fmt: skip
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and "--raw" in refused.output
    result = CliRunner().invoke(app, [*args, "--raw", str(raw_dir)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(data, dtype={"la_code": str})
    assert set(table.loc[table["highlighted"], "la_code"]) == {c for c in group if c in fitted}
    if not set(group) <= fitted:
        assert "neighbours not in the fit" in result.stderr
