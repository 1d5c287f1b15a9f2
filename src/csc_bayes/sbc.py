"""Simulation-based calibration (SBC) of a model specification (Talts et al. 2018).

For i = 1..N: draw theta_i from the prior, draw y_i ~ p(y | theta_i) on a small synthetic
panel, fit the model to y_i, and take the rank of theta_i among L thinned posterior draws,

    r_i = #{ l : theta_i^(l) < theta_i },   r_i in {0, ..., L}.

If the fitting code samples the right posterior, r_i is uniform on {0..L} for every scalar
quantity. The quantities are every hyperparameter (intercept, each beta, sigma_la, sigma_region,
sigma_year, phi), a few LA effects, and the total log-likelihood log p(y_i | theta) (a test
quantity that depends on the data, Modrák et al. 2023). Uniformity is tested per quantity with a
chi-square test on B equal-width rank bins, Bonferroni-corrected over quantities, and shown as
rank-ECDF-difference plots with 95% simultaneous bands (Säilynoja et al. 2022).

The generator is written here in numpy, independently of :mod:`csc_bayes.model`: it reads the
priors (:func:`csc_bayes.spec.resolve_priors`, frozen as explicit priors so that every replicate
is fitted with the prior it was drawn from) and the model as documented in ARCHITECTURE.md:
covariates standardised over the fitted rows (population SD), la_effect ~ N(0, sigma_la),
region and year effects from the sum-to-zero priors that ``model.py`` documents (z ~ N(0,
sigma), effect = z - mean(z), which is PyMC's ZeroSumNormal), and negative
binomial counts as a gamma-Poisson mixture (as :func:`csc_bayes.simulate.simulate_outcome`;
the log-rate is :func:`csc_bayes.simulate.true_log_rate`).
Counts are not suppressed: the fitted rows must not depend on y.

The negative control ``fit_prior_scale=0.5`` halves every prior scale in the fitted model but
not in the generator; SBC must reject it.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from csc_bayes.batch import Task, run_tasks
from csc_bayes.compare import count_log_pmf, flat_draws
from csc_bayes.errors import SpecError, TaskFailedError

#: default small SBC panel: authorities, reporting years, and reduced sampler settings
SBC_AUTHORITIES = 30
SBC_YEARS = (2019, 2024)
SBC_SAMPLER = {"draws": 200, "tune": 200, "chains": 2}
#: thinned posterior draws per replicate; ranks take L + 1 = 100 values
N_RANKS = 99
#: LA effects tracked as test quantities (the first ones in la_code order)
N_LA_EFFECTS = 3
#: family-wise level of the uniformity tests
ALPHA = 0.05
#: how replicates are fitted: csc_bayes.fit per replicate, or one compiled model per batch
SBC_ENGINES = ("fit", "compiled")


# ====================================================================== the generator
def sbc_template(
    *, n_authorities: int = SBC_AUTHORITIES, years: tuple[int, int] = SBC_YEARS, seed: int = 0
) -> pd.DataFrame:
    """A small synthetic panel (covariates and populations) to simulate outcomes on.

    ``n_authorities`` authorities are picked at random (fixed by ``seed``) from the reference
    list so that most regions appear; no forecast year.
    """
    from csc_bayes.simulate import default_authorities, simulate_panel

    las = default_authorities(years[1])
    pick = np.random.default_rng(seed).choice(len(las), size=n_authorities, replace=False)
    las = las.iloc[np.sort(pick)].reset_index(drop=True)
    return simulate_panel(
        first_year=years[0], last_year=years[1], seed=seed, authorities=las, forecast_year=False
    ).panel


def sbc_specs(
    spec: Any, template: pd.DataFrame, *, fit_prior_scale: float = 1.0
) -> tuple[Any, Any]:
    """(generator spec, fitted spec): ``spec`` on the template's years with frozen priors.

    The data-scaled default priors are resolved once on the template panel and written in as
    explicit priors. The fitted spec has every prior scale multiplied by ``fit_prior_scale``
    (1 for a calibration run; 0.5 is the negative control).
    """
    from csc_bayes.spec import resolve_priors, select_rows

    if spec.la_trend or spec.la_year is not None or spec.year_effect != "iid":
        raise SpecError(
            f"{spec.source}: SBC's independent generator covers LA, region and exchangeable "
            "year effects, covariates and a random slope; it does not simulate la_trend, "
            "la_year or random-walk year effects (remove them to calibrate the rest of the model)"
        )
    years = (int(template["year"].min()), int(template["year"].max()))
    windowed = replace(spec, years=years)
    fitted, _ = select_rows(windowed, template)
    priors = {k: v for k, v in resolve_priors(windowed, fitted).items() if k != "beta"}
    generator = replace(windowed, name=f"{spec.name}_sbc", priors=priors)
    if fit_prior_scale == 1.0:
        return generator, generator
    scaled = {k: _scale_prior(p, fit_prior_scale) for k, p in priors.items()}
    tag = f"{spec.name}_sbc_scaled{round(100 * fit_prior_scale)}"
    return generator, replace(windowed, name=tag, priors=scaled)


def _scale_prior(prior: Any, factor: float) -> Any:
    """The prior with its scale multiplied by ``factor`` (gamma / exponential: scale = 1 / rate)."""
    from csc_bayes.spec import Prior

    params = dict(prior.params)
    if prior.dist in ("normal", "student_t", "halfnormal", "lognormal"):
        params["sigma"] *= factor
    elif prior.dist == "exponential":
        params["lam"] /= factor
    elif prior.dist == "gamma":
        params["beta"] /= factor
    return Prior(prior.dist, tuple(params.items()))


def draw_from_prior(prior: Any, rng: np.random.Generator, size: int | None = None) -> Any:
    """One (or ``size``) numpy draws of a :class:`csc_bayes.spec.Prior`.

    normal(mu, sigma); student_t(nu, mu, sigma) = mu + sigma t_nu; halfnormal(sigma) = |N(0,
    sigma)|; exponential(lam) with mean 1/lam; gamma(alpha, beta) with rate beta; lognormal.
    """
    p = prior.kwargs
    match prior.dist:
        case "normal":
            return rng.normal(p["mu"], p["sigma"], size)
        case "student_t":
            return p["mu"] + p["sigma"] * rng.standard_t(p["nu"], size)
        case "halfnormal":
            return np.abs(rng.normal(0.0, p["sigma"], size))
        case "exponential":
            return rng.exponential(1.0 / p["lam"], size)
        case "gamma":
            return rng.gamma(p["alpha"], 1.0 / p["beta"], size)
        case "lognormal":
            return rng.lognormal(p["mu"], p["sigma"], size)
    raise ValueError(f"unknown prior distribution {prior.dist!r}")


def simulate_replicate(
    spec: Any, template: pd.DataFrame, *, seed: int | tuple[int, ...]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw theta from ``spec``'s (explicit) priors and y | theta on the template's rows.

    Returns the panel with ``spec.outcome`` replaced by the simulated counts and the truth:
    ``intercept``, ``beta`` (per SD, by covariate), ``sigma_*``, ``phi``, ``la_effect``,
    ``region_effect``, ``year_effect`` (Series), ``la_slope`` (if any) and ``mu`` per row.
    """
    from csc_bayes.data.schema import REGIONS, missing_column

    rng = np.random.default_rng(seed)
    rows = template[template["year"].between(*spec.years)].sort_values(["la_code", "year"])
    rows = rows.reset_index(drop=True)
    covs = list(spec.covariates)
    x = rows[covs].to_numpy(dtype=float).reshape(len(rows), len(covs))
    mean, sd = x.mean(axis=0), x.std(axis=0)
    las = np.sort(rows["la_code"].astype(str).unique())
    regions = [r for r in REGIONS if r in set(rows["region"].astype(str))]
    years = np.sort(rows["year"].unique()).astype(int)

    pri = spec.priors
    truth: dict[str, Any] = {"intercept": float(draw_from_prior(pri["intercept"], rng))}
    truth["beta"] = pd.Series(
        [float(draw_from_prior(pri[f"beta.{c}"], rng)) for c in covs], index=covs, dtype=float
    )
    truth["sigma_la"] = float(draw_from_prior(pri["sigma_la"], rng))
    truth["la_effect"] = pd.Series(rng.normal(0.0, truth["sigma_la"], len(las)), index=las)
    truth["region_effect"] = pd.Series(0.0, index=regions)
    if "region" in spec.random_effects:
        truth["sigma_region"] = float(draw_from_prior(pri["sigma_region"], rng))
        z = rng.normal(0.0, truth["sigma_region"], len(regions))
        truth["region_effect"][:] = z - z.mean()  # sum-to-zero, as model.py fits them
    truth["year_effect"] = pd.Series(0.0, index=years)
    if "year" in spec.random_effects:
        truth["sigma_year"] = float(draw_from_prior(pri["sigma_year"], rng))
        z = rng.normal(0.0, truth["sigma_year"], len(years))
        truth["year_effect"][:] = z - z.mean()  # sum-to-zero (ZeroSumNormal) year effects
    params = {
        "intercept": truth["intercept"],
        "beta_per_unit": dict(zip(covs, truth["beta"].to_numpy() / sd, strict=True)),
        "centre": dict(zip(covs, mean, strict=True)),
        "la_effect": truth["la_effect"].copy(),
        "region_effect": truth["region_effect"],
        "year_effect": truth["year_effect"],
    }
    if spec.random_slope is not None:
        k = covs.index(spec.random_slope)
        truth["sigma_la_slope"] = float(draw_from_prior(pri["sigma_la_slope"], rng))
        truth["la_slope"] = pd.Series(rng.normal(0.0, truth["sigma_la_slope"], len(las)), las)
    if spec.family == "negative_binomial":
        truth["phi"] = float(draw_from_prior(pri["phi"], rng))

    # mu = population * exp(log-rate of simulate.true_log_rate) (* exp(la_slope x_slope))
    log_mu = np.log(rows[spec.exposure].to_numpy(dtype=float)) + _log_rate(rows, params)
    if spec.random_slope is not None:
        xk = (x[:, k] - mean[k]) / sd[k]
        log_mu += truth["la_slope"].reindex(rows["la_code"].astype(str)).to_numpy() * xk
    truth["mu"] = np.exp(log_mu)
    if spec.family == "negative_binomial":  # gamma-Poisson, as simulate.simulate_outcome
        lam = rng.gamma(truth["phi"], truth["mu"] / truth["phi"])
    else:
        lam = truth["mu"]
    y = rng.poisson(lam).astype(np.int64)
    panel = rows.copy()
    panel[spec.outcome] = pd.array(y, dtype="Int64")
    panel[missing_column(spec.outcome)] = pd.array([pd.NA] * len(panel), dtype="string")
    return panel, truth


