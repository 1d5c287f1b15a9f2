"""A save killed mid-write leaves a ``.partial-*`` folder; the next save to the model removes it,
but never the folder of a save that is still running."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from csc_bayes.fits import list_runs, remove_stale_partials, save_fit
from fit_helpers import tiny_fit

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


def kill_a_save_mid_write(root: Path) -> None:
    marker = root / "writing"
    code = textwrap.dedent(f"""
        import time, pathlib, xarray as xr
        from fit_helpers import tiny_fit
        from csc_bayes.fits import save_fit
        real = xr.DataTree.to_netcdf
        def slow(self, *a, **k):
            real(self, *a, **k)
            pathlib.Path({str(marker)!r}).touch()
            time.sleep(60)
        xr.DataTree.to_netcdf = slow
        save_fit(tiny_fit(seed=2), {str(root)!r})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, "the saving process ended before it could be killed"
            assert time.monotonic() < deadline, "the save never reached the write"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_next_save_removes_a_killed_saves_partial_folder(tmp_path):
    fit = tiny_fit()
    model_dir = tmp_path / fit.spec.name
    kill_a_save_mid_write(tmp_path)
    (stale,) = [p for p in model_dir.iterdir() if p.name.startswith(".partial-") and p.is_dir()]
    assert (stale / "posterior.nc").is_file()  # the killed save got that far

    run = save_fit(fit, tmp_path)
    assert list_runs(model_dir) == [run]
    assert [p.name for p in model_dir.iterdir()] == [run.name]  # no partial folder, no lock


def test_a_running_saves_partial_folder_is_kept(tmp_path):
    model_dir = tmp_path / "cpp_need"
    live = model_dir / ".partial-live"
    dead = model_dir / ".partial-dead"
    live.mkdir(parents=True)
    dead.mkdir()
    lock = os.open(f"{live}.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a save in another process holds it
        assert remove_stale_partials(model_dir) == [dead]
        assert live.is_dir() and not dead.exists()
    finally:
        os.close(lock)
    assert remove_stale_partials(model_dir) == [live]
    assert list(model_dir.iterdir()) == []
