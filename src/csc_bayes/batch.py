"""Many fits at once on a Dask cluster: plans, resuming, and the engine SBC and CV reuse.

A *plan* (TOML) is a grid ``specs x outcomes x year windows``; each cell is one task, one call of
:func:`csc_bayes.fitting.fit` that saves through the normal atomic save into ``out``::

    out = "fits/batch"                       # relative to the current directory
    specs = ["cpp_need", "cpp_null"]         # shipped names or TOML paths
    outcomes = ["cpp", "cla"]                # optional: refit each spec for these outcomes
    years = [[2015, 2019], [2020, 2024]]     # optional: year windows
    refit = "on_change"                      # or "always" / "never"

    [data]
    source = "synthetic"                     # or a panel parquet path (csc-bayes data build)
    seed = 0                                 # synthetic only
    authorities = 30                         # synthetic only: the first N authorities

    [sampler]                                # optional overrides of every spec's settings
    draws = 200                              # or "auto" (with min_draws, block_draws,
    chains = 2                               # max_draws): to the gate's R-hat and ESS targets

Resuming: every task calls ``fit(..., refit="on_change")``, which returns a saved run with the
same spec, data and sampler hashes instead of sampling again. A run is renamed into place only
when complete, so a killed worker or an interrupted batch loses only the tasks that were running.
Two copies of one task (Dask may rerun a task whose worker it believed lost) are serialised by a
per-task lock file (``out/.locks/<task>.lock``, ``fcntl.flock``, released by the OS when a process
dies), so the second copy finds and reuses the first one's run: never two runs for one task.

The cluster is a local ``distributed.LocalCluster`` (one process per core, one thread each, JAX
and BLAS limited to one thread) unless ``scheduler`` names an existing one (an address or a
``dask scheduler --scheduler-file``) or ``client`` is an open ``distributed.Client`` (see
docs/scale.md for clusters you start yourself and SLURM / PBS through dask-jobqueue). Paths a
task writes to are made absolute on the caller's side before the task is sent (:class:`Task`),
and each task applies the one-thread settings in its worker itself (:func:`limit_threads`), so
workers started by hand, in any directory and environment, give the same results.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import time
import tomllib
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from csc_bayes.errors import CscBayesError, PlanError

#: environment that keeps every worker to one thread (set before JAX / BLAS are imported)
SINGLE_THREAD_ENV = {
    # one XLA host device: numpyro then runs a task's chains vectorised in this one thread
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count=1",
    # JAX reads this at import and it overrides the XLA flag: a value inherited from a shell set
    # up for parallel chains would otherwise give the worker several devices (threads)
    "JAX_NUM_CPU_DEVICES": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTENSOR_FLAGS": "openmp=False",
}
PLAN_KEYS = ("out", "specs", "outcomes", "years", "refit", "data", "sampler")
DATA_KEYS = ("source", "seed", "authorities", "first_year", "last_year")
SAMPLER_KEYS = (
    "backend",
    "draws",
    "tune",
    "chains",
    "seed",
    "target_accept",
    "max_treedepth",
    "min_draws",
    "block_draws",
    "max_draws",
)
REFIT_POLICIES = ("on_change", "always", "never")


# ====================================================================== the engine
@dataclass(frozen=True)
class Task:
    """One unit of work: ``func(**kwargs)`` on a worker, known by a unique, stable ``key``.

    ``func`` must be importable by the workers (a module-level function). ``lock_dir``, when
    given, holds the per-task lock file that stops two copies of the task running at once.
    """

    key: str
    func: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    lock_dir: Path | None = None
    #: keyword arguments that are file-system paths (``str`` or ``PathLike``); with
    #: ``lock_dir`` and every ``PathLike`` argument they are made absolute against the
    #: caller's working directory before the task is sent (:func:`run_tasks`)
    paths: tuple[str, ...] = ("out", "fits_dir")

    def absolute(self, cwd: str | os.PathLike[str] | None = None) -> Task:
        """This task with its paths made absolute against ``cwd`` (default: the current one).

        A relative output folder means the caller's directory, never a worker's, which may be
        elsewhere (workers started by hand, or on other machines sharing the file system).
        Values keep their type (``str`` stays ``str``); ``None`` stays ``None``.
        """
        base = os.fspath(cwd) if cwd is not None else os.getcwd()

        def made_absolute(value: Any) -> Any:
            path = os.path.normpath(os.path.join(base, os.fspath(value)))
            return Path(path) if isinstance(value, os.PathLike) else path

        def is_path(name: str, value: Any) -> bool:
            if isinstance(value, os.PathLike):
                return True
            return name in self.paths and isinstance(value, str) and "://" not in value

        kwargs = {k: made_absolute(v) if is_path(k, v) else v for k, v in self.kwargs.items()}
        lock_dir = None if self.lock_dir is None else made_absolute(Path(self.lock_dir))
        return replace(self, kwargs=kwargs, lock_dir=lock_dir)


@dataclass
class TaskOutcome:
    """What became of one task: ``status`` is ``"done"`` (with ``value``) or ``"failed"``."""

    key: str
    status: str
    value: Any = None
    error: str | None = None
    seconds: float = float("nan")


def limit_threads() -> str:
    """Apply :data:`SINGLE_THREAD_ENV` in this worker process; say what JAX was left with.

    Run by every task before its function (and so before it imports JAX), on any worker: one
    this module started, or one started by hand (docs/scale.md). Assigned, not defaulted: a
    worker started from a shell set up for parallel chains (``XLA_FLAGS`` or
    ``JAX_NUM_CPU_DEVICES`` naming several devices) must not use them. If JAX is already
    imported its device count is set as well (``jax_num_cpu_devices = 1``), while its backend
    has not started. Because ``XLA_FLAGS`` then names one host device,
    :func:`csc_bayes.sampling.prepare_jax` leaves the device count alone and a task's chains
    run vectorised in one thread.

    What cannot be changed here: a JAX backend that had already started in this process (a
    preloaded module or an earlier task of another program that ran JAX) keeps its device
    count, and BLAS libraries already loaded keep their thread pools (``dask worker`` starts
    its processes with ``OMP_NUM_THREADS=1`` and friends unless run with ``--no-nanny``); a
    worker with several JAX devices is logged as a warning.

    Returns:
        ``"not imported"`` (JAX comes later, with these settings), ``"configured"`` (JAX was
        imported, its backend not started: set to one device), or ``"started: N devices"``.
    """
    os.environ.update(SINGLE_THREAD_ENV)
    jax = sys.modules.get("jax")
    if jax is None:
        return "not imported"
    try:
        jax.config.update("jax_num_cpu_devices", 1)
        return "configured"
    except RuntimeError:  # the backend has started: its device count is fixed
        devices = jax.local_device_count()
        if devices > 1:
            logging.getLogger(__name__).warning(
                "this worker's JAX backend started before csc_bayes could limit it: %d devices "
                "(start workers with the environment in csc_bayes.batch.SINGLE_THREAD_ENV)",
                devices,
            )
        return f"started: {devices} devices"


def _execute(task: Task) -> tuple[Any, float]:
    """Run one task on a worker under its lock; return (value, seconds)."""
    limit_threads()
    started = time.perf_counter()
    try:
        with _task_lock(task):
            value = task.func(**task.kwargs)
    finally:
        _release_compiled_code()
    return value, time.perf_counter() - started


def _release_compiled_code() -> None:
    """Drop JAX's in-memory compiled programs after a task.

    Every fit compiles a new program (its data differ), and a long-lived worker that keeps them
    all runs out of memory mappings after a few hundred fits (seen in a 200-replicate SBC run as
    LLVM "Cannot allocate memory"). The on-disk compilation cache is unaffected.
    """
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()


@contextlib.contextmanager
def _task_lock(task: Task) -> Iterator[None]:
    if task.lock_dir is None:
        yield
        return
    task.lock_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in task.key)
    with open(task.lock_dir / f"{safe}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # blocks while another copy runs; freed when it dies
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def default_workers() -> int:
    """One worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(
    scheduler: str | os.PathLike[str] | None = None,
    *,
    n_workers: int | None = None,
    announce: bool = True,
) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler`` if given, else to a fresh ``LocalCluster``.

    ``scheduler`` is an address (``tcp://host:8786``) or the JSON file that ``dask scheduler
    --scheduler-file FILE`` writes. The local cluster has ``n_workers`` (default: one per core)
    processes of one thread each, started with :data:`SINGLE_THREAD_ENV`, and a dashboard on a
    free port of 127.0.0.1; it is closed when the block ends (a cluster connected to is left
    running). With ``announce``, one line on standard error says which cluster, how many
    workers and where its dashboard is (when it has one).
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        where = os.fspath(scheduler)
        by_file = "://" not in where and where.endswith(".json") and Path(where).is_file()
        try:
            client = Client(scheduler_file=where) if by_file else Client(where)
        except (OSError, TimeoutError) as exc:
            raise OSError(f"cannot connect to the Dask scheduler at {where}: {exc}") from exc
        with client:
            if announce:
                _announce(client, f"connected to the Dask scheduler at {client.scheduler.address}")
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            env=dict(SINGLE_THREAD_ENV),
            dashboard_address="127.0.0.1:0",  # any free port: several clusters may share a host
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        if announce:
            _announce(client, f"started a local Dask cluster at {cluster.scheduler_address}")
        yield client


def dashboard_link(client: Any) -> str | None:
    """The address of the dashboard of ``client``'s scheduler, or None when it serves none."""
    link, state = _dashboard(client)
    return link if state == "served" else None


def _dashboard(client: Any) -> tuple[str | None, str]:
    """(address, state): state ``served``, ``off`` or ``needs bokeh``.

    A scheduler always runs an HTTP server (health and metrics), which Dask reports as its
    "dashboard" service, even when started with ``--no-dashboard`` or without Bokeh (then its
    page only says to install Bokeh); the scheduler is asked which it is.
    """
    try:
        link = client.dashboard_link
    except (KeyError, AttributeError, TypeError):  # no HTTP server at all
        return None, "off"
    if not link:
        return None, "off"
    try:
        state = client.run_on_scheduler(_dashboard_state)
    except Exception:  # cannot tell (e.g. a scheduler without csc_bayes): trust Dask
        state = "served"
    return link, state


def _dashboard_state(dask_scheduler: Any = None) -> str:
    """On the scheduler: ``served``, ``needs bokeh`` (asked for, Bokeh missing) or ``off``."""
    if "distributed.dashboard.scheduler" in sys.modules:
        return "served"
    if "distributed.http.scheduler.missing_bokeh" in sys.modules:
        return "needs bokeh"
    return "off"


def _announce(client: Any, what: str) -> None:
    """One line on standard error: the cluster, its workers and its dashboard."""
    workers = len(client.nthreads())
    count = f"{workers} worker{'s' if workers != 1 else ''}"
    if workers == 0:
        count = "no workers yet: tasks wait until one connects"
    link, state = _dashboard(client)
    board = {
        "served": f"dashboard: {link}",
        "needs bokeh": "no dashboard (Dask's dashboard needs Bokeh installed with the scheduler)",
        "off": "no dashboard",
    }[state]
    print(f"csc_bayes: {what} ({count}); {board}", file=sys.stderr, flush=True)


def run_tasks(
    tasks: Sequence[Task],
    *,
    scheduler: str | os.PathLike[str] | None = None,
    n_workers: int | None = None,
    client: Any = None,
    progress: bool = True,
    description: str = "tasks",
) -> list[TaskOutcome]:
    """Run ``tasks`` on a Dask cluster and return their outcomes in task order.

    A task that raises is reported as ``"failed"`` with its traceback; the others go on.
    A task whose worker dies is rerun elsewhere by Dask (up to its ``allowed-failures``).
    Where: ``client``, an open ``distributed.Client``, is reused as it is (then ``scheduler``
    and ``n_workers`` are unused); else ``scheduler`` (an address or scheduler file) is
    connected to; else a local cluster of ``n_workers`` is started (:func:`dask_client`).
    Each task's paths are made absolute here, against the current directory, before it is
    sent (:meth:`Task.absolute`).
    """
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"task keys must be unique; repeated: {dup}")
    if not tasks:
        return []
    if client is None:
        with dask_client(scheduler, n_workers=n_workers) as own:
            return run_tasks(tasks, client=own, progress=progress, description=description)

    from distributed import as_completed

    cwd = os.getcwd()
    futures = {
        client.submit(_execute, task.absolute(cwd), key=f"csc-{task.key}", pure=False): task.key
        for task in tasks
    }
    outcomes: dict[str, TaskOutcome] = {}
    with _progress_bar(len(tasks), description, enabled=progress) as advance:
        for future in as_completed(futures):
            key = futures[future]
            try:
                value, seconds = future.result()
                outcomes[key] = TaskOutcome(key, "done", value=value, seconds=seconds)
            except Exception as exc:  # a failed fit must not stop the batch
                frames = traceback.format_exception(exc, limit=-4)  # the worker's last frames
                text = "".join(frames).strip()
                outcomes[key] = TaskOutcome(key, "failed", error=text)
            advance()
    return [outcomes[k] for k in keys]


