"""Real-data fits of the child protection plan (CPP) need model: what a user sees.

The quick fit (fewer years, chains and draws) runs in the default suite wherever the official
files are present; the full default-settings fit and its convergence gate is ``slow``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import csc_bayes
from csc_bayes.diagnostics import GateResult

# csc_bayes.excess / csc_bayes.predict name both a function and a submodule: once the submodule
# is imported the package attribute is the module, so take the functions from their modules
from csc_bayes.excess import excess
from csc_bayes.predict import predict

pytestmark = pytest.mark.realdata

#: quick settings: the last six published years, 2 chains of 300 + 300 draws
QUICK_YEARS = (2019, 2024)
QUICK_SAMPLER = {"draws": 300, "tune": 300, "chains": 2, "seed": 7}
LEEDS = ("Leeds", "E08000035", 383)


@pytest.fixture(scope="module")
def panel(real_build) -> pd.DataFrame:
    return real_build[0]  # one build of the official files per test session (conftest)


@pytest.fixture(scope="module")
def quick_fit(panel: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> csc_bayes.Fit:
    spec = dataclasses.replace(csc_bayes.find_spec("cpp_need"), years=QUICK_YEARS)
    out = tmp_path_factory.mktemp("fits")
    return csc_bayes.fit(spec, data=panel, out=out, progress=False, **QUICK_SAMPLER)


def test_fit_saves_and_reloads(quick_fit: csc_bayes.Fit) -> None:
    assert quick_fit.path is not None and quick_fit.path.is_dir()
    loaded = csc_bayes.load_fit(quick_fit.path.parent)  # the model folder: its latest run
    assert loaded.path == quick_fit.path
    assert not loaded.synthetic
    assert loaded.metadata["years_fitted"] == list(range(QUICK_YEARS[0], QUICK_YEARS[1] + 1))
    assert 145 <= loaded.metadata["n_authorities"] <= 155
    np.testing.assert_array_equal(
        loaded.idata["posterior"]["beta"].values, quick_fit.idata["posterior"]["beta"].values
    )


def test_deprivation_raises_child_protection_rates(quick_fit: csc_bayes.Fit) -> None:
    beta = quick_fit.idata["posterior"]["beta"].sel(covariate="idaci").values.ravel()
    assert (beta > 0).mean() > 0.99
    # per 1 SD of IDACI, a rate ratio between 1.05 and 2.5: the published range of the gradient
    assert 1.05 < np.exp(np.median(beta)) < 2.5


def test_excess_covers_every_authority_with_sane_intervals(quick_fit: csc_bayes.Fit) -> None:
    table = excess(quick_fit, year=QUICK_YEARS[1])
    assert 145 <= len(table) <= 155
    assert table["la_code"].is_unique
    lo, mid, hi = (table[f"excess_ratio_{k}"] for k in ("lower", "median", "upper"))
    assert (lo > 0).all() and (lo <= mid).all() and (mid <= hi).all()
    assert mid.between(0.2, 5.0).all()  # no authority at 5x or 1/5 of its expected need
    assert table["p_excess"].between(0, 1).all()
    # the typical authority sits near its expected need, and the ranking spreads both ways
    assert 0.8 < mid.median() < 1.25
    assert (table["p_excess"] > 0.9).any() and (table["p_excess"] < 0.1).any()


def test_predict_leeds_next_year_by_name_ons_and_dfe_number(quick_fit: csc_bayes.Fit) -> None:
    next_year = QUICK_YEARS[1] + 1
    rows = [predict(quick_fit, authority=a, year=next_year, seed=1) for a in LEEDS]
    for row in rows:
        assert len(row) == 1
        pd.testing.assert_frame_equal(row, rows[0])
    r = rows[0].iloc[0]
    assert (r["la_name"], r["ons_code"], r["la_code"]) == ("Leeds", "E08000035", "383")
    assert r["kind"] == "forecast" and r["year"] == next_year
    assert np.isnan(r["observed"])  # not yet published
    assert 0 < r["predicted_lower"] < r["predicted_median"] < r["predicted_upper"]
    last = predict(quick_fit, authority="Leeds", year=QUICK_YEARS[1]).iloc[0]
    assert 0.5 < r["predicted_median"] / last["observed"] < 2.0


@pytest.mark.slow
def test_default_cpp_need_fit_passes_the_gate(panel: pd.DataFrame, tmp_path: Path) -> None:
    fit = csc_bayes.fit("cpp_need", data=panel, out=tmp_path, progress=False)
    gate = GateResult.from_dict(fit.metadata["diagnostics"])
    assert gate.passed, str(gate)
