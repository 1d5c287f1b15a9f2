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
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from csc_bayes.data.schema import COVARIATES, EXPOSURE, OUTCOMES, missing_column
from csc_bayes.errors import SpecError

FAMILIES = ("negative_binomial", "poisson")
#: covariate blocks a specification may use; ``need`` is what "expected need" is built from
BLOCKS = ("need", "spending")
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
    "random_slope",
    "la_trend",
    "la_year",
    "year_effect",
    "priors",
    "sampler",
)

#: prior distributions and their parameters, in the order they are written
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "halfnormal": ("sigma",),
    "exponential": ("lam",),
    "gamma": ("alpha", "beta"),
    "lognormal": ("mu", "sigma"),
    "beta": ("alpha", "beta"),
}
#: LA-year terms a specification may add (``la_year = "ar1"``)
LA_YEAR_TERMS = ("ar1",)
#: laws of the common year effects: exchangeable (default) or a first-order random walk
YEAR_EFFECT_LAWS = ("iid", "rw1")
#: parameters that must be strictly positive for each distribution
_POSITIVE_PARAMS = {"sigma", "nu", "lam", "alpha", "beta"}
_REAL_LINE_DISTS = ("normal", "student_t")
_POSITIVE_DISTS = ("halfnormal", "exponential", "gamma", "lognormal")
_UNIT_INTERVAL_DISTS = ("beta",)

#: default sigma_la_trend prior: HalfNormal(0.5) on the log rate per decade of the LA trend,
#: i.e. an LA's drift relative to the common year effects is a priori within about +-1 log
#: unit (a factor of e) per decade for 95% of authorities; fixed, not data-scaled
LA_TREND_PRIOR = {"sigma": 0.5}
#: default rho_la_year prior: Beta(2, 2), the lag-one correlation of an LA's year-to-year
#: deviations; it keeps rho off 1, where the AR(1) covariance matrix is singular, and off 0,
#: where the term is iid noise beside the negative binomial overdispersion
RHO_LA_YEAR_PRIOR = {"alpha": 2.0, "beta": 2.0}
#: default phi prior: Gamma(2, 0.02), mean 100, 90% interval about (18, 237)
PHI_PRIOR = {"alpha": 2.0, "beta": 0.02}
#: lower bound on the data scale s used by the default priors (guards a constant-rate panel)
MIN_DATA_SCALE = 0.1


@dataclass(frozen=True)
class Prior:
    """A prior: distribution name (one of :data:`DISTRIBUTIONS`) and its parameters.

    ``dist`` is None for a partial override such as ``{ sigma = 0.5 }``: the parameter's default
    distribution is kept and only the given parameters replace the data-scaled defaults.
    """

    dist: str | None
    params: tuple[tuple[str, float], ...]

    @property
    def kwargs(self) -> dict[str, float]:
        return dict(self.params)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.dist is None else {"dist": self.dist}
        out.update(self.params)
        return out