def _log_rate(rows: pd.DataFrame, params: dict[str, Any]) -> np.ndarray:
    from csc_bayes.simulate import true_log_rate

    return true_log_rate(rows, params=params).to_numpy()


def nb_loglik(y: np.ndarray, mu: np.ndarray, phi: float) -> float:
    """sum_i log NB(y_i | mu_i, phi) with Var = mu + mu^2/phi (Poisson when phi is inf)."""
    y = np.asarray(y, dtype=float)
    return float(np.sum(count_log_pmf(y, mu, None if math.isinf(phi) else phi)))


# ====================================================================== one replicate
def _thin(values: np.ndarray, n: int) -> np.ndarray:
    """``n`` evenly spaced draws of a flat (chain-major) draw vector."""
    idx = np.linspace(0, len(values) - 1, n).round().astype(int)
    return values[idx]


def replicate_ranks(idata: Any, truth: dict[str, Any], y: np.ndarray, *, n_ranks: int) -> dict:
    """Rank of each true quantity among ``n_ranks`` thinned posterior draws of a fit."""
    post = idata["posterior"]
    return draw_ranks(
        lambda name: flat_draws(post, name),
        covariates=[str(c) for c in post["covariate"].values] if "beta" in post else [],
        la_codes=[str(c) for c in post["la"].values],
        loglik=flat_draws(idata["log_likelihood"], "y").sum(axis=1),
        truth=truth,
        y=y,
        n_ranks=n_ranks,
    )


