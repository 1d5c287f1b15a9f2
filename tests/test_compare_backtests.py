"""compare_backtests / ``csc-bayes backtest-compare``: two saved backtests of one outcome,
paired on the forecasts both made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from csc_bayes.backtest import compare_backtests, pool, summarise
from csc_bayes.cli import app
from csc_bayes.errors import AnswerError


def saved(folder: Path, model: str, crps: dict[tuple[int, str], float], outcome="cin") -> Path:
    """A backtest folder whose model scored ``crps[(origin, la_code)]`` (naive: 100 each)."""
    rows = []
    for (origin, code), value in crps.items():
        for method, score in ((model, value), ("naive", 100.0)):
            rows.append(
                {"origin": origin, "horizon": 1, "train": f"2013-{origin - 1}", "method": method,
                 "la_code": code, "covered_50": score < 50, "covered_90": True, "crps": score,
                 "crps_over_y": score / 1000, "abs_error": 2 * score, "phi": 50.0}
            )  # fmt: skip
    scores = pd.DataFrame(rows)
    folder.mkdir(parents=True)
    scores.to_csv(folder / "scores.csv", index=False)
    pool(summarise(scores, model)).to_csv(folder / "pooled.csv", index=False)
    (folder / "info.json").write_text(json.dumps({"model": model, "outcome": outcome}))
    return folder


def test_the_paired_difference_is_over_the_forecasts_both_made(tmp_path):
    # A beats B by 1 in 2023 and by 3 in 2024; authority "3" (A only) and 2022 (B only) drop out
    a = saved(tmp_path / "a", "m_t", {(2023, "1"): 10, (2023, "2"): 20, (2023, "3"): 0,
                                      (2024, "1"): 30, (2024, "2"): 40})  # fmt: skip
    b = saved(tmp_path / "b", "m", {(2022, "1"): 5, (2023, "1"): 11, (2023, "2"): 21,
                                    (2024, "1"): 33, (2024, "2"): 43})  # fmt: skip
    table = compare_backtests(a, b).set_index("method")
    assert list(table.index) == ["m_t", "m", "naive"]
    assert table.loc["m_t", "origins"] == "2023-2024 (2)"
    assert table.loc["m_t", "n_authorities"] == 4 and table.loc["naive", "n_authorities"] == 4
    assert table.loc["m_t", "mean_crps"] == pytest.approx(25.0)
    assert table.loc["m", "mean_crps"] == pytest.approx(27.0)
    assert table.loc["m_t", "crps_minus_m"] == pytest.approx(-2.0)
    assert table.loc["m_t", "se_minus_m"] == pytest.approx(np.std([-1, -3], ddof=1) / np.sqrt(2))
    by_origin = compare_backtests(a, b, baseline=None, by_origin=True)
    assert set(by_origin["method"]) == {"m_t", "m"}
    first = by_origin[(by_origin["origin"] == 2023) & (by_origin["method"] == "m_t")].iloc[0]
    assert first["crps_minus_m"] == pytest.approx(-1.0) and first["se_minus_m"] == 0.0


def test_same_names_are_labelled_and_bad_pairs_refused(tmp_path):
    a = saved(tmp_path / "a", "m", {(2024, "1"): 1.0, (2024, "2"): 2.0})
    b = saved(tmp_path / "b", "m", {(2024, "1"): 2.0, (2024, "2"): 4.0})
    table = compare_backtests(a, b)
    assert list(table["method"]) == ["m (A)", "m (B)", "naive"]
    assert table["crps_minus_m (B)"].iloc[0] == pytest.approx(-1.5)
    named = compare_backtests(a, b, names=("new", "old"), baseline=None)
    assert list(named["method"]) == ["new", "old"] and "crps_minus_old" in named
    other = saved(tmp_path / "c", "m", {(2024, "1"): 1.0}, outcome="cpp")
    with pytest.raises(AnswerError, match="a paired comparison needs one outcome"):
        compare_backtests(a, other)
    later = saved(tmp_path / "d", "m", {(2025, "1"): 1.0})
    with pytest.raises(AnswerError, match="share no origin and horizon"):
        compare_backtests(a, later)
    (b / "scores.csv").unlink()
    with pytest.raises(AnswerError, match=r"has no scores\.csv"):
        compare_backtests(a, b)


def test_the_command_prints_and_writes_the_comparison(tmp_path):
    a = saved(tmp_path / "a", "m_t", {(2024, "1"): 1.0, (2024, "2"): 2.0})
    b = saved(tmp_path / "b", "m", {(2024, "1"): 2.0, (2024, "2"): 4.0})
    out = tmp_path / "cmp.csv"
    run = CliRunner().invoke(app, ["backtest-compare", str(a), str(b), "--out", str(out)])
    assert run.exit_code == 0, run.output
    assert "crps_minus_m" in run.stdout and "m_t" in run.stdout
    assert pd.read_csv(out)["crps_minus_m"].iloc[0] == pytest.approx(-1.5)
    args = ["backtest-compare", str(a), str(b), "--name-b", "old", "--by-origin"]
    named = CliRunner().invoke(app, args)
    assert named.exit_code == 0 and "crps_minus_old" in named.stdout, named.output
    refused = CliRunner().invoke(app, ["backtest-compare", str(a), str(tmp_path)])
    assert refused.exit_code == 1 and "is not a saved backtest" in refused.stderr
