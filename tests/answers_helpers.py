"""Hand-built fits with a known truth, for the tests of variance.py, excess.py and predict.py.

A synthetic panel is drawn from the model itself (truth drawn from the prior), and the
posterior is the *exact* posterior of a conjugate stand-in: every coefficient and random
effect gets a Gaussian prior and one independent Gaussian pseudo-measurement of its true value,
so its posterior is Gaussian with known mean and SD; hyperparameters (sigma_*, phi) are known
(all draws equal the truth). Because the truth is drawn from the prior and the posterior is
exact, the central interval of ANY function of the parameters covers that function of the
truth with probability ci_prob on average over seeds: the calibration property the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from csc_bayes.data.schema import COVARIATES, OUTCOMES, REGIONS, missing_column
from csc_bayes.fits import Fit
from csc_bayes.spec import ModelSpec

#: a few real names (with punctuation) so that name resolution is tested on realistic strings
REAL_NAMES = [
    ("810", "E06000010", "Kingston upon Hull, City of", "Yorkshire and The Humber"),
    ("342", "E08000013", "St. Helens", "North West"),
    ("383", "E08000035", "Leeds", "Yorkshire and The Humber"),
    ("202", "E09000007", "Camden", "London"),
]
GROUPS = {
    "deprivation": ("idaci",),
    "ethnicity": ("ethnic_minority_share",),
    "spending": ("spend_per_child",),
}


def world_spec(
    *,
    family: str = "negative_binomial",
    years: tuple[int, ...] = (2020, 2023),
    slope: bool = False,
    covariates: bool = True,
) -> ModelSpec:
    """The real spec of a hand-built fit: CLA on deprivation and ethnicity (need) and spending."""
    blocks = {
        "need": {"deprivation": ["idaci"], "ethnicity": ["ethnic_minority_share"]},
        "spending": {"spending": ["spend_per_child"]},
    }
    d: dict[str, Any] = {
        "name": "hand_built",
        "outcome": "cla",
        "family": family,
        "years": [min(years), max(years)],
        "covariates": blocks if covariates else {},
    }
    if slope:
        d["random_slope"] = "idaci"
    return ModelSpec.from_dict(d, source="<hand-built>")


@dataclass
class World:
    """A hand-built fit, its null twin's truth, and the true parameter values."""

    fit: Fit
    truth: dict[str, Any]
    panel: pd.DataFrame
    next_year: int


def _conjugate(
    rng: np.random.Generator,
    truth: np.ndarray,
    prior_mean: float,
    prior_sd: float,
    noise: float,
    n_draws: int,
) -> np.ndarray:
    """Exact posterior draws (n_draws, *truth.shape) for theta ~ N(m, s0), d = theta + N(0, e)."""
    truth = np.asarray(truth, dtype=float)
    d = truth + rng.normal(0, noise, truth.shape)
    post_var = 1 / (1 / prior_sd**2 + 1 / noise**2)
    post_mean = post_var * (prior_mean / prior_sd**2 + d / noise**2)
    return post_mean + np.sqrt(post_var) * rng.normal(size=(n_draws, *truth.shape))


def _authorities(n_la: int) -> pd.DataFrame:
    rows = list(REAL_NAMES)
    j = 0
    while len(rows) < n_la:
        region = REGIONS[j % len(REGIONS)]
        rows.append((str(850 + j), f"E06{j + 100:06d}", f"Synthetown {j}", region))
        j += 1
    return pd.DataFrame(rows[:n_la], columns=["la_code", "ons_code", "la_name", "region"])


