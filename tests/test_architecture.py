"""ARCHITECTURE.md's module map stays true: every module is listed, and data flows one way."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "csc_bayes"
MAP = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text()

#: layers in data-flow order; a module may import only from its own layer or earlier ones
LAYERS = [
    {"errors", "data", "authorities"},
    {"simulate", "spec", "formula"},
    {"model", "sampling", "diagnostics", "fits"},
    {"fitting"},
    {"variance", "excess", "predict"},
    {"plots", "report", "batch", "sbc", "compare"},
    {"cli"},
]


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def listed(rel: str) -> bool:
    """A module is listed by its path (``data/build.py``); plots/ and cli/ by their folder."""
    top = rel.split("/")[0]
    return rel in MAP or (top in ("plots", "cli") and f"`{top}/`" in MAP)


def test_every_module_is_in_the_module_map():
    rels = [path.relative_to(PACKAGE).as_posix() for path in modules()]
    missing = [rel for rel in rels if not listed(rel)]
    assert not missing, f"modules missing from ARCHITECTURE.md: {missing}"


def layer_of(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def test_imports_never_reach_backwards_along_the_data_flow():
    backwards = []
    for path in modules():
        here = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        if here.startswith("_"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("csc_bayes."):
                target = node.module.split(".")[1]
                if target in {"errors"} or target.startswith("_"):
                    continue
                if layer_of(target) > layer_of(here):
                    backwards.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert not backwards, "imports against the data flow:\n" + "\n".join(backwards)
