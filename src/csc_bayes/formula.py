"""Model formulas: lme4-style text <-> the model keys of a :class:`~csc_bayes.spec.ModelSpec`.

:func:`parse_formula` turns a formula into the TOML-shaped dict that
:meth:`ModelSpec.from_dict <csc_bayes.spec.ModelSpec.from_dict>` reads for the model keys;
:func:`format_formula` prints a spec as a formula (it is ``ModelSpec.formula``), and the printed
formula parses back to the same spec (same canonical hash). ``ModelSpec.from_formula`` builds a
whole spec from a formula plus the keys a formula does not hold (name, family, years, priors,
sampler, description). ``docs/model.md`` ("Writing a model as a formula") has the grammar with
examples.

Grammar (whitespace is ignored; terms are joined by ``+``; ``name`` is an ASCII identifier)::

    formula    := outcome "~" term ("+" term)*
    term       := "1"                                  intercept (always in the model)
                | covariate                            into its default component
                | block "(" component "=" covariate ("+" covariate)* ")"
                | block "(" covariate ")"              component named after the covariate
                | "offset(log(" name "))"              exposure (default: population)
                | "(1|la)" | "(1|region)" | "(1|year)" random intercepts
                | "(1 + " la_terms " || la)"           LA slope and/or trend, independent
                | "rw1(year)"                          random-walk year effects
                | "ar1(year | la)"                     AR(1) LA-year deviations
                | single "*" single                    a + b + a:b (R's crossing)
    covariate  := single | single ":" single           ":" an interaction (product)
    single     := name | "lag(" name "," k ")"         k a positive integer
    block      := "need" | "spending" | "practice" | "leading"   (csc_bayes.spec.BLOCKS)
    component  := name | `any text`                    (backticks for non-identifier names)
    la_terms   := covariate ["+ year_c"] | "year_c"   (at most one slope covariate)

Meaning (spec keys), with the lme4 / brms / R-INLA equivalent where there is one:

- ``cpp ~``: ``outcome = "cpp"``. ``1``: the intercept, always in the model (``0`` or ``-1``
  is an error). lme4 and brms alike.
- ``offset(log(population))``: ``exposure = "population"``. lme4 and brms alike.
- ``idaci``: a covariate in its default component (below), ``[covariates.need] deprivation``.
  lme4 and brms alike; they have no components (this package's variance attribution has).
- ``lag(idaci, 1)``: the covariate column ``lag_idaci_1``. In R the column is lagged first
  (``dplyr::lag``); fixest writes ``l(idaci, 1)``.
- ``need(dep = idaci + imd)``: ``[covariates.need] dep = ["idaci", "imd"]``; ``need(idaci)``:
  ``[covariates.need] idaci = ["idaci"]``; ``spending(...)`` likewise. This package only.
- ``lag(spend_per_cin, 1):idaci``: the interaction column ``lag_spend_per_cin_1_x_idaci``,
  the product of the two standardised columns (:mod:`csc_bayes.data.interactions`); both parts
  must be covariates of the model too: write ``a + b + a:b`` or, as in R, ``a*b``. An
  interaction's default component is ``spending`` / ``<a>_x_<b>`` when a part is a spending
  column, else ``need``.
- ``(1|la)`` (required), ``(1|region)``, ``(1|year)``: ``random_effects``. lme4 and brms alike.
- ``rw1(year)`` in place of ``(1|year)``: ``year_effect = "rw1"``. R-INLA
  ``f(year, model = "rw1")``; no lme4 equivalent.
- ``(1 + idaci || la)``: ``random_slope = "idaci"``; ``(1 + year_c || la)``: ``la_trend =
  true``; ``(1 + idaci + year_c || la)``: both. lme4 and brms alike (``||``: the LA intercept,
  slope and trend are independent), with ``year_c = (year - centre) / 10`` as a column.
- ``stock(previous)``: ``stock = "previous"``, last year's count as the base of this year's
  (``terms/stock.py``); ``stock(flows)``: ``stock = "flows"``, with the growth the flows of the
  year before imply. This package only (an offset ``log(lag(y, 1))`` in lme4, but a forecast
  here draws the years in order).
- ``ar1(year | la)``: ``la_year = "ar1"``; ``ar1_t(year | la)``: ``la_year = "ar1_t"``,
  the same with Student-t year-to-year changes (``terms/la_year_t.py``);
  ``ar1_t_sd_trend(year | la)``: ``la_year = "ar1_t_sd_trend"``, the Student-t term with a
  scale that trends over the fitted years (``terms/la_year_sd_trend.py``). brms
  ``ar(time = year, gr = la, p = 1)``, R-INLA ``f(year, model = "ar1", replicate = la)``, both
  without this package's centring over the authorities in each year (``docs/model.md``).

Default components of a plain covariate (:data:`DEFAULT_GROUPS`): ``idaci`` and ``imd`` ->
``need``/``deprivation``; ``ethnic_minority_share`` -> ``need``/``ethnicity``;
``spend_per_child`` -> ``spending``/``spending``; any other covariate -> ``need``, a component
named after the covariate. A component collects its covariates in order of first appearance,
from plain names and from explicit groups (``idaci + ethnic_minority_share + imd`` gives
``deprivation = ["idaci", "imd"]``, then ``ethnicity``); one component may be named by at most
one explicit group. ``lag(x, k)`` is the covariate column :func:`lag_name` ``(x, k)`` =
``lag_x_k`` (a name only: the panel must have that column); the printer writes a covariate
named ``lag_<x>_<k>`` back as ``lag(x, k)``.

The printer writes a component as plain names when every covariate in it has that component as
its default, else as ``block(component = a + b)`` (``block(x)`` when the component is named
after its one covariate ``x``); components and covariates keep their order. Random effects are
written in the order ``la``, ``region``, ``year``, then ``ar1(year | la)``; the offset always,
except for an ordinal family (``exposure = "none"``), which has none.

Not supported (each a :class:`~csc_bayes.errors.SpecError` naming the source, the term and what
is expected): correlated slopes ``(1 + x | la)`` (only ``||``: the model's LA intercept, slope
and trend are independent), slopes or trends by ``region`` or ``year``, more than one slope,
``a*b*c`` and ``*`` inside a group (write the terms out), transformations, ``-``, removing the
intercept. Covariate names are not checked against the panel here; :meth:`ModelSpec.from_dict`
checks them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csc_bayes.data.interactions import interaction_name, parse_interaction_name
from csc_bayes.data.lags import lagged_name, parse_lagged_name
from csc_bayes.errors import SpecError
from csc_bayes.spec import BLOCKS, NO_EXPOSURE, RANDOM_EFFECTS
from csc_bayes.terms.family import ORDINAL_FAMILIES

if TYPE_CHECKING:
    from csc_bayes.spec import ModelSpec

#: default (block, component) of a plain covariate; any other covariate x -> ("need", x)
DEFAULT_GROUPS: dict[str, tuple[str, str]] = {
    "idaci": ("need", "deprivation"),
    "imd": ("need", "deprivation"),
    "ethnic_minority_share": ("need", "ethnicity"),
    "spend_per_child": ("spending", "spending"),
}
#: default exposure when a formula has no ``offset(log(...))``
DEFAULT_EXPOSURE = "population"
#: the LA trend's time variable (years from the centre, in decades): only in ``(... || la)``
TREND_VARIABLE = "year_c"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<quoted>`[^`]*`)|(?P<int>[0-9]+)"
    r"|(?P<op>\|\||[()+\-|,=~:*])"
)
#: how an error names each random-effect term
_EFFECT_KEYS = {"la": "the LA intercept", "region": "the region effect", "year": "the year effect"}
#: LA-year terms written as ``<value>(year | la)``: ``la_year = "<value>"``
_LA_YEAR_FUNCTIONS = ("ar1", "ar1_t", "ar1_t_sd_trend")
#: the stock term, written ``stock(<value>)``: ``stock = "<value>"``
_STOCK_VALUES = ("previous", "flows")
_FUNCTIONS = ("offset", "lag", *BLOCKS, "rw1", *_LA_YEAR_FUNCTIONS, "stock")
_EXAMPLE = "e.g. 'cpp ~ idaci + ethnic_minority_share + (1|la) + (1|region) + (1|year)'"


# ====================================================================== names
def default_group(covariate: str) -> tuple[str, str]:
    """(block, component) a plain covariate goes to (:data:`DEFAULT_GROUPS`, else need/itself;
    an interaction with a spending part: spending/itself)."""
    pair = parse_interaction_name(covariate)
    if pair is not None and covariate not in DEFAULT_GROUPS:
        spending = any(default_group(p)[0] == "spending" or "spend" in p for p in pair)
        return ("spending" if spending else "need", covariate)
    return DEFAULT_GROUPS.get(covariate, ("need", covariate))


def lag_name(covariate: str, k: int) -> str:
    """Column name of ``lag(covariate, k)``: ``lag_<covariate>_<k>``, e.g. ``lag_idaci_1``
    (the data layer's :func:`~csc_bayes.data.lags.lagged_name`)."""
    return lagged_name(covariate, k)


def _format_covariate(name: str, covariates: Any = None) -> str:
    pair = parse_interaction_name(name, [c for c in covariates or () if c != name] or None)
    if pair is not None and covariates is not None:
        return f"{_format_covariate(pair[0])}:{_format_covariate(pair[1])}"
    lag = parse_lagged_name(name)
    return f"lag({lag[0]}, {lag[1]})" if lag else name


def _format_component(name: str) -> str:
    return name if _NAME.fullmatch(name) else f"`{name}`"


# ====================================================================== printing
def format_formula(spec: ModelSpec) -> str:
    """The spec as a formula, e.g.
    ``cpp ~ idaci + ethnic_minority_share + offset(log(population)) + (1|la) + (1|region) +
    (1|year)``; :func:`parse_formula` reads it back to the same model keys."""
    terms: list[str] = []
    every = spec.covariates

    def fmt(c: str) -> str:
        return _format_covariate(c, every)

    for block, comps in spec.blocks.items():
        for comp, covs in comps.items():
            if all(default_group(c) == (block, comp) for c in covs):
                terms += [fmt(c) for c in covs]
            elif tuple(covs) == (comp,):
                terms.append(f"{block}({fmt(comp)})")
            else:
                inner = " + ".join(fmt(c) for c in covs)
                terms.append(f"{block}({_format_component(comp)} = {inner})")
    terms = terms or ["1"]
    if spec.has_exposure:
        terms.append(f"offset(log({spec.exposure}))")
    for g in spec.random_effects:
        la_terms = [_format_covariate(spec.random_slope)] if spec.random_slope else []
        if spec.la_trend:
            la_terms.append(TREND_VARIABLE)
        if g == "la" and la_terms:
            terms.append(f"(1 + {' + '.join(la_terms)} || la)")
        elif g == "year" and spec.year_effect == "rw1":
            terms.append("rw1(year)")
        else:
            terms.append(f"(1|{g})")
    if spec.la_year is not None:  # "ar1", "ar1_t", ...: the function has the value's name
        terms.append(f"{spec.la_year}(year | la)")
    if spec.option("stock") is not None:
        terms.append(f"stock({spec.option('stock')})")
    return f"{spec.outcome} ~ " + " + ".join(terms)


# ====================================================================== tokens
@dataclass(frozen=True)
class _Tok:
    kind: str  # name, quoted, int, op
    text: str
    start: int
    end: int


def _tokenize(text: str, source: str) -> list[_Tok]:
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            why = {
                "^": "interactions are not supported",
                "`": "a backtick-quoted component name is not closed",
            }.get(ch, "not part of the formula grammar")
            raise SpecError(
                f"{source}: formula {text.strip()!r}: unexpected {ch!r} at column {pos + 1} "
                f"({why}); terms are names, functions and (... | group), joined by '+'"
            )
        if m.lastgroup != "ws":
            toks.append(_Tok(m.lastgroup, m.group(), m.start(), m.end()))
        pos = m.end()
    return toks


def _check_parentheses(toks: list[_Tok], text: str, source: str) -> None:
    stack: list[_Tok] = []
    for t in toks:
        if t.text == "(":
            stack.append(t)
        elif t.text == ")":
            if not stack:
                raise SpecError(
                    f"{source}: formula {text.strip()!r}: unbalanced parentheses: ')' at column "
                    f"{t.start + 1} closes nothing; expected every ')' to close a '('"
                )
            stack.pop()
    if stack:
        raise SpecError(
            f"{source}: formula {text.strip()!r}: unbalanced parentheses: '(' at column "
            f"{stack[-1].start + 1} is never closed; expected a matching ')'"
        )


def _split(toks: list[_Tok], sep: str) -> list[list[_Tok]]:
    """``toks`` split at the separator tokens outside parentheses."""
    parts: list[list[_Tok]] = [[]]
    depth = 0
    for t in toks:
        depth += t.text == "("
        depth -= t.text == ")"
        if depth == 0 and t.kind == "op" and t.text == sep:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


# ====================================================================== terms
@dataclass(frozen=True)
class _Term:
    kind: str  # intercept, covariate, group, offset, re, rw1, ar1
    text: str
    names: tuple[str, ...] = ()  # covariates (covariate, group, re slope), exposure (offset)
    block: str | None = None
    component: str | None = None
    group: str | None = None  # grouping factor of an re term
    trend: bool = False


class _Cursor:
    """Reads one term's tokens; every error names the source and the term."""

    def __init__(self, toks: list[_Tok], text: str, source: str) -> None:
        self.toks, self.i, self.source = toks, 0, source
        self.term = text[toks[0].start : toks[-1].end]

    def fail(self, problem: str, expected: str) -> SpecError:
        return SpecError(
            f"{self.source}: formula term {self.term!r}: {problem}; expected {expected}"
        )

    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self, text: str | None, expected: str, *, kind: str | None = None) -> _Tok:
        t = self.peek()
        if t is None or (text is not None and t.text != text) or (kind and t.kind != kind):
            got = "the end of the term" if t is None else repr(t.text)
            want = repr(text) if text is not None else {"name": "a name", "int": "a number"}[kind]
            raise self.fail(f"found {got} where {want} should be", expected)
        self.i += 1
        return t

    def done(self, expected: str) -> None:
        t = self.peek()
        if t is not None:
            raise self.fail(f"unexpected {t.text!r} after the end of the term", expected)

    def covariate(self, expected: str) -> str:
        """``single`` or ``single:single`` (an interaction) -> the covariate column name."""
        name = self.single(expected)
        nxt = self.peek()
        if nxt is not None and nxt.text == ":":
            self.i += 1
            return interaction_name(name, self.single(expected))
        return name

    def single(self, expected: str) -> str:
        """``name`` or ``lag(name, k)`` -> the covariate column name."""
        t = self.peek()
        if t is None or t.kind != "name":
            got = "nothing" if t is None else repr(t.text)
            raise self.fail(f"found {got} where a covariate name should be", expected)
        self.i += 1
        nxt = self.peek()
        if nxt is not None and nxt.text == "(":
            if t.text != "lag":
                raise self.fail(
                    f"unknown function {t.text!r} for a covariate",
                    "a covariate name or lag(name, k); transform the column in the panel",
                )
            lag = "lag(name, k) with k a positive integer, e.g. lag(idaci, 1)"
            self.take("(", lag)
            name = self.take(None, lag, kind="name").text
            self.take(",", lag)
            k = self.take(None, lag, kind="int").text
            self.take(")", lag)
            if int(k) < 1:
                raise self.fail(f"lag {k} is not a positive integer", lag)
            return lag_name(name, int(k))
        if t.text == TREND_VARIABLE:
            raise self.fail(
                f"{TREND_VARIABLE!r} is the LA trend's time variable, not a covariate",
                f"the LA trend as (1 + {TREND_VARIABLE} || la)",
            )
        return t.text


