"""Smoke tests of benchmarks/run_benchmark.py: ratios, tables, bambi's data, one tiny run."""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("run_benchmark")


def _row(name: str, ess: float, wall: float, cpu: float, grads: float, panel="real", **kw) -> dict:
    return {
        "panel": panel,
        "config": name,
        "kind": "bambi" if name.startswith(("bambi", "nutpie")) else "cli",
        "model": "bambi" if name.startswith(("bambi", "nutpie")) else "cpp_need",
        "backend": "pymc",
        "status": "ok",
        "min_ess_bulk": ess,
        "worst_term": "sigma_region",
        "wall_s": wall,
        "cpu_s": cpu,
        "grad_evals": grads,
        "divergences": 0,
        "max_rhat": 1.004,
        "load1_before": 1.0,
        "load1_after": 2.0,
        "draws": 1000,
        "tune": 1000,
        "chains": 4,
        "seed": 1,
        "n_obs": 1774,
        "target_accept": 0.8,
        **kw,
    }


def _rows() -> list[dict]:
    timings = {"sampling_s": 24.0, "post_sampling_s": 6.0, "gate_passed": True}
    return [
        _row("default", ess=1000.0, wall=50.0, cpu=80.0, grads=25_000, **timings),
        _row("bambi_default", ess=400.0, wall=200.0, cpu=320.0, grads=40_000),
        _row("nutpie_bambi", ess=300.0, wall=100.0, cpu=150.0, grads=math.nan),
        # the simulated panel's default is compared with the simulated bambi_default only
        _row("default", 900.0, 30.0, 40.0, 20_000, panel="simulated", **timings),
        _row("bambi_default", 90.0, 90.0, 100.0, 50_000, panel="simulated"),
        {"panel": "simulated", "config": "bambi_numpyro", "status": "skipped: no bambi"},
        _row("ar1_gate", 2000.0, 150.0, 200.0, 500_000, model="cpp_need_ar", **timings),
    ]


def test_ratios_are_to_bambi_default_on_the_same_panel(bench):
    rows = bench.add_derived(_rows())
    default, base, nutpie, sim_default, sim_base, skipped, ar = rows
    assert default["ess_per_s"] == pytest.approx(20.0)
    assert default["ess_per_cpu_s"] == pytest.approx(12.5)
    assert default["ess_per_grad"] == pytest.approx(0.04)
    assert default["ratio_ess_per_s"] == pytest.approx(20.0 / 2.0)
    assert default["ratio_ess_per_cpu_s"] == pytest.approx(12.5 / 1.25)
    assert default["ratio_ess_per_grad"] == pytest.approx(0.04 / 0.01)
    assert base["ratio_ess_per_s"] == pytest.approx(1.0)
    assert sim_default["ratio_ess_per_s"] == pytest.approx(30.0 / 1.0)
    assert sim_base["ratio_ess_per_s"] == pytest.approx(1.0)
    # no gradient count (a back end without n_steps): NaN, never a made-up number
    assert math.isnan(nutpie["ess_per_grad"]) and math.isnan(nutpie["ratio_ess_per_grad"])
    assert math.isnan(skipped["ratio_ess_per_s"])
    assert math.isnan(ar["ratio_ess_per_s"])  # a different model: no ratio
    checks = bench.target_checks(rows)
    assert [met for _, _, met in checks] == [True, True, True, True]
    assert "10.0x" in checks[0][1]
    # the target is missed just below 10x, and without a baseline there is no ratio at all
    rows[0]["wall_s"] = 51.0
    assert not bench.target_checks(bench.add_derived(rows[:2]))[0][2]
    alone = bench.add_derived([_row("default", 1000.0, 50.0, 80.0, 25_000)])
    assert math.isnan(alone[0]["ratio_ess_per_s"]) and bench.target_checks(alone) == []


