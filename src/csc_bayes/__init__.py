"""csc_bayes: Bayesian multilevel models of children's social care across English local authorities.

The public API, in data-flow order (files -> panel -> model -> fit -> answers -> plots/reports)::

    panel = csc_bayes.build_panel("../shared/data/raw")      # or csc_bayes.simulate_panel().panel
    fit = csc_bayes.fit("cpp_need", data=panel)                # saved under fits/cpp_need/<run>/
    fit = csc_bayes.fit("cpp ~ idaci + (1|la) + rw1(year)", data=panel)   # or a formula
    fit = csc_bayes.load_fit("fits/cpp_need")                  # latest run
    csc_bayes.explain_variance(fit)                            # variation explained, by source
    csc_bayes.excess(fit, year=2024)                           # excess over expected need
    csc_bayes.predict(fit, authority="Leeds", year=2025)       # a named authority, next year
    fit = csc_bayes.fit("ilacs_spending", data=panel)          # an ordinal model (Ofsted grades)
    csc_bayes.ordinal_effects(fit), csc_bayes.grade_probabilities(fit)   # its answers

Names are imported lazily so that ``import csc_bayes`` (and ``csc-bayes --help``) stays fast.
Importing it has no side effects on the environment or on JAX (see :mod:`csc_bayes.sampling`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Importing csc_bayes changes no environment variable and configures nothing in JAX: the host
# devices for parallel chains and the compilation cache are set up when sampling starts
# (csc_bayes.sampling.prepare_jax).

#: public name -> module that defines it
_EXPORTS = {
    "build_panel": "csc_bayes.data",
    "load_panel": "csc_bayes.data",
    "save_panel": "csc_bayes.data",
    "join_extra": "csc_bayes.data.extra",
    "simulate_panel": "csc_bayes.simulate",
    "load_spec": "csc_bayes.spec",
    "find_spec": "csc_bayes.spec",
    "ModelSpec": "csc_bayes.spec",
    "fit": "csc_bayes.fitting",
    "Fit": "csc_bayes.fits",
    "load_fit": "csc_bayes.fits",
    "check_convergence": "csc_bayes.diagnostics",
    "explain_variance": "csc_bayes.variance",
    "ordinal_effects": "csc_bayes.ordinal",
    "grade_probabilities": "csc_bayes.ordinal",
    "resolve_authority": "csc_bayes.authorities",
    "run_plan": "csc_bayes.batch",
    "run_sbc": "csc_bayes.sbc",
    "compare_fits": "csc_bayes.compare",
    "run_backtest": "csc_bayes.backtest",
}

__all__ = ["__version__", "excess", "predict", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'csc_bayes' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


# `excess` and `predict` are functions in modules of the same name. Importing a submodule sets it
# as an attribute of the package, which would hide such a function behind its module (and make
# `csc_bayes.excess(fit)` fail once anything imported `csc_bayes.excess`). Binding the functions
# here, after their modules are imported, keeps the public names callable. Both are light
# (numpy, pandas, xarray).
from csc_bayes.excess import excess  # noqa: E402
from csc_bayes.predict import predict  # noqa: E402