def draw_ranks(
    flat: Any,
    *,
    covariates: list[str],
    la_codes: list[str],
    loglik: np.ndarray,
    truth: dict[str, Any],
    y: np.ndarray,
    n_ranks: int,
) -> dict[str, int]:
    """Ranks of the true quantities; ``flat(name)`` gives a variable's draws (S, ...),
    chain-major, and ``loglik`` the total log-likelihood of ``y`` at each draw (S,)."""
    checks: dict[str, tuple[np.ndarray, float]] = {
        "intercept": (flat("intercept"), truth["intercept"])
    }
    if len(truth["beta"]):
        beta = flat("beta")
        for k, cov in enumerate(covariates):
            checks[f"beta[{cov}]"] = (beta[:, k], truth["beta"][cov])
    for name in ("sigma_la", "sigma_region", "sigma_year", "sigma_la_slope", "phi"):
        if name in truth:
            checks[name] = (flat(name), truth[name])
    la_effect = flat("la_effect")
    for j, code in enumerate(la_codes[:N_LA_EFFECTS]):
        checks[f"la_effect[{code}]"] = (la_effect[:, j], truth["la_effect"][code])
    checks["log_lik"] = (loglik, nb_loglik(y, truth["mu"], truth.get("phi", math.inf)))
    return {
        name: int(np.sum(_thin(draws, n_ranks) < true)) for name, (draws, true) in checks.items()
    }


