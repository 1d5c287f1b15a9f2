"""The convergence gate: may the draws of a fit be used for answers?

``check_convergence(idata)`` applies these checks (thresholds in :class:`GateThresholds`, reasons
and advice in ``docs/diagnostics.md``) and returns a :class:`GateResult`:

=================  ==============================================================  ===========
reason code        failure condition                                               offenders
=================  ==============================================================  ===========
``TOO_FEW_CHAINS`` fewer than 4 chains (R-hat cannot detect non-mixing reliably)   ``chains``
``RHAT``           rank-normalised split R-hat >= 1.01 (Vehtari et al. 2021)       parameters
``ESS_BULK``       bulk effective sample size < 400                                parameters
``ESS_TAIL``       tail (5% / 95% quantile) effective sample size < 400            parameters
``DIVERGENCES``    any divergent transition after warm-up                          chains
``TREEDEPTH``      any draw whose trajectory hit the maximum tree depth            chains
``EBFMI``          E-BFMI < 0.3 in a chain (Betancourt 2016)                       chains
=================  ==============================================================  ===========

Offenders are listed worst first with their values (largest R-hat, smallest ESS, most
divergences or saturated draws, smallest E-BFMI), labelled like ``la_effect[383]``.

R-hat, ESS and E-BFMI come from ``arviz_stats`` (``rhat(method="rank")``,
``ess(method="bulk" | "tail")``, ``bfmi``). The sampler statistics are read under the names that
:mod:`csc_bayes.sampling` writes for every back end: ``diverging``, ``reached_max_treedepth`` and
``energy`` in the ``sample_stats`` group.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import arviz_stats as azs
import numpy as np
import xarray as xr

from csc_bayes.errors import DiagnosticsGateError
from csc_bayes.terms.base import NOT_GATED_ATTR

__all__ = [
    "GATE_FAILED_EXIT_CODE",
    "GateFailure",
    "GateResult",
    "GateThresholds",
    "Offender",
    "Reason",
    "check_convergence",
    "default_var_names",
]

#: exit status of the command line when a fit fails the gate
GATE_FAILED_EXIT_CODE = 3

#: sample statistics the gate needs (normalised names, see csc_bayes.sampling)
REQUIRED_SAMPLE_STATS = ("diverging", "reached_max_treedepth", "energy")

#: how many offenders the text and table summaries show per failure (all are stored)
SHOW_OFFENDERS = 5


class Reason(StrEnum):
    """Stable reason codes for a failed check (stored with fits: never rename)."""

    TOO_FEW_CHAINS = "TOO_FEW_CHAINS"
    RHAT = "RHAT"
    ESS_BULK = "ESS_BULK"
    ESS_TAIL = "ESS_TAIL"
    DIVERGENCES = "DIVERGENCES"
    TREEDEPTH = "TREEDEPTH"
    EBFMI = "EBFMI"


@dataclass(frozen=True)
class GateThresholds:
    """Limits of the gate. The defaults follow Vehtari et al. (2021) and Betancourt (2016).

    A fit passes when R-hat < ``max_rhat``, bulk and tail ESS >= ``min_ess_bulk`` /
    ``min_ess_tail``, divergences <= ``max_divergences``, draws at the maximum tree depth <=
    ``max_treedepth_hits``, E-BFMI >= ``min_ebfmi`` in every chain and chains >= ``min_chains``.
    """

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 400.0
    max_divergences: int = 0
    max_treedepth_hits: int = 0
    min_ebfmi: float = 0.3
    min_chains: int = 4


@dataclass(frozen=True)
class Offender:
    """One parameter element (``la_effect[383]``) or chain (``chain 2``) and its value."""

    name: str
    value: float


# how each reason reads in a summary: (what is measured, comparison that fails, threshold field)
_REASON_TEXT: dict[Reason, tuple[str, str, str]] = {
    Reason.TOO_FEW_CHAINS: ("number of chains", "<", "min_chains"),
    Reason.RHAT: ("rank-normalised split R-hat", ">=", "max_rhat"),
    Reason.ESS_BULK: ("bulk ESS", "<", "min_ess_bulk"),
    Reason.ESS_TAIL: ("tail ESS", "<", "min_ess_tail"),
    Reason.DIVERGENCES: ("divergent transitions", ">", "max_divergences"),
    Reason.TREEDEPTH: ("draws at maximum tree depth", ">", "max_treedepth_hits"),
    Reason.EBFMI: ("E-BFMI", "<", "min_ebfmi"),
}


@dataclass(frozen=True)
class GateFailure:
    """One failed check: the reason code, the threshold and the offenders (worst first)."""

    reason: Reason
    threshold: float
    offenders: tuple[Offender, ...]

    @property
    def message(self) -> str:
        """One line, e.g. ``RHAT: rank-normalised split R-hat >= 1.01 for 3 (worst: ...)``."""
        what, op, _ = _REASON_TEXT[self.reason]
        shown = ", ".join(f"{o.name}={_fmt(o.value)}" for o in self.offenders[:SHOW_OFFENDERS])
        more = len(self.offenders) - SHOW_OFFENDERS
        tail = f" and {more} more" if more > 0 else ""
        return (
            f"{self.reason}: {what} {op} {_fmt(self.threshold)} for {len(self.offenders)} "
            f"(worst first: {shown}{tail})"
        )


@dataclass
class GateResult:
    """Outcome of :func:`check_convergence`.

    Attributes:
        passed: True when no check failed.
        failures: the failed checks, in the order of the table in the module docstring.
        var_names: the posterior variables that R-hat and ESS were computed for.
        n_chains, n_draws: the shape of the posterior that was checked.
        thresholds: the limits applied.
    """

    passed: bool
    failures: list[GateFailure]
    var_names: list[str]
    n_chains: int
    n_draws: int
    thresholds: GateThresholds = field(default_factory=GateThresholds)

    @property
    def reasons(self) -> list[Reason]:
        """The reason codes of the failed checks."""
        return [f.reason for f in self.failures]

    def failure(self, reason: Reason | str) -> GateFailure | None:
        """The failure with this reason code, or None when that check passed."""
        return next((f for f in self.failures if f.reason == reason), None)

    def raise_if_failed(self) -> None:
        """Raise :class:`~csc_bayes.errors.DiagnosticsGateError` (message = summary) on failure."""
        if not self.passed:
            raise DiagnosticsGateError(str(self))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite values are written as the strings "nan", "inf", "-inf")."""
        return {
            "passed": self.passed,
            "failures": [
                {
                    "reason": str(f.reason),
                    "threshold": _json_float(f.threshold),
                    "offenders": [
                        {"name": o.name, "value": _json_float(o.value)} for o in f.offenders
                    ],
                    "message": f.message,
                }
                for f in self.failures
            ],
            "var_names": list(self.var_names),
            "n_chains": self.n_chains,
            "n_draws": self.n_draws,
            "thresholds": asdict(self.thresholds),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """Inverse of :meth:`to_dict` (the stored ``message`` is recomputed, not read)."""
        failures = [
            GateFailure(
                reason=Reason(f["reason"]),
                threshold=float(f["threshold"]),
                offenders=tuple(Offender(o["name"], float(o["value"])) for o in f["offenders"]),
            )
            for f in data["failures"]
        ]
        return cls(
            passed=bool(data["passed"]),
            failures=failures,
            var_names=list(data["var_names"]),
            n_chains=int(data["n_chains"]),
            n_draws=int(data["n_draws"]),
            thresholds=GateThresholds(**data["thresholds"]),
        )

    def __str__(self) -> str:
        head = (
            f"Convergence gate {'PASSED' if self.passed else 'FAILED'} "
            f"({self.n_chains} chains x {self.n_draws} draws; "
            f"checked {', '.join(self.var_names) or 'no variables'})"
        )
        return "\n".join([head, *(f"  {f.message}" for f in self.failures)])

    def to_rich_table(self) -> Any:
        """A ``rich.table.Table`` with one row per check, failed or passed."""
        from rich.table import Table

        table = Table(title=f"Convergence gate: {'PASSED' if self.passed else 'FAILED'}")
        for column in ("check", "threshold", "status", "worst offenders"):
            table.add_column(column)
        for reason in Reason:
            what, op, attr = _REASON_TEXT[reason]
            limit = f"fails if {op} {_fmt(getattr(self.thresholds, attr))}"
            failure = self.failure(reason)
            if failure is None:
                table.add_row(f"{reason} ({what})", limit, "[green]ok[/green]", "")
            else:
                worst = ", ".join(
                    f"{o.name}={_fmt(o.value)}" for o in failure.offenders[:SHOW_OFFENDERS]
                )
                table.add_row(f"{reason} ({what})", limit, "[red]FAIL[/red]", worst)
        return table


#: The posterior group's attribute :data:`~csc_bayes.terms.base.NOT_GATED_ATTR` lists
#: (space-separated) the internal variables the model's terms declare the gate must not judge
#: (``Term.not_gated``; written by ``csc_bayes.model.attach_coords``). Such a variable has a
#: direction the likelihood does not see and is checked through the contract variable that
#: removes it; e.g. the AR(1) term's ``la_level`` carries, in each year, a shift common to all
#: authorities that the model removes when it centres ``la_year`` over authorities (bulk ESS ~80
#: on the real CLA panel while la_year, la_effect and year_effect had R-hat <= 1.005, ESS >=
#: 1,388).


def not_gated(idata: xr.DataTree) -> set[str]:
    """The posterior variables the fit's terms declared the gate must skip."""
    return set(str(idata["posterior"].attrs.get(NOT_GATED_ATTR, "")).split())


def default_var_names(idata: xr.DataTree) -> list[str]:
    """The posterior variables checked by default.

    Every variable in the ``posterior`` group (the free parameters as the sampler saw them, e.g.
    a non-centred ``z``, and the deterministics of the posterior contract such as ``la_effect``,
    ``beta_per_unit``), except those on the ``obs`` dimension (per-observation quantities are
    functions of the parameters, are numerous, and are not part of the contract's posterior) and
    those the model's terms declared not gated (:func:`not_gated`).
    """
    skip = not_gated(idata)
    posterior = idata["posterior"]
    return [
        str(name)
        for name, da in posterior.data_vars.items()
        if "obs" not in da.dims and name not in skip
    ]


def check_convergence(
    idata: xr.DataTree,
    *,
    var_names: list[str] | None = None,
    thresholds: GateThresholds = GateThresholds(),
) -> GateResult:
    """Run the convergence gate on a fit's draws.

    Args:
        idata: DataTree with a ``posterior`` group (dims ``chain``, ``draw``) and a
            ``sample_stats`` group holding ``diverging``, ``reached_max_treedepth`` and
            ``energy``.
        var_names: posterior variables for R-hat and ESS; default :func:`default_var_names`.
        thresholds: the limits; default :class:`GateThresholds` ().

    Returns:
        A :class:`GateResult`; ``passed`` is False when any check fails.

    Raises:
        ValueError: a group, variable or sample statistic the gate needs is missing.
    """
    if "posterior" not in idata.children or "sample_stats" not in idata.children:
        raise ValueError("the convergence gate needs the 'posterior' and 'sample_stats' groups")
    stats = idata["sample_stats"].dataset
    missing = [name for name in REQUIRED_SAMPLE_STATS if name not in stats]
    if missing:
        raise ValueError(
            f"sample_stats lacks {missing}; sample with csc_bayes.sampling.sample, which "
            f"normalises the statistics of every back end"
        )
    names = default_var_names(idata) if var_names is None else list(var_names)
    unknown = [n for n in names if n not in idata["posterior"].data_vars]
    if unknown:
        raise ValueError(
            f"variables {unknown} are not in the posterior group "
            f"(it has {sorted(idata['posterior'].data_vars)})"
        )
    posterior = idata["posterior"].dataset[names]
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    t = thresholds
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws: NaN, skipped below
        rhat = azs.rhat(posterior, method="rank")
        ess_bulk = azs.ess(posterior, method="bulk")
        ess_tail = azs.ess(posterior, method="tail")
        ebfmi = azs.bfmi(stats["energy"])

    candidates: list[GateFailure | None] = [
        _failure(Reason.TOO_FEW_CHAINS, t.min_chains, [Offender("chains", float(n_chains))])
        if n_chains < t.min_chains
        else None,
        _parameter_failure(
            Reason.RHAT,
            rhat,
            posterior,
            t.max_rhat,
            bad=lambda v: ~(v < t.max_rhat),  # NaN (e.g. a stuck chain) fails too
            worst_first=-1,
        ),
        _parameter_failure(
            Reason.ESS_BULK,
            ess_bulk,
            posterior,
            t.min_ess_bulk,
            bad=lambda v: ~(v >= t.min_ess_bulk),
            worst_first=1,
        ),
        _parameter_failure(
            Reason.ESS_TAIL,
            ess_tail,
            posterior,
            t.min_ess_tail,
            bad=lambda v: ~(v >= t.min_ess_tail),
            worst_first=1,
        ),
        _chain_failure(
            Reason.DIVERGENCES,
            stats["diverging"].sum("draw"),
            t.max_divergences,
            bad=lambda v: v > t.max_divergences,
            worst_first=-1,
        ),
        _chain_failure(
            Reason.TREEDEPTH,
            stats["reached_max_treedepth"].sum("draw"),
            t.max_treedepth_hits,
            bad=lambda v: v > t.max_treedepth_hits,
            worst_first=-1,
        ),
        _chain_failure(
            Reason.EBFMI,
            ebfmi,
            t.min_ebfmi,
            bad=lambda v: ~(v >= t.min_ebfmi),
            worst_first=1,
        ),
    ]
    failures = [f for f in candidates if f is not None]
    return GateResult(
        passed=not failures,
        failures=failures,
        var_names=names,
        n_chains=n_chains,
        n_draws=n_draws,
        thresholds=thresholds,
    )


def _failure(reason: Reason, threshold: float, offenders: list[Offender]) -> GateFailure | None:
    return GateFailure(reason, float(threshold), tuple(offenders)) if offenders else None


def _parameter_failure(
    reason: Reason,
    values: xr.Dataset,
    draws: xr.Dataset,
    threshold: float,
    *,
    bad: Any,
    worst_first: int,
) -> GateFailure | None:
    """Offending parameter elements, sorted worst first (``worst_first=-1``: largest first).

    Elements whose draws are all identical (R-hat and ESS are NaN for a constant) are skipped.
    """
    constant = (draws.max(("chain", "draw")) == draws.min(("chain", "draw"))).compute()
    offenders = []
    for name, da in values.data_vars.items():
        flags = bad(da) & ~constant[name]
        offenders += [Offender(label, value) for label, value in _labelled(str(name), da, flags)]
    offenders.sort(key=lambda o: _sort_key(o.value, worst_first))
    return _failure(reason, threshold, offenders)


def _chain_failure(
    reason: Reason, per_chain: xr.DataArray, threshold: float, *, bad: Any, worst_first: int
) -> GateFailure | None:
    """Offending chains (named ``chain <coordinate>``), sorted worst first."""
    offenders = [
        Offender(f"chain {chain}", float(value))
        for chain, value in zip(per_chain["chain"].values, per_chain.values, strict=True)
        if bad(value)
    ]
    offenders.sort(key=lambda o: _sort_key(o.value, worst_first))
    return _failure(reason, threshold, offenders)


def _labelled(name: str, da: xr.DataArray, flags: xr.DataArray) -> list[tuple[str, float]]:
    """(label, value) of the flagged elements: ``sigma_la``, ``la_effect[383]``, ``X[1, a]``."""
    if not da.dims:
        return [(name, float(da.values))] if bool(flags.values) else []
    values, flags = da.to_series(), flags.to_series()
    out = []
    for key, value in values[flags].items():
        parts = key if isinstance(key, tuple) else (key,)
        out.append((f"{name}[{', '.join(str(p) for p in parts)}]", float(value)))
    return out


def _sort_key(value: float, worst_first: int) -> float:
    """NaN sorts first (worst); otherwise by value, ascending (1) or descending (-1)."""
    return -math.inf if math.isnan(value) else worst_first * value


def _fmt(value: float) -> str:
    """1.0123 -> "1.012", 388.7 -> "389", 3.0 -> "3", nan -> "nan"."""
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() or abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _json_float(value: float) -> float | str:
    return float(value) if math.isfinite(value) else str(float(value))
