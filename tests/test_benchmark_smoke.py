"""Smoke test of benchmarks/run_benchmark.py: one tiny configuration end to end, and the ratios."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_benchmark.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("run_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_benchmark"] = module
    spec.loader.exec_module(module)
    return module


def _row(name: str, ess: float, wall: float, cpu: float, grads: int) -> dict:
    return {
        "config": name,
        "status": "ok",
        "min_ess_bulk": ess,
        "wall_s": wall,
        "cpu_s": cpu,
        "grad_evals": grads,
        "divergences": 0,
    }


def test_ratios_against_the_baseline(bench):
    rows = bench.add_derived(
        [
            _row("default", ess=1000.0, wall=50.0, cpu=80.0, grads=25_000),
            _row("textbook_pymc", ess=40.0, wall=200.0, cpu=320.0, grads=40_000),
            {"config": "bambi", "status": "skipped: no bambi"},
        ]
    )
    default, base, skipped = rows
    assert default["ess_per_s"] == pytest.approx(20.0)
    assert default["ess_per_cpu_s"] == pytest.approx(12.5)
    assert default["ess_per_grad"] == pytest.approx(0.04)
    assert default["ratio_ess_per_s"] == pytest.approx(20.0 / 0.2)
    assert default["ratio_ess_per_cpu_s"] == pytest.approx(12.5 / 0.125)
    assert default["ratio_ess_per_grad"] == pytest.approx(0.04 / 0.001)
    assert base["ratio_ess_per_s"] == pytest.approx(1.0)
    assert math.isnan(skipped["ratio_ess_per_s"])
    checks = bench.target_checks(rows)
    assert [met for _, _, met in checks] == [True, True, True]
    # no baseline row: ratios are NaN, never a division by a made-up number
    alone = bench.add_derived([_row("default", 1000.0, 50.0, 80.0, 25_000)])
    assert math.isnan(alone[0]["ratio_ess_per_grad"])


def test_one_tiny_configuration_end_to_end(bench, tmp_path):
    rows = bench.run(
        ["nutpie"],
        draws=30,
        tune=30,
        chains=2,
        seed=3,
        out=tmp_path,
        baseline="nutpie",
        max_las=12,
        log=lambda _: None,
    )
    assert rows[0]["status"] == "ok", rows[0]["status"]
    with (tmp_path / "latest.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == bench.COLUMNS
        (row,) = list(reader)
    ess, wall, cpu, grads = (
        float(row[k]) for k in ("min_ess_bulk", "wall_s", "cpu_s", "grad_evals")
    )
    assert row["worst_term"] in bench.CONTRACT_TERMS
    assert ess == min(float(row[f"ess_{t}"]) for t in bench.CONTRACT_TERMS)
    assert grads > 2 * 30  # at least one leapfrog step per kept draw
    assert float(row["ess_per_s"]) == pytest.approx(ess / wall, rel=1e-5)
    assert float(row["ess_per_cpu_s"]) == pytest.approx(ess / cpu, rel=1e-5)
    assert float(row["ess_per_grad"]) == pytest.approx(ess / grads, rel=1e-5)
    assert float(row["ratio_ess_per_s"]) == pytest.approx(1.0)  # its own baseline
    assert float(row["peak_rss_mib"]) > 50
    assert float(row["cpu_s"]) > 0 and float(row["process_wall_s"]) >= wall
    assert int(row["n_obs"]) > 0 and float(row["target_accept"]) == 0.85  # the spec's
    md = (tmp_path / "latest.md").read_text()
    assert "| nutpie | hierarchical | nutpie |" in md and "## Machine" in md
