"""examples/forecast_ceiling.py: the best linear forecast in hindsight against the naive rule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "forecast_ceiling.py"
spec = importlib.util.spec_from_file_location("forecast_ceiling", SCRIPT)
forecast_ceiling = importlib.util.module_from_spec(spec)
spec.loader.exec_module(forecast_ceiling)


def test_weighted_lad_is_a_weighted_median_and_exact_on_a_line():
    y = np.array([1.0, 2.0, 10.0])
    ones = np.ones((3, 1))
    assert forecast_ceiling.weighted_lad(y, ones, np.array([1.0, 1.0, 1.0]))[0] == pytest.approx(2)
    assert forecast_ceiling.weighted_lad(y, ones, np.array([1.0, 1.0, 5.0]))[0] == pytest.approx(10)
    x = np.column_stack([np.ones(6), np.arange(6.0)])
    b = forecast_ceiling.weighted_lad(0.5 - 0.25 * np.arange(6.0), x, np.ones(6))
    np.testing.assert_allclose(b, [0.5, -0.25], atol=1e-9)


def panel(n_la: int = 30, years: range = range(2013, 2025), seed: int = 3) -> pd.DataFrame:
    """Rates that revert to each authority's level: a forecast that knows it beats naive."""
    rng = np.random.default_rng(seed)
    level = rng.normal(np.log(0.004), 0.3, n_la)
    rows, u = [], rng.normal(0, 0.2, n_la)
    for year in years:
        u = 0.3 * u + rng.normal(0, 0.2, n_la)
        population = np.full(n_la, 50_000)
        rows.append(
            pd.DataFrame(
                {
                    "la_code": [str(800 + j) for j in range(n_la)],
                    "year": year,
                    "population": population,
                    "cpp": np.round(population * np.exp(level + u)).astype(int),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_dev1_uses_only_the_years_before():
    p = panel()
    later = p.assign(cpp=np.where(p["year"] == 2024, p["cpp"] * 5, p["cpp"]))
    a = forecast_ceiling.frame(p, "cpp", []).set_index(["la_code", "year"])
    b = forecast_ceiling.frame(later, "cpp", []).set_index(["la_code", "year"])
    cols = ["dev1", "d1", "d2", "naive"]
    pd.testing.assert_frame_equal(
        a.loc[(slice(None), 2024), cols], b.loc[(slice(None), 2024), cols]
    )


def test_reversion_is_found_and_the_oracle_bounds_the_honest_forecast():
    per_year = forecast_ceiling.ceiling_table(panel())
    assert set(per_year["outcome"]) == {"cpp"}  # the other outcomes are absent from this panel
    assert list(per_year["test_year"]) == list(range(2019, 2025))
    ratios = forecast_ceiling.pooled(per_year).set_index("outcome")
    assert ratios.loc["cpp", "n_forecasts"] == 6 * 30
    # rho = 0.3: most of last year's deviation is gone a year later, which the naive rule ignores
    assert ratios.loc["cpp", "mae_ratio_past"] < 0.9
    assert ratios.loc["cpp", "mae_ratio_oracle"] <= ratios.loc["cpp", "mae_ratio_past"]


def test_the_script_on_the_synthetic_panel_writes_both_tables(tmp_path, capsys):
    import csc_bayes

    path = tmp_path / "panel.parquet"
    csc_bayes.save_panel(csc_bayes.simulate_panel().panel, path)
    forecast_ceiling.main(["--data", str(path), "--results", str(tmp_path / "out")])
    per_year = pd.read_csv(tmp_path / "out" / "mae_ceiling.csv")
    assert set(per_year["outcome"]) == set(forecast_ceiling.OUTCOMES)
    assert "z_cin__cpp" in per_year.set_index("outcome").loc["cpp", "predictors"].iloc[0]
    assert (tmp_path / "out" / "mae_ceiling.md").read_text().startswith("# How low")
    assert "| cla | 2019-2024 |" in capsys.readouterr().out