def _parse_term(toks: list[_Tok], text: str, source: str) -> _Term:
    cur = _Cursor(toks, text, source)
    any_term = (
        "a covariate, lag(x, k), need(component = ...), spending(...), offset(log(col)), "
        "(1|la), (1|region), (1|year), (1 + x || la), rw1(year) or ar1(year | la)"
    )
    minus = _split(toks, "-")  # a '-' outside parentheses
    if len(minus) > 1:
        if minus[1] and minus[1][0].text in ("0", "1"):
            raise cur.fail("the model always has an intercept; it cannot be removed", "no '-1'")
        raise cur.fail("'-' is not supported", "terms joined by '+'")
    first = toks[0]
    if first.kind == "int":
        if first.text == "0":
            raise cur.fail("the model always has an intercept; it cannot be removed", "no '0'")
        if first.text != "1" or len(toks) > 1:
            raise cur.fail("a number is not a term", "'1' (the intercept) or " + any_term)
        return _Term("intercept", cur.term)
    if first.text == "(":
        return _parse_random(cur)
    if first.kind == "quoted":
        raise cur.fail("backticks quote component names only", "a covariate name")
    if first.kind != "name":
        raise cur.fail(f"unexpected {first.text!r}", any_term)
    nxt = cur.peek(1)
    if nxt is None or nxt.text != "(" or first.text == "lag":
        name = cur.covariate(any_term)
        cur.done(f"one term ({any_term}); join terms with '+'")
        return _Term("covariate", cur.term, names=(name,))
    if first.text not in _FUNCTIONS:
        raise cur.fail(
            f"unknown function {first.text!r}",
            "one of offset(log(col)), lag(x, k), "
            + ", ".join(f"{b}(...)" for b in BLOCKS)
            + ", rw1(year), ar1(year | la)",
        )
    if first.text == "offset":
        want = "offset(log(column)), e.g. offset(log(population))"
        for part in ("offset", "(", "log", "("):
            cur.take(part, want)
        col = cur.take(None, want, kind="name").text
        cur.take(")", want)
        cur.take(")", want)
        cur.done(want)
        return _Term("offset", cur.term, names=(col,))
    if first.text in ("rw1", *_LA_YEAR_FUNCTIONS):
        want = "rw1(year)" if first.text == "rw1" else f"{first.text}(year | la)"
        parts = (
            [first.text, "(", "year", ")"]
            if first.text == "rw1"
            else [first.text, "(", "year", "|", "la", ")"]
        )
        for part in parts:
            cur.take(part, want)
        cur.done(want)
        return _Term(first.text, cur.term)
    if first.text == "stock":
        want = "stock(previous) or stock(flows)"
        cur.take("stock", want)
        cur.take("(", want)
        value = cur.take(None, want, kind="name")
        if value.text not in _STOCK_VALUES:
            raise cur.fail(f"stock({value.text}) is not a stock term", want)
        cur.take(")", want)
        cur.done(want)
        return _Term("stock", cur.term, names=(value.text,))
    return _parse_group(cur)