@contextlib.contextmanager
def _progress_bar(total: int, description: str, *, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=None,
        transient=False,
    ) as bar:
        handle = bar.add_task(description, total=total)
        yield lambda: bar.advance(handle)


# ====================================================================== plans
@dataclass(frozen=True)
class DataSource:
    """Where a plan's panel comes from: ``"synthetic"`` or a panel parquet path."""

    source: str = "synthetic"
    seed: int = 0
    authorities: int | None = None
    first_year: int = 2015
    last_year: int = 2024

    def load(self) -> pd.DataFrame:
        """The panel (synthetic panels keep the first ``authorities`` by la_code)."""
        if self.source != "synthetic":
            from csc_bayes.data import load_panel

            return load_panel(Path(self.source))
        from csc_bayes.simulate import default_authorities, simulate_panel

        las = default_authorities(self.last_year).sort_values("la_code")
        if self.authorities is not None:
            las = las.head(self.authorities)
        return simulate_panel(
            first_year=self.first_year,
            last_year=self.last_year,
            seed=self.seed,
            authorities=las.reset_index(drop=True),
        ).panel


@dataclass(frozen=True)
class Plan:
    """A validated batch plan (see the module docstring for the TOML layout)."""

    out: Path
    specs: tuple[str, ...]
    outcomes: tuple[str, ...] | None = None
    years: tuple[tuple[int, int], ...] | None = None
    refit: str = "on_change"
    data: DataSource = field(default_factory=DataSource)
    sampler: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    def model_specs(self) -> list[Any]:
        """One ModelSpec per grid cell, named ``<spec>[ with outcome][_<first>-<last>]``."""
        from csc_bayes.spec import find_spec

        cells = []
        for name in self.specs:
            try:
                base = find_spec(name)
            except CscBayesError as exc:
                raise PlanError(f"{self.source}: key 'specs': {exc}") from None
            for outcome in self.outcomes or (base.outcome,):
                for window in self.years or (base.years,):
                    cells.append(_grid_cell(base, outcome, window, windowed=bool(self.years)))
        names = [s.name for s in cells]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise PlanError(f"{self.source}: the grid names some fits twice: {dup}")
        return cells


