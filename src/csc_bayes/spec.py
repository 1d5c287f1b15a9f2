"""Model specifications: one TOML file per model -> a validated, hashable :class:`ModelSpec`.

A specification names the outcome, the exposure, the family, the covariates (grouped into a
``need`` and a ``spending`` block of named components), the random effects, the years, prior
overrides and sampler settings. Every key is checked on load; a mistake raises
:class:`~csc_bayes.errors.SpecError` naming the file and the key. See ``docs/model.md`` for the
model itself and for the data-scaled default priors (:func:`default_priors`).

Shipped specifications live in the repository's ``models/`` folder (:func:`models_dir`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from csc_bayes.data.grades import add_ilacs_indicator, is_ilacs_indicator
from csc_bayes.data.interactions import add_interaction, parse_interaction_name
from csc_bayes.data.judgements import ROW_SELECTIONS, first_year_in_force, outcome_categories
from csc_bayes.data.lags import LAGGED_NAME, add_lagged, parse_lagged_name
from csc_bayes.data.ratios import add_log_ratio, parse_log_ratio_name
from csc_bayes.data.schema import EXPOSURE, missing_column
from csc_bayes.data.within import add_within, add_year_dev, parse_within_name, parse_year_dev_name
from csc_bayes.errors import SpecError
from csc_bayes.priors import DISTRIBUTIONS, POSITIVE_PARAMS, SUPPORTS, Prior, prior, support_of
from csc_bayes.terms import OPTION_KEYS, DataScale, key_values, kind_of, terms_of
from csc_bayes.terms.censoring import censorable
from csc_bayes.terms.family import FAMILIES, ORDINAL_FAMILIES
from csc_bayes.terms.la_year import LA_YEAR_TERMS  # noqa: F401  (public here since 0.1)
from csc_bayes.terms.year import YEAR_EFFECT_LAWS  # noqa: F401  (public here since 0.1)

#: covariate blocks a specification may use; ``need`` is what "expected need" is built from
#: ``spending`` and ``practice`` (workforce, inspection judgements: how an authority works, not
#: what its children need) and ``leading`` (last year's indicators of this year's change, e.g.
#: ``lag_log_ratio_s47__cin_1``: forecasting, not need) are held at their average in expected
#: need, like every non-need block
BLOCKS = ("need", "spending", "practice", "leading")
#: random-effect grouping factors, in canonical order; ``la`` is required
RANDOM_EFFECTS = ("la", "region", "year")
BACKENDS = ("numpyro", "blackjax", "nutpie", "pymc")
TOP_LEVEL_KEYS = (
    "name",
    "description",
    "outcome",
    "exposure",
    "family",
    "years",
    "covariates",
    "random_effects",
    "rows",
    *OPTION_KEYS,  # the keys the terms own (terms/)
    "priors",
    "sampler",
)

#: lower bound on the data scale s used by the default priors (guards a constant-rate panel)
MIN_DATA_SCALE = 0.1
#: the ``exposure`` of a family without one (an ordered category): no offset
NO_EXPOSURE = "none"
#: the data scale of an ordinal family: the default priors are on the logit scale, s = 1
#: (beta ~ Normal(0, 1) per SD of a covariate, random-effect SDs ~ HalfNormal(1))
ORDINAL_DATA_SCALE = (0.0, 1.0)
#: a column name a spec may use: letters, digits and _, not starting with a digit
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: NUTS tree-depth limit when a spec does not set ``sampler.max_treedepth`` (Stan's default)
DEFAULT_MAX_TREEDEPTH = 10


#: ``sampler.draws = "auto"``: sample in blocks until the gate's R-hat and ESS targets are met
AUTO_DRAWS = "auto"
#: defaults of ``draws = "auto"`` (draws per chain): the first look, the block between looks,
#: and the cap (docs/diagnostics.md, "Draws to target")
DEFAULT_MIN_DRAWS = 1000
DEFAULT_BLOCK_DRAWS = 500
DEFAULT_MAX_DRAWS = 4000
#: the keys that belong to ``draws = "auto"`` only
AUTO_KEYS = ("min_draws", "block_draws", "max_draws")


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings; ``backend`` is one of :data:`BACKENDS` (numpyro is the default).

    ``draws`` is the number of draws per chain, or ``"auto"``: draw blocks of ``block_draws``
    and, once there are ``min_draws`` (or ``max_draws``, if fewer), look after each block, until
    the convergence gate's R-hat and ESS targets are met or ``max_draws`` draws per chain are
    reached (numpyro only; ``csc_bayes.sampling.DrawsToTarget``).
    """

    backend: str = "numpyro"
    draws: int | str = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.85
    seed: int = 20240331
    max_treedepth: int = DEFAULT_MAX_TREEDEPTH
    min_draws: int = DEFAULT_MIN_DRAWS
    block_draws: int = DEFAULT_BLOCK_DRAWS
    max_draws: int = DEFAULT_MAX_DRAWS

    @property
    def auto(self) -> bool:
        """True for ``draws = "auto"``."""
        return self.draws == AUTO_DRAWS

    def as_dict(self) -> dict[str, Any]:
        """The settings; ``max_treedepth`` only when not the default, and the ``draws = "auto"``
        keys only with ``draws = "auto"``, so that the sampler hashes of runs saved before they
        could be set are unchanged."""
        out: dict[str, Any] = {
            "backend": self.backend,
            "draws": self.draws,
            "tune": self.tune,
            "chains": self.chains,
            "target_accept": self.target_accept,
            "seed": self.seed,
        }
        if self.max_treedepth != DEFAULT_MAX_TREEDEPTH:
            out["max_treedepth"] = self.max_treedepth
        if self.auto:
            out.update({k: getattr(self, k) for k in AUTO_KEYS})
        return out


