"""The outcome as a stock: last year's count, and the flows in and out (``stock = ...``).

Children looked after at 31 March are a stock: ``Y_t = Y_(t-1) + S_t - C_t`` with S_t children
starting and C_t ceasing to be looked after during year t. The term makes last year's
published count the base of this year's expected count, so the other terms of the linear
predictor model the stock's log growth:

``stock = "previous"``::

    eta[j, t] = log E[j, t] + (log Y[j, t-1] - log E[j, t]) + intercept + ... (other terms)
    i.e.  E[Y_jt | Y_j,t-1] = Y_j,t-1 exp(intercept + la_effect_j + year_effect_t + ...)

``stock = "flows"``: also ``+ beta_flow g[j, t]``, the log growth the flows of year t-1 imply
if they held in year t (a leading indicator)::

    g[j, t] = log[(1 + s_j,t-1 E_jt / Y_j,t-1) (1 - h_j,t-1)]
    s_j,t-1 = S_j,t-1 / E_j,t-1                 starts per child (exposure) in year t-1
    h_j,t-1 = C_j,t-1 / (Y_j,t-1 + C_j,t-1)     share of the children looked after during
                                                year t-1 who ceased by its end

``beta_flow = 1`` is the pure flow projection (this year's starts at last year's rate per
child, ceasing at last year's share), ``beta_flow = 0`` is persistence of the stock alone;
prior ``beta_flow ~ Normal(0, 1)``. With E the exposure and Y the outcome (``lag_<outcome>_1``),
S and C the panel's ``<outcome>_started`` and ``<outcome>_ceased``. The children looked after
at some time in year t-1 are counted as ``Y_t-1 + C_t-1`` (the stock at its end plus those who
left), which equals ``Y_t-2 + S_t-1`` where the stock-flow identity holds; it needs no count
two years back, so an authority's second year can be fitted.

Last year's count enters as it was published (no latent smoothing): the family's noise is the
year's change given the stock. Rows without a positive previous count (an authority's first
year, a suppressed year) or, with flows, without the flows of year t-1 are not fitted.

New rows (forecasts): year t's previous count is the fit's panel count of year t-1 when it is
known; an authority without one in a year the panel publishes (a new or abolished authority, a
suppressed count) has no forecast (NaN: the stock model cannot say where it starts), nor in the
years after it; else the count drawn for year t-1 in the same evaluation
(``NewLevels.drawn_outcome``; :func:`csc_bayes.predict.predict_draws` draws the years in
order so that year t+2 rests on the draw of t+1). The flow rates s and h are those of year
t-1, or, when year t-1's flows or count are not known, of the latest earlier year with them
(carried forward, as covariates are).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from csc_bayes.errors import AnswerError, SpecError
from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term

#: the values of ``stock``
STOCK_TERMS = ("previous", "flows")
#: default prior of beta_flow: Normal(0, 1), between persistence (0) and the flow projection (1)
BETA_FLOW_PRIOR = {"mu": 0.0, "sigma": 1.0}


def previous_column(outcome: str) -> str:
    """Panel column of last year's count: ``lag_<outcome>_1`` (:mod:`csc_bayes.data.lags`)."""
    return f"lag_{outcome}_1"


def flow_columns(outcome: str) -> tuple[str, str]:
    """The panel's flow columns of a stock: ``<outcome>_started``, ``<outcome>_ceased``."""
    return f"{outcome}_started", f"{outcome}_ceased"


def flow_growth_column(outcome: str) -> str:
    """Derived panel column of the flow-implied log growth g (module docstring)."""
    return f"flow_growth_{outcome}"


