"""Bad input to the official-file readers: tiny synthetic files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from csc_bayes.data import build_panel
from csc_bayes.data.outcomes import read_ees_column, read_outcome
from csc_bayes.data.sfr import read_sfr_column
from csc_bayes.data.sources import FILES
from csc_bayes.errors import DataFileError

HEADER = (
    "time_period,time_identifier,geographic_level,old_la_code,new_la_code,la_name,At31_episodes"
)


def ees(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "b1.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD = (
    "2020,Reporting year,National,,,,1010",
    "2020,Reporting year,Local authority,383,E08000035,Leeds,1000",
)


def test_markers_become_missing_with_reasons_never_zero(tmp_path):
    path = ees(
        tmp_path,
        *GOOD,
        "2020,Reporting year,Local authority,204,E09000012,Hackney,c",
        "2020,Reporting year,Local authority,205,E09000013,Hammersmith,x",
        "2020,Reporting year,Local authority,206,E09000019,Islington,[u]",
    )
    m = read_ees_column(path, "At31_episodes", name="cin")
    by_code = m.las.set_index("la_code")
    assert by_code.at["383", "value"] == 1000
    assert by_code.loc[["204", "205", "206"], "value"].isna().all()
    assert by_code.loc[["204", "205", "206"], "reason"].tolist() == [
        "suppressed",
        "not_available",  # EES x means not available
        "low_reliability",
    ]
    assert m.national["value"].tolist() == [1010]


def test_sfr_x_means_suppressed(tmp_path):
    path = tmp_path / "sfr.csv"
    path.write_text(
        "geog_l,geog_c,geog_n,CLA_Mar2016\nNATIONAL,999,ENGLAND,70\nLA,383,Leeds2,x\n"
        "LA,204,Hackney,..\n"
    )
    m = read_sfr_column(path, "CLA_Mar2016", year=2016, name="cla")
    assert m.las["reason"].tolist() == ["suppressed", "not_available"]
    assert m.las["la_name"].tolist() == ["Leeds", "Hackney"]  # footnote digit removed


def test_unknown_token_names_file_row_column_value(tmp_path):
    path = ees(tmp_path, *GOOD, "2020,Reporting year,Local authority,204,E09000012,Hackney,#VALUE!")
    with pytest.raises(DataFileError) as err:
        read_ees_column(path, "At31_episodes", name="cin")
    msg = str(err.value)
    assert "b1.csv" in msg and "row 4" in msg and "'At31_episodes'" in msg and "#VALUE!" in msg


def test_fractional_count_is_an_error(tmp_path):
    path = ees(tmp_path, *GOOD, "2020,Reporting year,Local authority,204,E09000012,Hackney,12.5")
    with pytest.raises(DataFileError, match=r"not a whole number.*row 4"):
        read_ees_column(path, "At31_episodes", name="cin")


def test_missing_column_is_named(tmp_path):
    path = ees(tmp_path, "2020,Reporting year,National,,,,1", header=HEADER.replace("At31", "At30"))
    with pytest.raises(DataFileError, match=r"missing column\(s\) \['At31_episodes'\].*b1.csv"):
        read_ees_column(path, "At31_episodes", name="cin")


def test_duplicated_la_year_is_an_error(tmp_path):
    path = ees(tmp_path, *GOOD, "2020,Reporting year,Local authority,383,E08000035,Leeds,999")
    with pytest.raises(DataFileError, match=r"duplicated authority-year la_code=383 year=2020"):
        read_ees_column(path, "At31_episodes", name="cin")


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "b1.csv"
    path.write_text("")
    with pytest.raises(DataFileError, match=r"file is empty.*b1.csv"):
        read_ees_column(path, "At31_episodes", name="cin")


def test_semicolon_separated_file_is_recognised(tmp_path):
    path = ees(tmp_path, *(r.replace(",", ";") for r in GOOD), header=HEADER.replace(",", ";"))
    with pytest.raises(DataFileError, match=r"not comma-separated.*';'.*b1.csv"):
        read_ees_column(path, "At31_episodes", name="cin")


def test_missing_file_is_named_by_its_documented_path(tmp_path):
    with pytest.raises(DataFileError, match=r"b1_children_in_need_2013_to_2025.csv"):
        read_outcome(tmp_path, "cin")


def test_build_on_incomplete_folder_names_the_missing_file(tmp_path):
    target = tmp_path / FILES["cin"]
    target.parent.mkdir(parents=True)
    target.write_text("\n".join([HEADER, *GOOD]) + "\n")
    with pytest.raises(DataFileError) as err:
        build_panel(tmp_path)
    msg = str(err.value)
    assert f"{len(FILES) - 1} required input file(s) not found" in msg
    assert "ons-ethnic-population-la.csv" in msg  # covariate files are checked up front too
    assert "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv" in msg
    assert "goodair_csc/cla_2010_2017/SFR27_2010_March.csv" in msg
    assert "b1_children_in_need" not in msg  # present, so not listed


def test_underscored_number_is_an_error_not_a_thousand():
    import pandas as pd

    from csc_bayes.data.markers import parse_numbers
    from csc_bayes.errors import DataFileError

    with pytest.raises(DataFileError, match="'1_000'"):
        parse_numbers(pd.Series(["12", "1_000"]), file="f.csv", column="cpp")


# ----------------------------------------------------------------- the strict CSV reader itself


def read_bytes_csv(tmp_path, data: bytes, name: str = "f.csv"):
    from csc_bayes.data.sources import read_text_csv

    path = tmp_path / name
    path.write_bytes(data)
    return read_text_csv(path)


def test_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path):
    # quoted commas and line breaks stay in their cell; a blank line is a row but no record
    got = read_bytes_csv(tmp_path, b'a,b\n1,"x, y"\n\n2,"two\nlines"\n3,z')  # no final newline
    assert got.frame.index.tolist() == [2, 4, 5]
    assert got.frame["b"].tolist() == ["x, y", "two\nlines", "z"]
    assert (got.encoding, got.delimiter) == ("UTF-8", ",")


def test_encodings_are_detected_and_named(tmp_path):
    assert read_bytes_csv(tmp_path, "a,b\n1,é\n".encode("cp1252")).encoding == "Windows-1252"
    bom = read_bytes_csv(tmp_path, "\ufeffa,b\n1,é\n".encode())
    assert bom.encoding == "UTF-8 (with byte-order mark)" and list(bom.frame.columns) == ["a", "b"]
    utf16 = read_bytes_csv(tmp_path, "a,b\n1,2\n".encode("utf-16"))
    assert utf16.encoding == "UTF-16" and utf16.frame["b"].tolist() == ["2"]
    with pytest.raises(DataFileError, match=r"tabs \(read as UTF-16\)"):
        read_bytes_csv(tmp_path, "a\tb\n1\t2\n".encode("utf-16"))


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"", r"file is empty"),
        (b"a,b,c\n", r"header but no data rows.*row 1"),
        (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", r"row has 2 fields but the header has 3.*row 3.*'4,5'"),
        (b"a,b,c\n1,2,3\n4,5,6,7\n", r"row has 4 fields.*row 3.*'4,5,6,7'"),
        (b"a,b,c\n1,2,3\n4,5", r"ends mid-row: its last row has 2 of the header's 3.*row 3.*'4,5'"),
        (b'a,b\n1,"open\n', r"cannot read as CSV.*never closed.*row 2"),
        (b"a|b\n1|2\n", r"vertical bars"),
        (b"a,a\n1,2\n", r"column name appears twice.*column 'a'"),
        (b"PK\x03\x04rest", r"zip archive"),
        (b"PAR1rest", r"parquet, not CSV"),
    ],
)
def test_damaged_files_are_errors_naming_the_row(tmp_path, data, pattern):
    with pytest.raises(DataFileError, match=pattern) as err:
        read_bytes_csv(tmp_path, data)
    assert "f.csv" in str(err.value)


def test_year_coverage_follows_the_files_name(tmp_path):
    import pandas as pd

    from csc_bayes.data.sources import check_year_coverage, promised_years

    assert promised_years("x/b1_children_in_need_2013_to_2025.csv") == range(2013, 2026)
    assert promised_years("SFR36_CLA2013.csv") is None
    ref = pd.read_csv(
        Path(__file__).parents[1] / "src/csc_bayes/reference/authorities.csv", dtype=str
    )
    codes = ref.loc[ref["first_year"] == "2010", "la_code"].tolist()
    full = pd.DataFrame(
        [(c, y, i) for y in (2013, 2014, 2015) for i, c in enumerate(codes)],
        columns=["la_code", "year", "row"],
    )
    check_year_coverage(full, file="m_2013_to_2016.csv")  # the name's last year may be absent
    check_year_coverage(full, file="no_range.csv")
    with pytest.raises(DataFileError, match=r"no authority rows for 2015 \(years with rows: 2013"):
        check_year_coverage(full[full["year"] < 2015], file="m_2013_to_2016.csv")
    half = full[(full["year"] != 2014) | (full["row"] < 70)]
    with pytest.raises(DataFileError, match=r"year 2014 has rows for only 70 authorities"):
        check_year_coverage(half, file="m_2013_to_2016.csv")
    with pytest.raises(DataFileError, match=r"should cover years 2012-2013"):
        check_year_coverage(full, file="no_range.csv", years=range(2012, 2014))
