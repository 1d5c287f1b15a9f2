"""The open model from the command line: a user's own column (``data join --extra``) and a
formula (``fit --formula``, with a lag and a prior by name) fit and flow through explain, excess,
predict and the report, as a statistician would run them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.cli import app
from csc_bayes.data import save_panel
from csc_bayes.errors import AnswerError
from csc_bayes.fits import load_fit
from csc_bayes.predict import predict_draws
from csc_bayes.simulate import default_authorities, simulate_panel

FORMULA = (
    "cpp ~ idaci + need(family = fsm_share + lag(fsm_share, 1)) + offset(log(population)) "
    "+ (1|la) + (1|region) + rw1(year)"
)
QUICK = ["--draws", "150", "--tune", "150", "--chains", "2", "--no-progress"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A synthetic panel 2019-2024 (+ 2025 forecast rows), a user's table of free school meals
    share by authority and year (2018-2025: known a year ahead), joined with `data join`, and a
    formula fit of it (2020-2024)."""
    root = tmp_path_factory.mktemp("open_model")
    las = default_authorities(2024).groupby("region").head(3).reset_index(drop=True)
    panel = simulate_panel(first_year=2019, last_year=2024, seed=3, authorities=las).panel
    save_panel(panel, root / "panel.parquet")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        [
            {"la_code": code, "year": year, "fsm_share": round(rng.uniform(0.1, 0.4), 4)}
            for code in panel["la_code"].unique()
            for year in range(2018, 2026)
        ]
    )
    table.to_csv(root / "fsm.csv", index=False)
    code, _, err = run(
        "data", "join", root / "panel.parquet", "--extra", root / "fsm.csv",
        "--out", root / "panel_fsm.parquet",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(
        "fit", "--formula", FORMULA, "--data", root / "panel_fsm.parquet", "--years", "2020",
        "2024", "--prior", "sigma_la = { sigma = 0.5 }", "--out", root / "fits", *QUICK,
    )  # fmt: skip
    assert code in (0, 3), err  # 2 short chains may not pass the gate; the fit is saved anyway
    return root, panel


def test_a_formula_with_a_users_column_fits_as_the_toml_would(workspace):
    root, _ = workspace
    (run_dir,) = (root / "fits" / "cpp_formula").iterdir()
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert "fsm_share + lag(fsm_share, 1)" in meta["formula"]
    spec_text = (run_dir / "spec.toml").read_text()
    assert 'family = ["fsm_share", "lag_fsm_share_1"]' in spec_text
    assert 'year_effect = "rw1"' in spec_text and "sigma_la" in spec_text


def test_explain_excess_predict_and_report_include_the_users_column(workspace):
    root, panel = workspace
    fit_dir = root / "fits" / "cpp_formula"
    code, out, err = run("explain", fit_dir, "--no-null", "--format", "csv")
    assert code == 0, err
    shares = pd.read_csv(pd.io.common.StringIO(out))
    assert "family" in set(shares["component"])  # the user's component has its own share

    code, out, err = run("excess", fit_dir, "--year", "2024", "--format", "csv")
    assert code == 0, err
    excess = pd.read_csv(pd.io.common.StringIO(out))
    assert len(excess) == panel["la_code"].nunique()
    assert excess["excess_ratio_median"].between(0.2, 5).all()

    # 2025: fsm_share is in the user's table (known a year ahead), its lag is 2024's value
    name = panel["la_name"].iloc[0]
    code, out, err = run(
        "predict", fit_dir, "--authority", name, "--year", "2025", "--format", "csv"
    )
    assert code == 0, err
    row = pd.read_csv(pd.io.common.StringIO(out)).iloc[0]
    assert row["kind"] == "forecast" and row["predicted_median"] > 0
    assert "latest earlier value" not in err  # nothing carried forward: every value was known

    code, _, err = run("report", fit_dir, "-o", root / "report.html", "--force")
    assert code == 0, err
    html = (root / "report.html").read_text()
    assert "lag(fsm_share, 1)" in html and "family" in html


def test_a_forecast_beyond_a_lag_carries_it_forward_and_says_so(workspace):
    """fsm_share is published to 2025, so lag(fsm_share, 1) is known to 2026; a forecast of 2027
    carries it forward (the 2026 lag, fsm_share in 2025) and says so."""
    root, panel = workspace
    name = panel["la_name"].iloc[0]
    code, out, err = run(
        "predict", root / "fits" / "cpp_formula", "--authority", name,
        "--year", "2026", "--year", "2027", "--format", "csv",
    )  # fmt: skip
    assert code == 0, err
    rows = pd.read_csv(pd.io.common.StringIO(out))
    assert list(rows["year"]) == [2026, 2027] and (rows["predicted_median"] > 0).all()
    assert "lag_fsm_share_1 for 2027 (from 2026)" in err and "latest earlier value" in err

    # a gap (one authority's fsm_share missing in 2024, published for the others) is not
    # carried over: it is an error naming the authority
    fit = load_fit(root / "fits" / "cpp_formula")
    code = str(panel["la_code"].iloc[0])
    gap = fit.panel.copy()
    gap.loc[(gap["la_code"].astype(str) == code) & (gap["year"] == 2024), "fsm_share"] = np.nan
    with pytest.raises(AnswerError, match=f"fsm_share in 2024, .* for authority {code}"):
        predict_draws(dataclasses.replace(fit, panel=gap), authority=code, year=2025)