def sbc_task(
    *,
    generator: Any,
    fitted: Any,
    template: pd.DataFrame,
    seed: int,
    index: int,
    sampler: dict[str, Any],
    fits_dir: str,
    n_ranks: int,
    saved_only: bool = False,
) -> dict[str, Any] | None:
    """One SBC replicate on a worker: simulate, fit (saved, so a re-run resumes), rank.

    With ``saved_only`` nothing is sampled: a replicate without a saved fit returns None.
    """
    from csc_bayes.fits import data_hash, find_reusable_run
    from csc_bayes.fitting import fit
    from csc_bayes.model import MODEL_VERSION

    panel, truth = simulate_replicate(generator, template, seed=(seed, index))
    sampler_seed = (seed * 100_003 + index) % (2**31)
    if saved_only:
        s = fitted.with_sampler(seed=sampler_seed, **sampler)
        hashes = dict(
            spec_hash=s.canonical_hash(), sampler_hash=s.sampler_hash(), model_version=MODEL_VERSION
        )
        if find_reusable_run(Path(fits_dir) / s.name, data_hash=data_hash(panel), **hashes) is None:
            return None
    result = fit(fitted, data=panel, out=fits_dir, progress=False, seed=sampler_seed, **sampler)
    _free_compiled()
    y = panel[generator.outcome].to_numpy(dtype=np.int64)
    stats_ = result.idata["sample_stats"]
    divergences = int(stats_["diverging"].sum()) if "diverging" in stats_ else 0
    return {
        "ranks": replicate_ranks(result.idata, truth, y, n_ranks=n_ranks),
        "diagnostics_passed": result.diagnostics_passed,
        "divergences": divergences,
        "run": str(result.path),
    }