#: NUTS tree-depth limit when a spec does not set ``sampler.max_treedepth`` (Stan's default)
DEFAULT_MAX_TREEDEPTH = 10


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings; ``backend`` is one of :data:`BACKENDS` (numpyro is the default)."""

    backend: str = "numpyro"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.85
    seed: int = 20240331
    max_treedepth: int = DEFAULT_MAX_TREEDEPTH

    def as_dict(self) -> dict[str, Any]:
        """The settings; ``max_treedepth`` only when not the default, so that the sampler
        hashes of runs saved before it could be set are unchanged."""
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
        return out


@dataclass(frozen=True)
class ModelSpec:
    """A validated model specification (see the module docstring and ``docs/model.md``).

    ``blocks`` maps block (``need``/``spending``) -> component -> covariate columns, in file
    order; ``priors`` maps a parameter name (``intercept``, ``beta``, ``beta.<covariate>``,
    ``sigma_la``, ``sigma_region``, ``sigma_year``, ``sigma_la_slope``, ``sigma_la_trend``,
    ``sigma_la_year``, ``rho_la_year``, ``phi``) to a user override; parameters not named there
    get the defaults of :func:`default_priors`. ``la_trend`` adds an LA-specific linear trend in
    ``year_c = (year - centre) / 10`` (per decade; centre = mean of the fitted years).
    ``la_year = "ar1"`` adds an LA-by-year deviation that follows a stationary AR(1) process
    over the years within each LA (marginal SD ``sigma_la_year``, lag-one correlation
    ``rho_la_year``). ``year_effect = "rw1"`` makes the common year effects a random walk
    (``sigma_year`` is then the SD of one year's step), so a forecast starts from the last
    fitted year's level instead of the average year's.
    """

    name: str
    outcome: str
    exposure: str = EXPOSURE
    family: str = "negative_binomial"
    blocks: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    random_effects: tuple[str, ...] = RANDOM_EFFECTS
    random_slope: str | None = None
    la_trend: bool = False
    la_year: str | None = None
    year_effect: str = "iid"
    years: tuple[int, int] = (2013, 2024)
    priors: dict[str, Prior] = field(default_factory=dict)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    description: str = ""
    source: str = field(default="<dict>", compare=False)

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
        """Every parameter that takes a prior in this model (valid keys of ``[priors]``)."""
        names = ["intercept"]
        if self.covariates:
            names += ["beta", *(f"beta.{c}" for c in self.covariates)]
        names += [f"sigma_{g}" for g in self.random_effects]
        if self.random_slope is not None:
            names.append("sigma_la_slope")
        if self.la_trend:
            names.append("sigma_la_trend")
        if self.la_year is not None:
            names += ["sigma_la_year", "rho_la_year"]
        if self.family == "negative_binomial":
            names.append("phi")
        return tuple(names)

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
        terms = list(self.covariates) or ["1"]
        terms.append(f"offset(log({self.exposure}))")
        for g in self.random_effects:
            la_terms = [t for t in (self.random_slope, "year_c" if self.la_trend else None) if t]
            if g == "la" and la_terms:
                terms.append(f"(1 + {' + '.join(la_terms)} || la)")
            elif g == "year" and self.year_effect == "rw1":
                terms.append("rw1(year)")
            else:
                terms.append(f"(1|{g})")
        if self.la_year == "ar1":
            terms.append("ar1(year | la)")
        return f"{self.outcome} ~ " + " + ".join(terms)

    # ------------------------------------------------------------------ identity
    def canonical_dict(self) -> dict[str, Any]:
        """Everything that changes the model (not the name, description or sampler settings).

        Covariate order is included: it fixes the ``covariate`` coordinate of the posterior.
        ``la_trend``, ``la_year`` and ``year_effect`` appear only when set (not default), so
        specs without them keep their earlier hashes.
        """
        out = {
            "outcome": self.outcome,
            "exposure": self.exposure,
            "family": self.family,
            "blocks": [
                [block, [[comp, list(covs)] for comp, covs in comps.items()]]
                for block, comps in self.blocks.items()
            ],
            "random_effects": list(self.random_effects),
            "random_slope": self.random_slope,
            "years": list(self.years),
            "priors": {k: self.priors[k].as_dict() for k in sorted(self.priors)},
        }
        out.update(self.optional_terms())
        return out

    def optional_terms(self) -> dict[str, Any]:
        """The optional model keys that are set: ``la_trend``, ``la_year``, ``year_effect``
        (only when not the default), in that order. Written into the canonical dict, the
        plain dict and the TOML only when set, so older specs keep their hashes."""
        out: dict[str, Any] = {}
        if self.la_trend:
            out["la_trend"] = True
        if self.la_year is not None:
            out["la_year"] = self.la_year
        if self.year_effect != "iid":
            out["year_effect"] = self.year_effect
        return out

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
        sampler = _parse_sampler(merged, self.source)
        return replace(self, sampler=sampler)

    def null_spec(self) -> ModelSpec:
        """Same outcome, exposure, family, years, random effects (and their year-effect law),
        LA trend and LA-year term; no covariates."""
        keep = {k: v for k, v in self.priors.items() if k in ("intercept", "phi", "rho_la_year")}
        keep.update({k: v for k, v in self.priors.items() if k.startswith("sigma_")})
        keep.pop("sigma_la_slope", None)
        return replace(
            self,
            name=f"{self.outcome}_null",
            description=f"{self.outcome}: random effects only (null model of {self.name})",
            blocks={},
            random_slope=None,
            priors=keep,
        )

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
        if self.random_slope is not None:
            out["random_slope"] = self.random_slope
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
        if self.random_slope is not None:
            lines.append(f"random_slope = {_toml_value(self.random_slope)}")
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.optional_terms().items()]
        for block, comps in self.blocks.items():
            lines += ["", f"[covariates.{block}]"]
            lines += [f"{comp} = {_toml_value(list(covs))}" for comp, covs in comps.items()]
        lines += ["", "[priors]"]
        for key, prior in self.priors.items():
            inline = ", ".join(f"{k} = {_toml_value(v)}" for k, v in prior.as_dict().items())
            lines.append(f"{_toml_value(key)} = {{ {inline} }}")
        lines += ["", "[sampler]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in self.sampler.as_dict().items()]
        return "\n".join(lines) + "\n"


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
def select_rows(spec: ModelSpec, panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the panel rows in ``spec.years`` into (fitted, excluded).

    A row is excluded when its outcome, exposure or any covariate is missing (the reason is taken
    from the ``<column>_missing`` companion) or its exposure is zero. ``excluded`` has the
    identity columns plus ``reason`` (e.g. ``"cpp: suppressed; idaci: not_available"``).
    Both frames are sorted by la_code, year; ``fitted`` keeps every panel column.
    """
    first, last = spec.years
    rows = panel[(panel["year"] >= first) & (panel["year"] <= last)]
    rows = rows.sort_values(["la_code", "year"]).reset_index(drop=True)
    reasons = pd.Series([""] * len(rows), index=rows.index, dtype=object)
    for col in (spec.outcome, spec.exposure, *spec.covariates):
        missing = rows[col].isna().to_numpy()
        why = rows[missing_column(col)].astype(object).where(missing, None)
        for i in np.flatnonzero(missing):
            text = f"{col}: {why.iloc[i] if why.iloc[i] is not None else 'missing'}"
            reasons.iloc[i] = f"{reasons.iloc[i]}; {text}" if reasons.iloc[i] else text
    zero = rows[spec.exposure].fillna(1).astype(float).le(0).to_numpy()
    for i in np.flatnonzero(zero):
        text = f"{spec.exposure}: zero"
        reasons.iloc[i] = f"{reasons.iloc[i]}; {text}" if reasons.iloc[i] else text
    bad = reasons.ne("").to_numpy()
    ident = [c for c in ("la_code", "ons_code", "la_name", "region", "year") if c in rows]
    excluded = rows.loc[bad, ident].assign(reason=reasons[bad].astype("string"))
    return rows.loc[~bad].reset_index(drop=True), excluded.reset_index(drop=True)


def data_scale(spec: ModelSpec, fitted: pd.DataFrame) -> tuple[float, float]:
    """(pooled log rate, s): log(sum y / sum exposure) and the SD of log((y + 0.5) / exposure).

    s is floored at :data:`MIN_DATA_SCALE`. These set the default priors' location and scale.
    """
    if fitted.empty:
        raise SpecError(f"{spec.source}: no rows to fit for {spec.outcome} in years {spec.years}")
    y = fitted[spec.outcome].to_numpy(dtype=float)
    exposure = fitted[spec.exposure].to_numpy(dtype=float)
    pooled = math.log(max(y.sum(), 0.5) / exposure.sum())
    s = float(np.std(np.log((y + 0.5) / exposure))) if len(y) > 1 else 0.0
    return pooled, max(s, MIN_DATA_SCALE)


def _default_dist(parameter: str) -> str:
    """Distribution a parameter's default prior uses (and a partial override keeps)."""
    if parameter == "intercept" or parameter.split(".")[0] == "beta":
        return "normal"
    if parameter == "rho_la_year":
        return "beta"
    return "gamma" if parameter == "phi" else "halfnormal"


def resolve_priors(spec: ModelSpec, fitted: pd.DataFrame) -> dict[str, Prior]:
    """The prior of every parameter in ``spec.parameters``, user overrides applied.

    Defaults (``s`` and the pooled log rate from :func:`data_scale`):
    intercept ~ Normal(pooled log rate, 2.5 s); beta ~ Normal(0, s) per SD of a covariate;
    sigma_la, sigma_region, sigma_year, sigma_la_slope ~ HalfNormal(s); phi ~ Gamma(2, 0.02);
    sigma_la_trend ~ HalfNormal(0.5) per decade (fixed, :data:`LA_TREND_PRIOR`);
    sigma_la_year ~ HalfNormal(s); rho_la_year ~ Beta(2, 2) (fixed, :data:`RHO_LA_YEAR_PRIOR`).
    A user ``beta`` applies to every covariate, ``beta.<cov>`` to one (and wins over ``beta``).
    The model uses the ``beta.<cov>`` entries; ``beta`` is listed for :func:`default_priors`.
    """
    pooled, s = data_scale(spec, fitted)
    defaults = {
        "intercept": _prior("normal", mu=pooled, sigma=2.5 * s),
        "beta": _prior("normal", mu=0.0, sigma=s),
        "phi": _prior("gamma", **PHI_PRIOR),
        "sigma_la_trend": _prior("halfnormal", **LA_TREND_PRIOR),
        "rho_la_year": _prior("beta", **RHO_LA_YEAR_PRIOR),
    }
    out = {}
    for name in spec.parameters:
        if name.startswith("beta."):
            base = out["beta"]
        else:
            base = defaults.get(name, _prior("halfnormal", sigma=s))
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
    for name, prior in resolve_priors(spec, fitted).items():
        by_user = name in spec.priors or (name.startswith("beta.") and "beta" in spec.priors)
        rows.append(
            {
                "parameter": name,
                "dist": prior.dist,
                "params": ", ".join(f"{k}={v:.4g}" for k, v in prior.params),
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
    outcome = _choice(d["outcome"], OUTCOMES, source, "outcome")
    exposure = _choice(d.get("exposure", EXPOSURE), (EXPOSURE,), source, "exposure")
    family = _choice(d.get("family", "negative_binomial"), FAMILIES, source, "family")

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

    effects = _typed(d.get("random_effects", list(RANDOM_EFFECTS)), list, source, "random_effects")
    for g in effects:
        _choice(g, RANDOM_EFFECTS, source, "random_effects")
    if len(set(effects)) != len(effects):
        raise SpecError(f"{source}: key 'random_effects' repeats an entry: {effects}")
    if "la" not in effects:
        raise SpecError(f"{source}: key 'random_effects' must include 'la', got {effects}")
    effects = tuple(g for g in RANDOM_EFFECTS if g in effects)

    slope = d.get("random_slope")
    if slope is not None:
        _typed(slope, str, source, "random_slope")
        if slope not in covariates:
            raise SpecError(
                f"{source}: key 'random_slope' = {slope!r} is not one of the model's covariates "
                f"{covariates}"
            )

    la_trend = d.get("la_trend", False)
    if not isinstance(la_trend, bool):
        raise SpecError(
            f"{source}: key 'la_trend' must be true or false, got {type(la_trend).__name__} "
            f"{la_trend!r}"
        )

    la_year = d.get("la_year")
    if la_year is not None:
        _choice(la_year, LA_YEAR_TERMS, source, "la_year", what="LA-year term")
    year_effect = _choice(d.get("year_effect", "iid"), YEAR_EFFECT_LAWS, source, "year_effect")
    if year_effect != "iid" and "year" not in effects:
        raise SpecError(
            f"{source}: key 'year_effect' = {year_effect!r} needs 'year' in random_effects"
        )

    spec = ModelSpec(
        name=name,
        outcome=outcome,
        exposure=exposure,
        family=family,
        blocks=blocks,
        random_effects=effects,
        random_slope=slope,
        la_trend=la_trend,
        la_year=la_year,
        year_effect=year_effect,
        years=(years[0], years[1]),
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
                _choice(cov, COVARIATES, source, key, what="covariate")
                if cov in seen:
                    raise SpecError(
                        f"{source}: key {key!r}: covariate {cov!r} already used in {seen[cov]!r}"
                    )
                seen[cov] = key
            blocks[block][comp] = tuple(covs)
    return blocks


def _parse_sampler(raw: Any, source: str) -> SamplerSettings:
    raw = _typed(raw, dict, source, "sampler")
    base = {**SamplerSettings().as_dict(), "max_treedepth": DEFAULT_MAX_TREEDEPTH}
    _no_unknown(raw, tuple(base), source, prefix="sampler.")
    merged = {**base, **raw}
    backend = _choice(merged["backend"], BACKENDS, source, "sampler.backend")
    ints = {}
    for key in ("draws", "tune", "chains", "seed", "max_treedepth"):
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
        if key in ("intercept", "beta") or key.startswith("beta."):
            allowed = _REAL_LINE_DISTS
        elif key == "rho_la_year":
            allowed = _UNIT_INTERVAL_DISTS
        else:
            allowed = _POSITIVE_DISTS
        if dist is not None:
            _choice(dist, allowed, source, f"{where}.dist", what="distribution")
            expected = DISTRIBUTIONS[dist]
            missing = [p for p in expected if p not in value]
            if missing:
                raise SpecError(f"{source}: key {where!r}: {dist} needs {missing}")
        else:
            expected = DISTRIBUTIONS[_default_dist(key)]
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
            if p in _POSITIVE_PARAMS and v <= 0:
                raise SpecError(f"{source}: key '{where}.{p}' must be positive, got {v}")
            params.append((p, float(v)))
        if not params:
            raise SpecError(f"{source}: key {where!r} sets no prior parameter")
        order = DISTRIBUTIONS[dist or _default_dist(key)]
        priors[key] = Prior(dist, tuple(sorted(params, key=lambda kv: order.index(kv[0]))))
    return priors


def _merge(default: Prior, user: Prior) -> Prior:
    """A user prior with its distribution replaces the default; a partial one overrides params.

    A partial override was checked against the default's distribution when it was parsed.
    """
    if user.dist is not None:
        return user
    kwargs = {**default.kwargs, **user.kwargs}
    return _prior(default.dist, **kwargs)


def _prior(dist: str, **params: float) -> Prior:
    return Prior(dist, tuple((p, float(params[p])) for p in DISTRIBUTIONS[dist]))


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