def _grid_cell(base: Any, outcome: str, window: tuple[int, int], *, windowed: bool) -> Any:
    name = base.name
    if outcome != base.outcome:
        stem = name[len(base.outcome) :] if name.startswith(base.outcome) else f"_{name}"
        name = f"{outcome}{stem}"
    if windowed:
        name = f"{name}_{window[0]}-{window[1]}"
    return replace(base, name=name, outcome=outcome, years=tuple(window))


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan TOML file; raise :class:`PlanError` naming the key at fault."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"{path}: no such plan file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: not valid TOML: {exc}") from None
    return parse_plan(doc, source=str(path))


def parse_plan(doc: dict[str, Any], *, source: str = "<dict>") -> Plan:
    """Validate a parsed plan document (see the module docstring)."""
    from csc_bayes.data.schema import OUTCOMES

    _known(doc, PLAN_KEYS, source, "")
    if "out" not in doc or "specs" not in doc:
        missing = [k for k in ("out", "specs") if k not in doc]
        raise PlanError(f"{source}: missing required key(s) {missing}")
    out = _check(doc["out"], str, source, "out")
    specs = _check(doc["specs"], list, source, "specs")
    if not specs or not all(isinstance(s, str) and s for s in specs):
        raise PlanError(f"{source}: key 'specs' must be a non-empty list of names, got {specs!r}")
    outcomes = doc.get("outcomes")
    if outcomes is not None:
        _check(outcomes, list, source, "outcomes")
        bad = [o for o in outcomes if o not in OUTCOMES]
        if not outcomes or bad:
            raise PlanError(
                f"{source}: key 'outcomes': unknown outcome(s) {bad or outcomes!r}; "
                f"expected some of {list(OUTCOMES)}"
            )
    years = doc.get("years")
    if years is not None:
        _check(years, list, source, "years")
        ok = bool(years) and all(
            isinstance(w, list)
            and len(w) == 2
            and all(isinstance(y, int) and not isinstance(y, bool) for y in w)
            and w[0] <= w[1]
            for w in years
        )
        if not ok:
            raise PlanError(
                f"{source}: key 'years' must be a list of [first, last] windows, got {years!r}"
            )
    refit = doc.get("refit", "on_change")
    if refit not in REFIT_POLICIES:
        raise PlanError(
            f"{source}: key 'refit' must be one of {list(REFIT_POLICIES)}, got {refit!r}"
        )
    data = _check(doc.get("data", {}), dict, source, "data")
    _known(data, DATA_KEYS, source, "data.")
    for key in ("seed", "authorities", "first_year", "last_year"):
        if key in data and (not isinstance(data[key], int) or isinstance(data[key], bool)):
            raise PlanError(f"{source}: key 'data.{key}' must be an integer, got {data[key]!r}")
    if "source" in data:
        _check(data["source"], str, source, "data.source")
    sampler = _check(doc.get("sampler", {}), dict, source, "sampler")
    _known(sampler, SAMPLER_KEYS, source, "sampler.")
    plan = Plan(
        out=Path(out),
        specs=tuple(specs),
        outcomes=tuple(outcomes) if outcomes is not None else None,
        years=tuple((w[0], w[1]) for w in years) if years is not None else None,
        refit=refit,
        data=DataSource(**data),
        sampler=dict(sampler),
        source=source,
    )
    try:  # sampler values are checked by the spec parser, which names the key
        plan_specs = plan.model_specs()
        plan_specs[0].with_sampler(**plan.sampler)
    except CscBayesError as exc:
        raise PlanError(f"{source}: {exc}") from None
    return plan


