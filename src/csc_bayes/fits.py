"""A fitted model, and saving / loading / reusing it.

A run folder ``fits/<model>/<run-id>/`` holds:

- ``posterior.nc``: the ArviZ DataTree (netCDF4/HDF5; opens with plain ArviZ or xarray, no
  csc_bayes needed). Its root attributes repeat the metadata as JSON, so a lone file describes
  itself;
- ``spec.toml``: the exact specification used;
- ``panel.parquet``: the panel rows the fit may need later (every authority, from the first
  fitted year on, including years not fitted such as the next reporting year for forecasts);
- ``metadata.json``: spec hash, data hash, sampler settings and hash, package versions, back end,
  seed, timings, diagnostics, excluded rows, and the sha256 of each of the three files above.

Saves are atomic: the run is written into a hidden ``.partial-<run-id>`` folder beside the runs and
renamed into place only when complete, so an interrupted save leaves earlier fits intact and no
partial run where a loader looks. Nothing is pickled; loading verifies every file's sha256, the
schema version and the groups a fit must hold, and raises :class:`FitIntegrityError` otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from csc_bayes.data.sources import sha256_file
from csc_bayes.errors import FitIntegrityError

#: version of the saved-fit layout and of the posterior names in ARCHITECTURE.md
SCHEMA_VERSION = 1
#: groups every saved fit must hold
REQUIRED_GROUPS = (
    "posterior",
    "posterior_predictive",
    "log_likelihood",
    "sample_stats",
    "observed_data",
    "constant_data",
)
POSTERIOR_FILE, SPEC_FILE, PANEL_FILE, METADATA_FILE = (
    "posterior.nc",
    "spec.toml",
    "panel.parquet",
    "metadata.json",
)
_PARTIAL_PREFIX = ".partial-"
_LOCK_SUFFIX = ".lock"


@dataclass
class Fit:
    """A fitted model: posterior draws plus everything needed to interpret them.

    Attributes:
        idata: ArviZ DataTree following the posterior contract in ARCHITECTURE.md.
        spec: the ``csc_bayes.spec.ModelSpec`` that was fitted.
        panel: panel rows of all authorities from the first fitted year on (not only fitted ones).
        metadata: JSON-safe provenance (hashes, versions, settings, timings, diagnostics).
        path: the run folder once saved, else None.
    """

    idata: xr.DataTree
    spec: Any
    panel: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def authorities(self) -> pd.DataFrame:
        """The fitted authorities: la_code, ons_code, la_name, region (in `la` coordinate order)."""
        post = self.idata["posterior"]
        return pd.DataFrame(
            {
                "la_code": post["la"].values.astype(str),
                "ons_code": post["ons_code"].values.astype(str),
                "la_name": post["la_name"].values.astype(str),
                "region": post["la_region"].values.astype(str),
            }
        )

    @property
    def fitted_rows(self) -> pd.DataFrame:
        """The fitted authority-years (la_code, year), in ``obs`` order."""
        post, const = self.idata["posterior"], self.idata["constant_data"]
        la = post["la"].values.astype(str)[const["la_idx"].values]
        year = post["year"].values.astype(int)[const["year_idx"].values]
        return pd.DataFrame({"la_code": la, "year": year})

    @property
    def diagnostics_passed(self) -> bool:
        """Whether the convergence gate passed (False when it was never run)."""
        return bool(self.metadata.get("diagnostics", {}).get("passed", False))

    @property
    def synthetic(self) -> bool:
        """True when the fit was made on the package's synthetic panel, not official data."""
        return bool(self.metadata.get("synthetic", False))


# --------------------------------------------------------------------------- hashing


def data_hash(panel: pd.DataFrame) -> str:
    """Content hash of a panel: sha256 over column names, dtypes and per-row value hashes.

    Row order does not matter (rows are sorted by la_code, year first); any changed value does.
    """
    ordered = panel.sort_values(["la_code", "year"]).reset_index(drop=True)
    ordered = ordered[sorted(ordered.columns)]
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(ordered[c].dtype)] for c in ordered.columns]).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- saving