def sbc_batch_task(
    *,
    generator: Any,
    fitted: Any,
    template: pd.DataFrame,
    seed: int,
    indices: list[int],
    sampler: dict[str, Any],
    fits_dir: str,
    n_ranks: int,
    saved_only: bool = False,
) -> list[dict[str, Any] | None]:
    """Several SBC replicates on one worker with the model compiled once (``engine="compiled"``).

    The fitted spec's priors are frozen (:func:`sbc_specs`) and every replicate has the
    template's rows, so one :class:`csc_bayes.compiled.CompiledModel` serves them all: only y
    changes. Each replicate's ranks, timing and memory (peak and current RSS of this process
    after it) are written to ``fits_dir/<fitted name>/compiled/simNNNN.json`` (atomically), and
    a replicate already written there is read, not refitted. With ``saved_only`` nothing is
    sampled (a replicate not written returns None).
    """
    from csc_bayes.compiled import aligned_outcome, compile_model, current_rss_mib, peak_rss_mib
    from csc_bayes.fits import write_text_atomic
    from csc_bayes.model import build_model

    folder = Path(fits_dir) / fitted.name / "compiled"
    results: list[dict[str, Any] | None] = []
    todo = []
    for i in indices:
        path = folder / f"sim{i:04d}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
        else:
            results.append(None)
            todo.append((len(results) - 1, i, path))
    if saved_only or not todo:
        return results
    first, _ = simulate_replicate(generator, template, seed=(seed, todo[0][1]))
    built = build_model(fitted, first)
    model = compile_model(built)
    covariates = list(fitted.covariates)
    la_codes = built.authorities["la_code"].astype(str).tolist()
    try:
        for slot, i, path in todo:
            tic = time.perf_counter()
            panel, truth = simulate_replicate(generator, template, seed=(seed, i))
            y = aligned_outcome(built, panel, generator.outcome)
            draws = model.sample(
                y,
                draws=sampler["draws"],
                tune=sampler["tune"],
                chains=sampler["chains"],
                seed=(seed * 100_003 + i) % (2**31),
                target_accept=fitted.sampler.target_accept,
                max_treedepth=fitted.sampler.max_treedepth,
            )
            loglik = model.pointwise_loglik(draws, y).sum(axis=-1).reshape(-1)

            def flat(name: str, post: dict = draws.posterior) -> np.ndarray:
                values = post[name]
                return values.reshape(-1, *values.shape[2:])

            ranks = draw_ranks(
                flat,
                covariates=covariates,
                la_codes=la_codes,
                loglik=loglik,
                truth=truth,
                y=y,
                n_ranks=n_ranks,
            )
            record = {
                "sim": i,
                "ranks": ranks,
                "diagnostics_passed": None,  # the gate is not run on this path
                "divergences": draws.divergences,
                "run": None,
                "seconds": time.perf_counter() - tic,
                "sampling_seconds": draws.seconds,
                "peak_rss_mib": peak_rss_mib(),
                "rss_mib": current_rss_mib(),
            }
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, json.dumps(record) + "\n")
            results[slot] = record
    finally:
        model.close()
    return results


def _free_compiled() -> None:
    """Drop the JAX programs a fit compiled: each fit builds a new model, so they are never
    reused in this process, and a worker running hundreds of fits would keep them all."""
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


# ====================================================================== statistics
def n_bins(sims: int, n_ranks: int = N_RANKS) -> int:
    """Bins for the chi-square test: the most bins (dividing L + 1) with >= 5 expected per bin,
    else >= 2 expected (small test runs), else 2."""
    divisors = [b for b in range(2, 21) if (n_ranks + 1) % b == 0]
    for per_bin in (5, 2):
        fitting = [b for b in divisors if sims >= per_bin * b]
        if fitting:
            return max(fitting)
    return 2


