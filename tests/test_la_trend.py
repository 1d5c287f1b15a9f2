"""An LA-specific linear trend (``la_trend = true``): recovered on a drifting simulated panel,
and every answer (explain / excess / predict) includes it; a forecast follows the drift."""

from __future__ import annotations

import numpy as np
import pandas as pd

import csc_bayes
from csc_bayes.simulate import simulate_panel

FIRST, LAST = 2016, 2023
#: drift of each LA's log rate, per decade: strong (+-1.5) for the first 8, zero for the rest
STRONG = 1.5


def _drifting_panel() -> tuple[pd.DataFrame, dict[str, float]]:
    panel = simulate_panel(seed=11, first_year=FIRST, last_year=LAST).panel
    codes = sorted(panel["la_code"].astype(str).unique())[:25]
    panel = panel[panel["la_code"].astype(str).isin(codes)].copy()
    drift = {c: (STRONG if i % 2 == 0 else -STRONG) if i < 8 else 0.0 for i, c in enumerate(codes)}
    rng = np.random.default_rng(3)
    # counts generated here: LA level (fixed per LA) + drift * (year - centre) / 10, Poisson
    level = {c: rng.normal(0.0, 0.2) for c in codes}
    centre = (FIRST + LAST) / 2
    year_c = (panel["year"].to_numpy(float) - centre) / 10
    codes_col = panel["la_code"].astype(str)
    log_rate = (
        np.log(60 / 10_000)
        + codes_col.map(level).to_numpy(float)
        + codes_col.map(drift).to_numpy(float) * year_c
    )
    mu = panel["population"].to_numpy(float) * np.exp(log_rate)
    panel["cla"] = pd.array(rng.poisson(mu), dtype="Int64")
    panel["cla_missing"] = panel["cla_missing"].where(panel["cla"].isna(), None)
    return panel.reset_index(drop=True), drift


def test_la_trend_recovers_drift_and_answers_include_it():
    panel, drift = _drifting_panel()
    spec = csc_bayes.find_spec("cla_need_trend").with_sampler(draws=150, tune=150, chains=2)
    spec = type(spec).from_dict(
        {**spec.to_dict(), "name": "cla_trend_test", "years": [FIRST, LAST]}
    )
    assert spec.la_trend and "year_c" in spec.formula
    fit = csc_bayes.fit(spec, data=panel, out=None, progress=False)
    post = fit.idata["posterior"]
    assert float(fit.idata["constant_data"]["year_centre"]) == (FIRST + LAST) / 2

    trend = post["la_trend"].median(("chain", "draw")).to_series()
    strong = {c: d for c, d in drift.items() if d != 0}
    for code, d in strong.items():
        assert np.sign(trend[code]) == np.sign(d), (code, d, trend[code])

    # explain: the la component carries the trend; its finite SD and sigma are reported
    shares = csc_bayes.explain_variance(fit).to_frame().set_index(["measure", "component"])
    assert ("finite_sd", "la_trend") in shares.index
    assert ("superpopulation_sd", "la_trend") in shares.index
    # excess: expected need excludes the LA's own trend, so a rising LA's excess ratio rises
    table = csc_bayes.excess(fit, year="all").set_index(["la_code", "year"])
    up = next(c for c, d in strong.items() if d > 0)
    ratio = table.loc[up, "excess_ratio_median"]
    assert ratio.loc[LAST] > ratio.loc[FIRST]

    # predict: the next year follows each strong drift beyond the last fitted year
    for code, d in strong.items():
        out = csc_bayes.predict(fit, authority=code, year=[LAST, LAST + 1]).set_index("year")
        assert out.loc[LAST + 1, "kind"] == "forecast"
        step = np.log(out.loc[LAST + 1, "rate_median"] / out.loc[LAST, "rate_median"])
        assert np.sign(step) == np.sign(d), (code, d, step)
