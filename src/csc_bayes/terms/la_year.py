"""An AR(1) deviation of each authority from its own level by year (``la_year = "ar1"``).

Per authority, over calendar years, a stationary AR(1): ``Cov(la_year[j, t], la_year[j, u]) =
sigma_la_year^2 rho_la_year^|t - u|`` (a gap in the fitted years is a longer lag), independent
across authorities, then centred over authorities in every year (a movement common to all
authorities is a year effect). Part of the authority's own deviation (component ``la_year``).

Hierarchical parameterisation: each authority's level by year ``la_level[la, :] ~
MvNormal(la_theta[la], K)`` is sampled (the data pin it down directly) and ``la_year`` is the
deterministic ``la_level - la_theta``, centred; ``la_level`` carries a per-year shift common to
all authorities that the likelihood does not see, so the gate does not judge it
(:attr:`LaYearAR1.not_gated`; it checks ``la_year`` and ``la_effect`` instead). Textbook:
``la_year_z @ L.T`` with iid normal ``la_year_z``.

New rows: a fitted authority in an unfitted year draws la_year from its Gaussian conditional
given its fitted path and the unfitted years already drawn (h years after the last fitted
year: N(rho^h la_year_last, sigma^2 (1 - rho^(2h)))); a new authority starts from the
stationary N(0, sigma^2) and continues the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term

#: the ``la_year`` value of this term (the Student-t variant, ``terms/la_year_t.py``, has its own)
LA_YEAR_TERMS = ("ar1",)
#: default rho_la_year prior: Beta(2, 2); it keeps rho off 1, where the AR(1) covariance matrix
#: is singular, and off 0, where the term is iid noise beside the negative binomial
RHO_LA_YEAR_PRIOR = {"alpha": 2.0, "beta": 2.0}


class LaYearAR1(Term):
    """Priors ``sigma_la_year ~ HalfNormal(s)``, ``rho_la_year ~ Beta(2, 2)``."""

    name = "la_year"
    own = True
    between_la = True
    not_gated = ("la_level",)
    order = 45
    key = "la_year"
    values = LA_YEAR_TERMS

    #: it centres its per-year levels on the LA level, which is then sampled non-centred
    centres_la_level = True

    def parameters(self) -> tuple[str, ...]:
        return ("sigma_la_year", "rho_la_year")

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {
            "sigma_la_year": prior("halfnormal", sigma=scale.s),
            "rho_la_year": prior("beta", **RHO_LA_YEAR_PRIOR),
        }

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        params = self.parameter_rvs(ctx)
        years = np.asarray(ctx.years, dtype=float)
        if ctx.hierarchical:
            la_theta = ctx.tensors["la_theta"]
            mu = pt.broadcast_to(la_theta[:, None], (la_theta.shape[0], len(years)))
            level = pm.CustomDist(
                "la_level",
                mu,
                *params,
                logp=lambda value, mu, *p: self.path_logp(value - mu, *p, years),
                random=lambda mu, *p, rng=None, size=None: (
                    mu + self.simulate_paths(*p, years, np.shape(mu), rng)
                ),
                support_point=lambda rv, size, mu, *p: mu,
                signature="(n)" + ",()" * len(params) + "->(n)",
                dims=("la", "year"),
            )
            deviation = level - la_theta[:, None]
        else:
            deviation = self.textbook_deviation(*params, years)
        la_year = pm.Deterministic("la_year", centre_over_las(deviation), dims=("la", "year"))
        ctx.eta["la_year"] = la_year[ctx.tensors["la_idx"], ctx.tensors["year_idx"]]

    # the law of one authority's path (a subclass with another law overrides these four)
    def parameter_rvs(self, ctx: BuildContext) -> tuple[Any, ...]:
        """The law's parameters as PyMC variables: (sigma_la_year, rho_la_year)."""
        return (
            prior_rv("sigma_la_year", ctx.priors["sigma_la_year"]),
            prior_rv("rho_la_year", ctx.priors["rho_la_year"]),
        )

    @staticmethod
    def path_logp(x: Any, sigma: Any, rho: Any, years: np.ndarray) -> Any:
        """log density of each path (rows of ``x``): :func:`ar1_logp`."""
        return ar1_logp(x, sigma, rho, years)

    @staticmethod
    def simulate_paths(
        sigma: Any, rho: Any, years: np.ndarray, shape: tuple[int, ...], rng: Any
    ) -> np.ndarray:
        """Paths of the law (numpy): iid normals times the AR(1) Cholesky factor."""
        return rng.standard_normal(shape) @ ar1_cholesky(sigma, rho, years).T

    def textbook_deviation(self, sigma: Any, rho: Any, years: np.ndarray) -> Any:
        """The textbook parameterisation: ``la_year_z @ L.T`` with iid normal ``la_year_z``."""
        import pymc as pm
        import pytensor.tensor as pt

        z = pm.Normal("la_year_z", 0.0, 1.0, dims=("la", "year"))
        return pt.dot(z, ar1_cholesky(sigma, rho, years).T)

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        path = post.draws("la_year")  # (S, la, year)
        positions = {code: j for j, code in enumerate(post.la_codes)}
        fitted_years = {y: t for t, y in enumerate(post.years)}
        out = np.empty((post.n_draws, len(rows)))
        # unfitted years in time order, so that each conditions on the earlier ones
        for i in sorted(range(len(rows)), key=lambda i: int(rows.year[i])):
            code, year = str(rows.la_code[i]), int(rows.year[i])
            if code in positions and year in fitted_years:
                out[:, i] = path[:, positions[code], fitted_years[year]]
            else:
                out[:, i] = new.once(
                    self.name, (code, year), lambda c=code, y=year: self._new(post, c, y, new)
                )
        return {"la_year": out}

    def known_path(self, post: Any, code: str, new: NewLevels) -> dict[int, np.ndarray]:
        """What is known of an authority's path, year -> draws: its fitted years (none for a
        new authority) and the unfitted years already drawn for it in this evaluation."""
        known: dict[int, np.ndarray] = {}
        if code in post.la_codes:
            path = post.draws("la_year")[:, post.la_codes.index(code), :]
            known = dict(zip(post.years, path.T, strict=True))
        known.update({y: v for (c, y), v in new.store(self.name).items() if c == code})
        return known

    def _new(self, post: Any, code: str, year: int, new: NewLevels) -> np.ndarray:
        """A draw of la_year[code, year] given what is known of the authority's path."""
        return self._new_given(post, self.known_path(post, code, new), year, new)

    def _new_given(
        self, post: Any, known: dict[int, np.ndarray], year: int, new: NewLevels
    ) -> np.ndarray:
        """A draw of the deviation in ``year`` given its ``known`` values (year -> draws)."""
        sigma = post.draws("sigma_la_year")
        if not known:  # a new authority's first year: the stationary distribution
            return new.rng.normal(0.0, sigma)
        given = tuple(sorted(known))
        weights, sd = new.once(
            f"{self.name}:weights", (year, given), lambda: ar1_conditional(post, year, given)
        )
        values = np.stack([known[y] for y in given], axis=1)
        return (weights * values).sum(axis=1) + sd * new.rng.standard_normal(len(sd))

    def batch_sd(self, post: Any) -> dict[str, tuple[np.ndarray | None, np.ndarray]]:
        return {"la_year": (None, post.draws("sigma_la_year"))}

    def expected_between_la_variance(self, post: Any) -> np.ndarray:
        """sigma_la_year^2 mean_j k_j, k_j = n_j^-2 sum_{a,b} rho^|t_a - t_b| over authority j's
        n_j fitted years (the variance of the mean of a unit-variance AR(1) path)."""
        import pandas as pd

        fitted_years = post.fitted_rows.year.astype(float)
        year_sets = pd.Series(fitted_years).groupby(post.la_idx).agg(lambda t: tuple(sorted(t)))
        mean_k = np.zeros(post.n_draws)
        for year_set, count in year_sets.value_counts().items():
            mean_k += count * self.path_correlation(post, year_set).mean(axis=(1, 2))
        return post.draws("sigma_la_year") ** 2 * mean_k / len(year_sets)

    def path_correlation(self, post: Any, years: Any) -> np.ndarray:
        """Per draw, Cov(la_year[t], la_year[u]) / sigma_la_year^2 over ``years``:
        rho^|t - u| (:func:`ar1_correlation`), shape (draws, years, years)."""
        return ar1_correlation(post.draws("rho_la_year"), years)

    def describe_forecast(self, horizon: int) -> str | None:
        return (
            f"each authority's latest deviation decays towards its own level by rho^{horizon}, "
            f"with variance sigma_la_year^2 (1 - rho^{2 * horizon})"
        )

    def describe(self) -> tuple[str | None, str | None]:
        return (
            "an AR(1) deviation of each authority from its own level by year (year-to-year "
            "persistence)",
            "its AR(1) deviation",
        )