def _known(d: dict[str, Any], known: tuple[str, ...], source: str, prefix: str) -> None:
    from csc_bayes.spec import check_known_keys

    check_known_keys(d, known, source, prefix=prefix, error=PlanError)


def _check(value: Any, kind: type, source: str, key: str) -> Any:
    from csc_bayes.spec import check_type

    return check_type(value, kind, source, key, error=PlanError)


def check_plan_data(plan: Plan, panel: pd.DataFrame, specs: Sequence[Any] | None = None) -> None:
    """Check a plan's fits against its panel before any worker starts.

    A window of the plan's ``years`` must lie within the panel's years (a year with population
    only, for forecasts, counts), and every fit needs at least one year with its outcome
    observed in its window. Raises :class:`PlanError` naming the plan, the key and the years.
    """
    span = _span(panel["year"].dropna().astype(int).unique())
    if plan.years:
        for first, last in plan.years:
            if first < int(panel["year"].min()) or last > int(panel["year"].max()):
                raise PlanError(
                    f"{plan.source}: key 'years': window [{first}, {last}] reaches outside the "
                    f"data, whose years are {span} ({plan.data.source} panel)"
                )
    for spec in specs if specs is not None else plan.model_specs():
        if spec.outcome not in panel.columns:
            raise PlanError(f"{plan.source}: the panel has no column {spec.outcome!r}")
        observed = panel.loc[panel[spec.outcome].notna(), "year"].astype(int).unique()
        first, last = spec.years
        if not any(first <= y <= last for y in observed):
            key = "years" if plan.years else "specs"
            raise PlanError(
                f"{plan.source}: key {key!r}: {spec.name} has no {spec.outcome} data in its years "
                f"{first}-{last}; the panel has {spec.outcome} for {_span(observed)}"
            )


