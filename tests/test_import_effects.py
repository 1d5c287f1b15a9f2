"""Importing csc_bayes changes no environment variable and no JAX setting; sampling sets JAX up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

SNAPSHOT = """
import importlib, json, os, sys
import jax
{pre}

def snapshot():
    config = {{k: repr(getattr(jax.config, k, None)) for k in sorted(jax.config.values)}}
    return dict(os.environ), config

env0, config0 = snapshot()
for name in {modules!r}:
    importlib.import_module(name)
env1, config1 = snapshot()
print(json.dumps({{
    "env": sorted(k for k in set(env0) | set(env1) if env0.get(k) != env1.get(k)),
    "config": sorted(k for k in config0 if config0[k] != config1.get(k)),
    "module": importlib.import_module("csc_bayes").__file__,
}}))
"""


def run_python(code: str, timeout: int = 300) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("pre", "modules"),
    [
        ("", ["csc_bayes"]),
        ("", ["csc_bayes", "csc_bayes.cli"]),
        # pymc's own import sets KMP_DUPLICATE_LIB_OK (threadpoolctl): not ours to judge
        ("import pymc", ["csc_bayes.sampling", "csc_bayes.fitting", "csc_bayes.batch"]),
    ],
)
def test_importing_changes_no_environment_variable_and_no_jax_setting(pre, modules):
    seen = run_python(SNAPSHOT.format(pre=pre, modules=modules))
    assert Path(seen["module"]).is_relative_to(SRC)
    assert seen["env"] == [] and seen["config"] == []


SAMPLE = """
import json, os
import jax
import numpy as np
import pymc as pm
{pre}
from csc_bayes.sampling import HOST_DEVICES, prepare_jax, sample

env0 = dict(os.environ)
prepare_jax(2)
env_changed = sorted(k for k in set(env0) | set(os.environ) if env0.get(k) != os.environ.get(k))
with pm.Model(coords={{"obs": [0, 1, 2]}}) as model:
    mu = pm.Normal("mu")
    pm.Poisson("y", np.exp(mu), observed=np.array([1, 2, 3]), dims="obs")
result = sample(model, draws=20, tune=20, chains=2, seed=0, progress=False,
                posterior_predictive=False, log_likelihood=False)
stats = result.idata["sample_stats"].attrs
print(json.dumps({{
    "method": result.settings["chain_method"],
    "recorded": stats.get("chain_method"),
    "reason": stats.get("chain_method_reason"),
    "devices": jax.local_device_count(),
    "host_devices": HOST_DEVICES,
    "cache": jax.config.jax_compilation_cache_dir,
    "env_changed": env_changed,  # (PyMC's JAX module sets XLA_FLAGS when pm.sample imports it)
}}))
"""


def test_sampling_asks_for_host_devices_and_the_cache_when_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("CSC_BAYES_JAX_CACHE", str(tmp_path / "jax"))
    seen = run_python(SAMPLE.format(pre=""))
    if seen["devices"] != seen["host_devices"]:  # an accelerator is JAX's default back end
        pytest.skip(f"JAX's default devices are not the CPU host devices: {seen}")
    assert seen["method"] == seen["recorded"] == "parallel"
    assert seen["cache"] == str(tmp_path / "jax") and (tmp_path / "jax").is_dir()
    assert seen["env_changed"] == []


def test_chains_run_vectorized_and_say_why_when_jax_started_first(tmp_path, monkeypatch):
    monkeypatch.setenv("CSC_BAYES_JAX_CACHE", "off")
    seen = run_python(SAMPLE.format(pre="jax.numpy.zeros(1).block_until_ready()"))
    if seen["devices"] >= 2:
        pytest.skip(f"JAX started with several devices: {seen}")
    assert seen["method"] == seen["recorded"] == "vectorized"
    assert "JAX had started before sampling" in seen["reason"]
