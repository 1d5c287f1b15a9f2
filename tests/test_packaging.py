"""The package as a user installs it: a wheel that carries the shipped models, and dependencies
that name every library the source imports."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SHIPPED = sorted(p.stem for p in (REPO / "models").glob("*.toml"))

#: listed dependencies that src/ never imports, each with the text in src/ that uses it
USED_INDIRECTLY = {
    "arviz": "arviz_stats",  # requested meta-package; its parts are imported
    "numpyro": '"numpyro"',  # pm.sample(nuts_sampler="numpyro"), the default back end
    "nutpie": '"nutpie"',  # pm.sample(nuts_sampler="nutpie")
    "h5netcdf": 'engine="h5netcdf"',  # xarray's netCDF engine for saved fits
    "pyarrow": "to_parquet(",  # pandas' parquet engine
    "odfpy": 'engine="odf"',  # pandas' ODS engine (Ofsted's inspection history)
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalise(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))


def _imports() -> dict[str, dict[str, bool]]:
    """Third-party top-level modules imported under src/: module -> {file: at module level}."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "csc_bayes":
                    continue
                files = found.setdefault(top, {})
                rel = path.relative_to(REPO).as_posix()
                files[rel] = files.get(rel, False) or id(node) in top_level
    return found


def test_every_import_is_a_direct_dependency_and_every_dependency_is_used():
    core = {_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = {
        _requirement_name(r)
        for reqs in PYPROJECT["project"]["optional-dependencies"].values()
        for r in reqs
    }
    distributions = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    problems = []
    for module, files in _imports().items():
        names = {_normalise(d) for d in distributions.get(module, [module])}
        imported |= names
        if names & core:
            continue
        at_top = [f for f, top in files.items() if top]
        if names & extras and not at_top:
            continue  # an optional extra, imported only inside the function that needs it
        problems.append(f"{module} (imported in {sorted(files)}) is not a dependency")
    src_text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    for name in sorted(core - imported):
        marker = USED_INDIRECTLY.get(name)
        if marker is None:
            problems.append(f"dependency {name} is never imported under src/")
        elif marker not in src_text:
            problems.append(f"dependency {name}: its use ({marker!r}) is gone from src/")
    assert not problems, "\n".join(problems)


def test_the_package_list_names_every_folder_of_the_package():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.relative_to(SRC).parts)
        for p in (SRC / "csc_bayes").rglob("*")
        if p.is_dir() and p.name != "__pycache__"
    } | {"csc_bayes"}
    assert listed == on_disk | {"csc_bayes.models"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"]["csc_bayes.models"] == "models"


def _build_wheel(tmp_path: Path) -> Path:
    """A wheel of the working tree, built from a copy so that the checkout gets no build files."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(REPO / "models", tree / "models")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(SRC / "csc_bayes", tree / "src" / "csc_bayes", ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-w",
         str(tmp_path / "dist"), str(tree)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("csc_bayes-*.whl")
    return wheel


def test_an_installed_wheel_lists_and_fits_the_shipped_models_from_any_folder(tmp_path):
    pytest.importorskip("setuptools", minversion="77")
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        sorted(
            Path(n).stem for n in names if n.startswith("csc_bayes/models/") and n.endswith(".toml")
        )
        == SHIPPED
    )
    assert "csc_bayes/reference/authorities.csv" in names

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps",
         "--no-compile", "--target", str(site), str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"  # no models/ here, and not the checkout
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSC_BAYES")}
    env |= {"PYTHONPATH": str(site), "CSC_BAYES_JAX_CACHE": str(tmp_path / "jax")}
    exe = site / "bin" / "csc-bayes"
    code = "import csc_bayes.spec as s; print(s.__file__); print(s.models_dir())"
    where = subprocess.run(
        [sys.executable, "-c", code],
        env=env, cwd=elsewhere, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    module_file, folder = where.stdout.split()
    assert Path(module_file).is_relative_to(site) and Path(folder).is_relative_to(site)

    listed = subprocess.run(
        [exe, "models"], env=env, cwd=elsewhere, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    shown = set(re.findall(r"^│ (\w+)\s", listed.stdout, flags=re.M))
    assert shown == set(SHIPPED) and len(SHIPPED) >= 25  # every spec in models/, none lost

    # a smoke fit (too short to pass the convergence gate: exit 3, and saved all the same)
    fit = subprocess.run(
        [exe, "fit", "cpp_null", "--draws", "10", "--tune", "10", "--chains", "1",
         "--no-progress", "--out", "fits"],
        env=env, cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert fit.returncode == 3, fit.stdout + fit.stderr
    assert "Traceback" not in fit.stderr
    (run,) = (elsewhere / "fits" / "cpp_null").iterdir()
    assert (run / "metadata.json").is_file()