@dataclass(frozen=True)
class ModelSpec:
    """A validated model specification (see the module docstring and ``docs/model.md``).

    ``blocks`` maps block (``need``/``spending``) -> component -> covariate columns, in file
    order; ``priors`` maps a parameter name (``intercept``, ``beta``, ``beta.<covariate>``,
    ``sigma_la``, ``sigma_region``, ``sigma_year``, ``sigma_la_slope``, ``sigma_la_trend``,
    ``sigma_la_year``, ``rho_la_year``, ``phi``) to a user override; parameters not named there
    get the defaults of :func:`default_priors`.

    ``options`` holds the spec keys that the terms own (:data:`csc_bayes.terms.OPTION_KEYS`),
    only those set to other than their default: ``random_slope`` (a covariate with a random
    slope by authority), ``la_trend`` (an LA-specific linear trend in ``year_c = (year -
    centre) / 10``, per decade), ``la_year = "ar1"`` (an LA-by-year deviation that follows a
    stationary AR(1) over the years within each LA) and ``year_effect = "rw1"`` (random-walk
    year effects, so a forecast starts from the last fitted year's level). Each term's module
    documents and validates its key; the properties below read them.
    """

    name: str
    outcome: str
    exposure: str = EXPOSURE
    family: str = "negative_binomial"
    blocks: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    random_effects: tuple[str, ...] = RANDOM_EFFECTS
    options: dict[str, Any] = field(default_factory=dict)
    years: tuple[int, int] = (2013, 2024)
    rows: str = "all"
    priors: dict[str, Prior] = field(default_factory=dict)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    description: str = ""
    source: str = field(default="<dict>", compare=False)

    # ------------------------------------------------------------------ the terms' keys
    def option(self, key: str) -> Any:
        """The value of a term's spec key (its default when the spec does not set it)."""
        return self.options.get(key, kind_of(key).default)

    @property
    def random_slope(self) -> str | None:
        """The covariate with a random slope by authority (``terms/la_slope.py``), or None."""
        return self.option("random_slope")

    @property
    def la_trend(self) -> bool:
        """Whether the model has an LA-specific linear trend (``terms/la_trend.py``)."""
        return self.option("la_trend")

    @property
    def la_year(self) -> str | None:
        """``"ar1"`` for the AR(1) LA-year deviation (``terms/la_year.py``), or None."""
        return self.option("la_year")

    @property
    def year_effect(self) -> str:
        """The law of the year effects, ``"iid"`` or ``"rw1"`` (``terms/year.py``)."""
        return self.option("year_effect")

    def with_options(self, **options: Any) -> ModelSpec:
        """A copy with some of the terms' keys set (validated as in a TOML file), e.g.
        ``spec.with_options(la_trend=True)``; a key set to its default is removed."""
        d = self.to_dict()
        d.update(options)
        d = {k: v for k, v in d.items() if v is not None}
        return ModelSpec.from_dict(d, source=self.source)

    # ------------------------------------------------------------------ family
    @property
    def ordinal(self) -> bool:
        """Whether the outcome is an ordered category (``family = "cumulative_logit"``)."""
        return self.family in ORDINAL_FAMILIES

    @property
    def has_exposure(self) -> bool:
        """Whether eta has an offset log(exposure) (every count family; no ordinal one)."""
        return self.exposure != NO_EXPOSURE

    # ------------------------------------------------------------------ derived names
    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Component -> covariates, flattened over blocks, in file order."""
        return {comp: covs for block in self.blocks.values() for comp, covs in block.items()}

    @property
    def need_groups(self) -> dict[str, tuple[str, ...]]:
        """The components of the ``need`` block (component -> covariates)."""
        return dict(self.blocks.get("need", {}))

    @property
    def covariates(self) -> tuple[str, ...]:
        """All covariates in order; this is the order of the ``covariate`` coordinate."""
        return tuple(c for covs in self.groups.values() for c in covs)

    @property
    def parameters(self) -> tuple[str, ...]:
        """Every parameter that takes a prior in this model (valid keys of ``[priors]``), as
        its terms (:mod:`csc_bayes.terms`) declare them."""
        return tuple(p for term in terms_of(self) for p in term.parameters())

    @property
    def formula(self) -> str:
        """lme4-style formula, e.g. ``cpp ~ idaci + offset(log(population)) + (1|la)``.

        A random slope is written ``(1 + idaci || la)``: lme4's notation for an LA intercept
        and slope that are independent, which is what :mod:`csc_bayes.model` fits. An LA trend
        (``la_trend = true``) is written ``(1 + year_c || la)`` (with a slope too,
        ``(1 + idaci + year_c || la)``), where ``year_c = (year - centre) / 10`` is the year
        in decades from the mean of the fitted years. An AR(1) LA-year term is written
        ``ar1(year | la)`` (this package's notation for an autoregressive term within each LA;
        brms writes ``ar(time = year, gr = la, p = 1)``); random-walk year effects ``rw1(year)``.
        """
        from csc_bayes.formula import format_formula

        return format_formula(self)

    # ------------------------------------------------------------------ identity
    def canonical_dict(self) -> dict[str, Any]:
        """Everything that changes the model (not the name, description or sampler settings).

        Covariate order is included: it fixes the ``covariate`` coordinate of the posterior.
        ``la_trend``, ``la_year`` and ``year_effect`` appear only when set (not default), so
        specs without them keep their earlier hashes.
        """
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "exposure": self.exposure,
            "family": self.family,
            "blocks": [
                [block, [[comp, list(covs)] for comp, covs in comps.items()]]
                for block, comps in self.blocks.items()
            ],
            "random_effects": list(self.random_effects),
            "random_slope": self.random_slope,  # always: in the hash since the first release
            "years": list(self.years),
            "priors": {k: self.priors[k].as_dict() for k in sorted(self.priors)},
        }
        if self.rows != "all":  # only when set, so older specs keep their hashes
            out["rows"] = self.rows
        out.update(self.optional_terms())
        return out

    def optional_terms(self) -> dict[str, Any]:
        """The terms' keys that are set to other than their default, in
        :data:`~csc_bayes.terms.OPTION_KEYS` order. Written into the canonical dict, the plain
        dict and the TOML only when set, so older specs keep their hashes."""
        return {k: self.options[k] for k in OPTION_KEYS if k in self.options}

    def canonical_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`canonical_dict` (sorted keys, no spaces)."""
        return _sha256_json(self.canonical_dict())

    def sampler_hash(self) -> str:
        """sha256 of the canonical JSON of the sampler settings."""
        return _sha256_json(self.sampler.as_dict())

    # ------------------------------------------------------------------ variants
    def with_sampler(self, **overrides: Any) -> ModelSpec:
        """A copy with some sampler settings replaced, e.g. ``spec.with_sampler(draws=200)``."""
        merged = {**self.sampler.as_dict(), **overrides}
        if merged.get("draws") != AUTO_DRAWS:  # a fixed number of draws replaces "auto"
            merged = {k: v for k, v in merged.items() if k not in AUTO_KEYS or k in overrides}
        sampler = _parse_sampler(merged, self.source)
        return replace(self, sampler=sampler)

    def with_priors(self, priors: dict[str, Any]) -> ModelSpec:
        """A copy with some priors set by name, as a ``[priors]`` table would, e.g.
        ``spec.with_priors({"sigma_la": {"sigma": 0.5}})``; each is validated like the TOML."""
        merged = {**{k: p.as_dict() for k, p in self.priors.items()}, **priors}
        return replace(self, priors=_parse_priors(merged, self, self.source))

    def null_spec(self) -> ModelSpec:
        """Same outcome, exposure, family, years, random effects (and their year-effect law),
        LA trend and LA-year term (the terms kept ``in_null_model``); no covariates. The
        priors of the parameters it keeps are kept."""
        options = {k: v for k, v in self.options.items() if kind_of(k).in_null_model}
        null = replace(
            self,
            name=f"{self.outcome}_null",
            description=f"{self.outcome}: random effects only (null model of {self.name})",
            blocks={},
            options=options,
            priors={},
        )
        return replace(null, priors={k: v for k, v in self.priors.items() if k in null.parameters})

    def without_block(self, block: str) -> ModelSpec:
        """The same model without covariate block ``block`` (e.g. ``"practice"``): same outcome,
        years, terms, sampler and the priors of the parameters it keeps; named
        ``<name>_without_<block>``. Refused when the spec has no such block."""
        if block not in self.blocks:
            raise SpecError(
                f"{self.source}: model {self.name!r} has no covariate block {block!r} "
                f"(its blocks: {list(self.blocks) or 'none'})"
            )
        reduced = replace(
            self,
            name=f"{self.name}_without_{block}",
            description=f"{self.description or self.name}, without its {block} covariates",
            blocks={b: comps for b, comps in self.blocks.items() if b != block},
            priors={},
        )
        kept = {k: v for k, v in self.priors.items() if k in reduced.parameters}
        return replace(reduced, priors=kept)

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str = "<dict>") -> ModelSpec:
        """Validate a parsed TOML document; raise :class:`SpecError` naming ``source`` and key."""
        return _parse(d, source)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :meth:`from_dict` turns back into an equal spec."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out.update(
            outcome=self.outcome,
            exposure=self.exposure,
            family=self.family,
            years=list(self.years),
            random_effects=list(self.random_effects),
        )
        if self.rows != "all":
            out["rows"] = self.rows
        out.update(self.optional_terms())
        out["covariates"] = {
            b: {c: list(v) for c, v in comps.items()} for b, comps in self.blocks.items()
        }
        out["priors"] = {k: p.as_dict() for k, p in self.priors.items()}
        out["sampler"] = self.sampler.as_dict()
        return out

    def to_toml(self) -> str:
        """The specification as TOML text (hand formatted; :func:`load_spec` reads it back)."""
        lines = [f"name = {_toml_value(self.name)}"]
        if self.description:
            lines.append(f"description = {_toml_value(self.description)}")
        lines += [
            f"outcome = {_toml_value(self.outcome)}",
            f"exposure = {_toml_value(self.exposure)}",
            f"family = {_toml_value(self.family)}",
            f"years = {_toml_value(list(self.years))}",
            f"random_effects = {_toml_value(list(self.random_effects))}",
        ]
        if self.rows != "all":
            lines.append(f"rows = {_toml_value(self.rows)}")
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.optional_terms().items()]
        for block, comps in self.blocks.items():
            lines += ["", f"[covariates.{block}]"]
            lines += [f"{comp} = {_toml_value(list(covs))}" for comp, covs in comps.items()]
        lines += ["", "[priors]"]
        for key, user_prior in self.priors.items():
            inline = ", ".join(f"{k} = {_toml_value(v)}" for k, v in user_prior.as_dict().items())
            lines.append(f"{_toml_value(key)} = {{ {inline} }}")
        lines += ["", "[sampler]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.sampler.as_dict().items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_formula(
        cls,
        formula: str,
        *,
        name: str | None = None,
        family: str = "negative_binomial",
        years: tuple[int, int] = (2013, 2024),
        priors: dict[str, Any] | None = None,
        sampler: dict[str, Any] | None = None,
        description: str = "",
        source: str = "<formula>",
        rows: str = "all",
        suppressed: str = "censored",
    ) -> ModelSpec:
        """A spec from a formula (grammar: :mod:`csc_bayes.formula`) and the keys it does not
        hold; ``name`` defaults to ``<outcome>_formula``, ``priors`` and ``sampler`` are
        ``[priors]`` / ``[sampler]`` tables, ``rows`` the row selection (``"all"`` or, for an
        ordinal family, ``"first_year_in_force"``), ``suppressed`` what a count known only to lie
        in a range does (``"censored"`` or ``"drop"``, ``terms/censoring.py``). Errors name
        ``source``."""
        from csc_bayes.formula import spec_dict_from_formula

        d = spec_dict_from_formula(
            formula,
            name=name,
            family=family,
            years=years,
            priors=priors,
            sampler=sampler,
            description=description,
            source=source,
        )
        if rows != "all":
            d["rows"] = rows
        if suppressed != "censored":
            d["suppressed"] = suppressed
        return cls.from_dict(d, source=source)


