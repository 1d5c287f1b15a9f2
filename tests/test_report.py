"""The HTML report: gate refusal, --force banners, sections, self-containment in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csc_bayes.errors import DiagnosticsGateError
from csc_bayes.fits import save_fit
from csc_bayes.report import render_report, write_report, write_report_pdf
from plots_helpers import make_fit

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("model", "data", "diagnostics", "variance", "excess", "ppc", "methods")
BANNER = 'class="gate-banner"'


@pytest.fixture(scope="module")
def good_fit():
    return make_fit(n_la=25, n_draws=40)


@pytest.fixture(scope="module")
def failed_fit():
    return make_fit(n_la=25, n_draws=40, passed=False)


@pytest.fixture(scope="module")
def report_html(good_fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(good_fit, path)
    return path


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_report_has_every_section_and_no_banner_when_the_gate_passed(report_html, good_fit):
    text = report_html.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert BANNER not in text
    assert good_fit.spec.formula in text  # the model in lme4 notation
    assert "(1|la)" in text
    assert "SYNTHETIC DATA" in text
    assert "Highest 10 by excess ratio" in text and "Lowest 10 by excess ratio" in text
    assert text.count("data:image/png;base64,") == 4


def test_report_is_self_contained(report_html):
    text = report_html.read_text()
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", text, flags=re.I)
    assert links and all(link.startswith("data:") for link in links)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, flags=re.I)
    assert "@import" not in text and "url(" not in text


def test_failed_gate_is_refused_with_the_reasons(failed_fit, tmp_path):
    path = tmp_path / "r.html"
    with pytest.raises(DiagnosticsGateError, match=r"RHAT.*sigma_la"):
        write_report(failed_fit, path)
    with pytest.raises(DiagnosticsGateError):
        write_report_pdf(failed_fit, tmp_path / "r.pdf")
    assert list(tmp_path.iterdir()) == []


def test_a_fit_never_gated_is_refused(good_fit):
    from dataclasses import replace

    ungated = replace(good_fit, metadata={k: v for k, v in good_fit.metadata.items()
                                          if k != "diagnostics"})  # fmt: skip
    with pytest.raises(DiagnosticsGateError, match="never run"):
        render_report(ungated)


def test_forced_report_warns_at_the_top_and_on_every_section(failed_fit):
    text = render_report(failed_fit, force=True)
    assert text.count(BANNER) == 1 + len(SECTIONS)
    header = text[text.index("<header>") : text.index("</header>")]
    assert BANNER in header and "FAILED" in header
    for section in SECTIONS:
        start = text.index(f'<section id="{section}">')
        assert BANNER in text[start : text.index("</section>", start)]


def test_pdf_report(good_fit, tmp_path):
    path = write_report_pdf(good_fit, tmp_path / "r.pdf")
    assert path.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["r.pdf"]


def test_cli_report_refuses_then_forces(failed_fit, tmp_path):
    from csc_bayes.cli import app

    run = save_fit(failed_fit, tmp_path / "fits")
    out = tmp_path / "r.html"
    # through the console entry point: a fit that failed the gate is refused with exit code 3
    cmd = [sys.executable, "-c", "from csc_bayes.cli import main; main()", "report", str(run)]
    refused = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 3 and "convergence gate" in refused.stderr
    assert not out.exists()
    forced = CliRunner().invoke(app, ["report", str(run), "-o", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert BANNER in out.read_text()


def test_cli_report_with_pdf_computes_the_answers_once(good_fit, tmp_path, monkeypatch):
    import importlib

    from csc_bayes.cli import app

    calls = {"excess": 0, "explain_variance": 0}

    def counted(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    # the modules (the package namespace exports functions of the same names)
    counted(importlib.import_module("csc_bayes.excess"), "excess")
    counted(importlib.import_module("csc_bayes.variance"), "explain_variance")
    run = save_fit(good_fit, tmp_path / "fits")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", str(run), "-o", str(out), "--pdf"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".pdf").is_file()
    assert calls == {"excess": 1, "explain_variance": 1}


def test_report_opens_in_headless_chromium(report_html, tmp_path):
    browser = _chromium()
    if browser is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    # a copy that records, once loaded, how many images there are and how many decoded
    probe = tmp_path / "probe.html"
    probe.write_text(
        report_html.read_text()
        + '<script>window.addEventListener("load", () => { const i = [...document.images];'
        ' document.body.setAttribute("data-images",'
        ' i.length + "/" + i.filter(x => x.complete && x.naturalWidth > 0).length); });'
        "</script>"
    )
    dom = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom
    assert 'data-images="4/4"' in dom  # every figure decoded, none failed to load


def test_example_script_reproduces_the_report_figures(good_fit, tmp_path):
    run = save_fit(good_fit, tmp_path / "fits")
    out = tmp_path / "figures"
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "report_figures.py"), str(run), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["caterpillar.png", "funnel.png", "ppc.png", "variance.png"]


@pytest.mark.slow
def test_example_script_fits_the_demo_model(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "report_figures.py"), "--out", str(tmp_path),
         "--draws", "100", "--tune", "100"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.png"))) == 4


def test_methods_section_describes_the_fitted_models_terms():
    from csc_bayes.report import methods_html
    from csc_bayes.spec import find_spec

    plain = methods_html(find_spec("cpp_need"))
    assert "negative binomial multilevel regression" in plain
    assert "random intercepts for authority, region, year" in plain
    assert "AR(1)" not in plain and "random walk" not in plain
    assert "mixed over the posterior draws of the dispersion" in plain

    ar = methods_html(find_spec("cpp_need_ar"))
    assert "Poisson multilevel regression" in ar
    assert "an AR(1) deviation of each authority" in ar and "follow a random walk" in ar
    # expected need names every term of the authority's own that it leaves out
    assert "the authority's own effect and its AR(1) deviation set to" in ar.replace("\n", " ")
    assert "counts as the authority's own" in ar  # why the Poisson funnel limits are narrow

    trend = methods_html(find_spec("cla_need_trend"))
    assert "a linear trend per authority" in trend and "its trend" in trend
