"""Official files -> the validated LA x year panel, with a report of what it covers.

    panel = build_panel(raw_dir)                  # validated DataFrame
    panel, report = build_panel_report(raw_dir)   # plus coverage, reconciliation, exclusions
    save_panel(panel, "panel.parquet"); load_panel("panel.parquet")

Years run from 2010 to 2025 (reporting years ending 31 March). A cell with no value carries
its reason in ``<column>_missing``: the file's marker (suppressed, not_available, ...);
``not_available`` when the authority has no row in a file that covers that year; ``no_source``
when no file covers that measure and year; ``not_yet_published`` for outcomes of 2025.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from csc_bayes.data.cla_history import read_cla
from csc_bayes.data.identity import ANCHORS, EXCLUDED, fill_ons_codes, reference_authorities, units
from csc_bayes.data.outcomes import EES_OUTCOMES, Measure, read_outcome
from csc_bayes.data.population import read_population
from csc_bayes.data.reconcile import check_reconciliation, reconcile
from csc_bayes.data.schema import (
    COVARIATES,
    EXPOSURE,
    FLAGGED,
    OUTCOMES,
    RAW_FILES_ATTR,
    MissingReason,
    bounds_columns,
    extra_flagged,
    missing_column,
    validate_panel,
)
from csc_bayes.data.sources import FILES, raw_file_hashes
from csc_bayes.errors import DataFileError, PanelValidationError

#: the first reporting year whose outcomes are not yet published
NOT_YET_PUBLISHED_YEAR = 2025


@dataclass(frozen=True)
class BuildReport:
    """What a build covers.

    ``coverage``: authorities with a value, one row per year, one column per measure.
    ``missing``: missing cells by ``column`` and ``reason`` (``n``).
    ``reconciliation``: sum of authorities vs national total per file, measure and year
    (see :mod:`csc_bayes.data.reconcile`). ``excluded``: ``la_code, la_name, reason``.
    """

    coverage: pd.DataFrame
    missing: pd.DataFrame
    reconciliation: pd.DataFrame
    excluded: pd.DataFrame


def read_sources(raw_dir: Path) -> dict[str, list[Measure]]:
    """Every panel measure (population and the five outcomes) as its list of source files."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataFileError("raw data folder not found", file=str(raw_dir))
    absent = [name for name in FILES.values() if not (raw_dir / name).is_file()]
    if absent:
        raise DataFileError(
            f"{len(absent)} required input file(s) not found in the raw folder {raw_dir}: "
            + ", ".join(absent)
            + " (see docs/data.md for the list of files)"
        )
    out = {name: [read_outcome(raw_dir, name)] for name in EES_OUTCOMES}
    out["cla"] = read_cla(raw_dir)
    out[EXPOSURE] = read_population(raw_dir)
    return out


def _anchor_measures(sources: dict[str, list[Measure]]) -> dict[int, Measure]:
    """The file that lists each year's authorities (see identity.ANCHORS)."""
    anchors = {}
    for year, name in ANCHORS.items():
        found = [m for m in sources[name] if (m.las["year"] == year).any()]
        if not found:
            raise DataFileError(f"no {name} file covers {year}, so its authorities are unknown")
        anchors[year] = found[0]
    return anchors