def flow_growth(
    started: np.ndarray,
    ceased: np.ndarray,
    exposure_before: np.ndarray,
    count_before: np.ndarray,
    exposure: np.ndarray,
    previous: np.ndarray,
) -> np.ndarray:
    """``g = log[(1 + s E_t / Y_(t-1)) (1 - h)]``, ``s = S / E_u``, ``h = C / (Y_u + C)`` with
    S, C, E_u, Y_u the flows, exposure and count of the year u whose rates are used (t - 1 at
    fitted rows) and ``previous`` = Y_(t-1) (numpy, broadcasting; NaN where g is undefined)."""
    started, ceased, exposure_before, count_before, exposure, previous = (
        np.asarray(v, dtype=float)
        for v in (started, ceased, exposure_before, count_before, exposure, previous)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        s = started / exposure_before
        h = ceased / (count_before + ceased)
        inner = (1.0 + s * exposure / previous) * (1.0 - h)
        return np.where(inner > 0, np.log(np.where(inner > 0, inner, 1.0)), np.nan)


def add_flow_growth(panel: pd.DataFrame, outcome: str, exposure: str) -> pd.DataFrame:
    """``panel`` with :func:`flow_growth_column` and its ``_missing`` reason (the first
    missing input's reason, ``<column>: <reason>``, or ``<outcome> flows: inconsistent`` when
    the share ceasing is not below 1)."""
    from csc_bayes.data.lags import lagged
    from csc_bayes.data.schema import missing_column

    started, ceased = flow_columns(outcome)
    missing = [c for c in (started, ceased) if c not in panel.columns]
    if missing:
        raise SpecError(
            f"stock = 'flows' needs the panel columns {missing} (children starting and ceasing "
            f"to be {outcome} in each year); the panel lacks them"
        )
    inputs: dict[str, tuple[pd.Series, pd.Series]] = {
        "S": lagged(panel, started, 1),
        "C": lagged(panel, ceased, 1),
        "E1": lagged(panel, exposure, 1),
        "Y1": lagged(panel, outcome, 1),
    }
    names = {
        "S": f"lag({started}, 1)",
        "C": f"lag({ceased}, 1)",
        "E1": f"lag({exposure}, 1)",
        "Y1": f"lag({outcome}, 1)",
    }
    values = {
        k: v.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        for k, (v, _) in inputs.items()
    }
    g = flow_growth(
        values["S"],
        values["C"],
        values["E1"],
        values["Y1"],
        panel[exposure].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
        values["Y1"],
    )
    reasons = pd.Series(pd.NA, index=panel.index, dtype="string")
    for key, (v, why) in reversed(inputs.items()):  # the first input's reason wins
        absent = v.isna()
        reasons[absent] = names[key] + ": " + why[absent].fillna("missing").astype(str)
    bad = np.isnan(g) & reasons.isna().to_numpy()
    reasons[bad] = f"{outcome} flows: inconsistent"
    out = panel.copy()
    name = flow_growth_column(outcome)
    out[name] = pd.array(np.where(np.isnan(g), np.nan, g), dtype="Float64")
    out.loc[np.isnan(g), name] = pd.NA
    out[missing_column(name)] = reasons
    return out


class Stock(Term):
    """Last year's count as the base of this year's (``stock = "previous"`` or ``"flows"``).

    Component ``stock``: ``log Y[j, t-1] - log E[j, t]`` (+ ``beta_flow g[j, t]`` with flows).
    Saved as constant data ``stock_log_previous`` (and ``stock_flow_growth``) on ``obs``.
    """

    name = "stock"
    order = 48
    key = "stock"
    values = STOCK_TERMS
    #: a forecast of year t needs the count of year t - 1 (drawn when not observed)
    conditions_on_outcome = True
    forecast_only = True
    la_level_noncentred = True

    @property
    def flows(self) -> bool:
        return self.option == "flows"

    def parameters(self) -> tuple[str, ...]:
        return ("beta_flow",) if self.flows else ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"beta_flow": prior("normal", **BETA_FLOW_PRIOR)} if self.flows else {}

    # ------------------------------------------------------------------ data
    def required_columns(self) -> dict[str, bool]:
        outcome = self.spec.outcome
        out = {previous_column(outcome): True}
        if self.flows:
            out[flow_growth_column(outcome)] = False
        return out

    def derive_columns(self, panel: pd.DataFrame) -> pd.DataFrame:
        if self.flows and flow_growth_column(self.spec.outcome) not in panel.columns:
            panel = add_flow_growth(panel, self.spec.outcome, self.spec.exposure)
        return panel

    def data_offset(self, data: pd.DataFrame) -> np.ndarray:
        """log Y[t-1] - log E[t] at fitted rows (sets the data scale of the default priors)."""
        previous = data[previous_column(self.spec.outcome)].to_numpy(dtype=float)
        return np.log(previous) - np.log(data[self.spec.exposure].to_numpy(dtype=float))

    # ------------------------------------------------------------------ PyMC
    def build(self, ctx: BuildContext) -> None:
        import pymc as pm

        log_previous = np.log(ctx.data[previous_column(self.spec.outcome)].to_numpy(dtype=float))
        offset = pm.Data("stock_log_previous", log_previous, dims="obs")
        part = offset - pm.math.log(ctx.data[self.spec.exposure].to_numpy(dtype=float))
        if self.flows:
            g = ctx.data[flow_growth_column(self.spec.outcome)].to_numpy(dtype=float)
            growth = pm.Data("stock_flow_growth", g, dims="obs")
            part = part + prior_rv("beta_flow", ctx.priors["beta_flow"]) * growth
        ctx.eta["stock"] = part

    # ------------------------------------------------------------------ posterior
    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        fitted = post.fitted_rows
        index = {
            (str(c), int(y)): k
            for k, (c, y) in enumerate(zip(fitted.la_code, fitted.year, strict=True))
        }
        log_previous = post.constant("stock_log_previous").astype(float)
        growth = post.constant("stock_flow_growth").astype(float) if self.flows else None
        beta = post.draws("beta_flow") if self.flows else None
        panel = _PanelLookup(post.fit.panel, self.spec.outcome, self.spec.exposure, self.flows)
        out = np.empty((post.n_draws, len(rows)))
        for i in range(len(rows)):
            code, year = str(rows.la_code[i]), int(rows.year[i])
            k = index.get((code, year))
            if k is not None:
                part = np.full(post.n_draws, log_previous[k] - rows.log_exposure[i])
                if beta is not None:
                    part = part + beta * growth[k]
            else:
                previous = panel.count(code, year - 1)
                if previous is None:
                    previous = new.drawn_outcome(code, year - 1)
                if previous is None and panel.published(year - 1):
                    out[:, i] = np.nan  # no count last year (a new or abolished authority)
                    continue
                if previous is None:
                    raise AnswerError(
                        f"a forecast of {self.spec.outcome} for authority {code} in {year} "
                        f"rests on its count in {year - 1}, which is neither in the panel nor "
                        f"forecast in the same call: ask for {year - 1} too"
                    )
                previous = np.broadcast_to(np.asarray(previous, dtype=float), (post.n_draws,))
                if np.isnan(previous).all():  # no forecast the year before: none now
                    out[:, i] = np.nan
                    continue
                with np.errstate(divide="ignore"):
                    part = np.log(previous) - rows.log_exposure[i]
                if beta is not None:
                    s, h = panel.rates(code, year - 1)
                    g = _growth_from_rates(s, h, np.exp(rows.log_exposure[i]), previous)
                    part = part + beta * g
            out[:, i] = part
        return {"stock": out}

    def describe(self) -> tuple[str | None, str | None]:
        phrase = "last year's count as the base of this year's (the stock's log growth)"
        if self.flows:
            phrase += ", with the growth the flows of the year before imply"
        return phrase, "its last year's count"

    def describe_forecast(self, horizon: int) -> str | None:
        return (
            f"each year's count rests on the count drawn for the year before, compounding "
            f"{horizon} years of growth"
        )