def _parse_group(cur: _Cursor) -> _Term:
    block = cur.take(None, "a block", kind="name").text
    want = f"{block}(component = a + b) or {block}(a)"
    cur.take("(", want)
    t, nxt = cur.peek(), cur.peek(1)
    if t is not None and t.text == ")":
        raise cur.fail(f"{block}() lists no covariates", want)
    component = None
    if t is not None and t.kind in ("name", "quoted") and nxt is not None and nxt.text == "=":
        component = t.text[1:-1] if t.kind == "quoted" else t.text
        cur.i += 2
        if not component:
            raise cur.fail("an empty component name", want)
    names = [cur.covariate(want)]
    while cur.peek() is not None and cur.peek().text == "+":
        if component is None:
            raise cur.fail(
                "several covariates need a component name",
                f"{block}(name = {' + '.join(['...'] * 2)})",
            )
        cur.i += 1
        names.append(cur.covariate(want))
    cur.take(")", want)
    cur.done(want)
    return _Term(
        "group", cur.term, names=tuple(names), block=block, component=component or names[0]
    )


def _parse_random(cur: _Cursor) -> _Term:
    inner = cur.toks[1:-1]
    want = "(1|la), (1|region), (1|year), (1 + x || la), (1 + year_c || la), (1 + x + year_c || la)"
    if cur.toks[-1].text != ")" or not inner:
        raise cur.fail("not a random-effect term", want)
    bars = [(j, t) for j, t in enumerate(inner) if t.text in ("|", "||")]
    if not bars:
        raise cur.fail("a term in parentheses without a bar ('|' or '||')", want)
    if len(bars) > 1:
        raise cur.fail(f"{len(bars)} bars ('|' or '||')", want + " (one bar)")
    j, bar = bars[0]
    lhs, rhs = inner[:j], inner[j + 1 :]
    if len(rhs) != 1 or rhs[0].kind != "name":
        raise cur.fail("the grouping factor after the bar is not one name", want)
    group = rhs[0].text
    if group not in RANDOM_EFFECTS:
        raise cur.fail(f"unknown grouping factor {group!r}", f"one of {list(RANDOM_EFFECTS)}")
    if not lhs:
        raise cur.fail("nothing before the bar", want)
    slopes: list[str] = []
    trend = False
    for part in _split(lhs, "+"):
        if not part:
            raise cur.fail("an empty term before the bar", want)
        if len(part) == 1 and part[0].kind == "int":
            if part[0].text != "1":
                raise cur.fail(
                    f"{part[0].text!r} before the bar: the intercept cannot be removed",
                    want,
                )
            continue
        if any(t.text == "-" for t in part):
            raise cur.fail("'-' before the bar: the intercept cannot be removed", want)
        if len(part) == 1 and part[0].text == TREND_VARIABLE:
            if trend:
                raise cur.fail(f"repeated term {TREND_VARIABLE!r}", want)
            trend = True
            continue
        sub = _Cursor(part, "", cur.source)
        sub.term = cur.term
        name = sub.covariate(want)
        sub.done(want)
        slopes.append(name)
    if (slopes or trend) and bar.text == "|":
        raise cur.fail(
            "correlated random effects ('|') are not supported",
            f"'||' (independent intercept, slope and trend, which is what the model fits), "
            f"e.g. (1 + {' + '.join([*slopes, *([TREND_VARIABLE] if trend else [])])} || {group})",
        )
    if (slopes or trend) and group != "la":
        raise cur.fail(f"slopes and trends are by 'la' only, not {group!r}", f"(1|{group})")
    if len(slopes) > 1:
        raise cur.fail(f"{len(slopes)} random slopes {slopes}", "at most one slope: (1 + x || la)")
    return _Term("re", cur.term, names=tuple(slopes), group=group, trend=trend)


