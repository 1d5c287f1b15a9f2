"""What every kind of term of the linear predictor provides, and the objects they share.

A :class:`Term` owns one piece of the model from end to end:

- **spec**: the prior parameters it adds (:meth:`Term.parameters`) and their data-scaled
  defaults (:meth:`Term.default_priors`);
- **PyMC**: how it is built (:meth:`Term.build`, adding variables through a
  :class:`BuildContext`) and its parameterisation;
- **posterior**: its contribution to the linear predictor for any rows, fitted or new
  (:meth:`Term.contribution`, drawing new levels through :class:`NewLevels`);
- **variance**: the batch SDs it reports and its part of the model's expected between-LA
  variance (for ``explain``);
- **gate**: the internal variables the convergence gate must not judge (:attr:`Term.not_gated`);
- **report**: a phrase for the report's methods section (:meth:`Term.describe`).

The model (:mod:`csc_bayes.model`) and the linear predictor (:mod:`csc_bayes.linear_predictor`)
only loop over the terms of a spec (:func:`csc_bayes.terms.terms_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from csc_bayes.posterior import Posterior
    from csc_bayes.priors import Prior
    from csc_bayes.spec import ModelSpec


#: the :class:`NewLevels` key of outcomes drawn in an evaluation (:meth:`NewLevels.record_outcome`)
DRAWN_OUTCOME = "outcome:drawn"

#: attribute of a fit's posterior group listing (space-separated) the variables that the terms
#: declare the convergence gate must not judge (:attr:`Term.not_gated`)
NOT_GATED_ATTR = "csc_bayes_not_gated"


@dataclass(frozen=True)
class DataScale:
    """The data's own scale, which sets the default priors (:func:`csc_bayes.spec.data_scale`).

    ``pooled``: log(sum y / sum exposure); ``s``: SD of log((y + 0.5) / exposure), floored.
    """

    pooled: float
    s: float


@dataclass(frozen=True)
class Rows:
    """Rows at which to evaluate the linear predictor: fitted authority-years or new ones.

    ``X`` holds the covariates standardised with the fit's own mean and SD.
    """

    la_code: np.ndarray  # (n,) str
    region: np.ndarray  # (n,) str
    year: np.ndarray  # (n,) int
    X: np.ndarray  # (n, covariate)
    log_exposure: np.ndarray  # (n,)

    def __len__(self) -> int:
        return len(self.year)


class NewLevels:
    """Draws for levels the fit has not seen (a new authority, region or year), made once.

    Every row of one evaluation that names the same new level gets the same draw; a term keeps
    what it drew under its own name (:meth:`store`), e.g. the AR(1) term keeps each authority's
    unfitted years so that later years condition on earlier ones.
    """

    def __init__(self, seed: int | np.random.Generator = 0) -> None:
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._made: dict[tuple[str, Any], np.ndarray] = {}

    def once(self, term: str, level: Any, draw: Callable[[], np.ndarray]) -> np.ndarray:
        """``draw()`` the first time ``(term, level)`` is asked for, the same array after."""
        key = (term, level)
        if key not in self._made:
            self._made[key] = draw()
        return self._made[key]

    def store(self, term: str) -> dict[Any, np.ndarray]:
        """The draws made so far under ``term`` (level -> array), for a term to condition on."""
        return {level: v for (t, level), v in self._made.items() if t == term}

    def record_outcome(self, la_code: str, year: int, counts: np.ndarray) -> None:
        """Keep the outcome drawn for an authority-year (per draw), for a term that conditions
        on the year before (:attr:`Term.conditions_on_outcome`)."""
        self._made[(DRAWN_OUTCOME, (str(la_code), int(year)))] = np.asarray(counts, dtype=float)

    def drawn_outcome(self, la_code: str, year: int) -> np.ndarray | None:
        """The outcome drawn for an authority-year in this evaluation, or None."""
        return self._made.get((DRAWN_OUTCOME, (str(la_code), int(year))))


@dataclass
class BuildContext:
    """What the terms of one PyMC model share while they are built (see :mod:`csc_bayes.model`).

    Attributes:
        spec, priors, parameterisation: the model being built.
        la_codes, regions, years, covariates: coordinate values.
        la_idx, region_idx, year_idx: per fitted row, positions into those coordinates (numpy).
        la_region_idx: per authority, its region's position.
        X: standardised covariates (numpy, (obs, covariate)); data: the fitted panel rows.
        tensors: PyMC data and variables already made, by name (``X``, ``la_idx`` ... and each
            term's variables that a later term reads, e.g. ``beta``, ``la_theta``).
        la_mean: per-authority terms that the hierarchical LA level is centred on (intercept,
            region, the authority's mean covariates).
        la_shift: per-authority shifts of the sampled LA level (an LA trend at the authority's
            mean fitted year).
        eta: contributions to the linear predictor, by position (see :data:`ETA_ORDER`).
        la_level_noncentred: set by a term that centres its own per-year levels on the LA level
            (the AR(1) LA-year term), which then informs the LA level only weakly.
    """

    spec: ModelSpec
    priors: dict[str, Prior]
    parameterisation: str
    la_codes: np.ndarray
    regions: list[str]
    years: np.ndarray
    covariates: list[str]
    la_idx: np.ndarray
    region_idx: np.ndarray
    year_idx: np.ndarray
    la_region_idx: np.ndarray
    X: np.ndarray
    data: Any
    tensors: dict[str, Any] = field(default_factory=dict)
    la_mean: dict[str, Any] = field(default_factory=dict)
    la_shift: list[Any] = field(default_factory=list)
    eta: dict[str, Any] = field(default_factory=dict)
    la_level_noncentred: bool = False

    @property
    def hierarchical(self) -> bool:
        return self.parameterisation == "hierarchical"


class Term:
    """One kind of term (see the module docstring). Subclasses override what they need."""

    #: the term's name; also its component label in the linear predictor unless
    #: :attr:`component` says otherwise
    name: ClassVar[str] = ""
    #: which component of the linear predictor its contribution is added to (``explain`` splits
    #: the variance by component; ``la`` gathers the LA intercept, slope and trend)
    component: ClassVar[str | None] = None
    #: part of an authority's own deviation: left out of expected need (``excess``)
    own: ClassVar[bool] = False
    #: part of an authority's level net of covariates and the year (``explain``'s V_between)
    between_la: ClassVar[bool] = False
    #: internal variables the convergence gate must not judge (saved with the fit)
    not_gated: ClassVar[tuple[str, ...]] = ()
    #: where its component comes in the answers' tables (covariates, region, year, la, ...)
    order: ClassVar[int] = 50

    #: the spec key (TOML top-level key) that asks for this term, or sets its law; None for a
    #: part of every model. Its value is ``spec.options[key]`` (absent: :attr:`default`).
    key: ClassVar[str | None] = None
    #: the value of :attr:`key` when a spec does not set it (then it is left out of the spec's
    #: hash and TOML, so older specs keep theirs)
    default: ClassVar[Any] = None
    #: the values of :attr:`key` that ask for this kind, when several kinds share one key (the
    #: AR(1) LA-year term ``"ar1"``, its Student-t variant ``"ar1_t"``); None: any value other
    #: than the default, validated by :meth:`parse_key`
    values: ClassVar[tuple[Any, ...] | None] = None
    #: kept by the null model (random effects only) of a spec that has it
    in_null_model: ClassVar[bool] = True
    #: its part of eta in year t needs the outcome of year t - 1 (the stock term): a forecast
    #: draws the years in order (:func:`csc_bayes.predict.predict_draws`)
    conditions_on_outcome: ClassVar[bool] = False
    #: with it the LA levels are weakly identified (the stock term: authorities differ in
    #: growth by ~1%, sigma_la ~ 0.01), so the model samples them non-centred
    #: (``la_theta = la_mean + sigma_la la_z``); a centred la_theta left a funnel (R-hat 1.2-1.4
    #: on sigma_la in every real-panel refit)
    la_level_noncentred: ClassVar[bool] = False
    #: a term that makes the spec a forecasting spec: ``explain`` and ``excess`` refuse it
    #: (:func:`refuse_forecast_only`), since its part of eta is neither need nor a level
    forecast_only: ClassVar[bool] = False

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @classmethod
    def wanted(cls, spec: ModelSpec) -> bool:
        """Whether ``spec`` has this term: always, when its key is set, or when its key has one
        of :attr:`values`."""
        if cls.key is None:
            return True
        value = spec.options.get(cls.key, cls.default)
        return value in cls.values if cls.values is not None else value != cls.default

    @classmethod
    def parse_key(cls, value: Any, *, source: str, model: dict[str, Any]) -> Any:
        """The validated value of :attr:`key` (``model`` holds the spec's covariates and random
        effects); raise :class:`~csc_bayes.errors.SpecError` naming ``source`` and the key."""
        return value

    @property
    def option(self) -> Any:
        """This term's value of its spec key."""
        return self.spec.options.get(self.key, self.default) if self.key else None

    @property
    def label(self) -> str:
        return self.component or self.name

    # ----------------------------------------------------------------------------- spec
    def parameters(self) -> tuple[str, ...]:
        """The prior parameters this term adds (keys of ``[priors]``)."""
        return ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        """The default prior of each of :meth:`parameters`."""
        return {}

    # ----------------------------------------------------------------------------- data
    def required_columns(self) -> dict[str, bool]:
        """Panel columns a fitted row needs beyond the outcome, exposure and covariates, each
        with whether it must be positive (a row lacking one is not fitted, with its reason)."""
        return {}

    def derive_columns(self, panel: pd.DataFrame) -> pd.DataFrame:
        """``panel`` with the columns of :meth:`required_columns` that the term derives itself
        (lags are derived by the spec, :func:`csc_bayes.spec.with_derived_columns`)."""
        return panel

    def data_offset(self, data: pd.DataFrame) -> np.ndarray | None:
        """A fixed part of eta at the fitted rows beyond log exposure (None: none); it sets the
        data scale of the default priors (:func:`csc_bayes.spec.data_scale`)."""
        return None

    # ----------------------------------------------------------------------------- PyMC
    def coords(self, years: np.ndarray) -> dict[str, Any]:
        """Extra model coordinates the term's variables need (e.g. ``year_to``)."""
        return {}

    def build(self, ctx: BuildContext) -> None:
        """Add the term's variables to the model being built (inside its ``pm.Model``)."""

    # ----------------------------------------------------------------------------- posterior
    def contribution(self, post: Posterior, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        """The term's additive part of eta at ``rows``: component label -> (draws, rows)."""
        return {}

    def need_components(self, *, region_as_need: bool) -> set[str]:
        """Its component labels that count as expected need (``excess``): kept, not zeroed."""
        return set()

    # ----------------------------------------------------------------------------- variance
    def batch_sd(self, post: Posterior) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """label -> (finite-population SD over the observed levels, superpopulation SD)."""
        return {}

    def expected_between_la_variance(self, post: Posterior) -> np.ndarray | float:
        """This term's part of the model's expected V_between per draw (``explain``)."""
        return 0.0

    # ----------------------------------------------------------------------------- report
    @property
    def intercept_for(self) -> str | None:
        """For a random-intercept term, what it is an intercept for (report: "random
        intercepts for authority, region, year")."""
        return None

    def describe(self) -> tuple[str | None, str | None]:
        """(phrase for the model's terms, phrase for what expected need sets to zero)."""
        return None, None

    def describe_forecast(self, horizon: int) -> str | None:
        """How the term makes a forecast ``horizon`` years after the last fitted year, in words
        (``predict`` says it when the horizon is long)."""
        return None


def refuse_forecast_only(terms: Any, spec_name: str, answer: str) -> None:
    """Raise :class:`~csc_bayes.errors.AnswerError` when a term of the fit is
    :attr:`Term.forecast_only` (the stock term): ``answer`` is not defined for it."""
    from csc_bayes.errors import AnswerError

    found = [t for t in terms if t.forecast_only]
    if found:
        term = found[0]
        raise AnswerError(
            f"{spec_name} is a forecasting spec ({term.key} = {term.option!r}: last year's count "
            f"is part of its linear predictor), so {answer} is not defined for it; use predict "
            "or backtest, or a need spec such as cla_need for " + answer
        )
