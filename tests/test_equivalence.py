"""The open-model redesign (terms, one linear predictor, one posterior reader) changed no number.

Each shipped spec's model (free variables, log density and gradient at seeded points) and answers
(explain, excess, predict's linear predictor and expected need) are compared with the
fingerprints the code made before the redesign (``tests/equivalence.py``). The default run
checks three specs that between them use every kind of term; ``-m slow`` checks all twenty.
"""

from __future__ import annotations

import json

import pytest

from equivalence import QUICK_SPECS, REFERENCE, compare, fingerprint, small_panel

REFERENCE_FINGERPRINTS = json.loads(REFERENCE.read_text())
SLOW_SPECS = sorted(set(REFERENCE_FINGERPRINTS) - set(QUICK_SPECS))


@pytest.fixture(scope="module")
def panel():
    return small_panel()


@pytest.mark.parametrize(
    "name", [*QUICK_SPECS, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW_SPECS)]
)
def test_model_and_answers_are_unchanged(name, panel):
    problems = compare(fingerprint(name, panel), REFERENCE_FINGERPRINTS[name])
    assert not problems, "\n".join(problems[:10])