# ====================================================================== parsing
def parse_formula(text: str, *, source: str = "<formula>") -> dict[str, Any]:
    """The model keys of a formula as the TOML-shaped dict :meth:`ModelSpec.from_dict` reads.

    Keys: ``outcome``, ``exposure``, ``random_effects`` (canonical order), ``covariates``
    (block -> component -> covariates, in order of appearance), and, only when set,
    ``random_slope``, ``la_trend`` (true), ``la_year`` (``"ar1"``), ``year_effect``
    (``"rw1"``), as :meth:`ModelSpec.to_dict` writes them. Raises
    :class:`~csc_bayes.errors.SpecError` naming ``source``, the term and what is expected.
    """
    if not isinstance(text, str):
        raise SpecError(f"{source}: a formula must be a string, got {type(text).__name__}")
    if not text.strip():
        raise SpecError(f"{source}: empty formula; expected 'outcome ~ terms', {_EXAMPLE}")
    toks = _tokenize(text, source)
    _check_parentheses(toks, text, source)
    tildes = [t for t in toks if t.text == "~"]
    if len(tildes) != 1:
        problem = "no '~'" if not tildes else f"{len(tildes)} '~'"
        raise SpecError(
            f"{source}: formula {text.strip()!r}: {problem}; expected one "
            f"'outcome ~ terms', {_EXAMPLE}"
        )
    k = toks.index(tildes[0])
    lhs, rhs = toks[:k], toks[k + 1 :]
    if len(lhs) != 1 or lhs[0].kind != "name":
        got = text[lhs[0].start : lhs[-1].end] if lhs else "nothing"
        raise SpecError(
            f"{source}: formula {text.strip()!r}: left of '~' is {got!r}; expected one outcome "
            f"column name, {_EXAMPLE}"
        )
    if not rhs:
        raise SpecError(
            f"{source}: formula {text.strip()!r}: nothing right of '~'; expected terms with at "
            f"least (1|la), e.g. '{lhs[0].text} ~ 1 + (1|la)'"
        )
    terms = []
    for part in _split(rhs, "+"):
        if not part:
            raise SpecError(
                f"{source}: formula {text.strip()!r}: an empty term (a '+' with no term on one "
                f"side); expected terms joined by '+'"
            )
        terms.extend(_parse_term(p, text, source) for p in _expand_product(part, text, source))
    result = _assemble(lhs[0].text, terms, source)
    if result["exposure"] is None:
        result["exposure"] = DEFAULT_EXPOSURE
    return result


