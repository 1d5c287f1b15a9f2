"""Prior distributions: the families a spec may name, :class:`Prior`, and their PyMC variables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
#: the distributions with each support: a parameter's default prior fixes which it may use
SUPPORTS: dict[str, tuple[str, ...]] = {
    "real": ("normal", "student_t"),
    "positive": ("halfnormal", "exponential", "gamma", "lognormal"),
    "unit_interval": ("beta",),
}
#: parameters of a distribution that must be strictly positive
POSITIVE_PARAMS = {"sigma", "nu", "lam", "alpha", "beta"}


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


def prior(dist: str, **params: float) -> Prior:
    """A :class:`Prior` with its parameters in the distribution's order."""
    return Prior(dist, tuple((p, float(params[p])) for p in DISTRIBUTIONS[dist]))


def support_of(dist: str) -> str:
    """``real``, ``positive`` or ``unit_interval``: where ``dist`` puts its mass."""
    return next(s for s, dists in SUPPORTS.items() if dist in dists)


def prior_rv(name: str, p: Prior, **kwargs: Any) -> Any:
    """The PyMC random variable ``name`` with prior ``p`` (call inside a ``pm.Model``)."""
    import pymc as pm

    dists = {
        "normal": pm.Normal,
        "student_t": pm.StudentT,
        "halfnormal": pm.HalfNormal,
        "exponential": pm.Exponential,
        "gamma": pm.Gamma,
        "lognormal": pm.LogNormal,
        "beta": pm.Beta,
    }
    return dists[p.dist](name, **p.kwargs, **kwargs)