def ar1_conditional(post: Any, year: int, given: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian conditioning of la_year[year] on the years ``given``, per draw.

    With K[t, u] = sigma^2 rho^|t - u| over the given years and k[t] = sigma^2 rho^|year - t|:
    mean = w . la_year_path with w = K^-1 k, variance = sigma^2 - w . k. Returns (w, SD).
    """
    full = ar1_correlation(post.draws("rho_la_year"), [*given, year])
    corr, k = full[:, :-1, :-1], full[:, :-1, -1]
    weights = np.linalg.solve(corr, k[:, :, None])[:, :, 0]
    var = post.draws("sigma_la_year") ** 2 * np.clip(1.0 - (weights * k).sum(axis=1), 0.0, None)
    return weights, np.sqrt(var)


def centre_over_las(deviation: Any) -> Any:
    """Subtract each year's mean over authorities: ``la_year`` sums to zero over ``la``.

    Without it the year effects and the mean AR(1) deviation traded places (a ridge: R-hat 1.05
    and bulk ESS ~150 for year_effect on the real CLA panel). For deviations independent across
    authorities with a common covariance, this projection is exactly conditioning on the sum.
    """
    return deviation - deviation.mean(axis=0, keepdims=True)


def ar1_logp(x: Any, sigma: Any, rho: Any, years: np.ndarray) -> Any:
    """log density of each row of ``x`` (last axis: increasing ``years``) under the AR(1) law.

    Markov factorisation: x_0 ~ N(0, sigma^2) and, with d_t = y_t - y_(t-1) (a gap year is a
    longer lag), x_t | x_(t-1) ~ N(rho^d_t x_(t-1), sigma^2 (1 - rho^(2 d_t))). Elementwise,
    so about as cheap as an iid normal (a dense MvNormal made each gradient ~30x slower).
    """
    import pytensor.tensor as pt

    gaps = np.diff(np.asarray(years, dtype=float))
    decay = rho**gaps  # (year - 1,)
    mean = pt.concatenate([pt.zeros_like(x[..., :1]), decay * x[..., :-1]], axis=-1)
    one = pt.ones((1,))
    scale = sigma * pt.concatenate([one, pt.sqrt(1.0 - decay**2)])
    z = (x - mean) / scale
    return pt.sum(-0.5 * z**2 - pt.log(scale) - 0.5 * np.log(2 * np.pi), axis=-1)


def ar1_correlation(rho: np.ndarray, years: Any) -> np.ndarray:
    """Per draw, the AR(1) correlation matrix over calendar years: ``rho_s^|y_t - y_u|``,
    shape (draws, years, years), for a numpy array of posterior draws of rho."""
    years = np.asarray(years, dtype=float)
    lags = np.abs(years[:, None] - years[None, :])
    return np.asarray(rho, dtype=float)[:, None, None] ** lags[None]


def ar1_cholesky(sigma: Any, rho: Any, years: np.ndarray) -> Any:
    """Lower Cholesky factor of K[t, u] = sigma^2 rho^|y_t - y_u| for increasing years y.

    From the AR(1) written as innovations (see :func:`ar1_logp`):
    ``L[t, s] = sigma c_s rho^(y_t - y_s)`` for s <= t (0 above), with c_0 = 1 and
    ``c_s = sqrt(1 - rho^(2 (y_s - y_(s-1))))``. Works on PyTensor or numpy scalars.
    """
    years = np.asarray(years, dtype=float)
    lag = years[:, None] - years[None, :]
    lower = lag >= 0
    power = rho ** np.where(lower, lag, 0.0)
    c = (1.0 - rho ** (2.0 * np.diff(years))) ** 0.5
    if isinstance(c, np.ndarray):
        c = np.concatenate([[1.0], c])
    else:
        import pytensor.tensor as pt

        c = pt.concatenate([pt.ones((1,)), c])
    return sigma * power * c[None, :] * lower