def test_tables_csv_and_partial_label(bench, tmp_path):
    rows = bench.add_derived(_rows())
    machine = bench.describe_machine(
        rows, {"start": (1.0, 1.0, 1.0), "end": (2.0, 2.0, 2.0)}, {"real": "r", "simulated": "s"}
    )
    bench.write_csv(rows, tmp_path / "latest.csv")
    with (tmp_path / "latest.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == bench.COLUMNS
        got = list(reader)
    assert [r["config"] for r in got][:3] == ["default", "bambi_default", "nutpie_bambi"]
    assert float(got[0]["ess_per_s"]) == pytest.approx(20.0)
    assert float(got[0]["ratio_ess_per_s"]) == pytest.approx(10.0)
    assert got[5]["status"] == "skipped: no bambi" and got[5]["ess_per_s"] == ""
    bench.write_markdown(rows, tmp_path / "latest.md", machine, planned=9)
    md = (tmp_path / "latest.md").read_text()
    assert "PARTIAL: 7 of 9 runs finished" in md
    assert "| default | pymc | 50 | 80 | 1000 (`sigma_region`) | 20 |" in md
    assert "## AR(1) forecasting spec: time to a passing gate" in md
    assert "| real panel: min bulk ESS/s (wall, compile included) >= 10x bambi_default" in md
    assert "`bambi_numpyro`: skipped: no bambi" in md
    bench.write_markdown(rows, tmp_path / "latest.md", machine, planned=7)
    assert "PARTIAL" not in (tmp_path / "latest.md").read_text()


def test_plan_runs_headline_configs_first_and_the_ar_gate_on_the_real_panel_only(bench):
    order = bench.plan(["real", "simulated"], list(bench.CONFIGS))
    assert order[:5] == [
        ("real", "default"),
        ("real", "bambi_default"),
        ("real", "bambi_numpyro"),
        ("real", "nutpie_bambi"),
        ("real", "ar1_gate"),
    ]
    assert ("simulated", "ar1_gate") not in order
    assert order.index(("simulated", "nutpie_bambi")) < order.index(("real", "default_pymc"))


def test_measure_counts_a_child_process_cpu_and_wall(bench):
    cmd = [sys.executable, "-c", "sum(i * i for i in range(3_000_000))"]
    got = bench.measure(cmd, env={}, timeout=60)
    assert got["exit_code"] == 0
    assert 0.05 < got["process_cpu_s"] <= got["process_wall_s"] * 1.5 + 0.5
    assert got["peak_rss_mib"] >= 0 and got["load1_before"] >= 0


def test_bambi_frame_is_the_package_rows_with_standardised_covariates():
    from csc_bayes.simulate import default_authorities, simulate_panel
    from csc_bayes.spec import find_spec, select_rows

    baseline = _load("baseline")
    panel = simulate_panel(seed=1, authorities=default_authorities(2024).head(6)).panel
    fitted, _ = select_rows(find_spec("cpp_need"), panel)
    frame = baseline.bambi_frame(fitted)
    assert len(frame) == len(fitted) and frame["cpp"].dtype == np.int64
    for cov in baseline.COVARIATES:
        assert frame[cov].mean() == pytest.approx(0.0, abs=1e-12)
        assert frame[cov].std(ddof=0) == pytest.approx(1.0)
        x = fitted[cov].to_numpy(dtype=float)
        assert np.allclose(frame[cov], (x - x.mean()) / x.std())
    assert set(frame["la_code"]) == set(fitted["la_code"].astype(str))
    for col in ("la_code", "region", "year"):
        assert col in baseline.FORMULA
    with pytest.raises(ValueError, match="constant"):
        baseline.bambi_frame(fitted.assign(idaci=0.3))


@pytest.mark.slow
def test_one_tiny_package_run_end_to_end(bench, tmp_path):
    rows = bench.run(
        ["default"],
        panels=["simulated"],
        draws=30,
        tune=30,
        chains=2,
        seed=3,
        out=tmp_path,
        max_las=12,
        log=lambda _: None,
    )
    row = rows[0]
    assert row["status"] == "ok", row["status"]
    assert row["gate_passed"] is False  # 2 chains x 30 draws cannot pass the gate
    assert row["draws"] == 30 and row["chains"] == 2 and row["target_accept"] == 0.85
    assert row["worst_term"] in bench.CONTRACT_TERMS
    assert row["min_ess_bulk"] == min(row[f"ess_{t}"] for t in bench.CONTRACT_TERMS)
    assert row["grad_evals"] >= 2 * 30  # at least one leapfrog step per kept draw
    assert row["wall_s"] == row["process_wall_s"] > row["sampling_s"] > 0
    assert row["cpu_s"] > 0 and row["peak_rss_mib"] > 50
    assert row["n_obs"] > 0
    md = (tmp_path / "latest.md").read_text()
    assert "| default | numpyro |" in md and "## Machine" in md
