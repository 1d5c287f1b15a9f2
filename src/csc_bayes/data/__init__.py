"""Official files -> the validated LA x year panel.

from csc_bayes.data import build_panel, save_panel, load_panel
panel = build_panel("/path/to/raw")   # see docs/data.md for the files it reads
panel = build_panel("/path/to/raw", extra=["mine.csv"])   # plus your own columns
"""

from csc_bayes.data.build import (
    BuildReport,
    build_outcome_panel,
    build_panel,
    build_panel_report,
    load_panel,
    save_panel,
)
from csc_bayes.data.extra import add_extra, extra_summary, join_extra, read_extra
from csc_bayes.data.lags import add_lagged, lagged
from csc_bayes.data.neighbours import statistical_neighbours
from csc_bayes.data.schema import MissingReason, validate_panel

__all__ = [
    "BuildReport",
    "MissingReason",
    "add_extra",
    "add_lagged",
    "build_outcome_panel",
    "build_panel",
    "build_panel_report",
    "extra_summary",
    "join_extra",
    "lagged",
    "load_panel",
    "read_extra",
    "save_panel",
    "statistical_neighbours",
    "validate_panel",
]
