"""Every class of bad input csc_bayes guards against, run through the ``csc-bayes`` command line,
written up as a table (docs/bad_input.md).

    python examples/bad_input_table.py --raw ../shared/data/raw --out docs/bad_input.md

For each class (:data:`CASES`) it prepares one example in a scratch folder (a damaged copy of an
official file, a bad table, spec, formula or plan, a damaged copy of a saved fit), runs the
command in-process with typer's CliRunner and records the exit code and the first line of the
message. An outcome is **as intended** when

* the exit code is the one README's table gives that kind of failure (0 where the input is
  meant to be accepted);
* there is no traceback;
* the message is one line: a single ``error: ...`` line on standard error (for a usage error,
  exit 2, click's usage box with one error in it);
* the message names what :attr:`Case` lists: the file, row, column, authority, key or value.

The official-file classes need the raw folder (``--raw``; they are left out, and say so, when
it is absent): each damages a copy of one file in a folder whose other files are links to the
real ones. The classes that need a fit use a tiny synthetic one (``csc_bayes.fit`` with a few
draws, saved in the scratch folder). ``tests/test_bad_input_table.py`` runs the fast classes
with a hand-built fit and checks every outcome, so the table cannot silently go stale.

The script exits 1 when an outcome is not as intended, other than the known issues the table
lists (:attr:`Case.known_issue`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ classes of bad input


@dataclass
class Context:
    """What the cases run against: a scratch folder and the inputs they damage or use."""

    root: Path  # scratch folder; each case gets root/<case id>/
    raw: Path | None = None  # the official files
    fit: Path | None = None  # a saved fit's run folder
    panel: Path | None = None  # a saved synthetic panel

    def has(self, need: str) -> bool:
        return getattr(self, need) is not None


@dataclass(frozen=True)
class Run:
    """One command: its arguments and the strings its message must contain."""

    argv: list[str]
    names: list[str]


@dataclass(frozen=True)
class Case:
    """One class of bad input and the example of it that is run.

    ``make(ctx, folder)`` writes the example's inputs into ``folder`` and returns the
    :class:`Run`; ``code`` is the intended exit code; ``needs`` the :class:`Context` inputs it
    uses; ``fast``: part of the test's subset; ``known_issue``: why the outcome is not yet as
    intended (the test then expects it not to be, so a fix shows up).
    """

    id: str
    group: str
    name: str
    example: str
    code: int
    make: Callable[[Context, Path], Run]
    needs: tuple[str, ...] = ()
    fast: bool = True
    known_issue: str | None = None


# --- the official files: a raw folder of links to the real files, one of them damaged


def _files() -> dict[str, str]:
    from csc_bayes.data.sources import FILES

    return FILES


def raw_copy(ctx: Context, folder: Path, damaged: dict[str, bytes | None]) -> Path:
    """``folder/raw``: every documented file linked to the real one, except ``damaged`` (its
    bytes; None: the file is left out)."""
    root = folder / "raw"
    for name in set(_files().values()):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name not in damaged:
            target.symlink_to(ctx.raw / name)
        elif damaged[name] is not None:
            target.write_bytes(damaged[name])
    return root


def lines(ctx: Context, key: str) -> list[bytes]:
    return (ctx.raw / _files()[key]).read_bytes().splitlines(keepends=True)


def row_index(text: list[bytes], year: int, marker: bytes) -> int:
    """0-based index of the authority row of ``year`` holding ``marker``."""
    for i, line in enumerate(text):
        if line.startswith(b"%d," % year) and marker in line:
            return i
    raise LookupError(f"no row of {year} with {marker!r}")


def set_field(text: list[bytes], i: int, column: str, value: Callable[[str], str]) -> None:
    header = text[0].decode("utf-8-sig").strip().split(",")
    fields = text[i].decode().rstrip("\r\n").split(",")
    col = header.index(column)
    fields[col] = value(fields[col])
    text[i] = (",".join(fields) + "\n").encode()


def build(ctx: Context, folder: Path, damaged: dict[str, bytes | None], names: list[str]) -> Run:
    raw = raw_copy(ctx, folder, damaged)
    argv = ["data", "build", "--raw", str(raw), "--out", str(folder / "panel.parquet")]
    return Run(argv, names)


DARLINGTON = b",841,E06000005,Darlington,"
LEEDS = b",383,E08000035,Leeds,"


def cut_mid_row(ctx: Context, folder: Path) -> Run:
    text = lines(ctx, "cpp")
    i = row_index(text, 2024, DARLINGTON)
    row = text[i]
    cut = row.index(b",145,") + len(b",14")
    name = _files()["cpp"]
    damaged = b"".join(text[:i]) + row[:cut]
    return build(ctx, folder, {name: damaged}, [name, "ends mid-row", f"row {i + 1}"])


def header_only(ctx: Context, folder: Path) -> Run:
    name = _files()["cpp"]
    damaged = lines(ctx, "cpp")[0]
    return build(ctx, folder, {name: damaged}, [name, "header but no data rows"])


def extra_field(ctx: Context, folder: Path) -> Run:
    text = lines(ctx, "cin")
    text[10] = text[10].rstrip(b"\r\n") + b",999\n"
    name = _files()["cin"]
    return build(ctx, folder, {name: b"".join(text)}, [name, "row 11", "fields but the header"])


def semicolons(ctx: Context, folder: Path) -> Run:
    name = _files()["referrals"]
    damaged = (ctx.raw / name).read_bytes().replace(b",", b";")
    return build(ctx, folder, {name: damaged}, [name, "semicolons", "UTF-8"])


def encoded(encoding: str, names: list[str], *, refused: bool = True):
    """The referrals file in ``encoding``; a refused file's message must name it."""

    def make(ctx: Context, folder: Path) -> Run:
        name = _files()["referrals"]
        text = (ctx.raw / name).read_bytes().decode("utf-8-sig")
        if encoding == "cp1252":  # an accented name, as a Windows spreadsheet saves it
            text = text.replace("Darlington", "Darlingtón")
        names_ = [name, *names] if refused else names
        return build(ctx, folder, {name: text.encode(encoding)}, names_)

    return make


