"""`csc-bayes data build` on damaged copies of the official files: each is an error naming the
file and the row, year or value at fault, with exit status 2 and no traceback.

Each test builds a raw folder in tmp_path whose files are links to the real ones, except the
one it damages (a modified copy).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from csc_bayes.cli import app
from csc_bayes.data.sources import FILES

pytestmark = pytest.mark.realdata

CPP = FILES["cpp"]
CIN = FILES["cin"]
S47 = FILES["s47"]
REFERRALS = FILES["referrals"]
POPULATION = FILES["population"]


def raw_copy(raw_dir: Path, tmp_path: Path, damaged: dict[str, bytes]) -> Path:
    """A raw folder with every documented file linked to the real one, but ``damaged``."""
    root = tmp_path / "raw"
    for name in set(FILES.values()):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in damaged:
            target.write_bytes(damaged[name])
        else:
            target.symlink_to(raw_dir / name)
    return root


def build(raw: Path, tmp_path: Path):
    out = tmp_path / "panel.parquet"
    result = CliRunner().invoke(app, ["data", "build", "--raw", str(raw), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert not out.exists()
    return " ".join(result.stderr.split())  # the message, whatever the terminal width


def lines(raw_dir: Path, name: str) -> list[bytes]:
    return (raw_dir / name).read_bytes().splitlines(keepends=True)


def darlington_2024(raw_dir: Path, name: str) -> int:
    """0-based line index of Darlington's 2024 row."""
    for i, line in enumerate(lines(raw_dir, name)):
        if line.startswith(b"2024,") and b",841,E06000005,Darlington," in line:
            return i
    raise AssertionError("Darlington 2024 not found")


def test_file_cut_mid_row(raw_dir, tmp_path):
    # Darlington's 2024 CPP count 145 cut to "14": the file ends there, with no line ending
    i = darlington_2024(raw_dir, CPP)
    text = lines(raw_dir, CPP)
    row = text[i]
    cut = row.index(b",145,") + len(b",14")
    damaged = b"".join(text[:i]) + row[:cut]
    message = build(raw_copy(raw_dir, tmp_path, {CPP: damaged}), tmp_path)
    assert "d5_cpps_at31march_by_duration_2013_to_2025.csv" in message
    assert "ends mid-row" in message and f"row {i + 1}" in message
    assert "Darlington,Child Protection Plans by length of time,14'" in message


def test_file_cut_at_a_line_end_misses_the_years_its_name_promises(raw_dir, tmp_path):
    i = darlington_2024(raw_dir, CPP)
    damaged = b"".join(lines(raw_dir, CPP)[: i + 1])
    message = build(raw_copy(raw_dir, tmp_path, {CPP: damaged}), tmp_path)
    assert "d5_cpps_at31march_by_duration_2013_to_2025.csv" in message
    assert "promises years 2013-2025" in message and "no authority rows for 2013-2023" in message


def test_file_cut_inside_its_last_year(raw_dir, tmp_path):
    text = lines(raw_dir, S47)
    first_2013 = next(i for i, line in enumerate(text) if line.startswith(b"2013,"))
    damaged = b"".join(text[: first_2013 + 40])
    message = build(raw_copy(raw_dir, tmp_path, {S47: damaged}), tmp_path)
    assert "c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv" in message
    assert "year 2013 has rows for only" in message and f"row {first_2013 + 40}" in message


def test_header_without_data(raw_dir, tmp_path):
    damaged = lines(raw_dir, CPP)[0]
    message = build(raw_copy(raw_dir, tmp_path, {CPP: damaged}), tmp_path)
    assert "d5_cpps_at31march_by_duration_2013_to_2025.csv" in message
    assert "header but no data rows" in message


def test_row_with_an_extra_field(raw_dir, tmp_path):
    text = lines(raw_dir, CIN)
    text[10] = text[10].rstrip(b"\r\n") + b",999\n"
    message = build(raw_copy(raw_dir, tmp_path, {CIN: b"".join(text)}), tmp_path)
    assert "b1_children_in_need_2013_to_2025.csv" in message
    assert "row 11" in message and "fields but the header has" in message and ",999'" in message


@pytest.mark.parametrize(
    ("delimiter", "encoding", "words"),
    [(b";", "utf-8", "semicolons"), (b"\t", "utf-8", "tabs"), (b";", "cp1252", "semicolons")],
)
def test_other_delimiters_are_named_with_the_encoding(
    raw_dir, tmp_path, delimiter, encoding, words
):
    text = (raw_dir / REFERRALS).read_bytes().replace(b",", delimiter)
    expected_encoding = "UTF-8"
    if encoding == "cp1252":  # a name with an accent, saved by a Windows spreadsheet
        text = text.replace(b"Darlington", "Darlingtón".encode("cp1252"))
        expected_encoding = "Windows-1252"
    message = build(raw_copy(raw_dir, tmp_path, {REFERRALS: text}), tmp_path)
    assert "c1_children_in_need_referrals_and_rereferrals_2013_to_2025.csv" in message
    assert f"not comma-separated: its header is split by {words}" in message
    assert expected_encoding in message


def test_bogus_ons_code_in_an_outcome_file(raw_dir, tmp_path):
    i = darlington_2024(raw_dir, CIN)
    text = lines(raw_dir, CIN)
    text[i] = text[i].replace(b",E06000005,", b",E06000999,")
    message = build(raw_copy(raw_dir, tmp_path, {CIN: b"".join(text)}), tmp_path)
    assert "b1_children_in_need_2013_to_2025.csv" in message
    assert "not a code of authority 841 Darlington" in message
    assert f"row {i + 1}" in message and "'new_la_code'" in message and "'E06000999'" in message


def test_unknown_authority_number_in_an_outcome_file(raw_dir, tmp_path):
    i = darlington_2024(raw_dir, S47)
    text = lines(raw_dir, S47)
    text[i] = text[i].replace(b",841,", b",848,")
    message = build(raw_copy(raw_dir, tmp_path, {S47: b"".join(text)}), tmp_path)
    assert "c4_children_in_need_section_47s_and_icpcs_2013_to_2025.csv" in message
    assert "not in the reference list" in message
    assert f"row {i + 1}" in message and "'old_la_code'" in message and "'848'" in message


def test_zero_population(raw_dir, tmp_path):
    text = lines(raw_dir, POPULATION)
    header = text[0].decode().strip().split(",")
    col = header.index("population_estimate")
    i = next(
        i
        for i, line in enumerate(text)
        if b",Local authority," in line and b",383," in line and line.startswith(b"2020,")
    )
    fields = text[i].decode().rstrip("\r\n").split(",")
    fields[col] = "0"
    text[i] = (",".join(fields) + "\n").encode()
    message = build(raw_copy(raw_dir, tmp_path, {POPULATION: b"".join(text)}), tmp_path)
    assert "ons_mid-year_population_estimates_2012_to_2024.csv" in message
    assert "population must be positive" in message
    assert f"row {i + 1}" in message and "'population_estimate'" in message and "'0'" in message