def _growth_from_rates(s: float, h: float, exposure: float, previous: np.ndarray) -> np.ndarray:
    """g = log[(1 + s E_t / Y_(t-1)) (1 - h)] from the rates s, h, per draw of Y_(t-1). A drawn
    previous count of 0 is floored at 0.5 here (g finite), so that log Y_(t-1) = -inf makes the
    expected count 0 rather than NaN."""
    previous = np.maximum(previous, 0.5)
    return np.log((1.0 + s * exposure / previous) * (1.0 - h))


class _PanelLookup:
    """The fit's panel per authority and year: counts and flow rates (for forecasts)."""

    def __init__(self, panel: pd.DataFrame, outcome: str, exposure: str, flows: bool) -> None:
        keys = list(zip(panel["la_code"].astype(str), panel["year"].astype(int), strict=True))
        self.outcome = outcome

        def as_dict(column: str) -> dict[tuple[str, int], float]:
            values = panel[column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
            return {k: v for k, v in zip(keys, values, strict=True) if np.isfinite(v)}

        self.y = as_dict(outcome)
        self.years = {u for (_, u) in self.y}
        if flows:
            started, ceased = flow_columns(outcome)
            self.started, self.ceased = as_dict(started), as_dict(ceased)
            self.exposure = as_dict(exposure)

    def published(self, year: int) -> bool:
        """Whether the panel holds the outcome of any authority in ``year``."""
        return year in self.years

    def count(self, code: str, year: int) -> float | None:
        value = self.y.get((code, year))
        return None if value is None else value

    def rates(self, code: str, year: int) -> tuple[float, float]:
        """(s, h) of ``year``, or of the latest earlier year whose count, flows and exposure
        the panel holds (carried forward)."""
        known = [
            u
            for (c, u) in self.y
            if c == code
            and u <= year
            and (c, u) in self.started
            and (c, u) in self.ceased
            and (c, u) in self.exposure
        ]
        if not known:
            raise AnswerError(
                f"authority {code}: the flows ({', '.join(flow_columns(self.outcome))}) of no "
                f"year up to {year} are known with its counts; a flow forecast needs them"
            )
        u = max(known)
        started = self.started[(code, u)]
        s = started / self.exposure[(code, u)]
        ceased = self.ceased[(code, u)]
        h = ceased / (self.y[(code, u)] + ceased)
        return s, h
