"""A spec without region (or year) effects still answers every question: the effect is zero."""

from __future__ import annotations

import numpy as np

import csc_bayes
from csc_bayes.simulate import simulate_panel


def test_answers_for_a_model_without_region_effects():
    panel = simulate_panel(seed=5, first_year=2019, last_year=2023).panel
    panel = panel[panel["la_code"].isin(panel["la_code"].unique()[:25])]
    spec = csc_bayes.find_spec("cpp_need").with_sampler(draws=60, tune=60, chains=2)
    changes = {"name": "cpp_no_region", "years": [2019, 2023], "random_effects": ["la", "year"]}
    spec = type(spec).from_dict({**spec.to_dict(), **changes})
    fit = csc_bayes.fit(spec, data=panel, out=None, progress=False)
    assert np.all(fit.idata["posterior"]["region_effect"].values == 0.0)

    shares = csc_bayes.explain_variance(fit).to_frame().set_index(["measure", "component"])
    assert shares.loc[("share", "region"), "median"] == 0.0
    assert shares.loc[("share", "year"), "median"] > 0.0
    assert len(csc_bayes.excess(fit)) == 25
    forecast = csc_bayes.predict(fit, authority=panel["la_code"].iloc[0], year=2024)
    assert (forecast["kind"] == "forecast").all()