def _fill(frame: pd.DataFrame, name: str, measures: list[Measure]) -> pd.DataFrame:
    """Add ``name`` and ``<name>_missing`` to the unit frame from one measure's files, and
    ``<name>_lower`` / ``<name>_upper`` when a suppressed cell has a known range.

    A file row for an authority that is neither a panel unit that year nor excluded, yet holds
    a number, is an error: it would otherwise be dropped silently.
    """
    pieces = pd.concat([m.las.assign(file=m.file) for m in measures], ignore_index=True)
    dup = pieces.duplicated(["la_code", "year"], keep=False)
    if dup.any():
        first = pieces.loc[dup].iloc[0]
        files = sorted(set(pieces.loc[dup, "file"]))
        raise DataFileError(
            f"{name} for authority {first['la_code']} {first['year']} is in more than one file",
            file="; ".join(files),
        )
    keys = frame.set_index(["la_code", "year"]).index
    found = pieces.set_index(["la_code", "year"])
    orphan = ~found.index.isin(keys) & ~found.index.get_level_values(0).isin(list(EXCLUDED))
    orphan &= found["value"].notna().to_numpy()
    if orphan.any():
        row = found.loc[orphan].iloc[0]
        code, year = found.index[orphan][0]
        raise DataFileError(
            f"{name} given for authority {code} in {year}, which is not an authority that year",
            file=row["file"],
            row=int(row["row"]),
        )
    covered = set(pieces["year"]) | {int(y) for m in measures for y in m.national["year"]}
    matched = found.reindex(keys)
    value = matched["value"].astype("Int64").to_numpy()
    reason = matched["reason"].astype("string")
    absent = matched["value"].isna() & reason.isna()
    years = frame["year"].to_numpy()
    default = [
        MissingReason.NOT_AVAILABLE.value
        if y in covered
        else MissingReason.NOT_YET_PUBLISHED.value
        if y >= NOT_YET_PUBLISHED_YEAR and name != EXPOSURE
        else MissingReason.NO_SOURCE.value
        for y in years
    ]
    reason = reason.where(
        ~absent.to_numpy(), pd.Series(default, index=reason.index, dtype="string")
    )
    out = frame.copy()
    out[name] = pd.array(value, dtype="Int64")
    out[missing_column(name)] = pd.array(reason.to_numpy(), dtype="string")
    if "lower" in matched and matched["lower"].notna().any():  # known ranges of suppressed cells
        for col, side in zip(bounds_columns(name), ("lower", "upper"), strict=True):
            out[col] = pd.array(matched[side].astype("Int64").to_numpy(), dtype="Int64")
    return out


def build_outcome_panel(raw_dir: Path) -> tuple[pd.DataFrame, BuildReport]:
    """Identity, population and the five outcomes (no covariates), with the BuildReport.

    The covariate columns are absent; :func:`build_panel_report` adds them.
    """
    sources = read_sources(raw_dir)
    frame = units(_anchor_measures(sources))
    frame["ons_code"] = fill_ons_codes(frame, [m for ms in sources.values() for m in ms])
    for name in (EXPOSURE, *OUTCOMES):
        frame = _fill(frame, name, sources[name])
    recon = pd.concat(
        [reconcile(m) for name in (*OUTCOMES, EXPOSURE) for m in sources[name]],
        ignore_index=True,
    )
    check_reconciliation(recon)  # a year that no longer reconciles is a changed or damaged file
    ref = reference_authorities()
    excluded = pd.DataFrame(
        {
            "la_code": list(EXCLUDED),
            "la_name": [ref.at[c, "la_name"] for c in EXCLUDED],
            "reason": list(EXCLUDED.values()),
        }
    )
    return frame, BuildReport(coverage(frame), missing_cells(frame), recon, excluded)


