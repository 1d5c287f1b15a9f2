"""Census 2021 ethnic group (all ages) -> counts of usual residents by upper-tier authority.

Source: ONS Census 2021 table "Ethnic group (20 categories)" by 2023 upper-tier authority
(``dfe_csc_outcomes_enablers/ons-ethnic-population-la.csv``). It counts **all usual residents,
all ages**; none of the files here gives the ethnicity of the child population.

We keep counts, not shares, so that former authorities can be rebuilt by adding their
successors' counts before dividing (see :mod:`csc_bayes.data.covariates`):

    ethnic_minority_share = (residents - White British) / residents

where ``residents`` sums the 19 ethnic groups, excluding category -8 "Does not apply"
(always 0 in this table).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from csc_bayes.data.markers import parse_numbers
from csc_bayes.data.schema import MissingReason
from csc_bayes.data.sources import FILES, read_csv
from csc_bayes.errors import DataFileError

ETHNICITY_FILE = FILES["ethnicity"]

CODE_COLUMN = "2023 Upper tier local authorities Code"
NAME_COLUMN = "2023 Upper tier local authorities"
GROUP_CODE_COLUMN = "Ethnic group (20 categories) Code"
GROUP_COLUMN = "Ethnic group (20 categories)"
COUNT_COLUMN = "Observation"
WHITE_BRITISH = "White: English, Welsh, Scottish, Northern Irish or British"
DOES_NOT_APPLY = "-8"


def read_ethnicity(path: Path) -> pd.DataFrame:
    """Residents and White British residents per authority (2023 upper-tier codes).

    Returns columns ``code, name, residents, white_british, counts_missing`` (counts as
    Float64; ``counts_missing`` is a :class:`MissingReason` when any group count of that
    authority is a marker rather than a number). Raises :class:`DataFileError` naming the file,
    row and column for a missing column, an unparseable count, or an authority without a
    White British row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError("Census 2021 ethnic group file not found", file=str(path))
    stat = path.stat()
    return _read_ethnicity(path, stat.st_mtime_ns, stat.st_size).copy()


@lru_cache(maxsize=4)
def _read_ethnicity(path: Path, _mtime_ns: int, _size: int) -> pd.DataFrame:
    """Cached on the file's path, modification time and size."""
    raw = read_csv(
        path, required=(CODE_COLUMN, NAME_COLUMN, GROUP_CODE_COLUMN, GROUP_COLUMN, COUNT_COLUMN)
    )
    counts, reasons = parse_numbers(
        raw[COUNT_COLUMN],
        file=str(path),
        column=COUNT_COLUMN,
        rows=raw.index.tolist(),
        x_means=MissingReason.SUPPRESSED,
    )
    negative = counts.lt(0).fillna(False)
    if negative.any():
        pos = int(negative.to_numpy().nonzero()[0][0])
        raise DataFileError(
            "negative count",
            file=str(path),
            row=int(raw.index[pos]),
            column=COUNT_COLUMN,
            value=raw[COUNT_COLUMN].iloc[pos],
        )
    frame = pd.DataFrame(
        {
            "code": raw[CODE_COLUMN].str.strip(),
            "name": raw[NAME_COLUMN].str.strip(),
            "group_code": raw[GROUP_CODE_COLUMN].str.strip(),
            "white_british_row": raw[GROUP_COLUMN].str.strip().eq(WHITE_BRITISH),
            "count": counts,
            "reason": reasons,
        }
    )
    frame = frame[frame["group_code"] != DOES_NOT_APPLY]
    rows = []
    for (code, name), group in frame.groupby(["code", "name"], sort=False):
        white = group.loc[group["white_british_row"], "count"]
        if len(white) != 1:
            raise DataFileError(
                f"expected one {WHITE_BRITISH!r} row for authority {code} {name}, "
                f"found {len(white)}",
                file=str(path),
                column=GROUP_COLUMN,
            )
        missing = group["reason"].dropna()
        rows.append(
            {
                "code": code,
                "name": name,
                "residents": group["count"].sum(skipna=False),
                "white_british": white.iloc[0],
                "counts_missing": missing.iloc[0] if len(missing) else pd.NA,
            }
        )
    out = pd.DataFrame(rows)
    out["residents"] = out["residents"].astype("Float64")
    out["white_british"] = out["white_british"].astype("Float64")
    out["counts_missing"] = out["counts_missing"].astype("string")
    if out["code"].duplicated().any():
        dup = out.loc[out["code"].duplicated(), "code"].iloc[0]
        raise DataFileError(
            "authority code appears under two names", file=str(path), column=CODE_COLUMN, value=dup
        )
    return out
