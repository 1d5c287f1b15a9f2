"""The linear predictor, per posterior draw, for any rows: the one place it is computed.

For draw s and row i (an authority j in region r and year t, fitted or not)::

    eta[s, i] = log_exposure[i] + intercept[s] + sum over components c of f_c[s, i]

where each term of the fit's spec (:mod:`csc_bayes.terms`) adds its component: one per
covariate group (``X[i, c] . beta[s, c]``), ``region``, ``year``, ``la`` (the LA intercept plus
any random slope and LA trend) and ``la_year`` (the AR(1) deviation). At fitted rows every
value is the fitted one; a level the fit has not seen (a new authority, region or year, an
unfitted year of the AR(1) path) is drawn once per evaluation from its law given what was
fitted (each term's module says how). ``explain``, ``excess``, ``predict``, grouped K-fold CV,
the report and the model tests all use :func:`linear_predictor`.

Expected need (``docs/methods.md``) is the same sum over the *need* components only: the
intercept, the need covariates, the year (and the region when it counts as need); the
authority's own components are zero and non-need covariates sit at their average (z = 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from csc_bayes.posterior import Posterior, reader
from csc_bayes.terms import NewLevels, Rows, Term

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.fits import Fit


@dataclass(frozen=True)
class LinearPredictor:
    """eta and its components at some rows, per draw (arrays (draws, rows)).

    Attributes:
        rows: where it was evaluated.
        intercept: (draws,).
        components: label -> (draws, rows), in the order of the answers' tables (covariate
            groups, region, year, la, la_year).
        terms: the fit's terms (which of them are need, own, between-LA).
    """

    rows: Rows
    intercept: np.ndarray
    components: dict[str, np.ndarray]
    terms: tuple[Term, ...]

    @property
    def log_exposure(self) -> np.ndarray:
        return self.rows.log_exposure

    @property
    def eta(self) -> np.ndarray:
        """log_exposure + intercept + sum of the components."""
        total = self.log_exposure[None, :] + self.intercept[:, None]
        for values in self.components.values():
            total = total + values
        return total

    def need_labels(self, *, region_as_need: bool = False) -> set[str]:
        """The components that make up expected need."""
        return {
            label
            for term in self.terms
            for label in term.need_components(region_as_need=region_as_need)
        }

    def expected(self, *, region_as_need: bool = False) -> np.ndarray:
        """log expected need: log_exposure + intercept + the need components."""
        need = self.need_labels(region_as_need=region_as_need)
        total = self.log_exposure[None, :] + self.intercept[:, None]
        for label, values in self.components.items():
            if label in need:
                total = total + values
        return total

    def between_la_labels(self) -> list[str]:
        """Components that make up an authority's level net of covariates and year."""
        labels = {term.label for term in self.terms if term.between_la}
        return [k for k in self.components if k in labels]


def linear_predictor(
    fit: Fit | Posterior,
    rows: Rows | None = None,
    *,
    new: NewLevels | int | None = None,
) -> LinearPredictor:
    """eta and its components at ``rows`` (default: the fitted rows, exactly as fitted).

    ``new`` draws the levels the fit has not seen: a :class:`~csc_bayes.terms.NewLevels` (share
    it between calls that must agree) or a seed.
    """
    post = reader(fit)
    rows = post.fitted_rows if rows is None else rows
    new = new if isinstance(new, NewLevels) else NewLevels(0 if new is None else new)
    parts: list[tuple[int, str, np.ndarray]] = []
    seen: dict[str, int] = {}
    for term in post.terms:
        for label, values in term.contribution(post, rows, new).items():
            if label in seen:
                order, _, previous = parts[seen[label]]
                parts[seen[label]] = (order, label, previous + values)
            else:
                seen[label] = len(parts)
                parts.append((term.order, label, values))
    ordered = sorted(range(len(parts)), key=lambda k: (parts[k][0], k))
    components = {parts[k][1]: parts[k][2] for k in ordered}
    intercept = components.pop("intercept")[:, 0] if len(rows) else post.draws("intercept")
    return LinearPredictor(
        rows=rows, intercept=intercept, components=components, terms=tuple(post.terms)
    )
