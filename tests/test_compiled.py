"""The compiled path: PyMC's log density with the outcome and row weights as inputs, and the
K-fold and SBC workflows that sample it once compiled (docs/scale.md)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from csc_bayes.errors import CscBayesError
from csc_bayes.sbc import sbc_specs, sbc_template
from csc_bayes.spec import find_spec


@pytest.fixture(scope="module")
def frozen():
    """cpp_need with priors frozen on a 6-authority x 3-year template (so that a model built on
    other counts has the same priors), the template, and the built model compiled."""
    from csc_bayes.compiled import compile_model
    from csc_bayes.model import build_model

    template = sbc_template(n_authorities=6, years=(2022, 2024), seed=2)
    spec, _ = sbc_specs(find_spec("cpp_need"), template)
    built = build_model(spec, template)
    return spec, template, built, compile_model(built)


def _random_points(built, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    start = built.model.initial_point()
    return [
        {k: v + rng.uniform(-1.5, 1.5, np.shape(v)) for k, v in start.items()} for _ in range(n)
    ]


def test_compiled_log_density_is_pymcs_for_other_counts_and_weights(frozen):
    from csc_bayes.compiled import aligned_outcome
    from csc_bayes.model import build_model

    spec, template, built, compiled = frozen
    y = aligned_outcome(built, template, "cpp")
    np.testing.assert_array_equal(y, built.data["cpp"].to_numpy(dtype=np.int64))
    # other counts: PyMC's own model of a panel holding them
    other = template.copy()
    other["cpp"] = pd.array((other["cpp"].to_numpy(dtype=float) * 1.7).round(), dtype="Int64")
    other_model = build_model(spec, other).model
    y_other = aligned_outcome(built, other, "cpp")
    # weights: PyMC's log density less the pointwise log-likelihood of the rows weighted 0
    weights = np.ones(len(y))
    weights[built.data["la_code"].astype(str) == built.data["la_code"].iloc[0]] = 0.0
    fast = {"mode": "FAST_COMPILE"}  # PyTensor's Python implementations: no C compilation
    pointwise = built.model.compile_fn(
        built.model.logp(vars=[built.model["y"]], sum=False)[0],
        inputs=built.model.value_vars,
        on_unused_input="ignore",
        **fast,
    )
    logp, logp_other = built.model.compile_logp(**fast), other_model.compile_logp(**fast)
    for point in _random_points(built, 3, seed=1):
        values = [point[n] for n in compiled.value_names]
        assert compiled.logdensity(values, y) == pytest.approx(logp(point), rel=1e-10)
        assert compiled.logdensity(values, y_other) == pytest.approx(logp_other(point), rel=1e-10)
        dropped = np.sum(pointwise(point)[weights == 0])
        assert compiled.logdensity(values, y, weights) == pytest.approx(
            logp(point) - dropped, rel=1e-10
        )
        assert dropped < -1  # the weights removed something


def test_compiled_inputs_are_checked(frozen):
    from csc_bayes.compiled import aligned_outcome

    _, template, built, compiled = frozen
    values = [built.model.initial_point()[n] for n in compiled.value_names]
    with pytest.raises(CscBayesError, match="built for 18 rows"):
        compiled.logdensity(values, np.ones(17, dtype=int))
    with pytest.raises(CscBayesError, match="3 weights for 18 rows"):
        compiled.logdensity(values, np.ones(18, dtype=int), np.ones(3))
    with pytest.raises(CscBayesError, match="counts >= 0"):
        compiled.logdensity(values, -np.ones(18, dtype=int))
    gap = template.copy()
    gap["cpp"] = gap["cpp"].astype("Int64")
    gap.loc[4, "cpp"] = pd.NA
    code, year = gap.loc[4, "la_code"], gap.loc[4, "year"]
    with pytest.raises(CscBayesError, match=f"authority {code}, year {year}"):
        aligned_outcome(built, gap, "cpp")


def test_engines_are_named():
    from csc_bayes.compare import compare_fits
    from csc_bayes.errors import AnswerError
    from csc_bayes.sbc import run_sbc

    with pytest.raises(AnswerError, match="engine must be one of"):
        compare_fits([], kfold=2, engine="fast")
    with pytest.raises(ValueError, match="engine must be one of"):
        run_sbc("cpp_need", sims=2, engine="fast")


# ---------------------------------------------------------------------------- real NUTS
@pytest.mark.slow  # ~3 min: 3 refits and 3 compiled folds of a 12-authority panel
def test_compiled_kfold_agrees_with_refits_within_monte_carlo_error():
    """Per-authority held-out elpd of the two K-fold engines on a 12-authority panel.

    The engines differ only in Monte Carlo (different NUTS chains, the new-group draws) and in
    the prior centre and covariate standardisation (all rows against the fold's training
    rows), so their elpd agree to well under one unit per authority."""
    from csc_bayes.compare import authority_folds, kfold_compiled_task, kfold_task
    from csc_bayes.simulate import simulate_panel

    spec = replace(find_spec("cpp_need"), years=(2019, 2024))
    spec = spec.with_sampler(draws=500, tune=500, chains=2)
    panel = simulate_panel(seed=0).panel
    panel = panel[panel["la_code"].isin(panel["la_code"].drop_duplicates().head(12))]
    panel = panel.reset_index(drop=True)
    fitted = panel[panel["cpp"].notna() & panel["year"].between(*spec.years)]
    common = fitted[["la_code", "year"]].astype({"la_code": str})
    folds = authority_folds(sorted(common["la_code"].unique()), 3, seed=0)
    new = kfold_compiled_task(
        spec=spec, panel=panel, folds=folds, fold_ids=[0, 1, 2], common=common, seed=0
    )["elpd"]
    old: dict[str, float] = {}
    for fold in range(3):
        out = panel["la_code"].astype(str).map(folds) == fold
        old.update(
            kfold_task(
                spec=replace(spec, name=f"cv-{fold}"),
                train=panel[~out].reset_index(drop=True),
                heldout=panel[out].merge(common, on=["la_code", "year"]),
                fits_dir=None,
                seed=fold,
            )
        )
    diff = pd.Series(new) - pd.Series(old)
    assert len(diff) == 12 and diff.notna().all()
    assert diff.abs().max() < 1.0, diff
    assert abs(diff.sum()) < 2.0, diff.sum()


@pytest.mark.slow  # ~4 min: 60 + 20 compiled replicates of a 12-authority panel
def test_compiled_sbc_is_uniform_resumes_and_rejects_a_wrong_prior(tmp_path):
    from csc_bayes.sbc import run_sbc

    small = dict(
        seed=7,
        n_authorities=12,
        years=(2021, 2024),
        draws=100,
        tune=150,
        chains=2,
        progress=False,
        engine="compiled",
        n_workers=1,
    )
    good = run_sbc("cpp_need", sims=60, fits_dir=tmp_path / "good", **small)
    assert good.info["sims_done"] == 60 and not good.info["failed"]
    assert good.passed, good.tests
    memory = pd.DataFrame(good.info["replicates"])
    assert len(memory) == 60 and (memory["peak_rss_mib"] > 0).all()
    again = run_sbc("cpp_need", sims=60, fits_dir=tmp_path / "good", saved_only=True, **small)
    pd.testing.assert_frame_equal(again.ranks, good.ranks)

    wrong = run_sbc("cpp_need", sims=20, fits_dir=tmp_path / "wrong", fit_prior_scale=0.1, **small)
    assert not wrong.passed
    failing = set(wrong.tests.loc[~wrong.tests["passed"], "quantity"])
    assert failing & {"sigma_la", "sigma_region", "sigma_year", "intercept"}