def _new_run_id(spec_hash: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{spec_hash[:8]}-{uuid.uuid4().hex[:6]}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_fit(fit: Fit, root: str | Path = "fits") -> Path:
    """Save ``fit`` atomically as ``root/<model>/<run-id>/`` and return that folder.

    The run is written into ``root/<model>/.partial-<run-id>/`` and renamed into place at the
    end, so a crash at any point leaves earlier runs untouched and no half-written run visible.
    While it writes, the save holds a lock on ``.partial-<run-id>.lock``; a save whose process
    died (killed, power cut) leaves its partial folder unlocked, and the next save to the same
    model folder removes it (:func:`remove_stale_partials`).
    """
    model_dir = Path(root) / fit.spec.name
    model_dir.mkdir(parents=True, exist_ok=True)
    run_id = fit.metadata.get("run_id") or _new_run_id(fit.spec.canonical_hash())
    partial = model_dir / f"{_PARTIAL_PREFIX}{run_id}"
    final = model_dir / run_id
    if final.exists():
        raise FitIntegrityError(f"run folder {final} already exists; refusing to overwrite it")
    remove_stale_partials(model_dir)
    lock = Path(f"{partial}{_LOCK_SUFFIX}")
    lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    with contextlib.suppress(OSError):  # no flock (some network file systems): no lock
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        partial.mkdir()
        (partial / SPEC_FILE).write_text(fit.spec.to_toml(), encoding="utf-8")
        fit.panel.to_parquet(partial / PANEL_FILE, index=False)
        metadata = _json_safe({**fit.metadata, "run_id": run_id, "schema_version": SCHEMA_VERSION})
        idata = fit.idata.copy()
        idata.attrs = {**idata.attrs, "csc_bayes_metadata": json.dumps(metadata)}
        idata.to_netcdf(partial / POSTERIOR_FILE, engine="h5netcdf")
        metadata["files"] = {
            name: sha256_file(partial / name) for name in (POSTERIOR_FILE, SPEC_FILE, PANEL_FILE)
        }
        with open(partial / METADATA_FILE, "w", encoding="utf-8") as fh:
            json.dump(metadata, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        for name in (POSTERIOR_FILE, SPEC_FILE, PANEL_FILE):
            with open(partial / name, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(partial, final)
        _fsync_dir(model_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        lock.unlink(missing_ok=True)
        os.close(lock_fd)
    fit.metadata = metadata
    fit.path = final
    return final


def remove_stale_partials(model_dir: str | Path) -> list[Path]:
    """Remove the ``.partial-*`` folders (and lock files) of saves whose process died.

    A save in progress holds the lock on its ``.partial-<run-id>.lock``; a partial folder whose
    lock can be taken belongs to no live save. Where locks are unsupported nothing is removed.
    Returns the folders removed.
    """
    removed = []
    for entry in sorted(Path(model_dir).glob(f"{_PARTIAL_PREFIX}*")):
        if entry.name.endswith(_LOCK_SUFFIX):
            if Path(str(entry).removesuffix(_LOCK_SUFFIX)).exists():
                continue  # handled with its folder
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime < 60:
                    continue  # perhaps a save about to lock it and make its folder
            folder, lock = None, entry
        elif entry.is_dir():
            folder, lock = entry, Path(f"{entry}{_LOCK_SUFFIX}")
        else:
            continue
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by a live save, or locks unsupported
                continue
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return removed


# --------------------------------------------------------------------------- loading


def list_runs(model_dir: str | Path) -> list[Path]:
    """Complete run folders of one model, oldest first (partial saves are ignored)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    runs = [
        p
        for p in model_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()
    ]
    return sorted(runs, key=lambda p: p.name)


def resolve_run(path: str | Path) -> Path:
    """A run folder from either a run folder or a model folder (its latest run)."""
    path = Path(path)
    if (path / METADATA_FILE).is_file():
        return path
    runs = list_runs(path)
    if runs:
        return runs[-1]
    if not path.exists():
        raise FitIntegrityError(f"no fit at {path}: the folder does not exist")
    raise FitIntegrityError(
        f"no fit at {path}: expected a run folder (with {METADATA_FILE}) or a model folder "
        "holding run folders"
    )


def read_metadata(run: Path) -> dict[str, Any]:
    try:
        with open(run / METADATA_FILE, encoding="utf-8") as fh:
            metadata = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise FitIntegrityError(f"{run / METADATA_FILE}: unreadable metadata ({exc})") from None
    if not isinstance(metadata, dict):
        raise FitIntegrityError(f"{run / METADATA_FILE}: metadata is not a JSON object")
    return metadata


def _verify_files(run: Path, metadata: dict[str, Any]) -> None:
    version = metadata.get("schema_version")
    if version != SCHEMA_VERSION:
        raise FitIntegrityError(
            f"{run}: saved with fit schema version {version!r}; this csc_bayes reads version "
            f"{SCHEMA_VERSION}. Refit the model."
        )
    expected = metadata.get("files")
    if not isinstance(expected, dict):
        raise FitIntegrityError(f"{run / METADATA_FILE}: no file checksums recorded")
    for name in (POSTERIOR_FILE, SPEC_FILE, PANEL_FILE):
        file = run / name
        if not file.is_file():
            raise FitIntegrityError(f"{file}: missing from the saved fit")
        if sha256_file(file) != expected.get(name):
            raise FitIntegrityError(
                f"{file}: checksum does not match metadata.json: the file was changed or "
                "corrupted after saving"
            )


def load_fit(path: str | Path) -> Fit:
    """Load a saved fit from a run folder, or from a model folder (its latest run).

    Verifies checksums, schema version, required groups and that the saved spec still hashes to
    the recorded value; raises :class:`FitIntegrityError` naming the file at fault.
    """
    from csc_bayes.spec import load_spec

    run = resolve_run(path)
    metadata = read_metadata(run)
    _verify_files(run, metadata)
    try:
        with xr.open_datatree(run / POSTERIOR_FILE, engine="h5netcdf") as tree:
            idata = tree.load()
    except Exception as exc:  # h5py/xarray raise many types on corrupt files
        raise FitIntegrityError(f"{run / POSTERIOR_FILE}: cannot be read ({exc})") from None
    missing = [g for g in REQUIRED_GROUPS if g not in idata.children]
    if missing:
        raise FitIntegrityError(f"{run / POSTERIOR_FILE}: missing group(s) {missing}")
    spec = load_spec(run / SPEC_FILE)
    if spec.canonical_hash() != metadata.get("spec_hash"):
        raise FitIntegrityError(
            f"{run / SPEC_FILE}: the specification no longer hashes to the value recorded when "
            "the fit was saved (saved with another csc_bayes version?); refit the model"
        )
    panel = pd.read_parquet(run / PANEL_FILE)
    return Fit(idata=idata, spec=spec, panel=panel, metadata=metadata, path=run)


def find_reusable_run(model_dir: str | Path, **fingerprint: str) -> Path | None:
    """The newest saved run of a model whose metadata matches every ``fingerprint`` entry.

    ``fit()`` passes the spec, data and sampler hashes and the model-code version, so a run is
    reused only when none of them changed.
    """
    for run in reversed(list_runs(model_dir)):
        try:
            metadata = read_metadata(run)
        except FitIntegrityError:
            continue
        if metadata.get("schema_version") == SCHEMA_VERSION and all(
            metadata.get(key) == value for key, value in fingerprint.items()
        ):
            return run
    return None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:  # text written verbatim
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved file should be readable as usual
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
