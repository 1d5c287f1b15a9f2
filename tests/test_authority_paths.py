"""One resolver everywhere: every way of naming an authority works the same in predict, in the
caterpillar and funnel highlights and in the report (``authorities.resolve_authority``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from csc_bayes.errors import UnknownAuthorityError
from csc_bayes.excess import excess
from csc_bayes.plots import caterpillar, caterpillar_table, funnel
from csc_bayes.plots._labels import LABEL_GID
from csc_bayes.predict import predict
from csc_bayes.report import highlighted_rows, render_report
from plots_helpers import make_fit

#: (query, DfE number): a short name, a former ONS code, a DfE number, a current ONS code
PATHS = [
    ("Hull", "810"),
    ("kingston-upon-hull", "810"),
    ("E10000002", "825"),  # Buckinghamshire's code before 2020-21
    (383, "383"),
    ("383", "383"),
    ("E08000035", "383"),
    ("BCP", "839"),
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fit():
    return make_fit(n_la=None, n_draws=20)  # every synthetic authority, real names and codes


@pytest.fixture(scope="module")
def table(fit):
    return excess(fit)


@pytest.mark.parametrize(("query", "code"), PATHS)
def test_predict(fit, query, code):
    out = predict(fit, authority=query, year=2023)
    assert out["la_code"].tolist() == [code]


@pytest.mark.parametrize(("query", "code"), PATHS)
def test_caterpillar_highlight(table, query, code):
    rows = caterpillar_table(table, highlight=[query])
    assert rows.loc[rows["highlighted"], "la_code"].tolist() == [code]
    ax = caterpillar(table, highlight=[query]).axes[0]
    name = table.loc[table["la_code"] == code, "la_name"].iloc[0]
    bold = [t.get_text() for t in ax.get_yticklabels() if t.get_fontweight() == "bold"]
    assert bold == [name]


@pytest.mark.parametrize(("query", "code"), PATHS)
def test_funnel_highlight(table, query, code):
    ax = funnel(table, highlight=[query]).axes[0]
    name = table.loc[table["la_code"] == code, "la_name"].iloc[0]
    labels = [t for t in ax.texts if t.get_gid() == LABEL_GID]
    bold = [t.get_text() for t in labels if t.get_fontweight() == "bold"]
    assert bold == [name]


@pytest.mark.parametrize(("query", "code"), PATHS)
def test_report_highlight(table, query, code):
    assert highlighted_rows(table, [query])["la_code"].tolist() == [code]


def test_report_lists_the_authorities_asked_for(fit):
    text = render_report(fit, highlight=["Hull", "E10000002"])
    start = text.index("<h3>Authorities asked for</h3>")
    part = text[start : text.index("</table>", start)]
    assert "Kingston upon Hull, City of" in part and "Buckinghamshire" in part
    assert part.count("<tr>") == 3  # header and two authorities


def test_a_misspelling_fails_the_same_way_everywhere(fit, table):
    for call in (
        lambda: predict(fit, authority="Leds", year=2023),
        lambda: caterpillar(table, highlight=["Leds"]),
        lambda: funnel(table, highlight=["Leds"]),
        lambda: render_report(fit, highlight=["Leds"]),
    ):
        with pytest.raises(UnknownAuthorityError, match=r"did you mean 383 Leeds \(E08000035\)"):
            call()


def test_highlight_outside_the_region_shown_says_so(table):
    with pytest.raises(UnknownAuthorityError, match=r"Leeds \(Yorkshire and The Humber\).*London"):
        caterpillar(table, region="London", highlight=["Leeds"])