def uniformity_tests(ranks: pd.DataFrame, *, n_ranks: int, alpha: float = ALPHA) -> pd.DataFrame:
    """Chi-square test of uniform ranks per quantity, Bonferroni-corrected.

    Ranks are counted in B equal-width bins of {0..L}; X^2 = sum_b (O_b - N/B)^2 / (N/B) on B - 1
    degrees of freedom; ``p_adjusted = min(1, m p)`` over the m quantities; a quantity fails when
    ``p_adjusted < alpha``.
    """
    rows = []
    m = ranks.shape[1]
    for name in ranks.columns:
        r = ranks[name].dropna().to_numpy(dtype=int)
        bins = n_bins(len(r), n_ranks)
        observed = np.bincount(r * bins // (n_ranks + 1), minlength=bins)
        expected = len(r) / bins
        chi2 = float(((observed - expected) ** 2 / expected).sum())
        p = float(stats.chi2.sf(chi2, bins - 1))
        rows.append(
            {
                "quantity": name,
                "n": len(r),
                "bins": bins,
                "chi2": chi2,
                "p_value": p,
                "p_adjusted": min(1.0, m * p),
                "mean_rank": float(r.mean() / n_ranks),
                "passed": min(1.0, m * p) >= alpha,
            }
        )
    return pd.DataFrame(rows)


def simultaneous_band(
    n: int, n_ranks: int, *, prob: float = 0.95, n_sim: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, lower, upper): a ``prob`` simultaneous band for the ECDF of n uniform ranks.

    The ECDF is evaluated at z_j = (j + 1) / (L + 1), j = 0..L-1. Following Säilynoja et al.
    (2022), pointwise binomial intervals at level 1 - gamma are used, with gamma chosen by
    simulation so that ``prob`` of uniform samples stay inside at every z at once.
    """
    rng = np.random.default_rng(seed)
    z = np.arange(1, n_ranks + 1) / (n_ranks + 1)
    sims = rng.integers(0, n_ranks + 1, size=(n_sim, n))
    counts = (sims[:, :, None] < np.arange(1, n_ranks + 1)).sum(axis=1)  # (n_sim, L)
    tail = np.minimum(stats.binom.cdf(counts, n, z), stats.binom.sf(counts - 1, n, z))
    gamma = float(np.quantile(2 * tail.min(axis=1), 1 - prob))
    lower = stats.binom.ppf(gamma / 2, n, z) / n
    upper = stats.binom.ppf(1 - gamma / 2, n, z) / n
    return z, lower - z, upper - z


@dataclass
class SBCResult:
    """Ranks of every replicate and their uniformity tests.

    Attributes:
        ranks: one row per finished replicate (index ``sim``), one column per quantity.
        tests: :func:`uniformity_tests` of ``ranks``.
        n_ranks: L, the number of thinned posterior draws (ranks lie in 0..L).
        info: settings and bookkeeping (spec, sims, failed replicates, divergences, timings).
    """

    ranks: pd.DataFrame
    tests: pd.DataFrame
    n_ranks: int
    info: dict[str, Any]

    @property
    def passed(self) -> bool:
        """True when no quantity's Bonferroni-corrected p-value is below :data:`ALPHA`."""
        return bool(self.tests["passed"].all())

    def plot(self, *, ax: Any = None) -> Any:
        """Rank-ECDF-difference plot per quantity with the 95% simultaneous band; the Figure."""
        import matplotlib.pyplot as plt

        names = list(self.ranks.columns)
        cols = min(4, len(names))
        nrows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(
            nrows, cols, figsize=(3.2 * cols, 2.4 * nrows), sharex=True, sharey=True, squeeze=False
        )
        z, low, high = simultaneous_band(len(self.ranks), self.n_ranks)
        for a, name in zip(axes.flat, names, strict=False):
            r = self.ranks[name].dropna().to_numpy(dtype=int)
            ecdf = (r[:, None] < np.arange(1, self.n_ranks + 1)).mean(axis=0)
            a.fill_between(z, low, high, color="0.85", step="mid", label="95% simultaneous")
            failed = not self.tests.set_index("quantity").loc[name, "passed"]
            a.step(z, ecdf - z, where="mid", color="tab:red" if failed else "tab:blue")
            a.axhline(0, color="0.4", lw=0.6)
            a.set_title(name, fontsize=9)
        for a in list(axes.flat)[len(names) :]:
            a.set_visible(False)
        fig.supxlabel("fractional rank")
        fig.supylabel("ECDF - uniform")
        fig.suptitle(f"SBC: {self.info.get('fitted_spec')} ({len(self.ranks)} simulations)")
        fig.tight_layout()
        return fig

    def save(self, folder: str | Path) -> Path:
        """Write ranks.csv, tests.csv, info.json and ranks_ecdf.png into ``folder``."""
        import matplotlib.pyplot as plt

        from csc_bayes.fits import write_text_atomic
        from csc_bayes.plots import save_figure

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "ranks.csv", self.ranks.to_csv())
        write_text_atomic(folder / "tests.csv", self.tests.to_csv(index=False))
        info = {**self.info, "passed": self.passed, "n_ranks": self.n_ranks}
        write_text_atomic(folder / "info.json", json.dumps(info, indent=2, default=str) + "\n")
        fig = self.plot()
        save_figure(fig, folder / "ranks_ecdf.png", dpi=110)
        plt.close(fig)
        return folder