def _expand_product(part: list[_Tok], text: str, source: str) -> list[list[_Tok]]:
    """A term ``a*b`` -> the three terms ``a``, ``b`` and ``a:b`` (R's crossing); else ``[part]``.

    ``a`` and ``b`` are single covariates (a name or ``lag(name, k)``); a ``*`` anywhere else,
    or more than one, is an error naming the term."""
    factors = _split(part, "*")
    if len(factors) == 1:
        if any(t.text == "*" for t in part):  # inside parentheses: need(x = a*b), lag(a*b, 1)
            raise _product_error(part, text, source, "'*' inside a function or group")
        return [part]
    if len(factors) > 2 or any(not f for f in factors):
        raise _product_error(part, text, source, "'*' must join exactly two covariates")
    (a, b), star = factors, next(t for t in part if t.text == "*")
    colon = _Tok("op", ":", star.start, star.end)
    return [a, b, [*a, colon, *b]]


def _product_error(part: list[_Tok], text: str, source: str, problem: str) -> SpecError:
    term = text[part[0].start : part[-1].end] if part else "*"
    return SpecError(
        f"{source}: formula term {term!r}: {problem}; expected 'a*b' as a term of its own "
        f"(a + b + a:b), or a:b inside a group"
    )


def _has_offset(text: str, source: str) -> bool:
    """Whether a formula (already parsed once) has an ``offset(log(...))`` term."""
    toks = _tokenize(text, source)
    return any(t.text == "offset" for t in toks)


