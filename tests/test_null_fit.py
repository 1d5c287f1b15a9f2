"""The automatic null model is fitted on exactly the rows the full model fitted."""

from __future__ import annotations

import pandas as pd

import csc_bayes
from csc_bayes.data.schema import MissingReason
from csc_bayes.fitting import find_null_fit
from csc_bayes.simulate import simulate_panel


def test_null_fit_uses_the_full_fits_rows_and_is_reused(tmp_path):
    panel = simulate_panel(seed=4, first_year=2019, last_year=2023).panel
    panel = panel[panel["la_code"].isin(panel["la_code"].unique()[:25])].copy()
    gap = panel["year"] == 2020  # spending has no source that year, as 2015 in the real panel
    panel.loc[gap, "spend_per_child"] = pd.NA
    panel.loc[gap, "spend_per_child_missing"] = MissingReason.NO_SOURCE.value
    spec = csc_bayes.find_spec("cpp_need_spending").with_sampler(draws=60, tune=60, chains=2)
    spec = type(spec).from_dict({**spec.to_dict(), "years": [2019, 2023]})

    full = csc_bayes.fit(spec, data=panel, out=tmp_path, progress=False)
    assert 2020 not in set(full.fitted_rows["year"])
    null = find_null_fit(full, progress=False)
    assert null.fitted_rows.equals(full.fitted_rows)

    explained = csc_bayes.explain_variance(full, null_fit=null).to_frame()
    assert "between_la_explained" in set(explained["measure"])
    assert find_null_fit(full, progress=False).path == null.path  # reused, not refitted
