"""One typed reader of a fit's posterior: what every answer reads, and from where.

:class:`Posterior` wraps a :class:`~csc_bayes.fits.Fit` and gives the draws of the posterior
contract's names (ARCHITECTURE.md) as numpy arrays with the draws first, the constant data, the
coordinates, the fitted rows and the terms of the fit's spec. Answers (``explain``, ``excess``,
``predict``, CV, the report) read a fit only through it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from csc_bayes.errors import FitIntegrityError
from csc_bayes.terms import Term, terms_of
from csc_bayes.terms.base import Rows

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit
    from csc_bayes.spec import ModelSpec


class Posterior:
    """Draws, constants and coordinates of one fit (see the module docstring)."""

    def __init__(self, fit: Fit) -> None:
        self.fit = fit
        self.spec: ModelSpec = fit.spec
        self._draws: dict[str, np.ndarray] = {}
        self._posterior = fit.idata["posterior"]

    @classmethod
    def of(cls, fit: Fit) -> Posterior:
        """The reader of ``fit`` (made once per fit object and kept on it)."""
        reader = getattr(fit, "_posterior_reader", None)
        if reader is None or reader.fit is not fit:
            reader = cls(fit)
            fit._posterior_reader = reader
        return reader

    # ------------------------------------------------------------------------- draws
    def draws(self, name: str) -> np.ndarray:
        """Draws of ``name``, shape (S, *dims): chains one after another."""
        if name not in self._draws:
            if name not in self._posterior.data_vars:
                raise FitIntegrityError(
                    f"the posterior of {self.spec.name!r} has no variable {name!r} "
                    f"(it has {sorted(self._posterior.data_vars)})"
                )
            da = self._posterior[name].transpose("chain", "draw", ...)
            values = np.asarray(da.values, dtype=float)
            self._draws[name] = values.reshape(-1, *values.shape[2:])
        return self._draws[name]

    def has(self, name: str) -> bool:
        """Whether the posterior holds ``name`` (``phi`` is absent for Poisson fits)."""
        return name in self._posterior.data_vars

    def constant(self, name: str) -> np.ndarray:
        """A ``constant_data`` array as numpy."""
        return np.asarray(self.fit.idata["constant_data"][name].values)

    @cached_property
    def n_draws(self) -> int:
        return self._posterior.sizes["chain"] * self._posterior.sizes["draw"]

    # ------------------------------------------------------------------------- coordinates
    @cached_property
    def la_codes(self) -> list[str]:
        return [str(c) for c in self._posterior["la"].values]

    @cached_property
    def regions(self) -> list[str]:
        return [str(r) for r in self._posterior["region"].values]

    @cached_property
    def years(self) -> list[int]:
        return [int(y) for y in self._posterior["year"].values]

    @cached_property
    def covariates(self) -> list[str]:
        """The ``covariate`` coordinate (empty for a random-effects-only model)."""
        if "covariate" not in self._posterior.coords or not self.has("beta"):
            return []
        return [str(c) for c in self._posterior["covariate"].values]

    @cached_property
    def terms(self) -> list[Term]:
        """The terms of the fit's spec, in the order the model builds them."""
        return terms_of(self.spec)

    def term(self, name: str) -> Term | None:
        """The term called ``name``, or None when the spec has none."""
        return next((t for t in self.terms if t.name == name), None)

    # ------------------------------------------------------------------------- rows
    @cached_property
    def fitted_rows(self) -> Rows:
        """The fitted authority-years in ``obs`` order, as the model saw them."""
        la_idx = self.constant("la_idx").astype(int)
        n = len(la_idx)
        X = self.constant("X").astype(float) if self.covariates else np.zeros((n, 0))
        return Rows(
            la_code=np.asarray(self.la_codes)[la_idx],
            region=np.asarray(self.regions)[self.constant("region_idx").astype(int)],
            year=np.asarray(self.years)[self.constant("year_idx").astype(int)],
            X=X,
            log_exposure=self.constant("log_exposure").astype(float),
        )

    @cached_property
    def la_idx(self) -> np.ndarray:
        """Per fitted row, its authority's position in ``la``."""
        return self.constant("la_idx").astype(int)

    @cached_property
    def observed(self) -> np.ndarray:
        """The observed outcome of each fitted row (NaN for an interval-censored row)."""
        y = np.asarray(self.fit.idata["observed_data"]["y"].values, dtype=float)
        return np.where(self.censored, np.nan, y)

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) per fitted row: the known range of an interval-censored count
        (``terms/censoring.py``), both equal to the count for an observed row."""
        if "y_lower" in self.fit.idata["constant_data"]:
            return (
                self.constant("y_lower").astype(float),
                self.constant("y_upper").astype(float),
            )
        y = np.asarray(self.fit.idata["observed_data"]["y"].values, dtype=float)
        return y, y

    @cached_property
    def censored(self) -> np.ndarray:
        """Per fitted row: it entered the likelihood as an interval-censored count."""
        if "y_lower" not in self.fit.idata["constant_data"]:
            return np.zeros(self.fit.idata["observed_data"].sizes["obs"], dtype=bool)
        return self.constant("y_lower") != self.constant("y_upper")

    @cached_property
    def scales(self) -> dict[str, tuple[float, float]]:
        """covariate -> (mean, sd) of its standardisation over the fitted rows (what an
        interaction ``<a>_x_<b>`` at new rows is built with)."""
        if not self.covariates:
            return {}
        mean = self.constant("covariate_mean").astype(float)
        sd = self.constant("covariate_sd").astype(float)
        return {c: (float(m), float(s)) for c, m, s in zip(self.covariates, mean, sd, strict=True)}

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """(x - covariate_mean) / covariate_sd, covariates as published -> the model's scale."""
        if not self.covariates:
            return np.zeros((len(raw), 0))
        mean = self.constant("covariate_mean").astype(float)
        sd = self.constant("covariate_sd").astype(float)
        return (np.asarray(raw, dtype=float).reshape(-1, len(mean)) - mean) / sd

    @cached_property
    def authorities(self) -> pd.DataFrame:
        """la_code, ons_code, la_name, region of the fitted authorities, in ``la`` order."""
        post = self._posterior
        if all(name in post.coords for name in ("la_name", "ons_code", "la_region")):
            return self.fit.authorities
        panel = self.fit.panel
        latest = panel.assign(la_code=panel["la_code"].astype(str)).sort_values("year")
        latest = latest.drop_duplicates("la_code", keep="last").set_index("la_code")
        missing = sorted(set(self.la_codes) - set(latest.index))
        if missing:
            raise FitIntegrityError(
                f"fitted authorities {missing[:5]} have no rows in the fit's panel"
            )
        rows = latest.loc[self.la_codes, ["ons_code", "la_name", "region"]].astype(str)
        return rows.reset_index().rename(columns={"index": "la_code"})


def reader(fit: Fit | Posterior | Any) -> Posterior:
    """``fit``'s :class:`Posterior` (a Posterior is returned as it is)."""
    return fit if isinstance(fit, Posterior) else Posterior.of(fit)
