"""Common year effects: a shock shared by every authority in a reporting year.

Two laws (``spec.year_effect``):

- ``"iid"`` (default): ``year_effect[t] ~ N(0, sigma_year)``, sum-to-zero over the fitted years
  (their mean is absorbed into the intercept). A year the fit has not seen draws a fresh
  N(0, sigma_year), one draw per posterior draw, shared by all authorities.
- ``"rw1"``: a random walk over calendar years, ``w[t] - w[t-1] ~ N(0, sigma_year^2 gap)``,
  centred: ``year_effect = w - mean(w)``. An unseen year h after the last known year L draws
  N(w[L], sigma_year^2 h); one in a gap a < t < b the Brownian bridge
  N(w[a] + (w[b] - w[a]) (t - a) / (b - a), sigma_year^2 (t - a) (b - t) / (b - a)).
  Known years are the fitted ones and the unseen ones already drawn (earlier years first).

Without ``year`` in the random effects the model writes ``year_effect`` = 0 and ``sigma_year``
= 0 (a forecast then adds no new-year uncertainty).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csc_bayes.errors import SpecError
from csc_bayes.priors import Prior, prior, prior_rv
from csc_bayes.terms.base import BuildContext, DataScale, NewLevels, Rows, Term

#: laws of the common year effects (``spec.year_effect``)
YEAR_EFFECT_LAWS = ("iid", "rw1")


class YearEffects(Term):
    """Prior ``sigma_year ~ HalfNormal(s)`` (with ``rw1``: the SD of one year's step)."""

    name = "year"
    order = 30
    key = "year_effect"
    default = "iid"

    @classmethod
    def wanted(cls, spec: Any) -> bool:
        return True  # always there (zeros without a year random effect); the key sets its law

    @classmethod
    def parse_key(cls, value: Any, *, source: str, model: dict[str, Any]) -> Any:
        if value not in YEAR_EFFECT_LAWS:
            raise SpecError(
                f"{source}: key 'year_effect': unknown value {value!r}; expected one of "
                f"{list(YEAR_EFFECT_LAWS)}"
            )
        if value != "iid" and "year" not in model["random_effects"]:
            raise SpecError(
                f"{source}: key 'year_effect' = {value!r} needs 'year' in random_effects"
            )
        return value

    @property
    def present(self) -> bool:
        return "year" in self.spec.random_effects

    @property
    def random_walk(self) -> bool:
        return self.present and self.option == "rw1"

    def parameters(self) -> tuple[str, ...]:
        return ("sigma_year",) if self.present else ()

    def default_priors(self, scale: DataScale) -> dict[str, Prior]:
        return {"sigma_year": prior("halfnormal", sigma=scale.s)} if self.present else {}

    def coords(self, years: np.ndarray) -> dict[str, Any]:
        return {"year_to": years[1:]} if self.random_walk else {}

    def build(self, ctx: BuildContext) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        if not self.present:
            pm.Deterministic("sigma_year", pt.constant(0.0))
            pm.Deterministic("year_effect", pt.zeros(len(ctx.years)), dims="year")
            return
        sigma = prior_rv("sigma_year", ctx.priors["sigma_year"])
        if self.random_walk:
            effect = _random_walk(sigma, ctx.years, ctx.hierarchical)
        elif ctx.hierarchical:  # centred: each year is seen in ~150 authorities
            effect = pm.ZeroSumNormal("year_effect", sigma=sigma, dims="year")
        else:
            z = pm.Normal("year_z", 0.0, 1.0, dims="year")
            effect = pm.Deterministic("year_effect", sigma * z, dims="year")
        ctx.eta["year"] = effect[ctx.tensors["year_idx"]]

    def contribution(self, post: Any, rows: Rows, new: NewLevels) -> dict[str, np.ndarray]:
        effect = post.draws("year_effect")
        out = np.empty((post.n_draws, len(rows)))
        for year in sorted(int(y) for y in np.unique(rows.year)):  # earlier years first
            cols = rows.year == year
            if year in post.years:
                out[:, cols] = effect[:, post.years.index(year), None]
            else:
                out[:, cols] = new.once(self.name, year, lambda y=year: self._new(post, y, new))[
                    :, None
                ]
        return {"year": out}

    def _new(self, post: Any, year: int, new: NewLevels) -> np.ndarray:
        sigma = post.draws("sigma_year")
        if not self.random_walk:
            return new.rng.normal(0.0, sigma)
        known = {**dict(zip(post.years, post.draws("year_effect").T, strict=True))}
        known.update(new.store(self.name))
        mean, sd = walk_conditional(year, known, sigma)
        return mean + sd * new.rng.standard_normal(len(sigma))

    def need_components(self, *, region_as_need: bool) -> set[str]:
        return {"year"}

    def batch_sd(self, post: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        finite = post.draws("year_effect").std(axis=1, ddof=1)
        return {"year": (finite, post.draws("sigma_year"))}

    @property
    def intercept_for(self) -> str | None:
        return "year" if self.present else None

    def describe(self) -> tuple[str | None, str | None]:
        return ("year effects that follow a random walk" if self.random_walk else None), None

    def describe_forecast(self, horizon: int) -> str | None:
        if not self.present:
            return None
        if self.random_walk:
            return (
                f"the national level continues the random walk of the year effects {horizon} "
                f"step(s) from the last fitted year (its variance grows as {horizon} sigma_year^2)"
            )
        return "the national level of each unfitted year is a fresh draw N(0, sigma_year^2)"


def walk_conditional(
    year: int, known: dict[int, np.ndarray], sigma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD per draw of a random walk at ``year`` given its values at ``known`` years.

    The walk is Markov, so only the nearest known year on each side matters: after the last
    known year L, N(w_L, sigma^2 (year - L)); between known years a < year < b, the Brownian
    bridge N(w_a + (w_b - w_a) (year - a) / (b - a), sigma^2 (year - a) (b - year) / (b - a)).
    """
    before = max(y for y in known if y < year)
    after = [y for y in known if y > year]
    w_a = known[before]
    if not after:
        return w_a, sigma * np.sqrt(year - before)
    b = min(after)
    frac = (year - before) / (b - before)
    sd = sigma * np.sqrt((year - before) * (b - year) / (b - before))
    return w_a + (known[b] - w_a) * frac, sd


def _random_walk(sigma: Any, years: np.ndarray, hierarchical: bool) -> Any:
    """``year_effect`` as a centred first-order random walk over calendar years.

    ``step[t] ~ N(0, sigma^2 (y_t - y_(t-1)))`` (a gap year is a longer step), sampled centred
    (hierarchical) or as ``sigma sqrt(gap) z`` (textbook); ``year_effect = w - mean(w)``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    scale = sigma * np.sqrt(np.diff(np.asarray(years, dtype=float)))
    if hierarchical:
        steps = pm.Normal("year_step", 0.0, scale, dims="year_to")
    else:
        steps = scale * pm.Normal("year_step_z", 0.0, 1.0, dims="year_to")
    walk = pt.concatenate([pt.zeros((1,)), pt.cumsum(steps)])
    return pm.Deterministic("year_effect", walk - walk.mean(), dims="year")