# ====================================================================== loading and discovery
def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate one TOML specification file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such specification file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return ModelSpec.from_dict(doc, source=str(path))


def models_dir() -> Path:
    """Folder of the shipped specifications.

    Looked up in order: the environment variable ``CSC_BAYES_MODELS``; ``csc_bayes/models/``
    beside this module (an installed wheel: the build copies the top-level ``models/`` there);
    ``models/`` at the repository root (a source checkout or an editable install). The current
    directory is not searched: a spec of your own is loaded by its path.
    """
    env = os.environ.get("CSC_BAYES_MODELS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    installed = here / "models"
    if installed.is_dir():
        return installed
    return here.parents[1] / "models"


def list_models() -> list[Path]:
    """The shipped specification files, sorted by name."""
    folder = models_dir()
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


def find_spec(name_or_path: str | Path) -> ModelSpec:
    """Load a specification by model name (``cpp_need``) or by path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.is_file():
        return load_spec(candidate)
    for path in list_models():
        if path.stem == str(name_or_path):
            return load_spec(path)
    available = ", ".join(p.stem for p in list_models()) or "none"
    raise SpecError(
        f"no model named {str(name_or_path)!r} in {models_dir()}; available: {available}"
    )


# ====================================================================== rows and default priors
#: ``lag_<column>_<k>``: the value of a column k years earlier (``lag(column, k)`` in a formula)
LAG_COLUMN = LAGGED_NAME


def with_derived_columns(
    panel: pd.DataFrame,
    columns: Any,
    years: tuple[int, int],
    scales: dict[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """``panel`` with each column of ``columns`` that it lacks and that is derived from ones it
    has: ``lag_<x>_<k>`` (x k years earlier, :mod:`csc_bayes.data.lags`), ``la_mean_<x>`` and
    ``la_dev_<x>`` (the authority's mean of x over ``years`` and the yearly deviation from it,
    :mod:`csc_bayes.data.within`), ``year_dev_<x>`` (x minus its year's mean across the
    panel's authorities, :mod:`csc_bayes.data.within`), ``log_ratio_<a>__<b>`` (log(a / b),
    :mod:`csc_bayes.data.ratios`), the Ofsted indicators ``ilacs_requires_improvement``,
    ``ilacs_inadequate``, ``ilacs_not_yet_inspected`` from ``ilacs_overall``
    (:mod:`csc_bayes.data.grades`), and, when ``scales`` gives the (mean, sd) of both parts (a
    fit's own standardisation), the interaction ``<a>_x_<b>`` = z_a z_b
    (:mod:`csc_bayes.data.interactions`; :func:`select_rows` makes it for the fitted rows).
    The sources may themselves be derived: ``lag_log_ratio_s47__cin_1`` is the ratio first,
    then its lag. A name that cannot be derived is left for :func:`model_columns` to report."""
    for name in columns:
        panel = _derive(panel, name, years)
    for name in columns:
        pair = None if name in panel.columns else parse_interaction_name(name, panel.columns)
        if pair and scales is not None and all(part in scales for part in pair):
            panel = add_interaction(panel, *pair, scales=scales)
    return panel


def _derive(panel: pd.DataFrame, name: str, years: tuple[int, int], depth: int = 0) -> pd.DataFrame:
    """``panel`` with ``name`` added if it is derivable (recursively, a few levels deep)."""
    if name in panel.columns or depth > 4:
        return panel
    lag = parse_lagged_name(name)
    within = parse_within_name(name)
    ratio = parse_log_ratio_name(name)
    year_dev = parse_year_dev_name(name)
    if lag:
        panel = _derive(panel, lag[0], years, depth + 1)
        if lag[0] in panel.columns:
            panel = add_lagged(panel, *lag)
    elif within:
        panel = _derive(panel, within[1], years, depth + 1)
        if within[1] in panel.columns:
            panel = add_within(panel, within[1], years)
    elif year_dev:
        panel = _derive(panel, year_dev, years, depth + 1)  # e.g. year_dev_ilacs_inadequate
        if year_dev in panel.columns:
            panel = add_year_dev(panel, year_dev)
    elif ratio:
        for source in ratio:
            panel = _derive(panel, source, years, depth + 1)
        if all(source in panel.columns for source in ratio):
            panel = add_log_ratio(panel, *ratio)
    elif is_ilacs_indicator(name) and "ilacs_overall" in panel.columns:
        panel = add_ilacs_indicator(panel, name)
    return panel


def interactions_of(spec: ModelSpec) -> dict[str, tuple[str, str]]:
    """The spec's interaction covariates ``<a>_x_<b>`` -> (a, b), both of them covariates of the
    spec (checked when the spec is read)."""
    covs = spec.covariates
    out = {}
    for c in covs:
        pair = parse_interaction_name(c, [x for x in covs if x != c])
        if pair is not None:
            out[c] = pair
    return out


def term_columns(spec: ModelSpec) -> dict[str, bool]:
    """The panel columns the spec's terms need at a fitted row, each with whether it must be
    positive (:meth:`csc_bayes.terms.Term.required_columns`; the stock term's ``lag_cla_1``)."""
    return {c: must for term in terms_of(spec) for c, must in term.required_columns().items()}


def _term_key(spec: ModelSpec, column: str) -> str:
    """The spec key of the term that needs ``column`` (for error messages)."""
    return next(
        (t.key or t.name for t in terms_of(spec) if column in t.required_columns()), "terms"
    )


def model_columns(spec: ModelSpec, panel: pd.DataFrame) -> pd.DataFrame:
    """``panel`` with the spec's lagged covariates added, once every column it names is checked.

    The outcome must be a column of non-negative whole numbers (a count), the exposure a numeric
    column with no negative value, each covariate a numeric column or ``lag_<column>_<k>`` of
    one. A column that is absent or of the wrong kind raises :class:`SpecError` naming the
    spec, the key and the columns that would do.
    """
    panel = with_derived_columns(panel, spec.covariates, spec.years)
    extra = term_columns(spec)
    if extra:
        panel = with_derived_columns(panel, extra, spec.years)
        for term in terms_of(spec):
            panel = term.derive_columns(panel)
    numeric = [c for c in panel.columns if pd.api.types.is_numeric_dtype(panel[c])]
    numeric = [c for c in numeric if c != "year" and not c.endswith("_missing")]
    products = interactions_of(spec)
    columns = [("outcome", spec.outcome)]
    columns += [("exposure", spec.exposure)] if spec.has_exposure else []
    columns += [("covariates", c) for c in spec.covariates if c not in products]
    columns += [(_term_key(spec, c), c) for c in extra]
    for key, col in columns:
        if col not in panel.columns or not pd.api.types.is_numeric_dtype(panel[col]):
            what = "is not a column of the panel" if col not in panel.columns else "is not numeric"
            raise SpecError(
                f"{spec.source}: {key} {col!r} {what}; numeric panel columns: {numeric} "
                "(or lag_<column>_<k>, la_mean_<column>, la_dev_<column>, year_dev_<column> of "
                "one, log_ratio_<a>__<b> of two, or the ILACS indicators "
                "ilacs_requires_improvement, ilacs_inadequate, ilacs_not_yet_inspected; add your "
                "own with data build --extra)"
            )
    y = panel[spec.outcome].dropna().astype(float)
    if spec.ordinal:
        _check_ordered(spec, panel, y)
        return panel
    bad = y[(y < 0) | (y != np.round(y))]
    if len(bad):
        row = panel.loc[bad.index[0]]
        raise SpecError(
            f"{spec.source}: outcome {spec.outcome!r} must be a count (whole numbers >= 0); "
            f"authority {row.get('la_code')} year {row.get('year')} has {bad.iloc[0]}"
        )
    exposure = panel[spec.exposure].dropna().astype(float)
    if (exposure < 0).any():
        row = panel.loc[exposure[exposure < 0].index[0]]
        raise SpecError(
            f"{spec.source}: exposure {spec.exposure!r} must be positive; authority "
            f"{row.get('la_code')} year {row.get('year')} has {row[spec.exposure]}"
        )
    return panel


def _check_ordered(spec: ModelSpec, panel: pd.DataFrame, y: pd.Series) -> None:
    """An ordinal outcome is an ordered category coded 1..K (K >= 2; the data layer's levels
    when it knows the column, :func:`~csc_bayes.data.judgements.outcome_categories`)."""
    labels = outcome_categories(spec.outcome, y)
    bad = y[(y < 1) | (y > len(labels)) | (y != np.round(y))]
    if len(labels) < 2 or len(bad):
        row = panel.loc[bad.index[0]] if len(bad) else None
        where = (
            f"; authority {row.get('la_code')} year {row.get('year')} has {bad.iloc[0]}"
            if row is not None
            else ""
        )
        raise SpecError(
            f"{spec.source}: family {spec.family!r} needs an ordered category outcome coded "
            f"1..K with K >= 2 (levels {list(labels)}); outcome {spec.outcome!r} is not"
            f"{where}"
        )


def select_rows(spec: ModelSpec, panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the panel rows in ``spec.years`` into (fitted, excluded).

    A row is excluded when its outcome, exposure or any covariate is missing (the reason is taken
    from the ``<column>_missing`` companion) or its exposure is zero; an outcome suppressed with
    a known range is kept when the spec censors such counts (``suppressed = "censored"``, the
    default; :func:`csc_bayes.terms.censoring.censorable`). With ``rows =
    "first_year_in_force"`` a row that repeats the judgement of the authority's year before is
    excluded too (:func:`~csc_bayes.data.judgements.first_year_in_force`: one row per
    judgement). ``excluded`` has the identity columns plus ``reason`` (e.g. ``"cpp:
    suppressed; idaci: not_available"``). Both frames are sorted by la_code, year; ``fitted``
    keeps every panel column, and interaction covariates ``<a>_x_<b>`` are computed on it,
    standardised over the fitted rows (:mod:`csc_bayes.data.interactions`).
    """
    panel = model_columns(spec, panel)
    repeat = None
    if spec.rows == "first_year_in_force":  # spells found on the whole panel, not the window
        _, repeat = first_year_in_force(panel, spec.outcome)
    first, last = spec.years
    window = (panel["year"] >= first) & (panel["year"] <= last)
    rows = panel[window]
    order = rows.sort_values(["la_code", "year"]).index
    rows = rows.loc[order].reset_index(drop=True)
    reasons = pd.Series([""] * len(rows), index=rows.index, dtype=object)
    censored = censorable(spec, rows)
    products = interactions_of(spec)
    extra = term_columns(spec)
    exposure = (spec.exposure,) if spec.has_exposure else ()
    plain = [c for c in spec.covariates if c not in products]  # a product's parts are covariates
    for col in (spec.outcome, *exposure, *plain, *extra):
        missing = rows[col].isna().to_numpy()
        if col == spec.outcome:
            missing = missing & ~censored
        companion = missing_column(col)
        known = rows[companion] if companion in rows else pd.Series(None, index=rows.index)
        why = known.astype(object).where(missing, None)
        for i in np.flatnonzero(missing):
            text = f"{col}: {why.iloc[i] if why.iloc[i] is not None else 'missing'}"
            reasons.iloc[i] = f"{reasons.iloc[i]}; {text}" if reasons.iloc[i] else text
    positive = [*exposure, *(c for c, must in extra.items() if must)]
    for col in positive:
        zero = rows[col].fillna(1).astype(float).le(0).to_numpy()
        for i in np.flatnonzero(zero):
            text = f"{col}: zero"
            reasons.iloc[i] = f"{reasons.iloc[i]}; {text}" if reasons.iloc[i] else text
    if repeat is not None:
        again = repeat.loc[order].reset_index(drop=True)
        for i in np.flatnonzero(again.notna().to_numpy()):
            text = f"repeat: {again.iloc[i]}"
            reasons.iloc[i] = f"{reasons.iloc[i]}; {text}" if reasons.iloc[i] else text
    bad = reasons.ne("").to_numpy()
    ident = [c for c in ("la_code", "ons_code", "la_name", "region", "year") if c in rows]
    excluded = rows.loc[bad, ident].assign(reason=reasons[bad].astype("string"))
    fitted = rows.loc[~bad].reset_index(drop=True)
    for a, b in products.values():
        fitted = add_interaction(fitted, a, b)  # standardised over the fitted rows
    return fitted, excluded.reset_index(drop=True)


def data_scale(spec: ModelSpec, fitted: pd.DataFrame) -> tuple[float, float]:
    """(pooled log rate, s): log(sum y / sum exposure) and the SD of log((y + 0.5) / exposure).

    A term's fixed part of eta (:meth:`~csc_bayes.terms.Term.data_offset`) multiplies the
    exposure: with the stock term these are the log growth from last year's count and its SD.

    s is floored at :data:`MIN_DATA_SCALE`. These set the default priors' location and scale.
    Only rows with an observed count count (an interval-censored row has none).
    """
    if fitted.empty:
        raise SpecError(f"{spec.source}: no rows to fit for {spec.outcome} in years {spec.years}")
    if spec.ordinal:
        return ORDINAL_DATA_SCALE
    fitted = fitted[fitted[spec.outcome].notna()]
    if fitted.empty:
        raise SpecError(
            f"{spec.source}: every fitted row of {spec.outcome} in years {spec.years} is censored"
        )
    y = fitted[spec.outcome].to_numpy(dtype=float)
    exposure = fitted[spec.exposure].to_numpy(dtype=float)
    for term in terms_of(spec):  # a fixed part of eta (the stock term's last year's count)
        offset = term.data_offset(fitted)
        if offset is not None:
            exposure = exposure * np.exp(offset)
    pooled = math.log(max(y.sum(), 0.5) / exposure.sum())
    s = float(np.std(np.log((y + 0.5) / exposure))) if len(y) > 1 else 0.0
    return pooled, max(s, MIN_DATA_SCALE)


def _default_dists(spec: ModelSpec) -> dict[str, str]:
    """The distribution of each parameter's default prior (a partial override keeps it; a full
    one must have the same support)."""
    return {
        name: p.dist
        for term in terms_of(spec)
        for name, p in term.default_priors(DataScale(0.0, 1.0)).items()
    }


def resolve_priors(spec: ModelSpec, fitted: pd.DataFrame) -> dict[str, Prior]:
    """The prior of every parameter in ``spec.parameters``, user overrides applied.

    Each term gives its data-scaled defaults (``s`` and the pooled log rate from
    :func:`data_scale`): intercept ~ Normal(pooled log rate, 2.5 s); beta ~ Normal(0, s) per SD
    of a covariate; sigma_la, sigma_region, sigma_year, sigma_la_slope, sigma_la_year ~
    HalfNormal(s); phi ~ Gamma(2, 0.02); sigma_la_trend ~ HalfNormal(0.5) per decade and
    rho_la_year ~ Beta(2, 2) (fixed). A user ``beta`` applies to every covariate,
    ``beta.<cov>`` to one (and wins over ``beta``). The model uses the ``beta.<cov>`` entries;
    ``beta`` is listed for :func:`default_priors`.
    """
    scale = DataScale(*data_scale(spec, fitted))
    defaults = {k: v for term in terms_of(spec) for k, v in term.default_priors(scale).items()}
    out = {}
    for name in spec.parameters:
        base = out["beta"] if name.startswith("beta.") else defaults[name]
        user = spec.priors.get(name)
        out[name] = base if user is None else _merge(base, user)
    return out


def default_priors(spec: ModelSpec, panel: pd.DataFrame) -> pd.DataFrame:
    """Every prior the user can set, with the value used (brms' ``default_prior`` style).

    Columns: ``parameter`` (the ``[priors]`` key), ``dist``, ``params`` (e.g.
    ``"mu=-5.47, sigma=0.9"``), ``source`` (``default`` or ``user``).
    """
    fitted, _ = select_rows(spec, panel)
    rows = []
    for name, used in resolve_priors(spec, fitted).items():
        by_user = name in spec.priors or (name.startswith("beta.") and "beta" in spec.priors)
        rows.append(
            {
                "parameter": name,
                "dist": used.dist,
                "params": ", ".join(f"{k}={v:.4g}" for k, v in used.params),
                "source": "user" if by_user else "default",
            }
        )
    return pd.DataFrame(rows, columns=["parameter", "dist", "params", "source"])


# ====================================================================== parsing helpers
def _parse(d: dict[str, Any], source: str) -> ModelSpec:
    if not isinstance(d, dict):
        raise SpecError(f"{source}: a specification must be a table, got {type(d).__name__}")
    _no_unknown(d, TOP_LEVEL_KEYS, source, prefix="")
    for key in ("name", "outcome"):
        if key not in d:
            raise SpecError(f"{source}: missing required key {key!r}")
    name = _typed(d["name"], str, source, "name")
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise SpecError(f"{source}: key 'name' must be letters, digits, _ or -, got {name!r}")
    description = _typed(d.get("description", ""), str, source, "description")
    outcome = _column(d["outcome"], source, "outcome")
    family = _choice(d.get("family", "negative_binomial"), FAMILIES, source, "family")
    if family in ORDINAL_FAMILIES:
        exposure = d.get("exposure", NO_EXPOSURE)
        if exposure != NO_EXPOSURE:
            raise SpecError(
                f"{source}: key 'exposure': family {family!r} models an ordered category, not a "
                f"count per head, and takes no exposure (offset); leave 'exposure' out or set "
                f"it to {NO_EXPOSURE!r}, got {exposure!r}"
            )
    else:
        exposure = _column(d.get("exposure", EXPOSURE), source, "exposure")
        if exposure == NO_EXPOSURE:
            raise SpecError(
                f"{source}: key 'exposure': family {family!r} is a count and needs an exposure "
                "column (e.g. 'population')"
            )
    rows_selection = _choice(d.get("rows", "all"), ROW_SELECTIONS, source, "rows")
    if rows_selection != "all" and family not in ORDINAL_FAMILIES:
        raise SpecError(
            f"{source}: key 'rows': {rows_selection!r} selects one row per judgement of an "
            f"ordered category outcome; it needs an ordinal family {list(ORDINAL_FAMILIES)}, "
            f"got family {family!r}"
        )

    years = d.get("years", [2013, 2024])
    if (
        not isinstance(years, list)
        or len(years) != 2
        or not all(isinstance(y, int) and not isinstance(y, bool) for y in years)
    ):
        raise SpecError(
            f"{source}: key 'years' must be [first, last] (two integers), got {years!r}"
        )
    if not 2000 <= years[0] <= years[1] <= 2100:
        raise SpecError(f"{source}: key 'years' must satisfy 2000 <= first <= last, got {years}")

    blocks = _parse_blocks(d.get("covariates", {}), source)
    covariates = [c for comps in blocks.values() for covs in comps.values() for c in covs]
    for cov in covariates:
        others = [c for c in covariates if c != cov]
        pair = parse_interaction_name(cov, None)
        if pair is not None and parse_interaction_name(cov, others) is None:
            raise SpecError(
                f"{source}: covariate {cov!r} is an interaction {pair[0]!r} x {pair[1]!r} "
                "(<a>_x_<b>); put both main effects among the covariates too (an interaction "
                "without its main effects is not interpretable)"
            )

    effects = _typed(d.get("random_effects", list(RANDOM_EFFECTS)), list, source, "random_effects")
    for g in effects:
        _choice(g, RANDOM_EFFECTS, source, "random_effects")
    if len(set(effects)) != len(effects):
        raise SpecError(f"{source}: key 'random_effects' repeats an entry: {effects}")
    if "la" not in effects:
        raise SpecError(f"{source}: key 'random_effects' must include 'la', got {effects}")
    effects = tuple(g for g in RANDOM_EFFECTS if g in effects)

    options = {}
    model = {"covariates": covariates, "random_effects": effects}
    for key in OPTION_KEYS:  # each term validates its own key
        value = d.get(key, kind_of(key).default)
        allowed = key_values(key)
        if allowed is not None and value != kind_of(key).default and value not in allowed:
            raise SpecError(
                f"{source}: key {key!r}: unknown value {value!r}; expected one of {list(allowed)}"
            )
        kind = kind_of(key, value)
        value = kind.parse_key(value, source=source, model=model)
        if value != kind.default:
            options[key] = value

    spec = ModelSpec(
        name=name,
        outcome=outcome,
        exposure=exposure,
        family=family,
        blocks=blocks,
        random_effects=effects,
        options=options,
        years=(years[0], years[1]),
        rows=rows_selection,
        description=description,
        sampler=_parse_sampler(d.get("sampler", {}), source),
        source=source,
    )
    return replace(spec, priors=_parse_priors(d.get("priors", {}), spec, source))


def _parse_blocks(raw: Any, source: str) -> dict[str, dict[str, tuple[str, ...]]]:
    raw = _typed(raw, dict, source, "covariates")
    _no_unknown(raw, BLOCKS, source, prefix="covariates.")
    seen: dict[str, str] = {}
    blocks: dict[str, dict[str, tuple[str, ...]]] = {}
    for block, comps in raw.items():
        comps = _typed(comps, dict, source, f"covariates.{block}")
        blocks[block] = {}
        for comp, covs in comps.items():
            key = f"covariates.{block}.{comp}"
            if isinstance(covs, str):
                covs = [covs]
            covs = _typed(covs, list, source, key)
            if not covs:
                raise SpecError(f"{source}: key {key!r} lists no covariates")
            for cov in covs:
                _column(cov, source, key)
                if cov in seen:
                    raise SpecError(
                        f"{source}: key {key!r}: covariate {cov!r} already used in {seen[cov]!r}"
                    )
                seen[cov] = key
            blocks[block][comp] = tuple(covs)
    return blocks


def _parse_sampler(raw: Any, source: str) -> SamplerSettings:
    raw = _typed(raw, dict, source, "sampler")
    base = {
        **SamplerSettings().as_dict(),
        "max_treedepth": DEFAULT_MAX_TREEDEPTH,
        **{k: getattr(SamplerSettings(), k) for k in AUTO_KEYS},
    }
    _no_unknown(raw, tuple(base), source, prefix="sampler.")
    merged = {**base, **raw}
    backend = _choice(merged["backend"], BACKENDS, source, "sampler.backend")
    auto = merged["draws"] == AUTO_DRAWS
    if isinstance(merged["draws"], str) and not auto:
        raise SpecError(
            f"{source}: key 'sampler.draws' must be an integer or \"auto\", got {merged['draws']!r}"
        )
    given = [k for k in AUTO_KEYS if k in raw]
    if given and not auto:
        raise SpecError(
            f"{source}: key 'sampler.{given[0]}' applies only with sampler.draws = \"auto\" "
            f"(draws is {merged['draws']!r})"
        )
    if auto and backend != "numpyro":
        raise SpecError(
            f'{source}: key \'sampler.draws\' = "auto" needs backend = "numpyro" (the one '
            f"that can continue a run), got backend {backend!r}"
        )
    ints: dict[str, Any] = {"draws": AUTO_DRAWS} if auto else {}
    common = ("tune", "chains", "seed", "max_treedepth")
    keys = (*common, *AUTO_KEYS) if auto else ("draws", *common)
    for key in keys:
        value = merged[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecError(f"{source}: key 'sampler.{key}' must be an integer, got {value!r}")
        minimum = 0 if key in ("tune", "seed") else 1
        if value < minimum:
            raise SpecError(f"{source}: key 'sampler.{key}' must be >= {minimum}, got {value}")
        if key == "max_treedepth" and value > 15:
            raise SpecError(
                f"{source}: key 'sampler.max_treedepth' must be <= 15 (2^15 leapfrog steps a "
                f"draw), got {value}"
            )
        ints[key] = value
    target = merged["target_accept"]
    if not isinstance(target, (int, float)) or isinstance(target, bool) or not 0 < target < 1:
        raise SpecError(
            f"{source}: key 'sampler.target_accept' must be a number in (0, 1), got {target!r}"
        )
    return SamplerSettings(backend=backend, target_accept=float(target), **ints)


def _parse_priors(raw: Any, spec: ModelSpec, source: str) -> dict[str, Prior]:
    raw = _typed(raw, dict, source, "priors")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        # unquoted TOML `beta.idaci = {...}` arrives as {"beta": {"idaci": {...}}}
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    priors = {}
    default_dists = _default_dists(spec)
    for key, value in flat.items():
        where = f"priors.{key}"
        if key.startswith("beta.") and key[5:] not in spec.covariates:
            raise SpecError(
                f"{source}: key {where!r}: {key[5:]!r} is not a covariate of this model "
                f"{list(spec.covariates)}"
            )
        if key not in spec.parameters:
            raise SpecError(
                f"{source}: key {where!r}: this model has no parameter {key!r}; "
                f"priors can be set for {list(spec.parameters)}"
            )
        value = _typed(value, dict, source, where)
        dist = value.get("dist")
        default_dist = default_dists[key]
        allowed = SUPPORTS[support_of(default_dist)]
        if dist is not None:
            _choice(dist, allowed, source, f"{where}.dist", what="distribution")
            expected = DISTRIBUTIONS[dist]
            missing = [p for p in expected if p not in value]
            if missing:
                raise SpecError(f"{source}: key {where!r}: {dist} needs {missing}")
        else:
            expected = DISTRIBUTIONS[default_dist]
        params = []
        for p, v in value.items():
            if p == "dist":
                continue
            if p not in expected:
                raise SpecError(
                    f"{source}: unknown key '{where}.{p}'; expected one of {sorted(expected)}"
                )
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise SpecError(f"{source}: key '{where}.{p}' must be a finite number, got {v!r}")
            if p in POSITIVE_PARAMS and v <= 0:
                raise SpecError(f"{source}: key '{where}.{p}' must be positive, got {v}")
            params.append((p, float(v)))
        if not params:
            raise SpecError(f"{source}: key {where!r} sets no prior parameter")
        order = DISTRIBUTIONS[dist or default_dist]
        priors[key] = Prior(dist, tuple(sorted(params, key=lambda kv: order.index(kv[0]))))
    return priors


def _merge(default: Prior, user: Prior) -> Prior:
    """A user prior with its distribution replaces the default; a partial one overrides params.

    A partial override was checked against the default's distribution when it was parsed.
    """
    if user.dist is not None:
        return user
    kwargs = {**default.kwargs, **user.kwargs}
    return prior(default.dist, **kwargs)


def check_known_keys(
    d: dict[str, Any],
    known: tuple[str, ...],
    source: str,
    *,
    prefix: str = "",
    error: type[Exception] = SpecError,
) -> None:
    """Raise ``error`` naming ``source`` and the first key of ``d`` not in ``known``."""
    for key in d:
        if key not in known:
            raise error(f"{source}: unknown key '{prefix}{key}'; expected one of {list(known)}")


def check_type(
    value: Any, kind: type, source: str, key: str, *, error: type[Exception] = SpecError
) -> Any:
    """``value`` if it is a ``kind`` (booleans are not numbers here), else raise ``error``."""
    if not isinstance(value, kind) or isinstance(value, bool):
        raise error(
            f"{source}: key {key!r} must be a {kind.__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _no_unknown(d: dict[str, Any], known: tuple[str, ...], source: str, *, prefix: str) -> None:
    check_known_keys(d, known, source, prefix=prefix)


def _typed(value: Any, kind: type, source: str, key: str) -> Any:
    return check_type(value, kind, source, key)


def _choice(value: Any, allowed: tuple[str, ...], source: str, key: str, *, what: str = "value"):
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(
            f"{source}: key {key!r}: unknown {what} {value!r}; expected one of {list(allowed)}"
        )
    return value


def _column(value: Any, source: str, key: str) -> str:
    """A panel column name (checked against the panel when the model is built)."""
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise SpecError(
            f"{source}: key {key!r}: {value!r} is not a column name (letters, digits and _, "
            "not starting with a digit)"
        )
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _sha256_json(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()
