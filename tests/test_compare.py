"""Model comparison: the new-group predictive density, folds, and LOO + grouped K-fold on fits."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import special, stats

from csc_bayes.compare import authority_folds, compare_fits, heldout_lpd
from csc_bayes.fits import Fit, list_runs
from csc_bayes.spec import ModelSpec, find_spec


def _posterior_fit(
    n_draws: int, *, sigma_la: float, phi: float | None, beta: float, sigma_region: float = 0.0
) -> Fit:
    """A Fit whose draws are all the same point, for exact predictive densities: CPP on IDACI,
    one fitted authority (800) in London, 2023-2024."""
    ones = np.ones((1, n_draws))
    post = {
        "la_effect": (("chain", "draw", "la"), np.zeros((1, n_draws, 1))),
        "intercept": (("chain", "draw"), np.log(0.004) * ones),
        "beta": (("chain", "draw", "covariate"), beta * np.ones((1, n_draws, 1))),
        "sigma_la": (("chain", "draw"), sigma_la * ones),
        "sigma_region": (("chain", "draw"), sigma_region * ones),
        "region_effect": (("chain", "draw", "region"), np.full((1, n_draws, 1), 0.1)),
        "year_effect": (("chain", "draw", "year"), np.tile([-0.05, 0.05], (1, n_draws, 1))),
    }
    if phi is not None:
        post["phi"] = (("chain", "draw"), phi * ones)
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(
                post,
                coords={
                    "covariate": ["idaci"],
                    "region": ["London"],
                    "year": [2023, 2024],
                    "la": ["800"],
                },
            ),
            "constant_data": xr.Dataset(
                {"covariate_mean": ("covariate", [0.2]), "covariate_sd": ("covariate", [0.05])},
                coords={"covariate": ["idaci"]},
            ),
        }
    )
    spec = ModelSpec.from_dict(
        {
            "name": "cpp_idaci",
            "outcome": "cpp",
            "family": "poisson" if phi is None else "negative_binomial",
            "years": [2023, 2024],
            "covariates": {"need": {"deprivation": ["idaci"]}},
        }
    )
    return Fit(idata=tree, spec=spec, panel=pd.DataFrame())


ROWS = pd.DataFrame(
    {
        "la_code": ["900", "900", "901"],
        "region": ["London", "London", "North East"],  # North East: a region the fit never saw
        "year": [2023, 2024, 2024],
        "population": [50_000, 51_000, 40_000],
        "idaci": [0.25, 0.25, 0.15],
        "cpp": [260, 270, 150],
    }
)


def test_new_group_density_without_la_variation_is_the_plain_likelihood():
    fit = _posterior_fit(10, sigma_la=1e-9, phi=30.0, beta=0.2)
    lpd = heldout_lpd(fit, ROWS.iloc[:2], outcome="cpp", seed=0)
    mu = 50_000 * np.exp(np.log(0.004) + 0.2 * 1.0 + 0.1 + np.array([-0.05, 0.05]))
    mu[1] *= 51_000 / 50_000
    y = np.array([260, 270])
    expected = stats.nbinom.logpmf(y, 30.0, 30.0 / (mu + 30.0)).sum()
    assert lpd["900"] == pytest.approx(expected, abs=1e-6)


def test_new_group_density_integrates_over_the_la_effect():
    """Poisson, one authority with two years: lpd = log E_u[prod_t Pois(y_t | mu_t e^u)]."""
    fit = _posterior_fit(2000, sigma_la=0.4, phi=None, beta=0.0)
    lpd = heldout_lpd(fit, ROWS.iloc[:2], outcome="cpp", seed=1)
    mu = np.array([50_000, 51_000]) * np.exp(np.log(0.004) + 0.1 + np.array([-0.05, 0.05]))
    u = np.linspace(-2.4, 2.4, 48_001)  # +-6 SD of u ~ N(0, 0.4^2), a fine grid
    ll = stats.poisson.logpmf(np.array([260, 270])[None, :], mu[None, :] * np.exp(u)[:, None])
    log_f = ll.sum(axis=1) + stats.norm.logpdf(u, scale=0.4)
    exact = special.logsumexp(log_f) + np.log(u[1] - u[0])
    assert lpd["900"] == pytest.approx(exact, abs=0.05)


def test_unseen_region_gets_a_new_region_effect_from_sigma_region():
    tight = _posterior_fit(4000, sigma_la=1e-9, phi=None, beta=0.0, sigma_region=1e-9)
    wide = _posterior_fit(4000, sigma_la=1e-9, phi=None, beta=0.0, sigma_region=0.5)
    rows = ROWS.iloc[[0, 2]]
    lpd_tight = heldout_lpd(tight, rows, outcome="cpp", seed=0)
    lpd_wide = heldout_lpd(wide, rows, outcome="cpp", seed=0)
    assert list(lpd_tight.index) == ["900", "901"]
    assert lpd_tight["900"] == pytest.approx(lpd_wide["900"])  # London was seen: no new draw
    # North East was not seen: its effect is N(0, sigma_region), so the density changes with it
    mu = 40_000 * 0.004 * np.exp(0.05)
    assert lpd_tight["901"] == pytest.approx(stats.poisson.logpmf(150, mu), abs=1e-6)
    assert lpd_wide["901"] < lpd_tight["901"]


def test_folds_partition_authorities_evenly_and_reproducibly():
    codes = [str(c) for c in range(300, 323)]
    folds = authority_folds(codes, 5, seed=3)
    assert sorted(folds) == codes
    sizes = np.bincount(list(folds.values()))
    assert sizes.max() - sizes.min() <= 1
    assert folds == authority_folds(list(reversed(codes)), 5, seed=3)
    with pytest.raises(ValueError, match="kfold"):
        authority_folds(codes, 1, seed=0)


@pytest.mark.slow  # ~1.5 min: 12 refits; heldout_lpd has exact fast tests above
def test_loo_and_grouped_kfold_on_two_fitted_models(tmp_path):
    pytest.importorskip("csc_bayes.sampling")
    from csc_bayes.batch import DataSource
    from csc_bayes.fitting import fit

    panel = DataSource(authorities=10, first_year=2022, last_year=2024, seed=4).load()
    settings = dict(
        data=panel, out=tmp_path / "fits", draws=100, tune=100, chains=1, progress=False
    )
    need = fit(replace(find_spec("cpp_need"), years=(2022, 2024)), **settings)
    null = fit(replace(find_spec("cpp_null"), years=(2022, 2024)), **settings)

    result = compare_fits(
        [need.path, null], kfold=2, seed=1, fits_dir=tmp_path / "cv", n_workers=2, progress=False
    )
    t = result.table.set_index("model")
    assert set(t.index) == {"cpp_need", "cpp_null"}
    for col in ("elpd_loo", "se_loo", "p_loo", "elpd_kfold", "se_kfold"):
        assert np.isfinite(t[col]).all(), col
    best = result.table.iloc[0]
    assert best["elpd_kfold_diff"] == 0 and best["se_kfold_diff"] == 0
    assert (result.table["elpd_kfold_diff"] >= 0).all()
    assert result.info["n_obs_compared"] == 30 and result.info["n_authorities_compared"] == 10
    assert len(result.pointwise["kfold"]["cpp_need"]) == 10
    assert list(result.pareto_k.columns) == [
        "model",
        "la_code",
        "la_name",
        "year",
        "pareto_k",
        "threshold",
    ]
    fold_runs = {
        name: list_runs(tmp_path / "cv" / f"{name}_cv2-{i}") for name in t.index for i in (0, 1)
    }
    assert all(len(r) == 1 for r in fold_runs.values())
    # held-out prediction is harder than in-sample LOO: elpd_kfold below elpd_loo
    assert (t["elpd_kfold"] < t["elpd_loo"]).all()

    again = compare_fits(
        [need, null], kfold=2, seed=1, fits_dir=tmp_path / "cv", n_workers=1, progress=False
    )
    pd.testing.assert_frame_equal(again.table, result.table)  # fold fits reused, same numbers
    assert all(
        len(list_runs(tmp_path / "cv" / f"{n}_cv2-{i}")) == 1 for n in t.index for i in (0, 1)
    )
    folder = result.save(tmp_path / "out")
    assert (folder / "table.csv").is_file() and (folder / "compare.png").is_file()
