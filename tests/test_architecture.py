"""ARCHITECTURE.md's module map stays true: every module is listed, and data flows one way."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "csc_bayes"
MAP = (PACKAGE.parents[1] / "ARCHITECTURE.md").read_text()

#: layers in data-flow order (ARCHITECTURE.md's diagram); a module may import only from its own
#: layer or earlier ones. ``__init__`` is the package's public API, which may import anything.
LAYERS = [
    {"errors", "data", "authorities"},
    {"simulate", "priors", "terms"},
    {"spec", "formula"},
    {
        "model",
        "sampling",
        "compiled",
        "diagnostics",
        "fits",
        "posterior",
        "linear_predictor",
        "pointwise",
    },
    {"fitting"},
    {"variance", "excess", "predict", "ordinal"},
    {"plots", "report", "batch", "sbc", "compare", "backtest"},
    {"cli"},
    {"__init__"},
]
#: packages listed in the module map by their folder
FOLDERS = ("plots", "cli", "terms")


def modules() -> list[Path]:
    """Every module, ``__init__.py`` files included."""
    return sorted(PACKAGE.rglob("*.py"))


def listed(rel: str) -> bool:
    """A module is listed by its path (``data/build.py``); plots/, cli/ and terms/ by their
    folder; ``__init__.py`` files by their package."""
    top = rel.split("/")[0]
    if rel == "__init__.py":
        return "`__init__.py`" in MAP
    return f"`{rel}`" in MAP or (top in FOLDERS and f"`{top}/`" in MAP)


def runtime_imports(tree: ast.AST) -> list[ast.ImportFrom]:
    """``from csc_bayes.x import ...`` statements that run (not those under TYPE_CHECKING)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("csc_bayes.")
        and id(node) not in skip
    ]


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
        if here.startswith("_") and here != "__init__":
            continue
        for node in runtime_imports(ast.parse(path.read_text())):
            target = node.module.split(".")[1]
            if target in {"errors"} or target.startswith("_"):
                continue
            if layer_of(target) > layer_of(here):
                backwards.append(f"{path.relative_to(PACKAGE)} imports {node.module}")
    assert not backwards, "imports against the data flow:\n" + "\n".join(backwards)
