"""The terms of the model, one module per kind (see :mod:`csc_bayes.terms.base`).

:func:`terms_of` lists the terms of a spec. Adding a kind of term: write its module (a
:class:`~csc_bayes.terms.base.Term` subclass, with the spec key it owns), add it to
:data:`TERM_KINDS`, :data:`BUILD_ORDER` (and its key to :data:`OPTION_KEYS`), and test it;
``docs/adding_a_term.md`` walks through one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term
from csc_bayes.terms.censoring import SuppressedCounts
from csc_bayes.terms.covariates import Covariates
from csc_bayes.terms.family import Family
from csc_bayes.terms.intercept import Intercept
from csc_bayes.terms.la import LaIntercept
from csc_bayes.terms.la_slope import LaSlope
from csc_bayes.terms.la_trend import LaTrend
from csc_bayes.terms.la_year import LaYearAR1
from csc_bayes.terms.la_year_sd_trend import LaYearAR1StudentTSdTrend
from csc_bayes.terms.la_year_t import LaYearAR1StudentT
from csc_bayes.terms.region import RegionIntercept
from csc_bayes.terms.stock import Stock
from csc_bayes.terms.year import YearEffects

if TYPE_CHECKING:  # pragma: no cover
    from csc_bayes.spec import ModelSpec

__all__ = [
    "BUILD_ORDER",
    "OPTION_KEYS",
    "TERM_KINDS",
    "BuildContext",
    "DataScale",
    "NewLevels",
    "Rows",
    "Term",
    "key_values",
    "kind_of",
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
    "censoring",
    "stock",
    "family",
)


#: every kind of term, in the order of a spec's parameters (its ``[priors]`` table)
TERM_KINDS: tuple[type[Term], ...] = (
    Intercept,
    Covariates,
    LaIntercept,
    RegionIntercept,
    YearEffects,
    LaSlope,
    LaTrend,
    LaYearAR1,
    LaYearAR1StudentT,
    LaYearAR1StudentTSdTrend,
    SuppressedCounts,
    Stock,
    Family,
)
#: the spec keys the terms own, in the order a spec file writes them
OPTION_KEYS: tuple[str, ...] = (
    "random_slope", "la_trend", "la_year", "year_effect", "suppressed", "stock",
)  # fmt: skip
if set(OPTION_KEYS) != {kind.key for kind in TERM_KINDS if kind.key}:  # pragma: no cover
    raise ImportError("terms: OPTION_KEYS must list every key a kind of term owns")


def kind_of(key: str, value: Any = None) -> type[Term]:
    """The kind of term that owns spec key ``key`` (with ``value``, when several kinds share
    the key: the one whose :attr:`~csc_bayes.terms.base.Term.values` hold it)."""
    kinds = [kind for kind in TERM_KINDS if kind.key == key]
    return next((k for k in kinds if k.values is not None and value in k.values), kinds[0])


def key_values(key: str) -> tuple[Any, ...] | None:
    """The values ``key`` may take when kinds list them (e.g. ``la_year``), else None."""
    kinds = [kind for kind in TERM_KINDS if kind.key == key]
    if all(kind.values is None for kind in kinds):
        return None
    return tuple(v for kind in kinds for v in (kind.values or ()))


def terms_of(spec: ModelSpec) -> list[Term]:
    """The terms of ``spec`` in the order of its parameters (the ``[priors]`` table).

    Region and year intercepts are always present (as exact zeros when the spec leaves them
    out), so that every fit has the names of the posterior contract.
    """
    return [kind(spec) for kind in TERM_KINDS if kind.wanted(spec)]