def build_panel_report(
    raw_dir: Path,
    *,
    covariates: Callable[[pd.DataFrame, Path], pd.DataFrame] | None = None,
    extra: Iterable[Path | str] = (),
    context: bool = True,
) -> tuple[pd.DataFrame, BuildReport]:
    """Build the validated panel from the official files in ``raw_dir`` and say what it covers.

    ``covariates`` defaults to :func:`csc_bayes.data.covariates.covariates_for`; it receives
    ``la_code, ons_code, la_name, year`` (one row per unit-year) and returns the covariate
    columns for the same rows in the same order. ``extra``: the user's own tables (CSV or
    parquet), joined as new columns by :func:`csc_bayes.data.extra.join_extra`; they are read
    and checked before the official files. ``panel.attrs["raw_files"]`` records the sha256 of
    every official file the build reads, by its path inside ``raw_dir``.

    ``context`` (default on) adds the context columns of :mod:`csc_bayes.data.context`
    (child poverty, factors at assessment, workforce, Ofsted ILACS judgement, spend per child in
    need) and the flows ``icpc``, ``cla_started``, ``cla_ceased`` (filled like the outcomes and
    reconciled with their national totals), after the schema's columns.
    """
    extra = [extra] if isinstance(extra, str | Path) else list(extra)
    if extra:  # a bad table fails fast, before the slower official build
        from csc_bayes.data.extra import read_extra

        for path in extra:
            read_extra(path)
    if covariates is None:
        from csc_bayes.data.covariates import covariates_for as covariates
    frame, report = build_outcome_panel(raw_dir)
    units_frame = frame[["la_code", "ons_code", "la_name", "year"]].reset_index(drop=True)
    cov = covariates(units_frame, Path(raw_dir))
    wanted = [*COVARIATES, *(missing_column(c) for c in COVARIATES)]
    lacking = [c for c in wanted if c not in cov.columns]
    if lacking or len(cov) != len(frame):
        raise PanelValidationError(
            f"covariates returned {len(cov)} rows for {len(frame)} units; missing columns {lacking}"
        )
    frame = pd.concat([frame.reset_index(drop=True), cov[wanted].reset_index(drop=True)], axis=1)
    reconciliation = report.reconciliation
    if context:
        frame, flows_recon = _with_context(frame, Path(raw_dir))
        reconciliation = pd.concat([reconciliation, flows_recon], ignore_index=True)
    panel = validate_panel(frame, source=f"panel built from {raw_dir}")
    panel.attrs[RAW_FILES_ATTR] = raw_file_hashes(Path(raw_dir))
    if extra:
        from csc_bayes.data.extra import join_extra

        panel = join_extra(panel, extra)
    return panel, BuildReport(
        coverage=coverage(panel),
        missing=missing_cells(panel),
        reconciliation=reconciliation,
        excluded=report.excluded,
    )


def _with_context(frame: pd.DataFrame, raw_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with the flows and context columns; the flows' reconciliation rows."""
    from csc_bayes.data.context import context_for
    from csc_bayes.data.flows import read_flows

    flows = read_flows(raw_dir)
    for name, measures in flows.items():
        frame = _fill(frame, name, measures)
    recon = pd.concat(
        [reconcile(m) for measures in flows.values() for m in measures], ignore_index=True
    )
    extra = context_for(frame, raw_dir)
    flow_columns = [c for name in flows for c in (name, missing_column(name))]
    rest = frame.drop(columns=flow_columns)
    return pd.concat([rest, extra, frame[flow_columns]], axis=1), recon


def build_panel(
    raw_dir: Path, *, extra: Iterable[Path | str] = (), context: bool = True
) -> pd.DataFrame:
    """The validated LA x year panel built from the official files in ``raw_dir``, with the
    context columns (``context``, default on; :mod:`csc_bayes.data.context`) and the columns
    of the user's own tables ``extra`` (see :mod:`csc_bayes.data.extra`)."""
    return build_panel_report(raw_dir, extra=extra, context=context)[0]


def coverage(panel: pd.DataFrame) -> pd.DataFrame:
    """Authorities per year: all units (``authorities``) and those with a value per measure."""
    counts = panel.groupby("year")[[EXPOSURE, *OUTCOMES]].count()
    counts.insert(0, "authorities", panel.groupby("year").size())
    return counts.reset_index()


def missing_cells(panel: pd.DataFrame) -> pd.DataFrame:
    """Missing cells by column and reason (``column, reason, n``), columns in schema order."""
    rows = [
        (col, reason, int(n))
        for col in (*FLAGGED, *extra_flagged(panel))
        if missing_column(col) in panel
        for reason, n in panel[missing_column(col)].value_counts().items()
    ]
    return pd.DataFrame(rows, columns=["column", "reason", "n"])


def save_panel(panel: pd.DataFrame, path: Path | str) -> Path:
    """Validate and write ``panel`` to parquet atomically (temp file + ``os.replace``)."""
    path = Path(path)
    panel = validate_panel(panel, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        panel.to_parquet(tmp, index=False)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a panel is a shareable data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_panel(path: Path | str) -> pd.DataFrame:
    """Read a panel saved by :func:`save_panel` and validate it against the schema."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError("panel file not found", file=str(path))
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataFileError(f"cannot read panel parquet: {exc}", file=str(path)) from None
    return validate_panel(frame, source=str(path))