def year_gap(ctx: Context, folder: Path) -> Run:
    name = _files()["cin"]
    damaged = b"".join(line for line in lines(ctx, "cin") if not line.startswith(b"2018,"))
    return build(ctx, folder, {name: damaged}, [name, "no authority rows for 2018"])


def bogus_ons_code(ctx: Context, folder: Path) -> Run:
    text = lines(ctx, "cin")
    i = row_index(text, 2024, DARLINGTON)
    text[i] = text[i].replace(b",E06000005,", b",E06000999,")
    name = _files()["cin"]
    names = [name, f"row {i + 1}", "'new_la_code'", "'E06000999'", "841 Darlington"]
    return build(ctx, folder, {name: b"".join(text)}, names)


def bogus_dfe_number(ctx: Context, folder: Path) -> Run:
    text = lines(ctx, "s47")
    i = row_index(text, 2024, DARLINGTON)
    text[i] = text[i].replace(b",841,", b",848,")
    name = _files()["s47"]
    names = [name, f"row {i + 1}", "'old_la_code'", "'848'"]
    return build(ctx, folder, {name: b"".join(text)}, names)


def zero_population(ctx: Context, folder: Path) -> Run:
    text = lines(ctx, "population")
    i = next(
        i
        for i, line in enumerate(text)
        if line.startswith(b"2020,") and b",Local authority," in line and b",383," in line
    )
    set_field(text, i, "population_estimate", lambda _: "0")
    name = _files()["population"]
    names = [name, f"row {i + 1}", "'population_estimate'", "'0'"]
    return build(ctx, folder, {name: b"".join(text)}, names)