def _span(years: Any) -> str:
    years = sorted(int(y) for y in years)
    if not years:
        return "no year"
    return f"{years[0]}-{years[-1]}" if years[0] != years[-1] else f"{years[0]}"


# ====================================================================== running a plan
def fit_task(
    spec: Any,
    *,
    panel: pd.DataFrame,
    out: str | Path,
    sampler: dict[str, Any],
    refit: str = "on_change",
) -> dict[str, Any]:
    """One plan cell on a worker: ``fit(...)`` and a JSON-safe summary of the run it saved."""
    from csc_bayes.fits import list_runs
    from csc_bayes.fitting import fit

    before = {p.name for p in list_runs(Path(out) / spec.name)}
    if sampler:  # every [sampler] key, draws = "auto" and its keys included
        spec = spec.with_sampler(**sampler)
    result = fit(spec, data=panel, out=out, refit=refit, progress=False)
    run = result.path
    return {
        "run": str(run),
        "reused": run is not None and run.name in before,
        "diagnostics_passed": result.diagnostics_passed,
    }


@dataclass
class BatchResult:
    """Outcome of a plan: one row per task in ``table`` plus the wall time and worker count.

    ``table`` columns: ``task``, ``status`` (done / failed), ``run`` (absolute run folder),
    ``reused`` (an earlier matching run was returned), ``diagnostics_passed``, ``seconds`` (task
    wall time on its worker), ``error``. ``n_workers``: the cluster's workers when the plan
    started.
    """

    table: pd.DataFrame
    wall_seconds: float
    n_workers: int | None

    @property
    def ok(self) -> bool:
        """True when every task finished."""
        return bool((self.table["status"] == "done").all())


