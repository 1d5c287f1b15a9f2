"""What a user would otherwise write: bambi's negative binomial model of the same CPP rows.

    cpp ~ idaci + ethnic_minority_share + offset(log(population))
          + (1|la_code) + (1|region) + (1|year),   family = "negativebinomial"

fitted to exactly the rows the package's ``cpp_need`` fits (:func:`bambi_frame`: the spec's
years, rows with a missing count, population or covariate left out), with both covariates
standardised over those rows, ``z = (x - mean) / sd`` (population SD, as the package does).
Everything else is bambi's default: its automatic priors, its (non-centred) group-specific
effects, centred predictors, and ``Model.fit()``'s defaults apart from draws, tune, chains and the
seed. :func:`fit_bambi` picks the NUTS implementation through bambi's own ``inference_method``:
``"pymc"`` (bambi's default), ``"numpyro"`` or ``"nutpie"`` (each through
``pm.sample(nuts_sampler=...)`` on bambi's PyMC model).

``benchmarks/run_benchmark.py`` runs these as its ``bambi_*`` / ``nutpie_bambi`` configurations.
bambi is not a csc_bayes dependency (it is pyproject's ``bench`` extra), so this module imports
neither bambi nor csc_bayes at the top: the data preparation runs in the package's Python, the fit
in a Python that has bambi.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FORMULA = (
    "cpp ~ idaci + ethnic_minority_share + offset(log(population))"
    " + (1|la_code) + (1|region) + (1|year)"
)
COVARIATES = ("idaci", "ethnic_minority_share")
#: the package's posterior contract terms and the variables that hold them in bambi's posterior
BAMBI_TERMS: dict[str, tuple[str, ...]] = {
    "intercept": ("Intercept",),
    "beta": COVARIATES,
    "sigma_la": ("1|la_code_sigma",),
    "sigma_region": ("1|region_sigma",),
    "sigma_year": ("1|year_sigma",),
    "phi": ("alpha",),
    "la_effect": ("1|la_code",),
    "region_effect": ("1|region",),
    "year_effect": ("1|year",),
}


def bambi_frame(fitted: pd.DataFrame) -> pd.DataFrame:
    """The fitted rows as bambi's data frame, covariates standardised over these rows.

    ``fitted`` is ``csc_bayes.spec.select_rows(find_spec("cpp_need"), panel)[0]``.
    ``idaci = (idaci - mean) / sd`` and the same for ``ethnic_minority_share`` (``sd`` the
    population SD over ``fitted``); grouping columns become strings.
    """
    out = pd.DataFrame(
        {
            "cpp": fitted["cpp"].to_numpy(dtype=np.int64),
            "population": fitted["population"].to_numpy(dtype=np.float64),
        }
    )
    for cov in COVARIATES:
        x = fitted[cov].to_numpy(dtype=np.float64)
        if not np.ptp(x) > 0:
            raise ValueError(f"covariate {cov!r} is constant over the {len(x)} fitted rows")
        out[cov] = (x - x.mean()) / x.std()
    for col in ("la_code", "region", "year"):
        out[col] = fitted[col].astype(str).to_numpy(dtype=object)
    return out


def fit_bambi(
    frame: pd.DataFrame,
    *,
    inference_method: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
) -> Any:
    """Build bambi's model on ``frame`` and sample it; returns bambi's DataTree / InferenceData.

    ``model.fit(draws=, tune=, chains=, random_seed=, inference_method=, progressbar=False)``:
    every other setting (cores, target_accept 0.8, init, priors) is bambi's / PyMC's default.
    The progress bar is off so that no configuration spends time drawing one.
    """
    import bambi as bmb  # optional: only the benchmark environment has it

    model = bmb.Model(FORMULA, frame, family="negativebinomial")
    return model.fit(
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        inference_method=inference_method,
        progressbar=False,
    )
