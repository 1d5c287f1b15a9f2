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
SECTIONS = (
    "model",
    "data",
    "provenance",
    "priors",
    "diagnostics",
    "parameters",
    "variance",
    "excess",
    "ppc",
    "methods",
)
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


# ------------------------------------------------------------------------------ a report that
# stands alone: parameters, priors, provenance, the definitions themselves, figure captions


def _section(text: str, key: str) -> str:
    start = text.index(f'<section id="{key}">')
    return text[start : text.index("</section>", start)]


def _rows(part: str) -> list[list[str]]:
    """The cells of every body row of the tables in ``part``, tags stripped."""
    bodies = re.findall(r"<tbody>(.*?)</tbody>", part, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for body in bodies
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def _with_posterior(fit, posterior):
    from dataclasses import replace

    import xarray as xr

    groups = {name: fit.idata[name].to_dataset() for name in fit.idata.children}
    groups["posterior"] = posterior
    return replace(fit, idata=xr.DataTree.from_dict(groups))


def test_parameter_table_values_are_the_draws_summaries(good_fit):
    import arviz_stats as azs
    import numpy as np

    from csc_bayes.report import parameter_table

    table = parameter_table(good_fit, ci_prob=0.9).set_index("parameter")
    covariates = list(good_fit.spec.covariates)
    expected = [
        "intercept",
        *(f"beta[{c}]" for c in covariates),
        *(f"beta_per_unit[{c}]" for c in covariates),
        "sigma_la",
        "sigma_region",
        "sigma_year",
        "phi",
    ]
    assert table.index.tolist() == expected
    post = good_fit.idata["posterior"]
    phi = post["phi"].values.ravel()
    assert table.loc["phi", "median"] == pytest.approx(np.median(phi))
    assert table.loc["phi", "lower"] == pytest.approx(np.quantile(phi, 0.05))
    assert table.loc["phi", "upper"] == pytest.approx(np.quantile(phi, 0.95))
    beta = post["beta"].sel(covariate=covariates[1])
    assert table.loc[f"beta[{covariates[1]}]", "median"] == pytest.approx(np.median(beta.values))
    assert table.loc["sigma_la", "r_hat"] == pytest.approx(
        float(azs.rhat(post["sigma_la"].to_dataset(), method="rank")["sigma_la"])
    )
    assert table.loc["intercept", "ess_tail"] == pytest.approx(
        float(azs.ess(post["intercept"].to_dataset(), method="tail")["intercept"])
    )
    assert table.loc["intercept", "mcse_median"] == pytest.approx(
        float(azs.mcse(post["intercept"].to_dataset(), method="median")["intercept"])
    )
    assert (table["mcse_median"] > 0).all() and (table["ess_bulk"] > 0).all()
    assert (table["lower"] < table["median"]).all() and (table["median"] < table["upper"]).all()


def test_parameter_section_lists_every_parameter_with_its_numbers(report_html, good_fit):
    from csc_bayes.report import parameter_table

    part = _section(report_html.read_text(), "parameters")
    for header in ("median", "90% interval (5% to 95%)", "R-hat", "ESS bulk", "ESS tail"):
        assert f">{header}</th>" in part
    assert ">MCSE (median)</th>" in part
    rows = {cells[0]: cells for cells in _rows(part)}
    table = parameter_table(good_fit)
    assert list(rows) == table["parameter"].tolist()
    for row in table.itertuples():
        cells = rows[row.parameter]
        assert cells[2] == f"{row.median:.3g}"
        assert cells[3] == f"{row.lower:.3g} to {row.upper:.3g}"
        assert cells[4] == f"{row.r_hat:.3f}"
        assert cells[5] == f"{row.ess_bulk:.0f}" and cells[6] == f"{row.ess_tail:.0f}"
    assert "SD of the authorities" in rows["sigma_la"][1]


def test_parameter_table_of_an_ar1_model_without_region_and_of_a_poisson_one(good_fit):
    import numpy as np

    from csc_bayes.report import parameter_table, render_report

    posterior = good_fit.idata["posterior"].to_dataset()
    shape = posterior["sigma_la"].shape
    rng = np.random.default_rng(1)
    posterior["sigma_region"] = (("chain", "draw"), np.zeros(shape))
    posterior["sigma_la_year"] = (("chain", "draw"), np.abs(rng.normal(0.1, 0.01, shape)))
    posterior["rho_la_year"] = (("chain", "draw"), rng.uniform(0.6, 0.9, shape))
    fit = _with_posterior(good_fit, posterior)
    table = parameter_table(fit)
    names = table["parameter"].tolist()
    assert names[-3:] == ["sigma_la_year", "rho_la_year", "phi"]
    assert "sigma_region" not in names
    assert table.attrs["fixed"] == [("sigma_region", 0.0)]
    part = _section(render_report(fit), "parameters")
    assert "Fixed in this model" in part and "<code>sigma_region</code> = 0" in part
    assert "consecutive years" in part  # rho's meaning
    poisson = _with_posterior(good_fit, posterior.drop_vars("phi"))
    assert "phi" not in parameter_table(poisson)["parameter"].tolist()


def test_priors_section_lists_every_prior_as_used(good_fit):
    from dataclasses import replace

    from csc_bayes.report import render_report
    from csc_bayes.spec import default_priors

    spec = good_fit.spec.with_priors({"sigma_la": {"sigma": 0.25}})
    fit = replace(good_fit, spec=spec)
    rows = {cells[0]: cells for cells in _rows(_section(render_report(fit), "priors"))}
    expected = default_priors(spec, fit.panel)
    assert list(rows) == expected["parameter"].tolist()
    for row in expected.itertuples():
        assert rows[row.parameter][1:] == [row.dist, row.params, row.source]
    assert rows["sigma_la"][1:] == ["halfnormal", "sigma=0.25", "user"]
    assert rows["intercept"][3] == "default"


def test_provenance_of_a_saved_fit_survives_saving(tmp_path):
    from csc_bayes.fits import load_fit
    from csc_bayes.report import render_report

    fit = make_fit(n_la=12, n_draws=40, synthetic=False)
    raw = {"dfe/b1_children_in_need.csv": "a" * 64, "ons/population.xlsx": "b" * 64}
    extra = [
        {
            "file": "my_table.csv",
            "sha256": "c" * 64,
            "key": "la_code",
            "yearly": True,
            "columns": ["foster_carers"],
            "rows": 12,
            "unused_rows": 0,
        }
    ]
    fit.panel.attrs.update(raw_files=raw, extra_files=extra)
    fit.metadata["versions"] = {"csc_bayes": "0.1.0", "pymc": "6.4.0", "arviz-stats": "1.3.3"}
    fit.metadata["sampler"]["chain_method"] = "parallel"
    fit.metadata["timings"] = {"sampling": 12.34}
    run = save_fit(fit, tmp_path / "fits")
    loaded = load_fit(run)
    assert loaded.panel.attrs["raw_files"] == raw  # panel.parquet keeps the checksums
    assert loaded.panel.attrs["extra_files"][0]["sha256"] == "c" * 64
    part = _section(render_report(loaded), "provenance")
    for text in (
        run.name,
        str(run),
        loaded.metadata["data_hash"],
        loaded.metadata["spec_hash"],
        loaded.metadata["files"]["posterior.nc"],
        "dfe/b1_children_in_need.csv",
        "a" * 64,
        "ons/population.xlsx",
        "my_table.csv",
        "c" * 64,
        "foster_carers",
        "arviz-stats",
        "6.4.0",
        "parallel",
        "12.3",
    ):
        assert text in part, text
    rows = {cells[0]: cells[1] for cells in _rows(part)}
    assert rows["chain method"] == "parallel" and rows["run id"] == run.name


def test_provenance_says_what_is_not_recorded(report_html):
    part = _section(report_html.read_text(), "provenance")
    assert "This fit has not been saved." in part
    assert "The panel records no official files (synthetic panel)." in part
    rows = {cells[0]: cells[1] for cells in _rows(part)}
    assert rows["chain method"] == "not recorded"


def test_methods_are_included_with_formulas_not_pointed_to(report_html):
    text = report_html.read_text()
    part = _section(text, "methods")
    for header in (
        "The model",
        "Expected need, excess and rank",
        "Variance shares",
        "Funnel plot",
        "Convergence checks",
        "References",
    ):
        assert f"<h3>{header}</h3>" in part
    for formula in (
        "eta_expected_i = log(population_i) + intercept + sum_(k in need) X_ik beta_k",
        "excess ratio_i = exp(eta_i - eta_expected_i)",
        "value_c = Cov_i(f_c, sum_d f_d)",
        "share_c = value_c / (Var_i(sum_d f_d) + residual)",
        "y_j = (O_j / E_j) x R",
        "y_i ~ NegativeBinomial(mean mu_i = exp(eta_i), concentration phi)",
    ):
        assert html_escape(formula) in part, formula
    assert "Need covariates: <code>idaci</code>, <code>ethnic_minority_share</code>" in part
    # nothing sends the reader to a file of the repository
    words = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    for pointer in ("docs/", ".md", "repository", "README", "ARCHITECTURE", "github", ".py"):
        assert pointer not in words, pointer


def test_every_figure_has_a_caption_that_says_what_it_shows(report_html):
    from csc_bayes.report import FIGURES

    text = report_html.read_text()
    captions = dict(
        re.findall(r'<figure id="figure-(\w+)">.*?<figcaption>(.*?)</figcaption>', text, re.S)
    )
    assert set(captions) == set(FIGURES)
    titles = set(re.findall(r"<h2>(.*?)</h2>", text)) | set(FIGURES.values())
    for key, caption in captions.items():
        assert caption not in titles and len(caption) > 100, key
    assert "excess ratio in 2023 (latent rate / expected need)" in captions["caterpillar"]
    assert "above 1 = more children than expected" in captions["caterpillar"]
    assert "99.8% negative binomial limits" in captions["funnel"]
    assert "at most 5 on each side" in captions["funnel"]
    assert "shares sum to 1" in captions["variance"]
    assert "replicated data sets" in captions["ppc"]


def html_escape(text: str) -> str:
    import html

    return html.escape(text)


def test_provenance_says_why_draws_to_target_stopped(good_fit):
    from csc_bayes.report import provenance

    auto = {"min_draws": 1000, "block_draws": 500, "max_draws": 4000, "blocks": 3,
            "draws": 1500, "met": True, "looks": [{"draws": 1000, "unmet": ["ESS_BULK: x"]}],
            "stopped": "gate met after 1500 draws per chain (R-hat and ESS targets)"}  # fmt: skip
    before = good_fit.metadata["sampler"]
    good_fit.metadata["sampler"] = {"backend": "numpyro", "draws": "auto", "auto": auto}
    try:
        table = provenance(good_fit)["sampler"]
    finally:
        good_fit.metadata["sampler"] = before
    rows = dict(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))
    assert rows["draws"] == "auto"
    assert rows["draws to target"] == (
        "gate met after 1500 draws per chain (R-hat and ESS targets); 3 blocks (first look at "
        "1000, then every 500, cap 4000)"
    )
    assert "auto" not in rows  # not the record of every look