def _assemble(outcome: str, terms: list[_Term], source: str) -> dict[str, Any]:
    def repeated(term: _Term, earlier: _Term, what: str) -> SpecError:
        return SpecError(
            f"{source}: formula term {term.text!r}: repeated term: {what} already given by "
            f"{earlier.text!r}; expected each term once"
        )

    blocks: dict[str, dict[str, list[str]]] = {}
    seen_cov: dict[str, _Term] = {}
    seen: dict[str, _Term] = {}  # intercept, offset, each effect, explicit components
    for term in terms:
        if term.kind in ("covariate", "group"):
            if term.kind == "group":
                key = f"component {term.block}.{term.component}"
                if key in seen:
                    raise repeated(term, seen[key], key)
                seen[key] = term
            for name in term.names:
                if name in seen_cov:
                    raise repeated(term, seen_cov[name], f"covariate {name!r}")
                seen_cov[name] = term
                if term.kind == "group":
                    block, comp = term.block, term.component
                else:
                    block, comp = default_group(name)
                blocks.setdefault(block, {}).setdefault(comp, []).append(name)
            continue
        key = {
            "intercept": "the intercept",
            "offset": "the offset",
            "rw1": _EFFECT_KEYS["year"],
            "ar1": "the AR(1) LA-year term",
            "ar1_t": "the AR(1) LA-year term",
            "ar1_t_sd_trend": "the AR(1) LA-year term",
            "stock": "the stock term",
            "re": _EFFECT_KEYS.get(term.group, ""),
        }[term.kind]
        if key in seen:
            raise repeated(term, seen[key], key)
        seen[key] = term
    la_term = seen.get(_EFFECT_KEYS["la"])
    if la_term is None:
        raise SpecError(
            f"{source}: formula for {outcome!r}: the LA term (1|la) is missing; expected it "
            f"(every model has an LA intercept), e.g. '{outcome} ~ ... + (1|la)'"
        )
    slope = la_term.names[0] if la_term.names else None
    if slope is not None and slope not in seen_cov:
        raise SpecError(
            f"{source}: formula term {la_term.text!r}: random slope on {slope!r}, which is not "
            f"a covariate of the model; expected a slope on one of its covariates "
            f"{list(seen_cov)} (add {_format_covariate(slope)!r} as a term too)"
        )
    offset = seen.get("the offset")
    result: dict[str, Any] = {
        "outcome": outcome,
        "exposure": offset.names[0] if offset else None,
        "random_effects": [g for g in RANDOM_EFFECTS if _EFFECT_KEYS[g] in seen],
    }
    if slope is not None:
        result["random_slope"] = slope
    if la_term.trend:
        result["la_trend"] = True
    if "the AR(1) LA-year term" in seen:
        result["la_year"] = seen["the AR(1) LA-year term"].kind
    year = seen.get(_EFFECT_KEYS["year"])
    if year is not None and year.kind == "rw1":
        result["year_effect"] = "rw1"
    if "the stock term" in seen:
        result["stock"] = seen["the stock term"].names[0]
    result["covariates"] = blocks
    return result


def spec_dict_from_formula(
    formula: str,
    *,
    name: str | None = None,
    family: str = "negative_binomial",
    years: tuple[int, int] = (2013, 2024),
    priors: dict[str, Any] | None = None,
    sampler: dict[str, Any] | None = None,
    description: str = "",
    source: str = "<formula>",
) -> dict[str, Any]:
    """The whole TOML-shaped spec dict of ``ModelSpec.from_formula`` (which validates it).

    ``name`` defaults to ``<outcome>_formula``; ``priors`` is a ``[priors]`` table, e.g.
    ``{"sigma_la": {"sigma": 0.5}}``; ``sampler`` a ``[sampler]`` table.
    """
    model = parse_formula(formula, source=source)
    if family in ORDINAL_FAMILIES and not _has_offset(formula, source):
        model["exposure"] = NO_EXPOSURE  # an ordered category has no exposure
    d: dict[str, Any] = {"name": name if name is not None else f"{model['outcome']}_formula"}
    if description:
        d["description"] = description
    d.update(model)
    d["family"] = family
    d["years"] = list(years)
    d["priors"] = dict(priors or {})
    d["sampler"] = dict(sampler or {})
    return d