# ====================================================================== the run
def run_sbc(
    spec: Any,
    *,
    sims: int,
    seed: int = 0,
    n_authorities: int = SBC_AUTHORITIES,
    years: tuple[int, int] = SBC_YEARS,
    draws: int = SBC_SAMPLER["draws"],
    tune: int = SBC_SAMPLER["tune"],
    chains: int = SBC_SAMPLER["chains"],
    n_ranks: int = N_RANKS,
    fit_prior_scale: float = 1.0,
    fits_dir: str | Path = "fits/sbc",
    scheduler: str | None = None,
    n_workers: int | None = None,
    client: Any = None,
    progress: bool = True,
    saved_only: bool = False,
    engine: str = "fit",
    batches: int | None = None,
) -> SBCResult:
    """Simulation-based calibration of ``spec`` with ``sims`` replicates on the batch engine.

    Args:
        spec: a ModelSpec or shipped model name (e.g. ``"cpp_need"``).
        sims: number of replicates (>= 200 for a real check; ~8 to test the machinery).
        seed: fixes the template panel, every replicate's theta and y, and the sampler seeds.
        n_authorities, years: size of the synthetic panel each replicate is fitted on.
        draws, tune, chains: sampler settings per fit (draws x chains must be >= n_ranks).
        n_ranks: L, thinned posterior draws per rank.
        fit_prior_scale: multiplies every prior scale in the fitted model only (0.5 = the
            negative control that must fail).
        fits_dir: where the replicate fits are saved (a re-run reuses them).
        scheduler, n_workers, client: where to run (see :func:`csc_bayes.batch.run_tasks`).
        saved_only: fit nothing; summarise the replicates already saved in ``fits_dir``
            (the progress of a long run that was stopped or is still going).
        engine: ``"fit"``: one task per replicate, each a saved :func:`csc_bayes.fit` (numpyro,
            the convergence gate recorded); ``"compiled"``: the replicates split into
            ``batches`` tasks, each compiling the model once and sampling its replicates with
            blackjax NUTS (:mod:`csc_bayes.compiled`); ranks, time and memory per replicate
            are saved under ``fits_dir`` so a re-run resumes.
        batches: ``engine="compiled"``: tasks (default: one per worker).
    """
    if engine not in SBC_ENGINES:
        raise ValueError(f"engine must be one of {SBC_ENGINES}, got {engine!r}")
    from csc_bayes.spec import ModelSpec, find_spec

    if not isinstance(spec, ModelSpec):
        spec = find_spec(spec)
    if draws * chains < n_ranks:
        raise ValueError(f"draws x chains = {draws * chains} < n_ranks = {n_ranks}")
    template = sbc_template(n_authorities=n_authorities, years=years, seed=seed)
    generator, fitted = sbc_specs(spec, template, fit_prior_scale=fit_prior_scale)
    sampler = {"draws": draws, "tune": tune, "chains": chains}
    if engine == "compiled":
        outcomes = _run_compiled(
            sims,
            batches=batches,
            common={
                "generator": generator,
                "fitted": fitted,
                "template": template,
                "seed": seed,
                "sampler": sampler,
                "fits_dir": str(fits_dir),
                "n_ranks": n_ranks,
                "saved_only": saved_only,
            },
            scheduler=scheduler,
            n_workers=n_workers,
            client=client,
            progress=progress,
        )
    else:
        tasks = [
            Task(
                key=f"{fitted.name}-sim{i:04d}",
                func=sbc_task,
                kwargs={
                    "generator": generator,
                    "fitted": fitted,
                    "template": template,
                    "seed": seed,
                    "index": i,
                    "sampler": sampler,
                    "fits_dir": str(fits_dir),
                    "n_ranks": n_ranks,
                    "saved_only": saved_only,
                },
                lock_dir=Path(fits_dir) / ".locks",
            )
            for i in range(sims)
        ]
        outcomes = run_tasks(
            tasks,
            scheduler=scheduler,
            n_workers=n_workers,
            client=client,
            progress=progress,
            description="SBC fits",
        )
    done = [(i, o) for i, o in enumerate(outcomes) if o.status == "done" and o.value is not None]
    ranks = pd.DataFrame([o.value["ranks"] for _, o in done], index=[i for i, _ in done])
    ranks.index.name = "sim"
    info = {
        "spec": spec.name,
        "fitted_spec": fitted.name,
        "fit_prior_scale": fit_prior_scale,
        "sims_requested": sims,
        "sims_done": len(done),
        "sims_not_fitted": sum(o.status == "done" and o.value is None for o in outcomes),
        "failed": {o.key: o.error for o in outcomes if o.status == "failed"},
        "seed": seed,
        "n_authorities": n_authorities,
        "years": list(years),
        "sampler": sampler,
        "engine": engine,
        "gate_failures": (
            sum(not o.value["diagnostics_passed"] for _, o in done) if engine == "fit" else None
        ),
        "divergent_transitions": sum(o.value["divergences"] for _, o in done),
        "task_seconds_total": float(sum(o.seconds for _, o in done)),  # load time if saved_only
        "replicates": [
            {k: o.value.get(k) for k in ("seconds", "sampling_seconds", "peak_rss_mib", "rss_mib")}
            | {"sim": i}
            for i, o in done
            if "seconds" in o.value
        ],
        "saved_only": saved_only,
        "priors": {k: p.as_dict() for k, p in generator.priors.items()},
    }
    if ranks.empty:
        first = list(info["failed"])[:3]
        raise TaskFailedError(f"no SBC replicate finished; the first that failed: {first}")
    return SBCResult(ranks, uniformity_tests(ranks, n_ranks=n_ranks), n_ranks, info)


