"""The bad-input classes of examples/bad_input_table.py behave as docs/bad_input.md says.

The fast classes run here (a hand-built fit instead of the script's tiny sampled one; the
official-file classes only where the raw folder is); every class must be as intended, except
the known issues, which must still not be (so a fix shows up here and the table is regenerated).
The committed table must list exactly the script's classes, each with the verdict it expects.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
TABLE_DOC = REPO / "docs" / "bad_input.md"


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "bad_input_table", REPO / "examples" / "bad_input_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_input_table"] = module
    spec.loader.exec_module(module)
    return module


script = _load_script()
FAST = [case for case in script.CASES if case.fast]


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    from csc_bayes.fits import save_fit
    from plots_helpers import make_fit

    root = tmp_path_factory.mktemp("bad_input")
    fit = save_fit(make_fit(n_la=None, n_draws=20, passed=False), root / "fits")
    return script.prepare(root, None, fit=fit)


@pytest.mark.parametrize("case", FAST, ids=[case.id for case in FAST])
def test_each_class_is_as_intended(case, context, request):
    if "raw" in case.needs:
        context = dataclasses.replace(context, raw=request.getfixturevalue("raw_dir"))
    outcome = script.run_case(case, context)
    assert outcome.skipped is None
    if case.known_issue:
        assert not outcome.as_intended, (
            f"{case.id} now behaves as intended: drop its known_issue and regenerate "
            "docs/bad_input.md"
        )
        assert outcome.code == case.code and not outcome.traceback
    else:
        assert outcome.as_intended, (outcome.verdict(), outcome.message, outcome.argv)


def table_rows() -> list[list[str]]:
    rows = []
    for line in TABLE_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| class |"):
            cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
            rows.append(cells)
    return rows


def test_the_committed_table_lists_every_class_with_its_verdict():
    rows = table_rows()
    assert [r[0] for r in rows] == [case.name for case in script.CASES], (
        "docs/bad_input.md is stale: run examples/bad_input_table.py"
    )
    for row, case in zip(rows, script.CASES, strict=True):
        assert row[3].endswith(f"(want {case.code})"), row
        expected = "**no**" if case.known_issue else "yes"
        assert row[5].startswith(expected), (case.id, row[5])


def test_every_exit_code_of_the_readme_table_but_5_is_exercised():
    codes = {case.code for case in script.CASES}
    assert codes == {0, 1, 2, 3, 4}
