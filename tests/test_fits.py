"""Saved fits: exact round trip in a fresh process, atomic saves, tamper detection, lookup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from csc_bayes.errors import FitIntegrityError
from csc_bayes.fits import (
    METADATA_FILE,
    POSTERIOR_FILE,
    SPEC_FILE,
    data_hash,
    find_reusable_run,
    list_runs,
    load_fit,
    resolve_run,
    save_fit,
)
from fit_helpers import tiny_fit, tree_digest

TESTS = Path(__file__).parent


def run_python(code: str, *, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with the tests folder importable."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, env=env, check=check, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("fits")
    fit = tiny_fit()
    return fit, save_fit(fit, root), root


def test_round_trip_in_fresh_process_is_exact(saved):
    fit, run, _ = saved
    out = run_python(f"""
        import json
        from csc_bayes.fits import load_fit
        from fit_helpers import tree_digest
        fit = load_fit({str(run)!r})
        print(json.dumps({{"digest": tree_digest(fit.idata), "rows": len(fit.panel),
                          "spec": fit.spec.canonical_hash()}}))
    """)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["digest"] == tree_digest(fit.idata)
    assert set(loaded["digest"]) >= {"posterior/la_effect", "posterior/la_name",
                                     "observed_data/y", "constant_data/X"}  # fmt: skip
    assert loaded["rows"] == len(fit.panel)
    assert loaded["spec"] == fit.spec.canonical_hash()


def test_saved_posterior_opens_with_plain_xarray_and_describes_itself(saved):
    _, run, _ = saved
    out = run_python(f"""
        import json, xarray as xr
        tree = xr.open_datatree({str(run / POSTERIOR_FILE)!r})
        meta = json.loads(tree.attrs["csc_bayes_metadata"])
        print(sorted(tree.children), meta["spec_hash"][:8], meta["schema_version"])
    """)
    assert "posterior" in out.stdout and "log_likelihood" in out.stdout


def test_model_folder_resolves_to_latest_run(saved):
    fit, first, root = saved
    second = save_fit(tiny_fit(seed=1), root)
    assert resolve_run(root / fit.spec.name) == max(first, second, key=lambda p: p.name)
    assert load_fit(root / fit.spec.name).path == resolve_run(root / fit.spec.name)


def test_killed_save_leaves_earlier_fit_intact_and_no_partial_run(tmp_path):
    first = save_fit(tiny_fit(), tmp_path)
    marker = tmp_path / "writing"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import time, pathlib, xarray as xr
            from fit_helpers import tiny_fit
            from csc_bayes.fits import save_fit
            real = xr.DataTree.to_netcdf
            def slow(self, *a, **k):
                real(self, *a, **k)
                pathlib.Path({str(marker)!r}).touch()
                time.sleep(60)
            xr.DataTree.to_netcdf = slow
            save_fit(tiny_fit(seed=2), {str(tmp_path)!r})
        """),
        ],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )
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
    model_dir = first.parent
    assert list_runs(model_dir) == [first]
    assert load_fit(model_dir).path == first  # checksums verified: intact


@pytest.mark.parametrize("victim", [POSTERIOR_FILE, SPEC_FILE, "panel.parquet"])
def test_tampered_file_is_detected_and_named(tmp_path, victim):
    run = save_fit(tiny_fit(), tmp_path)
    path = run / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(FitIntegrityError, match=victim.replace(".", r"\.")):
        load_fit(run)


def test_corrupt_metadata_and_wrong_schema_version_are_clear_errors(tmp_path):
    run = save_fit(tiny_fit(), tmp_path)
    meta = json.loads((run / METADATA_FILE).read_text())
    (run / METADATA_FILE).write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(FitIntegrityError, match="schema version 99"):
        load_fit(run)
    (run / METADATA_FILE).write_text("{not json")
    with pytest.raises(FitIntegrityError, match="unreadable metadata"):
        load_fit(run)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FitIntegrityError, match="does not exist"):
        load_fit(tmp_path / "nope")
    with pytest.raises(FitIntegrityError, match="expected a run folder"):
        load_fit(tmp_path)


def test_reusable_run_matches_spec_data_and_sampler(tmp_path):
    fit = tiny_fit()
    run = save_fit(fit, tmp_path)
    hashes = {k: fit.metadata[k] for k in ("spec_hash", "data_hash", "sampler_hash")}
    assert find_reusable_run(run.parent, **hashes) == run
    for key in hashes:
        assert find_reusable_run(run.parent, **{**hashes, key: "0" * 64}) is None


def test_data_hash_ignores_row_order_but_not_values():
    panel = tiny_fit().panel
    shuffled = panel.sample(frac=1.0, random_state=1)
    assert data_hash(shuffled) == data_hash(panel)
    changed = panel.copy()
    changed.loc[changed.index[0], "population"] += 1
    assert data_hash(changed) != data_hash(panel)


def test_fitted_rows_are_the_authority_years_in_obs_order():
    fit = tiny_fit()
    rows = fit.fitted_rows
    assert len(rows) == fit.idata["observed_data"].sizes["obs"]
    expected = fit.panel[fit.panel["la_code"].isin(rows["la_code"]) & fit.panel["cpp"].notna()]
    assert list(zip(rows["la_code"], rows["year"], strict=True)) == list(
        zip(expected["la_code"], expected["year"], strict=True)
    )
