"""The public names in csc_bayes/__init__.py resolve, and stay functions whatever is imported."""

from __future__ import annotations

import subprocess
import sys

import csc_bayes


def test_every_public_name_resolves():
    for name in csc_bayes.__all__:
        assert getattr(csc_bayes, name) is not None, name


def test_excess_and_predict_stay_callable_after_their_modules_are_imported():
    code = (
        "import csc_bayes.plots, csc_bayes.report, csc_bayes.excess, csc_bayes.predict\n"
        "import csc_bayes\n"
        "assert callable(csc_bayes.excess) and callable(csc_bayes.predict)\n"
        "assert csc_bayes.excess.__module__ == 'csc_bayes.excess'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
