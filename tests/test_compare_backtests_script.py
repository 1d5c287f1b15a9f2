"""examples/compare_backtests.py: the paired CRPS difference of two backtests, by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "compare_backtests.py"
spec = importlib.util.spec_from_file_location("compare_backtests", SCRIPT)
compare_backtests = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_backtests)


def scores(folder: Path, model: str, crps: list[float], codes: list[str]) -> Path:
    folder.mkdir()
    rows = [{"origin": 2024, "horizon": 1, "method": model, "la_code": c, "crps": v}
            for c, v in zip(codes, crps, strict=True)]  # fmt: skip
    rows += [{"origin": 2024, "horizon": 1, "method": "naive", "la_code": c, "crps": 99.0}
             for c in codes]  # fmt: skip
    pd.DataFrame(rows).to_csv(folder / "scores.csv", index=False)
    return folder


def test_paired_difference_over_the_common_authorities(tmp_path, capsys):
    a = scores(tmp_path / "a", "m_t", [10.0, 12.0, 20.0], ["1", "2", "3"])
    b = scores(tmp_path / "b", "m", [11.0, 15.0, 7.0], ["1", "2", "4"])  # "3", "4": one side
    compare_backtests.main([str(a), str(b)])
    out = capsys.readouterr().out
    d = np.array([-1.0, -3.0])
    assert f"| 2024 | 1 | 2 | {d.mean():.2f} | {d.std(ddof=1) / np.sqrt(2):.2f} |" in out
    assert "m_t minus m" in out


def test_a_folder_with_two_models_is_refused(tmp_path):
    a = scores(tmp_path / "a", "m_t", [1.0], ["1"])
    extra = pd.read_csv(a / "scores.csv").assign(method="other")
    pd.concat([pd.read_csv(a / "scores.csv"), extra]).to_csv(a / "scores.csv", index=False)
    with pytest.raises(SystemExit, match="expected one model"):
        compare_backtests.model_scores(a)
