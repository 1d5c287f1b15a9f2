"""Sampling-efficiency benchmark: the package default against what a user would otherwise write.

Fits the canonical model (``cpp_need_spending`` on ``simulate_panel(seed=1)``: ~151 LAs x 9
regions x 10 years of negative binomial CPP counts) once per configuration, each in its own fresh
subprocess, with the same draws, tuning, chains and seed:

=====================  ============  ==========  =============  ==================================
config                 model         sampler     target_accept  what it shows
=====================  ============  ==========  =============  ==================================
``default``            hierarchical  numpyro     spec (0.85)    the package default
``blackjax``           hierarchical  blackjax    spec           the other JAX back ends ...
``nutpie``             hierarchical  nutpie      spec
``pymc``               hierarchical  pymc        spec           ... and PyMC's own NUTS
``textbook_pymc``      textbook      pymc        0.8            the BASELINE (ratios against it)
``textbook_numpyro``   textbook      numpyro     0.8            gain is geometry, not back end
``bambi``              bambi         pymc        0.8            bambi's own model (bench venv)
=====================  ============  ==========  =============  ==================================

Per configuration (``wall_s``, ``cpu_s`` cover model construction, compilation, tuning and
draws; no posterior predictive or log-likelihood)::

    min_ess_bulk    = min over the contract terms and their elements of the rank-normalised bulk
                      ESS (intercept, beta, sigma_la, sigma_region, sigma_year, phi, la_effect,
                      region_effect, year_effect; bambi: the same terms under its own names)
    ess_per_s       = min_ess_bulk / wall_s          ess_per_cpu_s = min_ess_bulk / cpu_s
    grad_evals      = sum of sample_stats.n_steps over the kept draws of every chain
    ess_per_grad    = min_ess_bulk / grad_evals
    ratio_<metric>  = <metric> / <metric of the baseline config>

``cpu_s`` is user + system CPU time of the worker process and its reaped children (PyMC's chain
processes); ``peak_rss_mib`` the largest total resident memory of the worker's process tree,
sampled every 0.2 s. JAX's persistent compilation cache is turned off for the run
(``CSC_BAYES_JAX_CACHE=off``), so every JAX configuration pays its full compile time.

    python benchmarks/run_benchmark.py                       # everything, 4 x (1000 + 1000)
    python benchmarks/run_benchmark.py --configs default textbook_pymc --draws 500
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

MODEL_NAME = "cpp_need_spending"
PANEL_SEED = 1
BASELINE = "textbook_pymc"

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
#: the same terms in bambi's posterior (``beta``: one variable per covariate; ``phi``: alpha)
BAMBI_TERMS: dict[str, tuple[str, ...]] = {
    "intercept": ("Intercept",),
    "beta": ("idaci", "ethnic_minority_share", "spend_per_child"),
    "sigma_la": ("1|la_sigma",),
    "sigma_region": ("1|region_sigma",),
    "sigma_year": ("1|year_sigma",),
    "phi": ("alpha",),
    "la_effect": ("1|la",),
    "region_effect": ("1|region",),
    "year_effect": ("1|year",),
}
#: targets the package default must reach (see benchmarks/README.md)
TARGET_RATIO_ESS_PER_S = 10.0
TARGET_ESS_PER_GRAD = 0.03


@dataclass(frozen=True)
class Config:
    """One benchmark configuration.

    ``model`` is a ``build_model`` parameterisation or ``"bambi"``; ``target_accept`` None
    means the spec's sampler setting.
    """

    name: str
    model: str
    backend: str
    target_accept: float | None
    note: str


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config("default", "hierarchical", "numpyro", None, "package default"),
        Config("blackjax", "hierarchical", "blackjax", None, "default model, blackjax"),
        Config("nutpie", "hierarchical", "nutpie", None, "default model, nutpie (JAX)"),
        Config("pymc", "hierarchical", "pymc", None, "default model, PyMC NUTS"),
        Config("textbook_pymc", "textbook", "pymc", 0.8, "BASELINE: textbook + PyMC NUTS"),
        Config("textbook_numpyro", "textbook", "numpyro", 0.8, "textbook model, numpyro"),
        Config("bambi", "bambi", "pymc", 0.8, "bambi's model + PyMC NUTS"),
    )
}

#: CSV columns, in order (``ess_<term>``: worst bulk ESS of that contract term)
COLUMNS = (
    "config",
    "model",
    "backend",
    "target_accept",
    "note",
    "status",
    "draws",
    "tune",
    "chains",
    "seed",
    "n_obs",
    "wall_s",
    "cpu_s",
    "process_wall_s",
    "load1_start",
    "load1_end",
    "peak_rss_mib",
    "min_ess_bulk",
    "worst_term",
    "ess_per_s",
    "ess_per_cpu_s",
    "grad_evals",
    "ess_per_grad",
    "divergences",
    "max_rhat",
    "ratio_ess_per_s",
    "ratio_ess_per_cpu_s",
    "ratio_ess_per_grad",
    *(f"ess_{t}" for t in CONTRACT_TERMS),
)


# ================================================================================= worker side
def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def efficiency(posterior: Any, stats: Any, terms: Mapping[str, tuple[str, ...]]) -> dict:
    """Worst bulk ESS per contract term, max rank R-hat, gradients and divergences.

    ``posterior`` and ``stats`` are xarray Datasets (dims chain, draw, ...); ``terms`` maps each
    contract term to the posterior variables that hold it.
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
    worst = min(per_term, key=per_term.get)
    return {
        "min_ess_bulk": per_term[worst],
        "worst_term": worst,
        "max_rhat": float(max(np.nanmax(np.asarray(rhat[v])) for v in names)),
        "grad_evals": int(np.asarray(stats["n_steps"]).sum()),
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        **{f"ess_{t}": v for t, v in per_term.items()},
    }