def not_reconciling(ctx: Context, folder: Path) -> Run:
    text = lines(ctx, "cin")
    i = row_index(text, 2016, LEEDS)
    set_field(text, i, "At31_episodes", lambda v: v + "0")  # a digit too many
    name = _files()["cin"]
    names = [name, "'At31_episodes'", "in 2016", "the authorities sum to", "national total is"]
    return build(ctx, folder, {name: b"".join(text)}, names)


def missing_file(ctx: Context, folder: Path) -> Run:
    name = _files()["cpp"]
    return build(ctx, folder, {name: None}, [name, "not found"])


# --- your own columns: `data join` of a bad table to a saved (synthetic) panel


def extra_table(text: str, names: list[str]) -> Callable[[Context, Path], Run]:
    def make(ctx: Context, folder: Path) -> Run:
        table = folder / "mine.csv"
        table.write_text(text, encoding="utf-8")
        argv = ["data", "join", str(ctx.panel), "--extra", str(table)]
        return Run([*argv, "--out", str(folder / "panel.parquet")], [*names, "mine.csv"])

    return make


def xlsx_as_csv(ctx: Context, folder: Path) -> Run:
    import pandas as pd

    table = folder / "mine.csv"
    pd.DataFrame({"la_code": ["383"], "social_workers": [5]}).to_excel(table, engine="openpyxl")
    argv = ["data", "join", str(ctx.panel), "--extra", str(table)]
    return Run([*argv, "--out", str(folder / "panel.parquet")], ["mine.csv", "zip archive"])


def not_a_panel(ctx: Context, folder: Path) -> Run:
    import pandas as pd

    path = folder / "not_a_panel.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    argv = ["fit", "cpp_need", "--data", str(path), "--out", str(folder / "fits")]
    return Run(argv, ["not_a_panel.parquet", "missing column(s)", "'la_code'"])


# --- specs and formulas (they fail before any sampling)


def spec_file(edit: Callable[[str], str], names: list[str]) -> Callable[[Context, Path], Run]:
    def make(ctx: Context, folder: Path) -> Run:
        text = edit((REPO / "models" / "cpp_need.toml").read_text(encoding="utf-8"))
        path = folder / "my_model.toml"
        path.write_text(text, encoding="utf-8")
        return Run(["fit", str(path), "--out", str(folder / "fits")], ["my_model.toml", *names])

    return make


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def command(*args: str, names: list[str]) -> Callable[[Context, Path], Run]:
    """A command on the context's inputs: ``{fit}``, ``{panel}`` and ``{dir}`` (the case's
    folder) in ``args`` are filled in."""

    def make(ctx: Context, folder: Path) -> Run:
        fill = {"{fit}": ctx.fit, "{panel}": ctx.panel, "{dir}": folder}

        def filled(arg: str) -> str:
            for key, value in fill.items():
                arg = arg.replace(key, str(value))
            return arg

        return Run([filled(a) for a in args], names)

    return make


