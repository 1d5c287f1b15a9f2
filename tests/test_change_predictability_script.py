"""examples/change_predictability.py: the spread of the authorities' changes by year."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "change_predictability.py"
spec = importlib.util.spec_from_file_location("change_predictability", SCRIPT)
change_predictability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(change_predictability)


def test_spread_by_year_finds_a_shrinking_spread_of_changes():
    """Random-walk log rates whose yearly steps shrink by e^-0.1 a year: the slope of the log
    median absolute change is about -0.1 (and about 0 for steps of constant spread)."""
    rng = np.random.default_rng(0)
    years = np.arange(2013, 2025)
    for trend in (-0.1, 0.0):
        steps = rng.normal(0.0, 0.2 * np.exp(trend * (years - 2024)), (400, len(years)))
        rate = 0.01 * np.exp(np.cumsum(steps, axis=1))
        rows = [
            {"la_code": f"L{j}", "year": int(y), "population": 100_000, "cin": 1e5 * rate[j, t]}
            for j in range(400)
            for t, y in enumerate(years)
        ]
        spread = change_predictability.spread_by_year(pd.DataFrame(rows), "cin")
        assert spread["year"].tolist() == list(range(2015, 2025))  # a change and its previous
        assert (spread["n_authorities"] == 400).all() and (spread["mad_change"] > 0).all()
        assert spread["log_spread_per_year"].iloc[0] == pytest.approx(trend, abs=0.03)