def run_plan(
    plan: Plan | str | Path,
    *,
    scheduler: str | os.PathLike[str] | None = None,
    n_workers: int | None = None,
    client: Any = None,
    progress: bool = True,
) -> BatchResult:
    """Run every cell of a plan on a Dask cluster; finished, matching fits are reused.

    Args:
        plan: a :class:`Plan` or the path of a plan TOML file. A relative ``out`` is relative
            to the current directory (of this process, not of the workers).
        scheduler: address of a running Dask scheduler (``tcp://host:8786``) or its scheduler
            file; None starts a local cluster of ``n_workers`` single-threaded processes
            (default: one per core).
        n_workers: size of the local cluster.
        client: an open ``distributed.Client`` to run on (then scheduler/n_workers are unused).
        progress: show a progress bar of finished tasks.
    """
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    panel = plan.data.load()
    specs = plan.model_specs()
    check_plan_data(plan, panel, specs)
    tasks = [
        Task(
            key=spec.name,
            func=fit_task,
            kwargs={
                "spec": spec,
                "panel": panel,
                "out": str(plan.out),
                "sampler": plan.sampler,
                "refit": plan.refit,
            },
            lock_dir=plan.out / ".locks",
        )
        for spec in specs
    ]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(scheduler, n_workers=n_workers))
        workers = len(client.nthreads())
        outcomes = run_tasks(tasks, client=client, progress=progress, description="fits")
    rows = []
    for o in outcomes:
        value = o.value or {}
        rows.append(
            {
                "task": o.key,
                "status": o.status,
                "run": value.get("run"),
                "reused": value.get("reused"),
                "diagnostics_passed": value.get("diagnostics_passed"),
                "seconds": o.seconds,
                "error": o.error,
            }
        )
    return BatchResult(pd.DataFrame(rows), time.perf_counter() - started, workers)