def make_world(
    seed: int = 0,
    *,
    n_la: int = 40,
    years: tuple[int, ...] = (2020, 2021, 2022, 2023),
    family: str = "negative_binomial",
    n_draws: int = 400,
    slope: bool = False,
    extra_authority: bool = False,
    sigma_la: float = 0.3,
) -> World:
    """A synthetic panel with the next reporting year, and an exact conjugate posterior.

    ``extra_authority`` adds one authority to the panel that is not in the fit (a new group).
    """
    rng = np.random.default_rng(seed)
    las = _authorities(n_la + (1 if extra_authority else 0))
    next_year = max(years) + 1
    all_years = (*years, next_year)

    # covariates: ethnicity correlates with deprivation and with London
    london = (las["region"] == "London").to_numpy()
    dep = rng.normal(0, 1, len(las))
    eth = 0.5 * dep + 1.0 * london + rng.normal(0, 0.7, len(las))
    spend = -0.3 * dep + rng.normal(0, 1, len(las))
    pop0 = rng.uniform(2e4, 2.5e5, len(las))
    rows = []
    for t, year in enumerate(all_years):
        for j, la in las.iterrows():
            rows.append(
                {
                    **la.to_dict(),
                    "year": year,
                    "population": round(pop0[j] * (1 + 0.01 * t)),
                    "idaci": 0.18 + 0.06 * dep[j] + rng.normal(0, 0.003),
                    "ethnic_minority_share": np.clip(0.25 + 0.12 * eth[j], 0.01, 0.95)
                    + rng.normal(0, 0.003),
                    "spend_per_child": 900 + 150 * spend[j] + rng.normal(0, 20),
                    "imd": 20 + 8 * dep[j],
                }
            )
    panel = pd.DataFrame(rows)

    fitted = panel[panel["year"].isin(years) & panel["la_code"].isin(las["la_code"][:n_la])]
    fitted = fitted.reset_index(drop=True)
    covariates = [c for members in GROUPS.values() for c in members]
    mean = fitted[covariates].mean().to_numpy()
    sd = fitted[covariates].std().to_numpy()
    X = (fitted[covariates].to_numpy() - mean) / sd
    la_codes = list(las["la_code"][:n_la])
    regions = list(REGIONS)
    la_idx = fitted["la_code"].map({c: i for i, c in enumerate(la_codes)}).to_numpy()
    region_idx = fitted["region"].map({r: i for i, r in enumerate(regions)}).to_numpy()
    year_idx = fitted["year"].map({y: i for i, y in enumerate(years)}).to_numpy()
    log_exposure = np.log(fitted["population"].to_numpy(dtype=float))

    truth: dict[str, Any] = {
        "intercept": np.log(70 / 1e4) + rng.normal(0, 0.2),
        "beta": rng.normal(0, 0.3, len(covariates)),
        "sigma_la": sigma_la,
        "sigma_region": 0.15,
        "sigma_year": 0.06,
        "phi": 40.0,
    }
    truth["la_effect"] = rng.normal(0, truth["sigma_la"], n_la)
    truth["region_effect"] = rng.normal(0, truth["sigma_region"], len(regions))
    truth["year_effect"] = rng.normal(0, truth["sigma_year"], len(years))
    truth["next_year_effect"] = rng.normal(0, truth["sigma_year"])
    truth["new_la_effect"] = rng.normal(0, truth["sigma_la"])
    if slope:
        truth["sigma_la_slope"] = 0.1
        truth["la_slope"] = rng.normal(0, truth["sigma_la_slope"], n_la)
    eta = (
        log_exposure
        + truth["intercept"]
        + X @ truth["beta"]
        + truth["la_effect"][la_idx]
        + truth["region_effect"][region_idx]
        + truth["year_effect"][year_idx]
    )
    if slope:
        eta = eta + truth["la_slope"][la_idx] * X[:, 0]
    truth["eta"] = eta
    mu = np.exp(eta)
    if family == "negative_binomial":
        y = rng.poisson(rng.gamma(truth["phi"], mu / truth["phi"]))
    else:
        y = rng.poisson(mu)
    truth["y"] = y

    # the posterior
    S = n_draws
    post: dict[str, np.ndarray] = {
        "intercept": _conjugate(rng, truth["intercept"], np.log(70 / 1e4), 0.2, 0.05, S),
        "beta": _conjugate(rng, truth["beta"], 0.0, 0.3, 0.05, S),
        "la_effect": _conjugate(rng, truth["la_effect"], 0.0, truth["sigma_la"], 0.08, S),
        "region_effect": _conjugate(
            rng, truth["region_effect"], 0.0, truth["sigma_region"], 0.06, S
        ),
        "year_effect": _conjugate(rng, truth["year_effect"], 0.0, truth["sigma_year"], 0.02, S),
    }
    for name in ("sigma_la", "sigma_region", "sigma_year"):
        post[name] = np.full(S, truth[name])
    post["beta_per_unit"] = post["beta"] / sd[None, :]
    if family == "negative_binomial":
        post["phi"] = np.full(S, truth["phi"])
    if slope:
        post["la_slope"] = _conjugate(rng, truth["la_slope"], 0.0, 0.1, 0.05, S)
        post["sigma_la_slope"] = np.full(S, truth["sigma_la_slope"])

    dims = {
        "beta": ["covariate"],
        "beta_per_unit": ["covariate"],
        "la_effect": ["la"],
        "la_slope": ["la"],
        "region_effect": ["region"],
        "year_effect": ["year"],
    }
    chains = 2
    posterior = xr.Dataset(
        {
            name: (
                ["chain", "draw", *dims.get(name, [])],
                v.reshape(chains, S // chains, *v.shape[1:]),
            )
            for name, v in post.items()
        },
        coords={
            "chain": np.arange(chains),
            "draw": np.arange(S // chains),
            "la": la_codes,
            "la_name": ("la", list(las["la_name"][:n_la])),
            "ons_code": ("la", list(las["ons_code"][:n_la])),
            "la_region": ("la", list(las["region"][:n_la])),
            "region": regions,
            "year": list(years),
            "covariate": covariates,
        },
    )
    obs = np.arange(len(fitted))
    constant_data = xr.Dataset(
        {
            "X": (["obs", "covariate"], X),
            "covariate_mean": (["covariate"], mean),
            "covariate_sd": (["covariate"], sd),
            "la_idx": (["obs"], la_idx),
            "region_idx": (["obs"], region_idx),
            "year_idx": (["obs"], year_idx),
            "log_exposure": (["obs"], log_exposure),
        },
        coords={"obs": obs, "covariate": covariates},
    )
    observed = xr.Dataset({"y": (["obs"], y)}, coords={"obs": obs})
    idata = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "constant_data": constant_data,
            "observed_data": observed,
            "sample_stats": xr.Dataset(
                {"diverging": (["chain", "draw"], np.zeros((chains, S // chains), bool))}
            ),
        }
    )

    # the panel as the fit carries it: outcomes for fitted years, not_yet_published after
    panel = panel.copy()
    panel["population_missing"] = pd.NA
    for col in COVARIATES:
        panel[missing_column(col)] = pd.NA
    key = fitted.set_index(["la_code", "year"]).index
    y_by_key = dict(zip(key, y, strict=True))
    for outcome in OUTCOMES:
        panel[outcome] = pd.array([pd.NA] * len(panel), dtype="Int64")
        panel[missing_column(outcome)] = "not_yet_published"
    for i, (code, year) in enumerate(zip(panel["la_code"], panel["year"], strict=True)):
        if (code, year) in y_by_key:
            panel.loc[i, "cla"] = y_by_key[(code, year)]
            panel.loc[i, "cla_missing"] = pd.NA
        elif year != next_year:
            panel.loc[i, "cla_missing"] = "not_available"
    # the truth for the next reporting year (fitted authorities): a new common year shock
    nxt = panel[(panel["year"] == next_year) & panel["la_code"].isin(la_codes)]
    nxt = nxt.set_index("la_code").loc[la_codes]
    X_next = (nxt[covariates].to_numpy(dtype=float) - mean) / sd
    eta_next = (
        np.log(nxt["population"].to_numpy(dtype=float))
        + truth["intercept"]
        + X_next @ truth["beta"]
        + truth["la_effect"]
        + truth["region_effect"][[regions.index(r) for r in nxt["region"]]]
        + truth["next_year_effect"]
    )
    if slope:
        eta_next = eta_next + truth["la_slope"] * X_next[:, 0]
    mu_next = np.exp(eta_next)
    if family == "negative_binomial":
        truth["y_next"] = rng.poisson(rng.gamma(truth["phi"], mu_next / truth["phi"]))
    else:
        truth["y_next"] = rng.poisson(mu_next)
    spec = world_spec(family=family, years=tuple(years), slope=slope)
    truth.update(
        la_codes=la_codes,
        la_idx=la_idx,
        region_idx=region_idx,
        year_idx=year_idx,
        X=X,
        log_exposure=log_exposure,
        covariate_mean=mean,
        covariate_sd=sd,
        fitted=fitted,
        las=las,
    )
    return World(
        fit=Fit(idata=idata, spec=spec, panel=panel), truth=truth, panel=panel, next_year=next_year
    )


def null_twin(world: World, *, seed: int = 1, n_draws: int = 400) -> tuple[Fit, dict[str, Any]]:
    """A random-effects-only fit of the same data whose true LA effects absorb the covariates.

    True null la_effect_j = la_effect_j + c_j - mean_j(c_j), where c_j is the mean over LA j's
    fitted rows of X @ beta; region and year effects are unchanged.
    """
    rng = np.random.default_rng(seed)
    t = world.truth
    n_la = len(t["la_codes"])
    cov_term = t["X"] @ t["beta"]
    c = np.bincount(t["la_idx"], weights=cov_term, minlength=n_la) / np.bincount(
        t["la_idx"], minlength=n_la
    )
    null_la = t["la_effect"] + c - c.mean()
    sigma = float(np.std(null_la, ddof=1))
    post = world.fit.idata["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], n_draws // post.sizes["chain"]
    la_draws = _conjugate(rng, null_la, 0.0, sigma, 0.08, n_draws)
    new = post.drop_vars(["beta", "beta_per_unit"]).isel(draw=slice(0, draws))
    new = new.drop_dims("covariate")
    new["la_effect"] = (["chain", "draw", "la"], la_draws.reshape(chains, draws, n_la))
    new["sigma_la"] = (["chain", "draw"], np.full((chains, draws), sigma))
    const = (
        world.fit.idata["constant_data"]
        .to_dataset()
        .drop_vars(["X", "covariate_mean", "covariate_sd"])
    )
    const = const.drop_dims("covariate", errors="ignore")
    idata = xr.DataTree.from_dict(
        {
            "posterior": new,
            "constant_data": const,
            "observed_data": world.fit.idata["observed_data"].to_dataset(),
        }
    )
    spec = world_spec(family=world.fit.spec.family, years=world.fit.spec.years, covariates=False)
    truth = {k: t[k] for k in ("intercept", "region_effect", "year_effect")}
    return Fit(idata=idata, spec=spec, panel=world.panel), {**truth, "la_effect": null_la}


def point_fit(fit: Fit, values: dict[str, Any]) -> Fit:
    """A one-draw copy of ``fit`` whose posterior is exactly ``values`` (e.g. the truth).

    Any answer computed from it is that answer's true value: the reference the coverage
    tests compare intervals with.
    """
    post = fit.idata["posterior"].to_dataset().isel(chain=[0], draw=[0])
    for name in list(post.data_vars):
        if name in values:
            arr = np.asarray(values[name], dtype=float)
            post[name] = (post[name].dims, arr.reshape(post[name].shape))
    groups = {k: fit.idata[k].to_dataset() for k in fit.idata.children if k != "posterior"}
    idata = xr.DataTree.from_dict({"posterior": post, **groups})
    return Fit(idata=idata, spec=fit.spec, panel=fit.panel)


def coverage(lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> float:
    """Share of intervals [lower, upper] that contain the truth."""
    lower, upper, truth = (np.asarray(a, dtype=float) for a in (lower, upper, truth))
    return float(np.mean((lower <= truth) & (truth <= upper)))


def answers_app(monkeypatch: Any, fits: dict[str, Fit]) -> Any:
    """A ``csc-bayes`` app with only the answer commands, loading ``fits`` by folder name."""
    import typer

    import csc_bayes.fits
    from csc_bayes.cli.answers import register

    monkeypatch.setattr(csc_bayes.fits, "load_fit", lambda path: fits[str(path)])
    monkeypatch.delattr(csc_bayes.fits, "find_null_fit", raising=False)
    app = typer.Typer()
    register(app)
    return app


def real_fit_world(seed: int, *, model: str = "cpp_need_spending", per_region: int = 4) -> Any:
    """A real (small) fit of a simulated panel, and the simulation's truth for its outcome.

    Returns (fit, truth, panel, truth_values) where truth_values maps posterior-contract names
    to their true values on the fit's own scale (intercept at the fit's covariate means, beta
    per SD of the fitted covariates), ready for :func:`point_fit`.
    """
    import dataclasses

    import csc_bayes
    from csc_bayes.simulate import default_authorities, simulate_panel
    from csc_bayes.spec import find_spec

    las = default_authorities(2023).groupby("region").head(per_region).reset_index(drop=True)
    sim = simulate_panel(first_year=2019, last_year=2023, seed=seed, authorities=las)
    spec = dataclasses.replace(find_spec(model), years=(2019, 2023))
    fit = csc_bayes.fit(
        spec, data=sim.panel, out=None, draws=300, tune=300, chains=2, seed=seed, progress=False
    )
    truth = sim.truth[spec.outcome]
    post = fit.idata["posterior"]
    covs = [str(c) for c in post["covariate"].values]
    mean = fit.idata["constant_data"]["covariate_mean"].values
    sd = fit.idata["constant_data"]["covariate_sd"].values
    slopes = np.array([truth["beta_per_unit"][c] for c in covs])
    left_out = [c for c, b in truth["beta_per_unit"].items() if b != 0 and c not in covs]
    if left_out:
        raise ValueError(f"{model} leaves out covariates with a true effect: {left_out}")
    shift = sum(
        truth["beta_per_unit"][c] * (m - truth["centre"][c])
        for c, m in zip(covs, mean, strict=True)
    )
    values = {
        "intercept": truth["intercept"] + shift,
        "beta": slopes * sd,
        "la_effect": truth["la_effect"].reindex([str(v) for v in post["la"].values]).to_numpy(),
        "region_effect": truth["region_effect"].reindex(list(post["region"].values)).to_numpy(),
        "year_effect": truth["year_effect"].reindex([int(y) for y in post["year"].values]),
    }
    values["year_effect"] = values["year_effect"].to_numpy()
    return fit, truth, sim.panel, values
