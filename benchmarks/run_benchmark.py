"""Sampling-efficiency benchmark: the package's ``fit`` against what a bambi user would run.

Every configuration fits the CPP counts of ``cpp_need`` (idaci + ethnic minority share, offset
log population, LA, region and year random intercepts, negative binomial, 2013-2024) to one panel
(the real one built by ``csc-bayes data build``, when given, and ``simulate_panel(seed=1)``), each
in its own fresh subprocess, with the same chains, draws, warm-up and seed:

=================  ============================================================================
config             what runs (timed: the whole subprocess / the fit, see below)
=================  ============================================================================
``default``        ``csc-bayes fit cpp_need --data PANEL``: the package's whole command (import,
                   data checks, model build, JAX compile, sampling, convergence gate, pointwise
                   log-likelihood and predictive draws, saving the fit)
``default_<be>``   the same command with ``--backend <be>`` (blackjax, nutpie, pymc)
``bambi_default``  bambi's model (``baseline.py``), ``model.fit()``: PyMC's NUTS (the BASELINE)
``bambi_numpyro``  the same, ``model.fit(inference_method="numpyro")``
``nutpie_bambi``   the same, ``model.fit(inference_method="nutpie")`` (nutpie on bambi's PyMC
                   model, nutpie's own default numba back end)
``ar1_gate``       ``csc-bayes fit cpp_need_ar --data PANEL`` with the spec's own sampler settings
                   (4 x (2000 + 4000), target_accept 0.95): the AR(1) forecasting model's time to
                   a fit that passes the convergence gate (real panel only; no ratio)
=================  ============================================================================

Per configuration (the package rows time the whole command, from process start to exit; the bambi
rows time from ``bmb.Model(...)`` to the draws in hand, so the package pays for its Python
start-up, imports and post-sampling work and bambi does not)::

    wall_s, cpu_s   = wall and CPU (user + system, the process and its reaped children) seconds
    min_ess_bulk    = min over the contract terms and their elements of the rank-normalised bulk
                      ESS (intercept, beta, sigma_la, sigma_region, sigma_year, phi, la_effect,
                      region_effect, year_effect; bambi: the same terms under its own names)
    ess_per_s       = min_ess_bulk / wall_s          ess_per_cpu_s = min_ess_bulk / cpu_s
    grad_evals      = sum of sample_stats.n_steps over the kept draws of every chain
    ess_per_grad    = min_ess_bulk / grad_evals
    ratio_<metric>  = <metric> / <metric of bambi_default on the same panel>

``peak_rss_mib`` is the largest total resident memory of the subprocess tree (sampled every
0.2 s); ``load1_before`` / ``load1_after`` the machine's 1-minute load average just before and
after the subprocess. JAX's persistent compilation cache is off (``CSC_BAYES_JAX_CACHE=off``), so
every JAX configuration pays its full compile time.

    python benchmarks/run_benchmark.py --real /tmp/real_panel.parquet      # the full run
    python benchmarks/run_benchmark.py --panels simulated --configs default bambi_default
    python benchmarks/run_benchmark.py --render                            # re-tabulate
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results"
#: python with bambi installed (pyproject's ``bench`` extra); override with $CSC_BENCH_PYTHON
BENCH_PYTHON = os.environ.get("CSC_BENCH_PYTHON", "/tmp/benchvenv/bin/python")
#: the real panel (``csc-bayes data build`` output); override with --real or $CSC_BENCH_REAL_PANEL
DEFAULT_REAL = os.environ.get("CSC_BENCH_REAL_PANEL", "/tmp/real_panel.parquet")

MODEL_NAME = "cpp_need"
AR_MODEL_NAME = "cpp_need_ar"
PANEL_SEED = 1
BASELINE = "bambi_default"
PANELS = ("real", "simulated")

#: the posterior contract's terms whose worst bulk ESS is the benchmark's currency
CONTRACT_TERMS = (
    "intercept",
    "beta",
    "sigma_la",
    "sigma_region",
    "sigma_year",
    "phi",
    "la_effect",
    "region_effect",
    "year_effect",
)
#: cpp_need_ar's terms (Poisson: no phi; the AR(1) LA-year deviations and their parameters)
AR_TERMS = (
    "intercept",
    "beta",
    "sigma_la",
    "sigma_region",
    "sigma_year",
    "sigma_la_year",
    "rho_la_year",
    "la_effect",
    "region_effect",
    "year_effect",
)
#: targets the package default must reach against bambi_default (see benchmarks/README.md)
TARGET_RATIO_ESS_PER_S = 10.0


@dataclass(frozen=True)
class Config:
    """One benchmark configuration.

    ``kind``: ``"cli"`` (a ``csc-bayes fit`` command of ``spec``, ``backend`` None = the spec's)
    or ``"bambi"`` (bambi's model, ``backend`` its ``inference_method``). ``headline`` configs
    run in the default plan before the others; ``real_only`` ones only on the real panel.
    """

    name: str
    kind: str
    spec: str
    backend: str | None
    note: str
    headline: bool = True
    real_only: bool = False


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config("default", "cli", MODEL_NAME, None, "csc-bayes fit cpp_need (whole command)"),
        Config("bambi_default", "bambi", MODEL_NAME, "pymc", "BASELINE: bambi, model.fit()"),
        Config("bambi_numpyro", "bambi", MODEL_NAME, "numpyro", "bambi, numpyro NUTS"),
        Config("nutpie_bambi", "bambi", MODEL_NAME, "nutpie", "bambi's model, nutpie NUTS"),
        Config(
            "ar1_gate",
            "cli",
            AR_MODEL_NAME,
            None,
            "csc-bayes fit cpp_need_ar: time to a passing gate",
            real_only=True,
        ),
        Config("default_blackjax", "cli", MODEL_NAME, "blackjax", "fit --backend blackjax", False),
        Config("default_nutpie", "cli", MODEL_NAME, "nutpie", "fit --backend nutpie", False),
        Config("default_pymc", "cli", MODEL_NAME, "pymc", "fit --backend pymc", False),
    )
}

#: CSV columns, in order (``ess_<term>``: worst bulk ESS of that contract term)
COLUMNS = (
    "panel",
    "config",
    "kind",
    "model",
    "backend",
    "note",
    "status",
    "draws",
    "tune",
    "chains",
    "seed",
    "target_accept",
    "n_obs",
    "wall_s",
    "cpu_s",
    "process_wall_s",
    "process_cpu_s",
    "sampling_s",
    "post_sampling_s",
    "load1_before",
    "load1_after",
    "peak_rss_mib",
    "min_ess_bulk",
    "worst_term",
    "ess_per_s",
    "ess_per_cpu_s",
    "grad_evals",
    "ess_per_grad",
    "divergences",
    "max_rhat",
    "gate_passed",
    "ratio_ess_per_s",
    "ratio_ess_per_cpu_s",
    "ratio_ess_per_grad",
    *(f"ess_{t}" for t in (*CONTRACT_TERMS, "sigma_la_year", "rho_la_year")),
)


# ============================================================================ shared measurement
def efficiency(posterior: Any, stats: Any, terms: Mapping[str, tuple[str, ...]]) -> dict:
    """Worst bulk ESS per contract term, max rank R-hat, gradients and divergences.

    ``posterior`` and ``stats`` are xarray Datasets (dims chain, draw, ...); ``terms`` maps each
    contract term to the posterior variables that hold it. ``grad_evals`` is NaN when the
    back end reports no ``n_steps``.
    """
    import arviz_stats as azs
    import numpy as np

    names = [v for vs in terms.values() for v in vs]
    ds = posterior[names]
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = azs.ess(ds, method="bulk")
        rhat = azs.rhat(ds, method="rank")
    per_term = {
        term: float(min(np.nanmin(np.asarray(ess[v])) for v in vs)) for term, vs in terms.items()
    }
    worst = min(per_term, key=per_term.__getitem__)
    grads = int(np.asarray(stats["n_steps"]).sum()) if "n_steps" in stats else math.nan
    return {
        "min_ess_bulk": per_term[worst],
        "worst_term": worst,
        "max_rhat": float(np.nanmax(np.concatenate([np.ravel(rhat[v]) for v in names]))),
        "grad_evals": grads,
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        **{f"ess_{t}": v for t, v in per_term.items()},
    }


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU seconds of this process (or, with RUSAGE_CHILDREN, its reaped children)."""
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


# ================================================================ bambi worker (the bench venv)
def run_bambi_worker(
    name: str, *, frame_path: Path, draws: int, tune: int, chains: int, seed: int
) -> dict:
    """Fit bambi's model in this process (a Python with bambi) and return its measurements."""
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from baseline import BAMBI_TERMS, fit_bambi

    config = CONFIGS[name]
    frame = pd.read_parquet(frame_path)
    own0 = cpu_seconds()
    kids0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    idata = fit_bambi(
        frame, inference_method=config.backend, draws=draws, tune=tune, chains=chains, seed=seed
    )
    wall = time.perf_counter() - wall0
    cpu = cpu_seconds() - own0 + cpu_seconds(resource.RUSAGE_CHILDREN) - kids0
    stats = idata["sample_stats"]
    stats = getattr(stats, "dataset", stats)
    posterior = idata["posterior"]
    posterior = getattr(posterior, "dataset", posterior)
    return {
        "status": "ok",
        "target_accept": 0.8,  # PyMC's / bambi's default; nutpie: its own adaptation
        "n_obs": len(frame),
        "wall_s": wall,
        "cpu_s": cpu,
        **efficiency(posterior, stats, BAMBI_TERMS),
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("pymc", "pytensor", "jax", "numpyro", "blackjax", "nutpie", "bambi", "arviz"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


# =========================================================================== orchestrator side
def tree_rss_bytes(pid: int) -> int:
    """Total resident memory of ``pid`` and all its descendants (Linux /proc), in bytes."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return total


def measure(cmd: list[str], *, env: dict[str, str], timeout: float | None) -> dict[str, Any]:
    """Run ``cmd`` to its end; its wall and CPU seconds, peak tree RSS, exit code and output.

    CPU seconds are this process's RUSAGE_CHILDREN difference across the wait: the command and
    every descendant it reaped (PyMC's chain processes). The orchestrator runs one at a time.
    """
    load_before = os.getloadavg()[0]
    kids0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = [0]

    def watch() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        log, _ = proc.communicate()
    watcher.join()
    return {
        "process_wall_s": time.perf_counter() - start,
        "process_cpu_s": cpu_seconds(resource.RUSAGE_CHILDREN) - kids0,
        "peak_rss_mib": peak[0] / 2**20,
        "load1_before": load_before,
        "load1_after": os.getloadavg()[0],
        "exit_code": proc.returncode,
        "log": log.decode(errors="replace"),
    }


@dataclass(frozen=True)
class PanelFiles:
    """One panel as files the subprocesses read: the panel parquet, bambi's frame (or None)."""

    name: str
    panel: Path
    bambi_frame: Path | None
    source: str


def prepare_panel(
    name: str, *, real: Path, workdir: Path, max_las: int | None, bambi: bool
) -> PanelFiles:
    """Write the panel (simulated) or point at it (real); write bambi's frame if ``bambi``.

    Raises FileNotFoundError when the real panel is asked for and ``real`` does not exist.
    """
    import pandas as pd

    from csc_bayes.fitting import resolve_panel
    from csc_bayes.spec import find_spec, select_rows

    if name == "real":
        if not real.is_file():
            raise FileNotFoundError(
                f"real panel {real} not found: build it with "
                "`csc-bayes data build --raw ../shared/data/raw --out PANEL` and pass --real PANEL"
            )
        path, source = real, f"`{real.name}` (csc-bayes data build)"
    else:
        from csc_bayes.simulate import default_authorities, simulate_panel

        las = None if max_las is None else default_authorities(2024).head(max_las)
        panel = simulate_panel(seed=PANEL_SEED, authorities=las).panel
        path = workdir / "simulated_panel.parquet"
        panel.to_parquet(path)
        source = f"simulate_panel(seed={PANEL_SEED})" + (
            f", first {max_las} authorities" if max_las else ""
        )
    frame_path = None
    if bambi:
        sys.path.insert(0, str(HERE))
        from baseline import bambi_frame

        panel, _ = resolve_panel(path)
        fitted, _ = select_rows(find_spec(MODEL_NAME), panel)
        frame_path = workdir / f"{name}_bambi_frame.parquet"
        pd.DataFrame(bambi_frame(fitted)).to_parquet(frame_path)
    return PanelFiles(name, path, frame_path, source)


def run_config(
    name: str,
    panel: PanelFiles,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    timeout: float | None = None,
) -> dict:
    """Run one configuration on one panel in a fresh subprocess; return its row.

    ``status`` is ``"ok"`` or says why there is no measurement. A package fit that fails the
    convergence gate (exit 3) is still measured; ``gate_passed`` says so.
    """
    config = CONFIGS[name]
    row: dict[str, Any] = {
        "panel": panel.name,
        "config": name,
        "kind": config.kind,
        "model": "bambi" if config.kind == "bambi" else config.spec,
        "backend": config.backend or "numpyro",
        "note": config.note,
        "seed": seed,
    }
    env = {**os.environ, "CSC_BAYES_JAX_CACHE": "off"}
    with tempfile.TemporaryDirectory(prefix="csc-bench-") as tmp:
        if config.kind == "bambi":
            row.update(draws=draws, tune=tune, chains=chains)
            if panel.bambi_frame is None or not _can_import(BENCH_PYTHON, "bambi, arviz_stats"):
                row["status"] = f"skipped: bambi not importable with {BENCH_PYTHON}"
                return row
            out = Path(tmp) / "result.json"
            cmd = [BENCH_PYTHON, str(Path(__file__).resolve()), "--worker", name]
            cmd += ["--frame", str(panel.bambi_frame), "--result", str(out)]
            cmd += ["--draws", str(draws), "--tune", str(tune), "--chains", str(chains)]
            cmd += ["--seed", str(seed)]
            measured = measure(cmd, env=env, timeout=timeout)
            row.update({k: v for k, v in measured.items() if k not in ("log", "exit_code")})
            if measured["exit_code"] == 0 and out.is_file():
                row.update(json.loads(out.read_text()))
            else:
                row["status"] = _failure(measured)
            return row
        # a csc-bayes fit command: the spec's sampler settings unless the run overrides them
        cmd = [sys.executable, "-c", "from csc_bayes.cli import main; main()", "fit", config.spec]
        cmd += ["--data", str(panel.panel), "--out", tmp, "--refit", "always", "--no-progress"]
        if config.backend:
            cmd += ["--backend", config.backend]
        if config.spec == MODEL_NAME:  # same chains / draws / tune / seed as the bambi rows
            cmd += ["--draws", str(draws), "--tune", str(tune), "--chains", str(chains)]
            cmd += ["--seed", str(seed)]
        measured = measure(cmd, env=env, timeout=timeout)
        row.update({k: v for k, v in measured.items() if k not in ("log", "exit_code")})
        if measured["exit_code"] not in (0, 3):  # 3: saved, but the gate failed
            row["status"] = _failure(measured)
            return row
        row.update(_read_cli_fit(Path(tmp) / config.spec))
        row["wall_s"], row["cpu_s"] = row["process_wall_s"], row["process_cpu_s"]
    return row


def _read_cli_fit(model_dir: Path) -> dict[str, Any]:
    """Measurements of the one saved run under ``model_dir`` (a ``csc-bayes fit --out`` folder)."""
    from csc_bayes.fits import load_fit

    fit = load_fit(model_dir)
    meta = fit.metadata
    posterior = fit.idata["posterior"].dataset
    stats = fit.idata["sample_stats"].dataset
    names = AR_TERMS if "rho_la_year" in posterior else CONTRACT_TERMS
    sampler = meta["sampler"]
    timings = meta.get("timings", {})
    return {
        "status": "ok",
        "draws": sampler["draws"],
        "tune": sampler["tune"],
        "chains": sampler["chains"],
        "seed": sampler["seed"],
        "target_accept": sampler["target_accept"],
        "n_obs": meta["n_obs"],
        "sampling_s": timings.get("total", math.nan),
        "post_sampling_s": timings.get("pointwise", math.nan),
        "gate_passed": bool(meta["diagnostics"]["passed"]),
        **efficiency(posterior, stats, {t: (t,) for t in names if t in posterior}),
        "versions": meta.get("versions", {}),
    }


def _failure(measured: Mapping[str, Any]) -> str:
    tail = measured["log"].strip().splitlines()[-3:]
    return f"failed (exit {measured['exit_code']}): {' | '.join(tail)}"


def _can_import(python: str, modules: str) -> bool:
    try:
        done = subprocess.run([python, "-c", f"import {modules}"], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def add_derived(rows: Iterable[dict], baseline: str = BASELINE) -> list[dict]:
    """Add ESS per wall second, per CPU second, per gradient, and ratios to the baseline row.

    ``ratio_x = x / x[baseline on the same panel]``; NaN where the baseline (or the row) has no
    result, and for ``ar1_gate`` (a different model).
    """
    rows = [dict(r) for r in rows]
    for r in rows:
        if r.get("status") == "ok":
            r["ess_per_s"] = r["min_ess_bulk"] / r["wall_s"]
            r["ess_per_cpu_s"] = r["min_ess_bulk"] / r["cpu_s"]
            grads = r.get("grad_evals", math.nan)
            r["ess_per_grad"] = r["min_ess_bulk"] / grads if grads and grads > 0 else math.nan
    for r in rows:
        base = next(
            (
                b
                for b in rows
                if b["config"] == baseline
                and b.get("panel") == r.get("panel")
                and b.get("status") == "ok"
            ),
            None,
        )
        for metric in ("ess_per_s", "ess_per_cpu_s", "ess_per_grad"):
            ok = base is not None and r.get("status") == "ok" and r.get("model") != AR_MODEL_NAME
            r[f"ratio_{metric}"] = r[metric] / base[metric] if ok else math.nan
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    """One line per (panel, configuration), columns :data:`COLUMNS`."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: _csv_value(r.get(c)) for c in COLUMNS})
    tmp.replace(path)


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else v


def target_checks(rows: list[dict], baseline: str = BASELINE) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the package default against ``baseline``, per panel."""
    checks = []
    for panel in PANELS:
        default = next(
            (
                r
                for r in rows
                if r["config"] == "default" and r.get("panel") == panel and r.get("status") == "ok"
            ),
            None,
        )
        if default is None or math.isnan(default.get("ratio_ess_per_s", math.nan)):
            continue
        ratio = default["ratio_ess_per_s"]
        checks.append(
            (
                f"{panel} panel: min bulk ESS/s (wall, compile included) >= "
                f"{TARGET_RATIO_ESS_PER_S:g}x {baseline}",
                f"{ratio:.1f}x (per CPU second {default['ratio_ess_per_cpu_s']:.1f}x)",
                ratio >= TARGET_RATIO_ESS_PER_S,
            )
        )
        checks.append(
            (
                f"{panel} panel: zero divergences, gate passed",
                f"{default['divergences']} divergences, gate "
                f"{'passed' if default.get('gate_passed') else 'FAILED'}",
                default["divergences"] == 0 and bool(default.get("gate_passed")),
            )
        )
    return checks


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _ratio(v: float) -> str:
    return _fmt(v, ".2f" if not math.isnan(v) and v < 1 else ".1f")


def write_markdown(
    rows: list[dict], path: Path, machine: dict[str, Any], *, planned: int | None = None
) -> None:
    """The results tables per panel, the AR(1) gate, the target checks and the machine."""
    from csc_bayes.diagnostics import GateThresholds

    done = len(rows)
    partial = planned is not None and done < planned
    title = "Sampling-efficiency benchmark"
    if partial:
        title += f" (PARTIAL: {done} of {planned} runs finished)"
    first = rows[0] if rows else {}
    lines = [
        f"# {title} ({machine['date']})",
        "",
        f"`{MODEL_NAME}` (CPP ~ idaci + ethnic minority share, offset log population, LA, region "
        "and year random intercepts, negative binomial, 2013-2024). Same chains, draws, warm-up "
        f"and seed everywhere: {first.get('chains', '?')} chains x ({first.get('tune', '?')} "
        f"warm-up + {first.get('draws', '?')} draws), seed {first.get('seed', '?')}; ratios (x) "
        f"against `{BASELINE}` on the same panel. `default*` rows time the whole `csc-bayes fit` "
        "command (start-up, compile, sampling, gate, pointwise draws, saving); bambi rows time "
        "`bmb.Model(...)` to the draws in hand. See benchmarks/README.md for the columns.",
    ]
    gate = GateThresholds()
    for panel in PANELS:
        prow = [r for r in rows if r.get("panel") == panel and r.get("model") != AR_MODEL_NAME]
        if not prow:
            continue
        ok = [r for r in prow if r.get("status") == "ok"]
        lines += [
            "",
            f"## {panel.capitalize()} panel",
            "",
            f"{machine.get(f'panel {panel}', '')}.",
            "",
            "| config | sampler | wall s | CPU s | min bulk ESS (term) | ESS/s | ESS/CPU-s "
            "| gradients | ESS/grad | div | max R-hat | peak RSS MiB | load before / after "
            "| x ESS/s | x ESS/CPU-s | x ESS/grad |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in ok:
            lines.append(
                f"| {r['config']} | {r['backend']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} "
                f"| {r['min_ess_bulk']:.0f} (`{r['worst_term']}`) | {r['ess_per_s']:.3g} "
                f"| {r['ess_per_cpu_s']:.3g} | {_fmt(r.get('grad_evals'), ',.0f')} "
                f"| {_fmt(r.get('ess_per_grad'), '.4f')} | {r['divergences']} "
                f"| {r['max_rhat']:.3f} | {_fmt(r.get('peak_rss_mib'), '.0f')} "
                f"| {r['load1_before']:.1f} / {r['load1_after']:.1f} "
                f"| {_ratio(r['ratio_ess_per_s'])} | {_ratio(r['ratio_ess_per_cpu_s'])} "
                f"| {_ratio(r['ratio_ess_per_grad'])} |"
            )
        lines += [f"\n`{r['config']}`: {r.get('status')}" for r in prow if r not in ok]
        cli = [r for r in ok if r["kind"] == "cli"]
        if cli:
            lines += [
                "",
                "Package rows, where the whole command's time went: "
                + "; ".join(
                    f"`{r['config']}` sampling {r['sampling_s']:.0f} s (compile included), "
                    f"pointwise draws {r['post_sampling_s']:.1f} s, the rest (start-up, data "
                    f"checks, build, gate, saving) "
                    f"{r['wall_s'] - r['sampling_s'] - r['post_sampling_s']:.0f} s"
                    for r in cli
                )
                + ".",
            ]
        if ok:
            lines += [
                "",
                "Worst bulk ESS of each contract term:",
                "",
                "| config | " + " | ".join(CONTRACT_TERMS) + " |",
                "|---|" + "---|" * len(CONTRACT_TERMS),
            ]
            for r in ok:
                ess = " | ".join(_fmt(r.get(f"ess_{t}"), ".0f") for t in CONTRACT_TERMS)
                lines.append(f"| {r['config']} | {ess} |")
        failing = [f"`{r['config']}` ({p})" for r in ok if (p := _gate_problems(r, gate))]
        if failing:
            lines += [
                "",
                f"Short of the package's gate (R-hat < {gate.max_rhat}, bulk ESS >= "
                f"{gate.min_ess_bulk:.0f}, no divergences): " + "; ".join(failing) + ".",
            ]
    ar = [r for r in rows if r.get("model") == AR_MODEL_NAME]
    if ar:
        lines += [
            "",
            "## AR(1) forecasting spec: time to a passing gate",
            "",
            f"`csc-bayes fit {AR_MODEL_NAME} --data PANEL` with the spec's own sampler settings "
            "(whole command; one run, no retries).",
            "",
            "| panel | chains x (warm-up + draws) | target_accept | wall s | CPU s | sampling s "
            "| min bulk ESS (term) | ESS/s | div | max R-hat | gate | load before / after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in ar:
            if r.get("status") != "ok":
                lines.append(f"| {r['panel']} | {r.get('status')} |||||||||||")
                continue
            lines.append(
                f"| {r['panel']} | {r['chains']} x ({r['tune']} + {r['draws']}) "
                f"| {r['target_accept']:g} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} "
                f"| {r['sampling_s']:.0f} | {r['min_ess_bulk']:.0f} (`{r['worst_term']}`) "
                f"| {r['ess_per_s']:.3g} | {r['divergences']} | {r['max_rhat']:.3f} "
                f"| {'passed' if r['gate_passed'] else '**failed**'} "
                f"| {r['load1_before']:.1f} / {r['load1_after']:.1f} |"
            )
    checks = target_checks(rows)
    if checks:
        lines += ["", "## Targets (package default)", "", "| target | measured | met |"]
        lines += ["|---|---|---|"]
        lines += [f"| {t} | {m} | {'yes' if met else '**NO**'} |" for t, m, met in checks]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items() if k != "date"]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def _gate_problems(row: dict, gate: Any) -> str:
    """What in a row falls short of the convergence gate's R-hat, bulk ESS and divergence limits."""
    problems = []
    if not row["max_rhat"] < gate.max_rhat:
        problems.append(f"R-hat {row['max_rhat']:.3f}")
    if not row["min_ess_bulk"] >= gate.min_ess_bulk:
        problems.append(f"bulk ESS {row['min_ess_bulk']:.0f}")
    if row["divergences"] > gate.max_divergences:
        problems.append(f"{row['divergences']} divergences")
    return ", ".join(problems)


def describe_machine(
    rows: list[dict], loads: dict[str, tuple[float, ...]], panels: Mapping[str, str]
) -> dict[str, Any]:
    """CPU, memory, load averages, panels and package versions (per Python) for the report."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        (
            int(line.split()[1]) / 2**20
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        math.nan,
    )
    versions: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: r.get("kind") == "bambi"):  # the package's Python first
        for pkg, v in r.get("versions", {}).items():
            if versions.get(pkg, v) != v:
                pkg = f"{pkg} (bench venv)"
            versions.setdefault(pkg, v)
    n_obs = {
        r["panel"]: r["n_obs"]
        for r in rows
        if r.get("status") == "ok" and "n_obs" in r and r.get("model") != AR_MODEL_NAME
    }
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} logical cores, {model}",
        "memory": f"{mem:.1f} GiB",
        "os": platform.platform(),
    }
    for name, source in panels.items():
        out[f"panel {name}"] = f"{source}, {n_obs.get(name, '?')} counts fitted"
    out.update(
        {
            "load averages (1, 5, 15 min) at start": ", ".join(f"{x:.2f}" for x in loads["start"]),
            "load averages (1, 5, 15 min) at end": ", ".join(f"{x:.2f}" for x in loads["end"]),
            "note": "a 2-core machine shared with other jobs: wall seconds depend on the load "
            "(recorded per row); ratios of rows measured side by side under similar load, and "
            "ESS per CPU second and per gradient, are the meaningful comparisons",
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        }
    )
    return out


def plan(panels: Iterable[str], configs: Iterable[str]) -> list[tuple[str, str]]:
    """(panel, config) pairs: every panel's headline configs first, then the other back ends."""
    configs = list(configs)
    panels = list(panels)
    order = []
    for headline in (True, False):
        for p in panels:
            for c in configs:
                cfg = CONFIGS[c]
                if cfg.headline == headline and not (cfg.real_only and p != "real"):
                    order.append((p, c))
    return order


def run(
    configs: Iterable[str],
    *,
    panels: Iterable[str] = PANELS,
    real: Path = Path(DEFAULT_REAL),
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    out: Path,
    max_las: int | None = None,
    timeout: float | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run every (panel, config) in turn; rewrite latest.json/.csv/.md under ``out`` after each.

    A real panel that is not there is skipped with a note (the simulated one always runs).
    """
    out.mkdir(parents=True, exist_ok=True)
    loads: dict[str, tuple[float, ...]] = {"start": os.getloadavg()}
    configs = list(configs)
    bambi = any(CONFIGS[c].kind == "bambi" for c in configs)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="csc-bench-panels-") as tmp:
        files: dict[str, PanelFiles] = {}
        for p in panels:
            try:
                files[p] = prepare_panel(
                    p, real=real, workdir=Path(tmp), max_las=max_las, bambi=bambi
                )
            except FileNotFoundError as err:
                log(f"skipping the {p} panel: {err}")
        order = plan(files, configs)
        sources = {p: f.source for p, f in files.items()}
        for p, name in order:
            log(f"{time.strftime('%H:%M:%S')} {p} {name} (load {os.getloadavg()[0]:.1f}) ...")
            row = run_config(
                name, files[p], draws=draws, tune=tune, chains=chains, seed=seed, timeout=timeout
            )
            log(
                f"{time.strftime('%H:%M:%S')} {p} {name}: {row.get('status')} "
                f"wall {row.get('wall_s', math.nan):.1f} s, cpu {row.get('cpu_s', math.nan):.1f} s,"
                f" min ESS {row.get('min_ess_bulk', math.nan):.0f}, "
                f"div {row.get('divergences', '-')}"
            )
            rows.append(row)
            loads["end"] = os.getloadavg()
            _write_all(out, rows, loads, sources, planned=len(order))
    return add_derived(rows)


def _write_all(
    out: Path,
    rows: list[dict],
    loads: dict[str, tuple[float, ...]],
    sources: Mapping[str, str],
    *,
    planned: int | None,
) -> None:
    derived = add_derived(rows)
    machine = describe_machine(derived, loads, sources)
    saved = {"machine": machine, "planned": planned, "rows": derived}
    tmp = out / "latest.json.tmp"
    tmp.write_text(json.dumps(saved, indent=1, default=_json_default))
    tmp.replace(out / "latest.json")
    write_csv(derived, out / "latest.csv")
    write_markdown(derived, out / "latest.md", machine, planned=planned)


def _json_default(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    raise TypeError(f"not JSON-serialisable: {v!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--panels", nargs="+", choices=PANELS, default=list(PANELS))
    parser.add_argument("--real", type=Path, default=Path(DEFAULT_REAL), help="real panel parquet")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None, help="default: the spec's seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-las", type=int, default=None, help="simulated: first N LAs only")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite latest.csv/.md from OUT/latest.json"
    )
    parser.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--frame", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # in the bench venv: fit bambi's model, write the measurements
        result = run_bambi_worker(
            args.worker,
            frame_path=args.frame,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=args.seed,
        )
        args.result.write_text(json.dumps(result))
        return
    if args.render:
        saved = json.loads((args.out / "latest.json").read_text())
        rows = [{k: (math.nan if v is None else v) for k, v in r.items()} for r in saved["rows"]]
        rows = add_derived(rows)
        write_csv(rows, args.out / "latest.csv")
        write_markdown(rows, args.out / "latest.md", saved["machine"], planned=saved["planned"])
        print((args.out / "latest.md").read_text())
        return
    seed = args.seed if args.seed is not None else _spec_seed()
    run(
        args.configs,
        panels=args.panels,
        real=args.real,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=seed,
        out=args.out,
        max_las=args.max_las,
        timeout=args.timeout,
    )
    print((args.out / "latest.md").read_text())


def _spec_seed() -> int:
    """The sampler seed of the benchmarked spec (read without importing PyMC)."""
    import tomllib

    from csc_bayes.spec import models_dir

    return int(tomllib.loads((models_dir() / f"{MODEL_NAME}.toml").read_text())["sampler"]["seed"])


if __name__ == "__main__":
    main()