def _run_compiled(
    sims: int,
    *,
    batches: int | None,
    common: dict[str, Any],
    **where: Any,
) -> list[Any]:
    """Replicates in ``batches`` tasks (one compiled model each) -> one outcome per replicate."""
    from csc_bayes.batch import TaskOutcome

    client = where.get("client")
    if batches is None:
        if client is not None:
            batches = len(client.scheduler_info().get("workers", {}))
        else:
            batches = where.get("n_workers") or os.cpu_count() or 1
    batches = max(1, min(int(batches), sims))
    fitted = common["fitted"]
    tasks = [
        Task(
            key=f"{fitted.name}-batch{b:03d}",
            func=sbc_batch_task,
            kwargs={**common, "indices": list(range(b, sims, batches))},
        )
        for b in range(batches)
    ]
    outcomes = run_tasks(tasks, description="SBC batches (compiled)", **where)
    per_sim: list[Any] = [None] * sims
    for b, o in enumerate(outcomes):
        for j, i in enumerate(range(b, sims, batches)):
            if o.status != "done":
                per_sim[i] = TaskOutcome(f"{o.key}-sim{i:04d}", o.status, None, o.error, 0.0)
            else:
                value = o.value[j]
                seconds = 0.0 if value is None else float(value["seconds"])
                per_sim[i] = TaskOutcome(f"{fitted.name}-sim{i:04d}", "done", value, None, seconds)
    return per_sim