def _fit_package(
    config: Config, *, draws: int, tune: int, chains: int, seed: int, max_las: int | None
) -> tuple[dict, Callable[[], tuple[Any, Any, int, float]]]:
    """Untimed setup (spec, panel) and the timed fit of a ``build_model`` configuration."""
    from csc_bayes.model import build_model
    from csc_bayes.sampling import sample
    from csc_bayes.spec import find_spec

    spec = find_spec(MODEL_NAME)
    panel = _panel(max_las)
    target_accept = config.target_accept or spec.sampler.target_accept

    def fit() -> tuple[Any, Any, int, float]:
        built = build_model(spec, panel, parameterisation=config.model)
        result = sample(
            built.model,
            backend=config.backend,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress=False,
            posterior_predictive=False,
            log_likelihood=False,
        )
        posterior, stats = result.idata["posterior"].dataset, result.idata["sample_stats"].dataset
        return posterior, stats, len(built.data), target_accept

    return {name: (name,) for name in CONTRACT_TERMS}, fit


def _fit_bambi(
    config: Config, *, draws: int, tune: int, chains: int, seed: int, max_las: int | None
) -> tuple[dict, Callable[[], tuple[Any, Any, int, float]]]:
    """Untimed setup (data frame) and the timed fit of bambi's model with PyMC's NUTS."""
    import bambi as bmb

    sys.path.insert(0, str(HERE))
    from baseline import FORMULA, baseline_data

    data = baseline_data(_panel(max_las))

    def fit() -> tuple[Any, Any, int, float]:
        model = bmb.Model(FORMULA, data, family="negativebinomial")
        idata = model.fit(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=min(chains, os.cpu_count() or 1),
            random_seed=seed,
            target_accept=config.target_accept,
            progressbar=False,
        )
        posterior, stats = idata["posterior"].dataset, idata["sample_stats"].dataset
        return posterior, stats, len(data), config.target_accept

    return BAMBI_TERMS, fit


def _panel(max_las: int | None) -> Any:
    """``simulate_panel(seed=1)``, or the same on the first ``max_las`` authorities (smoke)."""
    from csc_bayes.simulate import default_authorities, simulate_panel

    las = None if max_las is None else default_authorities(2024).head(max_las)
    return simulate_panel(seed=PANEL_SEED, authorities=las).panel


