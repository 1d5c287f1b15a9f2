"""Official files -> the validated LA x year panel.

from csc_bayes.data import build_panel, save_panel, load_panel
panel = build_panel("/path/to/raw")   # see docs/data.md for the files it reads
"""

from csc_bayes.data.build import (
    BuildReport,
    build_outcome_panel,
    build_panel,
    build_panel_report,
    load_panel,
    save_panel,
)
from csc_bayes.data.schema import MissingReason, validate_panel

__all__ = [
    "BuildReport",
    "MissingReason",
    "build_outcome_panel",
    "build_panel",
    "build_panel_report",
    "load_panel",
    "save_panel",
    "validate_panel",
]
