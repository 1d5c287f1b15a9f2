"""``draws = "auto"`` on a real-size synthetic panel: an AR(1) forecasting spec to its target."""

from __future__ import annotations

import pytest

from csc_bayes.diagnostics import GateResult
from csc_bayes.fitting import TARGET_REASONS, fit


@pytest.mark.slow
def test_an_ar_spec_draws_to_the_gate_on_the_synthetic_panel():
    result = fit("cpp_need_ar", data=None, out=None, progress=False)  # draws = "auto" shipped
    sampler = result.metadata["sampler"]
    auto = sampler["auto"]
    drawn = result.idata["posterior"].sizes["draw"]
    assert sampler["draws"] == "auto" and auto["draws"] == drawn
    assert sampler["chain_method"] in ("parallel", "vectorized") and sampler["chain_method_reason"]
    assert (auto["min_draws"], auto["block_draws"], auto["max_draws"]) == (1000, 500, 4000)
    looks = [look["draws"] for look in auto["looks"]]
    assert looks == list(range(1000, drawn + 1, 500))  # a look per block from min_draws on
    gate = GateResult.from_dict(result.metadata["diagnostics"])
    unmet = [f for f in gate.failures if str(f.reason) in TARGET_REASONS]
    # the rule and the gate after the fit agree: the last look is the final draws
    assert auto["met"] is (not unmet) and auto["looks"][-1]["unmet"] == [f.message for f in unmet]
    if auto["met"]:
        assert auto["stopped"] == f"gate met after {drawn} draws per chain (R-hat and ESS targets)"
    else:
        assert drawn == 4000 and auto["stopped"].startswith("cap reached: 4000 draws per chain")
