"""Shared fixtures. Real data is read from CSC_BAYES_RAW or ../shared/data/raw beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pymc  # noqa: F401  (see below)
import pytest

# PyMC adds a logging handler bound to the sys.stderr of the moment it is first imported. If that
# first import happened inside a CliRunner.invoke (the CLI imports lazily), the handler would
# keep the runner's stream, closed after that test, and a later test that logs would fail with
# "I/O operation on closed file". Importing it here binds the handler to the real stderr.

REPO = Path(__file__).resolve().parents[1]


def real_data_dir() -> Path:
    """Where the official files are expected: $CSC_BAYES_RAW, else ../shared/data/raw."""
    env = os.environ.get("CSC_BAYES_RAW")
    return Path(env) if env else REPO.parent / "shared" / "data" / "raw"


@pytest.fixture(scope="session")
def raw_dir() -> Path:
    """The real-data folder; skip when absent, but fail under CI (CI=true), which has it."""
    path = real_data_dir()
    if (path / "PROVENANCE.md").is_file():
        return path
    reason = f"real data folder not found at {path} (set CSC_BAYES_RAW to the raw data folder)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def real_build(raw_dir):
    """``build_panel_report(raw_dir)`` on the official files, built once per test session."""
    from csc_bayes.data import build_panel_report

    return build_panel_report(raw_dir)