def run_worker(
    name: str, *, draws: int, tune: int, chains: int, seed: int, max_las: int | None
) -> dict:
    """Fit one configuration in this process and return its measurements (JSON-safe)."""
    config = CONFIGS[name]
    setup = _fit_bambi if config.model == "bambi" else _fit_package
    terms, fit = setup(config, draws=draws, tune=tune, chains=chains, seed=seed, max_las=max_las)
    load_start = os.getloadavg()[0]
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    posterior, stats, n_obs, target_accept = fit()
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    load_end = os.getloadavg()[0]
    return {
        "status": "ok",
        "target_accept": target_accept,
        "n_obs": n_obs,
        "wall_s": wall,
        "cpu_s": cpu,
        "load1_start": load_start,
        "load1_end": load_end,
        **efficiency(posterior, stats, terms),
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


def run_config(
    name: str,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    max_las: int | None = None,
    timeout: float | None = None,
) -> dict:
    """Run one configuration in a fresh subprocess; return its row (status says if it failed)."""
    config = CONFIGS[name]
    python = BENCH_PYTHON if config.model == "bambi" else sys.executable
    row: dict[str, Any] = {
        "config": name,
        "model": config.model,
        "backend": config.backend,
        "target_accept": config.target_accept,
        "note": config.note,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
    }
    if config.model == "bambi" and not _can_import(python, "bambi, csc_bayes"):
        row["status"] = f"skipped: bambi/csc_bayes not importable with {python}"
        return row
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--result", str(out)]
        cmd += ["--draws", str(draws), "--tune", str(tune), "--chains", str(chains)]
        cmd += ["--seed", str(seed)] + ([] if max_las is None else ["--max-las", str(max_las)])
        env = {**os.environ, "CSC_BAYES_JAX_CACHE": "off"}
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
        row["process_wall_s"] = time.perf_counter() - start
        row["peak_rss_mib"] = peak[0] / 2**20
        if proc.returncode == 0 and out.is_file():
            row.update(json.loads(out.read_text()))
        else:
            tail = log.decode(errors="replace").strip().splitlines()[-3:]
            row["status"] = f"failed (exit {proc.returncode}): {' | '.join(tail)}"
    return row


def _can_import(python: str, modules: str) -> bool:
    try:
        done = subprocess.run([python, "-c", f"import {modules}"], capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def add_derived(rows: Iterable[dict], baseline: str = BASELINE) -> list[dict]:
    """Add ESS per wall second, per CPU second, per gradient, and ratios to the baseline row.

    ``ratio_x = x / x[baseline]``; NaN where the baseline (or the row) has no result.
    """
    rows = [dict(r) for r in rows]
    for r in rows:
        if r.get("status") == "ok":
            r["ess_per_s"] = r["min_ess_bulk"] / r["wall_s"]
            r["ess_per_cpu_s"] = r["min_ess_bulk"] / r["cpu_s"]
            r["ess_per_grad"] = r["min_ess_bulk"] / r["grad_evals"]
    base = next((r for r in rows if r["config"] == baseline and r.get("status") == "ok"), None)
    for r in rows:
        for metric in ("ess_per_s", "ess_per_cpu_s", "ess_per_grad"):
            ok = base is not None and r.get("status") == "ok"
            r[f"ratio_{metric}"] = r[metric] / base[metric] if ok else math.nan
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({c: _csv_value(r.get(c)) for c in COLUMNS})


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else v


def target_checks(rows: list[dict], baseline: str = BASELINE) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for the package default against the baseline."""
    default = next((r for r in rows if r["config"] == "default" and r.get("status") == "ok"), None)
    if default is None:
        return []
    ratio = default.get("ratio_ess_per_s", math.nan)
    return [
        (
            f"min bulk ESS/s (wall, incl. compile) >= {TARGET_RATIO_ESS_PER_S:g}x {baseline}",
            f"{ratio:.1f}x (CPU-s ratio {default['ratio_ess_per_cpu_s']:.1f}x)",
            ratio >= TARGET_RATIO_ESS_PER_S,
        ),
        ("zero divergences", str(default["divergences"]), default["divergences"] == 0),
        (
            f"min bulk ESS per gradient >= {TARGET_ESS_PER_GRAD}",
            f"{default['ess_per_grad']:.4f}",
            default["ess_per_grad"] >= TARGET_ESS_PER_GRAD,
        ),
    ]


def write_markdown(rows: list[dict], path: Path, machine: dict[str, Any]) -> None:
    """The results table, per-term ESS, the target checks and the machine description."""

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    def ratio(v: float) -> str:
        return f(v, ".2f" if v < 1 else ".1f")

    ok = [r for r in rows if r.get("status") == "ok"]
    lines = [
        f"# Sampling-efficiency benchmark ({machine['date']})",
        "",
        f"`{MODEL_NAME}` on `simulate_panel(seed={PANEL_SEED})`; "
        f"{rows[0]['chains']} chains x ({rows[0]['tune']} tune + {rows[0]['draws']} draws), "
        f"seed {rows[0]['seed']}; ratios against `{BASELINE}`. "
        "Wall and CPU seconds cover model build, compilation, tuning and draws. "
        "See benchmarks/README.md for what the columns mean.",
        "",
        "| config | model | sampler | target_accept | wall s | CPU s | min bulk ESS (term) "
        "| ESS/s | ESS/CPU-s | gradients | ESS/grad | div | max R-hat | peak RSS MiB "
        "| x ESS/s | x ESS/CPU-s | x ESS/grad |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ok:
        lines.append(
            f"| {r['config']} | {r['model']} | {r['backend']} | {r['target_accept']:g} "
            f"| {r['wall_s']:.0f} | {r['cpu_s']:.0f} "
            f"| {r['min_ess_bulk']:.0f} (`{r['worst_term']}`) | {r['ess_per_s']:.3g} "
            f"| {r['ess_per_cpu_s']:.3g} | {r['grad_evals']:,} | {r['ess_per_grad']:.4f} "
            f"| {r['divergences']} | {r['max_rhat']:.3f} | {f(r.get('peak_rss_mib'), '.0f')} "
            f"| {ratio(r['ratio_ess_per_s'])} | {ratio(r['ratio_ess_per_cpu_s'])} "
            f"| {ratio(r['ratio_ess_per_grad'])} |"
        )
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"\n`{r['config']}`: {r.get('status')}")
    lines += [
        "",
        "Worst bulk ESS of each contract term:",
        "",
        "| config | " + " | ".join(CONTRACT_TERMS) + " |",
        "|---|" + "---|" * len(CONTRACT_TERMS),
    ]
    for r in ok:
        ess = " | ".join(f"{r[f'ess_{t}']:.0f}" for t in CONTRACT_TERMS)
        lines.append(f"| {r['config']} | {ess} |")
    lines += [
        "",
        "Load (1-minute average) at the start / end of each timed fit: "
        + ", ".join(f"{r['config']} {r['load1_start']:.1f} / {r['load1_end']:.1f}" for r in ok)
        + ".",
    ]
    from csc_bayes.diagnostics import GateThresholds

    gate = GateThresholds()
    failing = [
        f"`{r['config']}` ({_gate_problems(r, gate)})" for r in ok if _gate_problems(r, gate)
    ]
    if failing:
        lines += [
            "",
            f"Not converged by the package's gate (R-hat < {gate.max_rhat}, bulk ESS >= "
            f"{gate.min_ess_bulk:.0f}, no divergences): " + "; ".join(failing) + ". Their ESS "
            "figures describe draws that should not be used, and are likely optimistic.",
        ]
    checks = target_checks(rows)
    if checks:
        lines += ["", "## Targets (package default)", "", "| target | measured | met |"]
        lines += ["|---|---|---|"]
        lines += [f"| {t} | {m} | {'yes' if met else '**NO**'} |" for t, m, met in checks]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items() if k != "date"]
    path.write_text("\n".join(lines) + "\n")


def _gate_problems(row: dict, gate: Any) -> str:
    """What in a row fails the convergence gate's R-hat, bulk ESS and divergence limits."""
    problems = []
    if not row["max_rhat"] < gate.max_rhat:
        problems.append(f"R-hat {row['max_rhat']:.3f}")
    if not row["min_ess_bulk"] >= gate.min_ess_bulk:
        problems.append(f"bulk ESS {row['min_ess_bulk']:.0f}")
    if row["divergences"] > gate.max_divergences:
        problems.append(f"{row['divergences']} divergences")
    return ", ".join(problems)


def describe_machine(rows: list[dict], loads: dict[str, tuple[float, ...]]) -> dict[str, Any]:
    """CPU, memory, load averages and package versions (per Python used) for the report."""
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
    for r in sorted(rows, key=lambda r: r["model"] == "bambi"):  # the main venv first
        for pkg, v in r.get("versions", {}).items():
            if versions.get(pkg, v) != v:
                pkg = f"{pkg} (bench venv)"
            versions.setdefault(pkg, v)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{os.cpu_count()} logical cores, {model}",
        "memory": f"{mem:.1f} GiB",
        "os": platform.platform(),
        "load averages (1, 5, 15 min) at start": ", ".join(f"{x:.2f}" for x in loads["start"]),
        "load averages (1, 5, 15 min) at end": ", ".join(f"{x:.2f}" for x in loads["end"]),
        "note": "shared machine: other jobs ran during the benchmark, so wall seconds are "
        "inflated; CPU-second ratios are the fairer comparison",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def run(
    configs: Iterable[str],
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    out: Path,
    baseline: str = BASELINE,
    max_las: int | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run every configuration in turn; write latest.json (raw), .csv and .md under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    loads = {"start": os.getloadavg()}
    rows = []
    for name in configs:
        log(f"{time.strftime('%H:%M:%S')} {name} ...")
        row = run_config(name, draws=draws, tune=tune, chains=chains, seed=seed, max_las=max_las)
        log(
            f"{time.strftime('%H:%M:%S')} {name}: {row.get('status')} "
            f"wall {row.get('wall_s', math.nan):.1f} s, cpu {row.get('cpu_s', math.nan):.1f} s, "
            f"min ESS {row.get('min_ess_bulk', math.nan):.0f}"
        )
        rows.append(row)
    loads["end"] = os.getloadavg()
    rows = add_derived(rows, baseline)
    machine = describe_machine(rows, loads)
    (out / "latest.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    write_csv(rows, out / "latest.csv")
    write_markdown(rows, out / "latest.md", machine)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None, help="default: the spec's seed")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--baseline", choices=list(CONFIGS), default=BASELINE)
    parser.add_argument("--max-las", type=int, default=None, help="first N LAs only (smoke)")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite latest.csv/.md from OUT/latest.json"
    )
    parser.add_argument("--worker", choices=list(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else _spec_seed()
    if args.worker:
        import csc_bayes  # noqa: F401  (sets XLA host devices before JAX starts)

        result = run_worker(
            args.worker,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            seed=seed,
            max_las=args.max_las,
        )
        args.result.write_text(json.dumps(result))
        return
    if args.render:
        saved = json.loads((args.out / "latest.json").read_text())
        rows = add_derived(saved["rows"], args.baseline)
        write_csv(rows, args.out / "latest.csv")
        write_markdown(rows, args.out / "latest.md", saved["machine"])
        print((args.out / "latest.md").read_text())
        return
    run(
        args.configs,
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=seed,
        out=args.out,
        baseline=args.baseline,
        max_las=args.max_las,
    )
    print((args.out / "latest.md").read_text())


def _spec_seed() -> int:
    """The sampler seed of the benchmarked spec (read without importing PyMC)."""
    import tomllib

    from csc_bayes.spec import models_dir

    return int(tomllib.loads((models_dir() / f"{MODEL_NAME}.toml").read_text())["sampler"]["seed"])


if __name__ == "__main__":
    main()
