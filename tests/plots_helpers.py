"""A small hand-built Fit for the plot and report tests, following the posterior contract.

The panel is the package's synthetic panel; the "posterior" is the simulation's truth plus
independent Gaussian noise per draw, and the posterior predictive is drawn from the negative
binomial of the contract with those draws. It is not a real posterior: it only has the shape,
names and rough magnitudes of one, which is what plots and the report need.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from csc_bayes.fits import Fit, data_hash
from csc_bayes.simulate import simulate_panel
from csc_bayes.spec import find_spec


def gate(passed: bool) -> dict[str, Any]:
    """A diagnostics record as ``GateResult.to_dict`` writes it."""
    failures = (
        []
        if passed
        else [
            {
                "reason": "RHAT",
                "threshold": 1.01,
                "offenders": [{"name": "sigma_la", "value": 1.08}],
                "message": "RHAT: rank-normalised split R-hat >= 1.01 for 1 (worst first: "
                "sigma_la=1.08)",
            }
        ]
    )
    return {
        "passed": passed,
        "failures": failures,
        "var_names": ["intercept", "beta", "sigma_la"],
        "n_chains": 2,
        "n_draws": 50,
        "thresholds": {},
    }


def make_fit(
    *,
    n_la: int | None = 40,
    first_year: int = 2020,
    last_year: int = 2023,
    n_draws: int = 100,
    seed: int = 0,
    passed: bool = True,
    synthetic: bool = True,
) -> Fit:
    """A Fit of the ``cpp_need`` spec on ``n_la`` synthetic authorities (None: all of them)."""
    rng = np.random.default_rng(seed)
    sim = simulate_panel(first_year=first_year, last_year=last_year, seed=seed)
    panel = sim.panel
    if n_la is not None:
        codes = sorted(panel["la_code"].unique())
        keep = codes[:: max(1, len(codes) // n_la)][:n_la]  # spread over the regions
        panel = panel[panel["la_code"].isin(keep)].reset_index(drop=True)
    spec = dataclasses.replace(find_spec("cpp_need"), years=(first_year, last_year))
    truth = sim.truth["cpp"]
    fitted = panel[(panel["year"] <= last_year) & panel["cpp"].notna()].reset_index(drop=True)

    covariates = list(spec.covariates)
    raw = fitted[covariates].to_numpy(dtype=float)
    mean, sd = raw.mean(axis=0), raw.std(axis=0, ddof=1)
    X = (raw - mean) / sd
    slope = np.array([truth["beta_per_unit"][c] for c in covariates])
    intercept = truth["intercept"] + float(
        slope @ (mean - np.array([truth["centre"][c] for c in covariates]))
    )
    la_codes = sorted(fitted["la_code"].unique())
    who = fitted.drop_duplicates("la_code").set_index("la_code").loc[la_codes]
    regions = sorted(panel["region"].unique())
    years = list(range(first_year, last_year + 1))
    la_idx = fitted["la_code"].map({c: i for i, c in enumerate(la_codes)}).to_numpy()
    region_idx = fitted["region"].map({r: i for i, r in enumerate(regions)}).to_numpy()
    year_idx = fitted["year"].map({y: i for i, y in enumerate(years)}).to_numpy()
    log_exposure = np.log(fitted["population"].to_numpy(dtype=float))

    def noisy(centre: Any, scale: float) -> np.ndarray:
        centre = np.asarray(centre, dtype=float)
        return centre + rng.normal(0, scale, (n_draws, *centre.shape))

    post = {
        "intercept": noisy(intercept, 0.03),
        "beta": noisy(slope * sd, 0.03),
        "la_effect": noisy(truth["la_effect"].loc[la_codes].to_numpy(), 0.06),
        "region_effect": noisy(truth["region_effect"].loc[regions].to_numpy(), 0.04),
        "year_effect": noisy(truth["year_effect"].loc[years].to_numpy(), 0.02),
        "sigma_la": np.abs(noisy(truth["sigma_la"], 0.02)),
        "sigma_region": np.abs(noisy(truth["sigma_region"], 0.02)),
        "sigma_year": np.abs(noisy(truth["sigma_year"], 0.01)),
        "phi": np.abs(noisy(truth["phi"], 4.0)),
    }
    post["beta_per_unit"] = post["beta"] / sd[None, :]
    eta = (
        log_exposure[None, :]
        + post["intercept"][:, None]
        + post["beta"] @ X.T
        + post["la_effect"][:, la_idx]
        + post["region_effect"][:, region_idx]
        + post["year_effect"][:, year_idx]
    )
    mu, phi = np.exp(eta), post["phi"][:, None]
    y_rep = rng.poisson(rng.gamma(phi, mu / phi))
    y = fitted["cpp"].to_numpy(dtype=np.int64)
    loglik = stats.nbinom.logpmf(y[None, :], phi, phi / (phi + mu))

    chains, per_chain = 2, n_draws // 2
    dims = {"beta": ["covariate"], "beta_per_unit": ["covariate"], "la_effect": ["la"]}
    dims |= {"region_effect": ["region"], "year_effect": ["year"]}

    def chained(v: np.ndarray) -> np.ndarray:
        return v[: chains * per_chain].reshape(chains, per_chain, *v.shape[1:])

    coords = {"chain": np.arange(chains), "draw": np.arange(per_chain)}
    obs = {"obs": np.arange(len(fitted))}
    posterior = xr.Dataset(
        {k: (["chain", "draw", *dims.get(k, [])], chained(v)) for k, v in post.items()},
        coords=coords
        | {
            "la": la_codes,
            "la_name": ("la", who["la_name"].astype(str).to_list()),
            "ons_code": ("la", who["ons_code"].astype(str).to_list()),
            "la_region": ("la", who["region"].astype(str).to_list()),
            "region": regions,
            "year": years,
            "covariate": covariates,
        },
    )
    per_obs = ["chain", "draw", "obs"]
    idata = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "posterior_predictive": xr.Dataset({"y": (per_obs, chained(y_rep))}, coords | obs),
            "log_likelihood": xr.Dataset({"y": (per_obs, chained(loglik))}, coords | obs),
            "sample_stats": xr.Dataset(
                {"diverging": (["chain", "draw"], np.zeros((chains, per_chain), bool))}, coords
            ),
            "observed_data": xr.Dataset({"y": (["obs"], y)}, obs),
            "constant_data": xr.Dataset(
                {
                    "X": (["obs", "covariate"], X),
                    "covariate_mean": (["covariate"], mean),
                    "covariate_sd": (["covariate"], sd),
                    "la_idx": (["obs"], la_idx),
                    "region_idx": (["obs"], region_idx),
                    "year_idx": (["obs"], year_idx),
                    "log_exposure": (["obs"], log_exposure),
                },
                obs | {"covariate": covariates},
            ),
        }
    )
    excluded = len(panel[(panel["year"] <= last_year)]) - len(fitted)
    metadata = {
        "spec_hash": spec.canonical_hash(),
        "data_hash": data_hash(panel),
        "sampler_hash": spec.sampler_hash(),
        "model": spec.name,
        "formula": spec.formula,
        "created_at": "2025-01-01T00:00:00+00:00",
        "synthetic": synthetic,
        "backend": "hand-built",
        "sampler": {"backend": "hand-built", "draws": per_chain, "chains": chains, "seed": seed},
        "diagnostics": gate(passed),
        "n_obs": len(fitted),
        "n_authorities": len(la_codes),
        "years_fitted": years,
        "excluded": {
            "n_rows": excluded,
            "by_reason": {"suppressed": excluded} if excluded else {},
            "rows": [],
        },
    }
    return Fit(idata=idata, spec=spec, panel=panel, metadata=metadata)


def excess_like_table(n: int = 12, *, seed: int = 1) -> pd.DataFrame:
    """A hand-made table with the columns of ``excess()`` that the caterpillar reads."""
    rng = np.random.default_rng(seed)
    regions = ["London", "North East", "South West"]
    ratio = np.exp(rng.normal(0, 0.3, n))
    half = np.exp(rng.uniform(0.05, 0.3, n))
    return pd.DataFrame(
        {
            "la_code": [str(800 + i) for i in range(n)],
            "ons_code": [f"E0600{i:04d}" for i in range(n)],
            "la_name": [f"Authority {chr(65 + i)}" for i in range(n)],
            "region": [regions[i % 3] for i in range(n)],
            "year": 2023,
            "excess_ratio_median": ratio,
            "excess_ratio_lower50": ratio / np.sqrt(half),
            "excess_ratio_upper50": ratio * np.sqrt(half),
            "excess_ratio_lower": ratio / half,
            "excess_ratio_upper": ratio * half,
            "p_excess": rng.uniform(0, 1, n),
        }
    )
