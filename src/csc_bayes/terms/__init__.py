"""The terms of the model, one module per kind (see :mod:`csc_bayes.terms.base`).

:func:`terms_of` lists the terms of a spec. Adding a kind of term: write its module (a
:class:`~csc_bayes.terms.base.Term` subclass), add it to :func:`terms_of` and to
:data:`BUILD_ORDER`, and test it; ``docs/adding_a_term.md`` walks through one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term
from csc_bayes.terms.covariates import Covariates
from csc_bayes.terms.family import Family
from csc_bayes.terms.intercept import Intercept
from csc_bayes.terms.la import LaIntercept
from csc_bayes.terms.la_slope import LaSlope
from csc_bayes.terms.la_trend import LaTrend
from csc_bayes.terms.la_year import LaYearAR1
from csc_bayes.terms.region import RegionIntercept
from csc_bayes.terms.year import YearEffects

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.spec import ModelSpec

__all__ = [
    "BUILD_ORDER",
    "BuildContext",
    "DataScale",
    "NewLevels",
    "Rows",
    "Term",
    "terms_of",
]

#: the order in which the model builds the terms: a term reads what earlier ones made (the LA
#: level is centred on the intercept, region and covariates and shifted by the LA trend; the
#: AR(1) levels are centred on the LA level). It also fixes the order of the sampler's
#: variables, so changing it changes the draws of an unchanged spec.
BUILD_ORDER = (
    "intercept",
    "covariates",
    "region",
    "la_trend",
    "la",
    "la_year",
    "year",
    "la_slope",
    "family",
)


def terms_of(spec: ModelSpec) -> list[Term]:
    """The terms of ``spec`` in the order of its parameters (the ``[priors]`` table).

    Region and year intercepts are always present (as exact zeros when the spec leaves them
    out), so that every fit has the names of the posterior contract.
    """
    terms: list[Term] = [
        Intercept(spec),
        Covariates(spec),
        LaIntercept(spec),
        RegionIntercept(spec),
        YearEffects(spec),
    ]
    if spec.random_slope is not None:
        terms.append(LaSlope(spec))
    if spec.la_trend:
        terms.append(LaTrend(spec))
    if spec.la_year == "ar1":
        terms.append(LaYearAR1(spec))
    terms.append(Family(spec))
    return terms
