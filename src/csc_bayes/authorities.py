"""English children's services authorities: the reference list and a forgiving resolver.

Users name an authority by DfE LA number (``383`` or ``"383"``), ONS code (``"E08000035"``, any
case, former codes too) or name (``"Leeds"``, ``"Hull"``, ``"St Helens"``, ``"BCP"``). Names
are compared after normalisation: lower case, punctuation and hyphens as spaces, ``&`` as
``and``, ``St.`` / ``Saint`` as ``st``, and the qualifiers "City of", "County of", "Borough"
dropped. :func:`resolve_authority` is the one resolver: ``predict``, the plots' highlights and
the report all name authorities through it.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from importlib import resources

import pandas as pd

from csc_bayes.data.schema import REGIONS
from csc_bayes.errors import UnknownAuthorityError

_ONS_CODE = re.compile(r"^[ENSW]\d{8}$", re.IGNORECASE)
_DROPPED_PHRASES = ("city of", "county of", "borough of", "borough", "council")
#: short names in common use that no whole word of the official name gives (normalised name ->
#: DfE LA number); "Hull", "Bristol", "Durham" need none (see :func:`resolve_authority`)
ALIASES: dict[str, str] = {
    "bcp": "839",  # Bournemouth, Christchurch and Poole
    "banes": "800",  # Bath and North East Somerset
    "b and nes": "800",
}


def reference_authorities() -> pd.DataFrame:
    """Every English children's services authority 2010-2025, as shipped in ``reference/``.

    Columns: ``la_code``, ``ons_code``, ``former_ons_codes`` (";"-separated), ``la_name``,
    ``region`` (strings); ``first_year``, ``last_year`` (nullable Int64 reporting years,
    ``last_year`` <NA> while the authority exists); ``successors`` (";"-separated DfE numbers).
    """
    text = resources.files("csc_bayes").joinpath("reference/authorities.csv")
    with text.open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    for col in ("la_code", "ons_code", "la_name", "region"):
        frame[col] = frame[col].astype("string")
    for col in ("former_ons_codes", "successors"):
        frame[col] = frame[col].astype("string")  # "" when there are none
    for col in ("first_year", "last_year"):
        frame[col] = pd.to_numeric(frame[col].replace("", None)).astype("Int64")
    return frame


@functools.cache
def _reference() -> pd.DataFrame:
    """The reference list, read once (private: callers must not change it)."""
    return reference_authorities()


@functools.cache
def _reference_codes() -> dict[str, frozenset[str]]:
    """DfE LA number -> its current and former ONS codes (upper case), from the reference."""
    ref = _reference()
    return {
        str(code): frozenset(
            c.strip().upper() for c in [str(cur), *str(old).split(";")] if c.strip()
        )
        for code, cur, old in zip(
            ref["la_code"], ref["ons_code"], ref["former_ons_codes"].fillna(""), strict=True
        )
    }


def authorities_in_year(year: int, *, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """The authorities that report for reporting ``year`` (first_year <= year <= last_year)."""
    ref = reference_authorities() if reference is None else reference
    alive = (ref["first_year"].fillna(year) <= year) & (ref["last_year"].fillna(year) >= year)
    return ref.loc[alive.astype(bool)].reset_index(drop=True)


def normalise_name(name: str) -> str:
    """Comparable form of an authority name: "Kingston-upon-Hull, City of" -> "kingston upon hull".

    A name that would shrink to a region's name ("City of London" -> "london") keeps its
    qualifier, so "London" never silently means the City of London.
    """
    text = name.lower().replace("&", " and ")
    text = re.sub(r"[^a-z0-9]+", " ", text)
    text = re.sub(r"\b(saint|st)\b", "st", text)
    full = " ".join(text.split())
    short = f" {full} "
    for phrase in _DROPPED_PHRASES:
        short = short.replace(f" {phrase} ", " ")
    short = " ".join(short.split())
    regions = {" ".join(re.sub(r"[^a-z0-9]+", " ", r.lower()).split()) for r in REGIONS}
    return full if (not short or short in regions) else short


def _describe(row: pd.Series) -> str:
    return f"{row['la_code']} {row['la_name']} ({row['ons_code']})"


def _ons_codes(candidates: pd.DataFrame) -> pd.Series:
    """For each candidate row, the set of its current and former ONS codes (upper case).

    A frame without ``former_ons_codes`` (a fit's authorities, an ``excess`` table) gets them
    from the reference list, matched by DfE number; only when the row's own ONS code is one of
    that reference row's codes, so a frame with made-up codes never borrows real ones.
    """
    former = (
        candidates["former_ons_codes"].fillna("").astype(str)
        if "former_ons_codes" in candidates.columns
        else pd.Series("", index=candidates.index)
    )
    current = candidates["ons_code"].fillna("").astype(str)
    known = _reference_codes()
    out = []
    for la_code, cur, old in zip(
        candidates["la_code"].astype(str).str.strip(), current, former, strict=True
    ):
        own = {c.strip().upper() for c in [cur, *old.split(";")] if c.strip()}
        ref = known.get(la_code, frozenset())
        out.append(own | ref if (not own or own & ref) else own)
    return pd.Series(out, index=candidates.index)


def _prefer_current(candidates: pd.DataFrame, index: pd.Index) -> pd.Index:
    """Among several rows of one name (Dorset 835 and 838), keep the one still existing."""
    if len(index) > 1 and "last_year" in candidates.columns:
        current = index[candidates.loc[index, "last_year"].isna().to_numpy()]
        if len(current) == 1:
            return current
    return index


def _one(candidates: pd.DataFrame, index: pd.Index, query: object) -> pd.Series:
    if len(index) == 1:
        return candidates.loc[index[0]]
    listed = "; ".join(_describe(candidates.loc[i]) for i in index)
    raise UnknownAuthorityError(
        f"authority {query!r} is ambiguous: it matches {len(index)} authorities: {listed}. "
        "Give the full name, the DfE number or the ONS code."
    )


def _elsewhere(query: str | int, candidates: pd.DataFrame) -> str:
    """When ``query`` names an authority of the reference list that is not among
    ``candidates``, a sentence saying so (and naming its successors that are); else ""."""
    ref = _reference()
    codes = set(candidates["la_code"].astype(str).str.strip())
    if set(ref["la_code"].astype(str)) <= codes:
        return ""  # the candidates are the whole reference list: nothing to add
    try:
        row = _resolve(query, ref, hint=False)
    except UnknownAuthorityError:
        return ""
    if str(row["la_code"]) in codes:
        return ""  # its number is here under another name or code: say nothing misleading
    text = f"{_describe(row)} is not among the {len(codes)} authorities here"
    last = row.get("last_year")
    if pd.notna(last):
        text += f"; it reported until {int(last)}"
        successors = [c for c in str(row.get("successors") or "").split(";") if c in codes]
        if successors:
            codes_here = candidates["la_code"].astype(str).str.strip()
            where = dict(zip(codes_here, candidates.index, strict=True))
            listed = ", ".join(_describe(candidates.loc[where[c]]) for c in successors)
            text += f"; its area is now (in part) {listed}"
    return text


def resolve_authority(query: str | int, candidates: pd.DataFrame) -> pd.Series:
    """The one row of ``candidates`` that ``query`` names.

    ``candidates`` needs ``la_code``, ``ons_code`` and ``la_name`` (and may have
    ``former_ons_codes``, ``last_year``). Tried in order: DfE number; ONS code (current or
    former: former codes come from the ``former_ons_codes`` column or, failing it, from the
    reference list by DfE number); exact normalised name; a short name of :data:`ALIASES`;
    whole words of a name ("Hull", "Bristol"). Raises :class:`UnknownAuthorityError` listing
    the candidates when several match, or suggesting the closest names when none does (and
    saying so when the query names a known authority that is not among ``candidates``).
    """
    return _resolve(query, candidates, hint=True)


def _resolve(query: str | int, candidates: pd.DataFrame, *, hint: bool) -> pd.Series:
    missing = [c for c in ("la_code", "ons_code", "la_name") if c not in candidates.columns]
    if missing:
        raise ValueError(f"candidates frame lacks column(s) {missing}")
    codes = candidates["la_code"].astype(str).str.strip()
    text = str(query).strip()

    def fail(message: str, suggestion: str = "") -> UnknownAuthorityError:
        extra = _elsewhere(query, candidates) if hint else ""
        return UnknownAuthorityError(message + (f"; {extra}" if extra else "") + suggestion)

    if isinstance(query, int) or text.isdigit():
        hits = candidates.index[codes == str(int(text))]
        if len(hits):
            return _one(candidates, hits, query)
        numbers = pd.to_numeric(codes, errors="coerce")
        raise fail(
            f"no authority has DfE LA number {int(text)}; known numbers run from "
            f"{int(numbers.min())} to {int(numbers.max())}"
        )

    if _ONS_CODE.match(text):
        ons = _ons_codes(candidates)
        hits = candidates.index[ons.map(lambda s: text.upper() in s).to_numpy(dtype=bool)]
        if len(hits):
            return _one(candidates, hits, query)
        raise fail(f"no authority has ONS code {text.upper()}")

    wanted = normalise_name(text)
    names = candidates["la_name"].astype(str)
    keys = names.map(normalise_name)
    exact = candidates.index[(keys == wanted).to_numpy()]
    if len(exact):
        return _one(candidates, _prefer_current(candidates, exact), query)
    alias = ALIASES.get(wanted) or ALIASES.get(wanted.replace(" ", ""))
    if alias is not None and (codes == alias).any():
        return _one(candidates, candidates.index[(codes == alias).to_numpy()], query)

    if wanted in {normalise_name(r) for r in REGIONS}:
        raise UnknownAuthorityError(
            f"{text!r} is a region, not an authority; name one of its authorities instead"
        )
    if wanted:
        padded = " " + keys + " "
        partial = candidates.index[padded.str.contains(f" {wanted} ", regex=False).to_numpy()]
        if len(partial):
            return _one(candidates, _prefer_current(candidates, partial), query)

    close = difflib.get_close_matches(wanted, list(dict.fromkeys(keys)), n=4, cutoff=0.6)
    suggestions = [_describe(candidates.loc[i]) for k in close for i in candidates.index[keys == k]]
    did_you_mean = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise fail(f"no authority matches {text!r}", did_you_mean)


def resolve_authorities(queries: Iterable[str | int], candidates: pd.DataFrame) -> list[str]:
    """DfE LA numbers (strings) of each query, in order; see :func:`resolve_authority`."""
    if isinstance(queries, str | int):
        queries = [queries]
    return [str(resolve_authority(q, candidates)["la_code"]) for q in queries]
