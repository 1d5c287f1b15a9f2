"""A small hand-built Fit that follows the posterior contract, for persistence tests.

Numbers are random; only structure matters here (names, dims, coords, dtypes incl. strings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from csc_bayes.fits import Fit
from csc_bayes.simulate import simulate_panel
from csc_bayes.spec import find_spec


def tiny_fit(seed: int = 0, *, chains: int = 4, draws: int = 50) -> Fit:
    """A Fit of the shipped cpp_need spec with random draws over 12 synthetic authorities."""
    rng = np.random.default_rng(seed)
    spec = find_spec("cpp_need")
    panel = simulate_panel(seed=seed).panel
    las = panel.drop_duplicates("la_code").head(12)
    fitted = panel[panel["la_code"].isin(las["la_code"]) & panel["cpp"].notna()]
    n_obs, covs = len(fitted), list(spec.covariates)
    regions = sorted(las["region"].unique())
    years = sorted(fitted["year"].unique())
    sample = {"chain": np.arange(chains), "draw": np.arange(draws)}
    la_coords = {
        "la": las["la_code"].to_numpy(str),
        "la_name": ("la", las["la_name"].to_numpy(str)),
        "ons_code": ("la", las["ons_code"].to_numpy(str)),
        "la_region": ("la", las["region"].to_numpy(str)),
    }

    def draws_of(*shape: int) -> np.ndarray:
        return rng.normal(size=(chains, draws, *shape))

    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw"), draws_of()),
            "beta": (("chain", "draw", "covariate"), draws_of(len(covs))),
            "sigma_la": (("chain", "draw"), np.abs(draws_of())),
            "la_effect": (("chain", "draw", "la"), draws_of(len(las))),
            "region_effect": (("chain", "draw", "region"), draws_of(len(regions))),
            "year_effect": (("chain", "draw", "year"), draws_of(len(years))),
            "phi": (("chain", "draw"), np.exp(draws_of())),
        },
        coords={**sample, **la_coords, "covariate": covs, "region": regions, "year": years},
    )
    y = fitted["cpp"].to_numpy("int64")
    obs = {"obs": np.arange(n_obs)}
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "posterior_predictive": xr.Dataset(
                {"y": (("chain", "draw", "obs"), rng.poisson(50, (chains, draws, n_obs)))},
                coords={**sample, **obs},
            ),
            "log_likelihood": xr.Dataset(
                {"y": (("chain", "draw", "obs"), draws_of(n_obs))}, coords={**sample, **obs}
            ),
            "sample_stats": xr.Dataset(
                {"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))},
                coords=sample,
            ),
            "observed_data": xr.Dataset({"y": (("obs",), y)}, coords=obs),
            "constant_data": xr.Dataset(
                {
                    "X": (("obs", "covariate"), rng.normal(size=(n_obs, len(covs)))),
                    "log_exposure": (("obs",), np.log(fitted["population"].to_numpy(float))),
                    "la_idx": (("obs",), pd.Index(las["la_code"]).get_indexer(fitted["la_code"])),
                    "region_idx": (("obs",), pd.Index(regions).get_indexer(fitted["region"])),
                    "year_idx": (("obs",), pd.Index(years).get_indexer(fitted["year"])),
                },
                coords={**obs, "covariate": covs},
            ),
        }
    )
    return Fit(
        idata=tree,
        spec=spec,
        panel=panel,
        metadata={
            "spec_hash": spec.canonical_hash(),
            "data_hash": "d" * 64,
            "sampler_hash": spec.sampler_hash(),
            "synthetic": True,
        },
    )


def tree_digest(tree: xr.DataTree) -> dict[str, str]:
    """sha256 of every variable and coordinate (values, dtype, dims) of every group."""
    import hashlib

    out = {}
    for path, node in tree.subtree_with_keys:
        ds = node.to_dataset()
        for name, var in {**ds.coords, **ds.data_vars}.items():
            values = np.asarray(var.values)
            digest = hashlib.sha256()
            digest.update(f"{var.dims}|{values.dtype.kind}|{values.shape}".encode())
            digest.update(
                values.astype(str).tobytes() if values.dtype.kind in "OUS" else values.tobytes()
            )
            out[f"{path}/{name}"] = digest.hexdigest()
    return out