def damaged_fit(ctx: Context, folder: Path) -> Run:
    copy = folder / "fit"
    shutil.copytree(ctx.fit, copy)
    nc = copy / "posterior.nc"
    data = bytearray(nc.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed in the middle of the file
    nc.write_bytes(bytes(data))
    return Run(["excess", str(copy)], ["posterior.nc", "checksum"])


def plan_outside_data(ctx: Context, folder: Path) -> Run:
    plan = folder / "plan.toml"
    plan.write_text(
        f'out = "{folder / "fits"}"\nspecs = ["cpp_need"]\nyears = [[2018, 2020], [2030, 2031]]\n'
        "[data]\nauthorities = 10\nfirst_year = 2018\nlast_year = 2023\n",
        encoding="utf-8",
    )
    return Run(["batch", str(plan)], ["plan.toml", "'years'", "[2030, 2031]"])


def unwritable(ctx: Context, folder: Path) -> Run:
    (folder / "a_file").write_text("")  # a path under a regular file: no one can write there
    out = folder / "a_file" / "excess.csv"
    return Run(["excess", str(ctx.fit), "--out", str(out)], [str(out), "not a folder"])


RAW, FIT, PANEL = ("raw",), ("fit",), ("panel",)
#: every class of bad input, in the order of the table
CASES: list[Case] = [
    # official files
    Case("csv-cut", "official file", "damaged CSV: cut mid-row",
         "CPP file ends inside Darlington's 2024 row (`...,14`, no line ending)",
         1, cut_mid_row, RAW),
    Case("csv-header-only", "official file", "damaged CSV: header only",
         "CPP file with its header line and no rows", 1, header_only, RAW, fast=False),
    Case("csv-field-count", "official file", "damaged CSV: wrong field count",
         "CIN file, row 11 with a field too many (`,999`)", 1, extra_field, RAW, fast=False),
    Case("csv-semicolons", "official file", "damaged CSV: semicolon delimiter",
         "referrals file re-saved with `;` between fields", 1, semicolons, RAW, fast=False),
    Case("csv-utf16-no-bom", "official file", "damaged CSV: wrong encoding (UTF-16, no BOM)",
         "referrals file saved as UTF-16 LE without a byte-order mark",
         1, encoded("utf-16-le", ["NUL bytes"]), RAW, fast=False),
    Case("csv-utf32", "official file", "damaged CSV: wrong encoding (UTF-32)",
         "referrals file saved as UTF-32 (with its byte-order mark)",
         1, encoded("utf-32", ["UTF-32"]), RAW, fast=False),
    Case("csv-cp1252", "official file", "Windows-1252 CSV (accepted)",
         "referrals file saved by a Windows spreadsheet with `Darlingtón`: read as Windows-1252",
         0, encoded("cp1252", ["panel:"], refused=False), RAW, fast=False),
    Case("year-gap", "official file", "year coverage gap in a file",
         "CIN file without its 2018 rows", 1, year_gap, RAW, fast=False),
    Case("bogus-ons-code", "official file", "bogus ONS code in an outcome file",
         "CIN file, Darlington 2024 with `E06000999`", 1, bogus_ons_code, RAW, fast=False),
    Case("bogus-dfe-number", "official file", "bogus DfE number in an outcome file",
         "s47 file, Darlington 2024 numbered `848`", 1, bogus_dfe_number, RAW, fast=False),
    Case("population-zero", "official file", "population of 0",
         "population file, Leeds 2020 (mid-2019) set to `0`", 1, zero_population, RAW,
         fast=False),
    Case("not-reconciling", "official file", "total that no longer reconciles",
         "CIN file, Leeds 2016 `At31_episodes` given a digit too many (ten times the count)",
         1, not_reconciling, RAW),
    Case("file-missing", "official file", "official file missing",
         "raw folder without the CPP file", 1, missing_file, RAW, fast=False),
    # --extra tables
    Case("extra-unknown-key", "--extra table", "`--extra`: unknown key",
         "`la_code` 999 (no such authority)",
         1, extra_table("la_code,year,social_workers\n999,2020,5\n",
                        ["row 2", "'la_code'", "'999'"]), PANEL),
    Case("extra-duplicate-key", "--extra table", "`--extra`: duplicate key",
         "Leeds 2020 twice",
         1, extra_table("la_code,year,social_workers\n383,2020,5\n383,2020,6\n",
                        ["row 3", "383 Leeds", "2020"]), PANEL),
    Case("extra-non-numeric", "--extra table", "`--extra`: non-numeric cell",
         "`lots` in a numeric column",
         1, extra_table("la_code,year,social_workers\n383,2020,5\n383,2021,lots\n",
                        ["row 3", "'social_workers'", "'lots'"]), PANEL),
    Case("extra-clashing-column", "--extra table", "`--extra`: clashing column name",
         "a column named `cpp`, already a panel column",
         1, extra_table("la_code,year,cpp\n383,2020,5\n", ["'cpp'", "already in the panel"]),
         PANEL),
    Case("extra-former-code", "--extra table", "`--extra`: former ONS code (accepted)",
         "Buckinghamshire by its pre-2020 code `E10000002`",
         0, extra_table("ons_code,social_workers\nE10000002,5\nE08000035,7\n",
                        ["panel:", "social_workers"]), PANEL),
    Case("extra-spreadsheet", "--extra table", "`--extra`: a spreadsheet named .csv",
         "an .xlsx workbook saved as `mine.csv`", 1, xlsx_as_csv, PANEL),
    # specs and formulas
    Case("spec-unknown-key", "spec", "spec: unknown key", "`random_efects = [...]`",
         1, spec_file(replace("random_effects =", "random_efects ="), ["'random_efects'"])),
    Case("spec-impossible-prior", "spec", "spec: impossible prior",
         "`sigma_la = { sigma = -1.0 }`",
         1, spec_file(replace("[priors]\n", "[priors]\nsigma_la = { sigma = -1.0 }\n"),
                      ["priors.sigma_la.sigma", "-1.0"])),
    Case("spec-unknown-covariate", "spec", "spec: unknown covariate column",
         '`deprivation = ["idacii"]`',
         1, spec_file(replace('"idaci"', '"idacii"'), ["'idacii'", "not a column"])),
    Case("spec-non-count-outcome", "spec", "spec: non-count outcome",
         '`outcome = "idaci"` (a score, not a count)',
         1, spec_file(replace('outcome = "cpp"', 'outcome = "idaci"'),
                      ["'idaci'", "must be a count", "authority", "year"])),
    Case("spec-prior-not-toml", "spec", "`--prior` that is not TOML", "`--prior 'sigma_la = {'`",
         1, command("fit", "cpp_need", "--prior", "sigma_la = {", "--out", "{dir}/fits",
                    names=["--prior", "'sigma_la = {'"])),
    Case("spec-prior-unknown", "spec", "`--prior` for a parameter the model lacks",
         "`--prior 'sigma_lax = { sigma = 1 }'`",
         1, command("fit", "cpp_need", "--prior", "sigma_lax = { sigma = 1 }", "--out",
                    "{dir}/fits", names=["'priors.sigma_lax'", "sigma_la"])),
    Case("spec-years-outside", "spec", "fit years outside the data", "`fit --years 2030 2031`",
         1, command("fit", "cpp_need", "--years", "2030", "2031", "--out", "{dir}/fits",
                    names=["(2030, 2031)", "no rows to fit"])),
    Case("panel-not-a-panel", "spec", "`--data` that is not a panel",
         "a parquet file with one column `a`",
         1, not_a_panel),
    Case("spec-unknown-model", "spec", "unknown model name", "`fit cpp_nead`",
         1, command("fit", "cpp_nead", "--out", "{dir}/fits", names=["'cpp_nead'"])),
    Case("formula-syntax", "spec", "formula with a syntax error",
         "`(1|la` never closed",
         1, command("fit", "--formula", "cpp ~ idaci + offset(log(population)) + (1|la",
                    "--out", "{dir}/fits", names=["unbalanced parentheses", "column 41"])),
    # authorities
    Case("authority-unknown", "authority", "unknown authority", "`--authority Narnia`",
         1, command("predict", "{fit}", "--authority", "Narnia", "--year", "2020",
                    names=["'Narnia'"]), FIT),
    Case("authority-misspelt", "authority", "misspelt authority (suggestions)",
         "`--authority Leds`",
         1, command("predict", "{fit}", "--authority", "Leds", "--year", "2020",
                    names=["'Leds'", "did you mean 383 Leeds"]), FIT),
    Case("authority-former-code", "authority", "former ONS code (accepted)",
         "`--authority E10000002` (Buckinghamshire before 2020-21)",
         0, command("predict", "{fit}", "--authority", "E10000002", "--year", "2020",
                    "--format", "csv", names=["Buckinghamshire"]), FIT),
    # years
    Case("year-not-fitted", "year", "year that was not fitted", "`excess --year 2031`",
         1, command("excess", "{fit}", "--year", "2031", names=["year 2031 was not fitted"]),
         FIT),
    Case("year-before-data", "year", "year before the data", "`predict --year 2005`",
         1, command("predict", "{fit}", "--authority", "Leeds", "--year", "2005",
                    names=["2005", "first fitted year"]), FIT),
    Case("year-banana", "year", "year not an integer", "`excess --year banana`",
         2, command("excess", "{fit}", "--year", "banana", names=["--year", "'banana'"]), FIT),
    Case("year-banana-predict", "year", "year not an integer (predict)",
         "`predict --year banana`",
         2, command("predict", "{fit}", "--authority", "Leeds", "--year", "banana",
                    names=["--year", "banana"]), FIT),
    # outputs
    Case("ci-prob-outside", "request", "interval width outside (0, 1)", "`excess --ci-prob 1.5`",
         1, command("excess", "{fit}", "--ci-prob", "1.5", names=["1.5"]), FIT),
    Case("unknown-option", "request", "unknown option", "`excess --ci 0.9`",
         2, command("excess", "{fit}", "--ci", "0.9", names=["--ci", "--ci-prob"]), FIT),
    Case("output-unwritable", "output", "unwritable output path",
         "`--out` under a regular file", 4, unwritable, FIT),
    Case("output-figure-suffix", "output", "unknown figure suffix", "`plot caterpillar -o x.bmp`",
         4, command("plot", "caterpillar", "{fit}", "-o", "{dir}/x.bmp",
                    names=["x.bmp", "'.bmp'"]), FIT),
    Case("output-parquet-stdout", "output", "`--format parquet` without `--out`",
         "`excess --format parquet`",
         2, command("excess", "{fit}", "--format", "parquet", names=["--format", "--out"]), FIT),
    # fits and plans
    Case("fit-damaged", "fit", "damaged saved fit",
         "one byte of `posterior.nc` changed", 1, damaged_fit, FIT),
    Case("fit-gate-failed", "fit", "fit that failed the convergence gate",
         "`report` of a fit that failed the gate, without `--force`",
         3, command("report", "{fit}", "-o", "{dir}/report.html",
                    names=["convergence gate", "--force"]), FIT),
    Case("plan-years-outside", "plan", "batch plan with years outside the data",
         "window `[2030, 2031]` on a 2018-2023 panel", 1, plan_outside_data),
]  # fmt: skip


# ------------------------------------------------------------------ running a case


@dataclass
class Outcome:
    case: Case
    argv: list[str] = field(default_factory=list)
    code: int | None = None
    message: str = ""
    one_line: bool = False
    traceback: bool = False
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None

    @property
    def as_intended(self) -> bool:
        return (
            self.skipped is None
            and self.code == self.case.code
            and not self.traceback
            and self.one_line
            and not self.missing
        )

    def verdict(self) -> str:
        """Why the outcome is or is not as intended, in a few words."""
        if self.skipped:
            return f"not run: {self.skipped}"
        if self.as_intended:
            return "yes"
        why = []
        if self.code != self.case.code:
            why.append(f"exit {self.code}, not {self.case.code}")
        if self.traceback:
            why.append("traceback")
        if not self.one_line:
            why.append("not one line")
        if self.missing:
            why.append("does not name " + ", ".join(self.missing))
        return "**no**: " + "; ".join(why)


BOX = re.compile(r"^[│|]\s?(.*?)\s*[│|]$")


def usage_message(stderr: str) -> tuple[str, bool]:
    """The text of click's error box (joined) and whether there is exactly one such box."""
    boxes, current = [], None
    for line in stderr.splitlines():
        if line.startswith("╭") and "Error" in line:
            current = []
        elif line.startswith("╰") and current is not None:
            boxes.append(" ".join(current))
            current = None
        elif current is not None:
            match = BOX.match(line.strip())
            current.append(match.group(1) if match else line.strip())
    if boxes:
        return " ".join(boxes[0].split()), len(boxes) == 1
    plain = [line for line in stderr.splitlines() if line.startswith("Error:")]
    return (plain[0] if plain else ""), len(plain) == 1


def run_case(case: Case, ctx: Context) -> Outcome:
    """Prepare ``case``'s example in ``ctx.root/<id>/``, run it and judge the outcome."""
    from typer.testing import CliRunner

    from csc_bayes.cli import app

    lacking = [need for need in case.needs if not ctx.has(need)]
    if lacking:
        return Outcome(case, skipped=f"no {', '.join(lacking)}")
    folder = ctx.root / case.id
    folder.mkdir(parents=True, exist_ok=True)
    run = case.make(ctx, folder)
    started = time.perf_counter()
    result = CliRunner().invoke(app, run.argv)
    out = Outcome(case, argv=run.argv, code=result.exit_code)
    out.seconds = time.perf_counter() - started
    stdout, stderr = result.stdout, result.stderr
    out.traceback = "Traceback" in result.output or not (
        result.exception is None or isinstance(result.exception, SystemExit)
    )
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if result.exit_code == 2:
        out.message, out.one_line = usage_message(stderr)
        searched = out.message
    elif result.exit_code == 0:  # no message: the first output line that shows the input
        text = [line for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
        showing = [line for line in text if run.names and run.names[0] in line]
        out.message = (showing or text or [""])[0]
        out.one_line = not errors
        searched = stdout + stderr
    else:
        out.message = errors[0] if errors else next(iter(stderr.splitlines()), "")
        out.one_line = len(errors) == 1 and "error:" not in stdout
        searched = errors[0] if errors else ""
    if out.traceback and not errors and result.exception is not None:  # a bug: say which
        out.message = f"{type(result.exception).__name__}: {result.exception}"
    out.missing = [name for name in run.names if name not in searched]
    return out


# ------------------------------------------------------------------ the table


def shown(text: str, ctx: Context, case: Case, limit: int = 260) -> str:
    """``text`` with the scratch paths replaced by short names, cut to ``limit`` characters."""
    pairs = [
        (f"{REPO}/", ""),
        (ctx.fit, "FIT"),
        (ctx.panel, "PANEL"),
        (ctx.root / case.id, "TMP"),
        (ctx.root, "TMP"),
    ]
    for path, short in pairs:
        if path is not None:
            text = text.replace(str(path), short)
    if "raw" in case.needs:  # a message quoting a row of an official file: not copied here
        text = ROW_ECHO.sub("value '<the row as read>'", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: a quoted value long enough to be (part of) a row of a file
ROW_ECHO = re.compile(r"value '[^']{40,}'")


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def command_line(argv: list[str]) -> str:
    import shlex

    return "csc-bayes " + " ".join(shlex.quote(a) for a in argv)


def markdown(outcomes: list[Outcome], ctx: Context, *, raw_shown: str) -> str:
    n_run = sum(o.skipped is None for o in outcomes)
    n_ok = sum(o.as_intended for o in outcomes)
    known = [o for o in outcomes if o.case.known_issue and o.skipped is None]
    rows = [
        "| class | example | command | exit | first line of the message | as intended |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        c = o.case
        intended = o.verdict() + (f" ({c.known_issue})" if c.known_issue else "")
        rows.append(
            "| "
            + " | ".join(
                [
                    cell(c.name),
                    cell(c.example),
                    cell(f"`{shown(command_line(o.argv), ctx, c)}`") if o.argv else "",
                    "" if o.code is None else f"{o.code} (want {c.code})",
                    cell(f"`{shown(o.message, ctx, c)}`") if o.message else "",
                    cell(intended),
                ]
            )
            + " |"
        )
    head = f"""# Bad input: what each kind does

Generated by `examples/bad_input_table.py` (run it again after changing an error path; its
classes are also checked by `tests/test_bad_input_table.py`):

    python examples/bad_input_table.py --raw {raw_shown} --out docs/bad_input.md

Each row is one class of bad input csc_bayes guards against, with the example that was run and
what the `csc-bayes` command line did. **As intended** means: the exit code README's table
gives that kind of failure (in brackets; `0` where the input is meant to be accepted), no
traceback, one line (`error: ...` on standard error; for a usage error, exit 2, click's usage
box, whose text is shown), and a message naming the file, row, column, authority, key or value
at fault; for an accepted input the table shows the first output line that shows it. `TMP` is
the scratch folder of the row (damaged copies of the official files are in `TMP/raw`, every
other file there a link to the real one), `FIT` a tiny synthetic fit (`csc_bayes.fit` with a
few draws: it fails the convergence gate, which the answer commands allow and `report`
refuses), `PANEL` a saved synthetic panel. Long messages are cut at `…`; rows of the official
files that a message quotes are left out (`<the row as read>`).

{n_ok} of {n_run} classes run behave as intended"""
    if known:
        head += f"; {len(known)} known issue(s), named in the last column"
    head += ".\n\n"
    return head + "\n".join(rows) + "\n"


def prepare(root: Path, raw: Path | None, *, fit: Path | None = None) -> Context:
    """The context the cases run in: a synthetic panel, ``fit`` or a tiny fitted one, ``raw``."""
    from csc_bayes.data import save_panel
    from csc_bayes.simulate import simulate_panel

    panel = save_panel(
        simulate_panel(seed=0, first_year=2019, last_year=2023).panel, root / "panel.parquet"
    )
    if fit is None:
        import csc_bayes

        fit = csc_bayes.fit(
            "cpp_need", data=None, out=root / "fits", draws=20, tune=20, chains=2, seed=1,
            progress=False,
        ).path  # fmt: skip
    return Context(root=root / "cases", raw=raw, fit=Path(fit), panel=panel)


def default_raw() -> Path:
    env = os.environ.get("CSC_BAYES_RAW")
    return Path(env) if env else REPO.parent / "shared" / "data" / "raw"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", type=Path, default=default_raw(), help="the official files")
    parser.add_argument(
        "--out", type=Path, help="the table (default docs/bad_input.md, only with the raw files)"
    )
    parser.add_argument("--only", nargs="*", help="run only these case ids (no table written)")
    args = parser.parse_args(argv)

    raw = args.raw.resolve() if (args.raw / "PROVENANCE.md").is_file() else None  # links need it
    if raw is None:
        print(f"no official files at {args.raw}: their classes are not run", file=sys.stderr)
    if args.out is None and raw is not None:
        args.out = REPO / "docs" / "bad_input.md"  # the committed table has every class run
    cases = [c for c in CASES if not args.only or c.id in args.only]
    with tempfile.TemporaryDirectory(prefix="bad_input_") as tmp:
        print("fitting a tiny synthetic fit ...", file=sys.stderr)
        ctx = prepare(Path(tmp), raw)
        outcomes = []
        for case in cases:
            out = run_case(case, ctx)
            outcomes.append(out)
            print(
                f"{case.id:24s} exit {out.code} ({out.seconds:4.1f} s) {out.verdict()}: "
                f"{shown(out.message, ctx, case, 120)}",
                file=sys.stderr,
            )
        if not args.only and args.out is not None:
            raw_shown = os.path.relpath(args.raw, REPO) if raw is not None else "DIR"
            from csc_bayes.fits import write_text_atomic

            write_text_atomic(args.out, markdown(outcomes, ctx, raw_shown=raw_shown))
            print(f"wrote {args.out}", file=sys.stderr)
    unexpected = [
        o for o in outcomes if not o.skipped and o.as_intended == bool(o.case.known_issue)
    ]
    for o in unexpected:
        state = "is now as intended" if o.case.known_issue else "is not as intended"
        print(f"{o.case.id} {state}: {o.verdict()}", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
