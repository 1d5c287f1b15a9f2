"""DfE children's services statistical neighbours: the ten authorities most like each one.

    statistical_neighbours("383", raw_dir)               # Leeds, 2025 model, closest first
    statistical_neighbours(383, raw_dir, release=2021)   # the April 2021 groupings
    neighbour_table(raw_dir)                             # every authority, long format

Sources (inside the raw folder, ``dfe_csc_outcomes_enablers/``), by DfE LA number:

* ``release=2025`` (default): ``sn_model_2025_wide.csv`` (``old_la_code, la_name, region_ind,
  region_name, SN_1, SN_1P, ..., SN_10, SN_10P``), 153 authorities. The LAIT copy
  ``dfe_lait/sn_may_2025.xlsx`` lists the same neighbours in the same order for all of them;
* ``release=2021``: ``New_Statistical_Neighbour_Groupings_April_2021.csv`` (``LA num, LA Name,
  LA number, GOInd, GOReg, SN1, SNP, SN2, SNP, ...``; every closeness column is named ``SNP``),
  152 authorities, then, under "Old SNs:", the former Dorset, Poole, Bournemouth and
  Northamptonshire.

``SN_k`` is the k-th nearest neighbour in DfE's model (k = 1 closest); ``SN_kP`` is DfE's band
of closeness in words (``Extremely close``, ``Very close``, ``Close``, ``Somewhat close``,
``Not close``). The lists are DfE's as published: a neighbour may be an authority that no
longer exists or one the panel excludes (City of London 201, Isles of Scilly 420).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from csc_bayes.data.sources import EES, read_csv_rows, reference_codes
from csc_bayes.errors import DataFileError, UnknownAuthorityError

NEIGHBOUR_FILES: dict[int, str] = {
    2025: f"{EES}/sn_model_2025_wide.csv",
    2021: f"{EES}/New_Statistical_Neighbour_Groupings_April_2021.csv",
}
#: (code column, first neighbour column) of each release's header
_LAYOUT: dict[int, tuple[str, str]] = {2025: ("old_la_code", "SN_1"), 2021: ("LA num", "SN1")}
N_NEIGHBOURS = 10


def neighbour_table(raw_dir: Path | str, *, release: int = 2025) -> pd.DataFrame:
    """``la_code, rank, neighbour, closeness`` (rank 1 = closest), one row per authority and
    neighbour, as the ``release`` file lists them.

    Raises :class:`DataFileError` naming the file, row and value for a missing file or column,
    an authority or neighbour number not in the reference list, an authority listed twice or
    one with fewer than ten neighbours, or itself among them.
    """
    if release not in NEIGHBOUR_FILES:
        raise ValueError(f"release must be one of {sorted(NEIGHBOUR_FILES)}, not {release!r}")
    path = Path(raw_dir) / NEIGHBOUR_FILES[release]
    if not path.is_file():
        raise DataFileError(
            f"statistical neighbours file not found inside {raw_dir}", file=str(path)
        )
    stat = path.stat()
    return _neighbour_table(path, release, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=4)
def _neighbour_table(path: Path, release: int, _mtime_ns: int, _size: int) -> pd.DataFrame:
    file = str(path)
    rows, _encoding = read_csv_rows(path)
    if not rows:
        raise DataFileError("file is empty", file=file)
    header = [h.strip() for h in rows[0]]
    code_col, first_col = _LAYOUT[release]
    for name in (code_col, first_col):
        if name not in header:
            raise DataFileError("missing column", file=file, row=1, column=name)
    code_at, first = header.index(code_col), header.index(first_col)
    known = reference_codes()
    records, seen = [], {}
    for number, fields in enumerate(rows[1:], start=2):
        if not any(f.strip() for f in fields[code_at : code_at + 1] + fields[first:]):
            continue  # a blank line or a section label ("Old SNs:" in the 2021 file)
        if len(fields) < first + 2 * N_NEIGHBOURS:
            raise DataFileError(
                f"row has {len(fields)} fields; {N_NEIGHBOURS} neighbours need "
                f"{first + 2 * N_NEIGHBOURS}",
                file=file,
                row=number,
            )
        code = _code(fields[code_at], file=file, row=number, column=code_col, known=known)
        if code in seen:
            raise DataFileError(
                f"authority {code} listed twice (rows {seen[code]} and {number})",
                file=file,
                row=number,
                column=code_col,
            )
        seen[code] = number
        for k in range(N_NEIGHBOURS):
            column = header[first + 2 * k]
            neighbour = _code(
                fields[first + 2 * k], file=file, row=number, column=column, known=known
            )
            if neighbour == code:
                raise DataFileError(
                    "an authority is listed as its own neighbour",
                    file=file,
                    row=number,
                    column=column,
                    value=neighbour,
                )
            records.append((code, k + 1, neighbour, fields[first + 2 * k + 1].strip()))
    if not records:
        raise DataFileError("file has a header but no data rows", file=file, row=1)
    return pd.DataFrame(records, columns=["la_code", "rank", "neighbour", "closeness"])


def _code(text: str, *, file: str, row: int, column: str, known: dict[str, set[str]]) -> str:
    code = text.strip()
    if code.endswith(".0"):
        code = code[:-2]
    if code not in known:
        raise DataFileError(
            "not a DfE LA number in the reference list of authorities",
            file=file,
            row=row,
            column=column,
            value=text,
        )
    return code


def statistical_neighbours(
    la_code: str | int, raw_dir: Path | str, *, release: int = 2025
) -> list[str]:
    """The DfE numbers of the statistical neighbours of authority ``la_code`` (a DfE number,
    e.g. ``"383"`` or ``383``), closest first, as the ``release`` file lists them.

    Raises :class:`~csc_bayes.errors.UnknownAuthorityError` when the file has no row for the
    authority (e.g. an authority that did not exist when the groupings were made).
    """
    code = str(la_code).strip()
    table = neighbour_table(raw_dir, release=release)
    mine = table.loc[table["la_code"] == code].sort_values("rank")
    if mine.empty:
        raise UnknownAuthorityError(
            f"authority {code!r} has no statistical neighbours in the {release} groupings "
            f"({NEIGHBOUR_FILES[release]}); it lists {table['la_code'].nunique()} authorities"
        )
    return mine["neighbour"].tolist()
