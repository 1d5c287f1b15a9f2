"""The convergence gate on hand-built DataTrees: each reason code from a constructed bad case."""

from __future__ import annotations

import json

import numpy as np
import pytest
from arviz_base import from_dict
from rich.console import Console

from csc_bayes.diagnostics import (
    GateFailure,
    GateResult,
    GateThresholds,
    Offender,
    Reason,
    check_convergence,
    default_var_names,
)
from csc_bayes.errors import DiagnosticsGateError

LAS = ["383", "384", "385"]


def make_idata(
    *,
    chains: int = 4,
    draws: int = 1000,
    seed: int = 0,
    shift_384: float = 0.0,
    energy=None,
    extra: dict | None = None,
):
    """Independent normal draws (a well-mixed "fit") with la_effect on `la` and y on `obs`.

    ``shift_384`` adds a constant to la_effect["384"] in chain 0 only (a chain that disagrees);
    ``extra`` adds (chain, draw) posterior variables.
    """
    rng = np.random.default_rng(seed)
    la_effect = rng.normal(size=(chains, draws, len(LAS)))
    la_effect[0, :, 1] += shift_384
    return from_dict(
        {
            "posterior": {
                "intercept": rng.normal(size=(chains, draws)),
                "la_effect": la_effect,
                "mu": rng.normal(size=(chains, draws, 5)),
                **(extra or {}),
            },
            "sample_stats": {
                "diverging": np.zeros((chains, draws), dtype=bool),
                "reached_max_treedepth": np.zeros((chains, draws), dtype=bool),
                "energy": rng.normal(size=(chains, draws)) if energy is None else energy,
            },
        },
        dims={"la_effect": ["la"], "mu": ["obs"]},
        coords={"la": LAS, "obs": np.arange(5)},
    )


def test_well_mixed_draws_pass():
    result = check_convergence(make_idata())
    assert result.passed, str(result)
    assert result.failures == []
    assert (result.n_chains, result.n_draws) == (4, 1000)
    assert "PASSED" in str(result)


def test_default_variables_skip_per_observation_quantities():
    assert default_var_names(make_idata()) == ["intercept", "la_effect"]


def test_chain_with_different_mean_fails_rhat_and_names_the_authority():
    result = check_convergence(make_idata(shift_384=1.0))
    assert not result.passed
    rhat = result.failure(Reason.RHAT)
    assert rhat is not None and rhat.threshold == 1.01
    assert [o.name for o in rhat.offenders] == ["la_effect[384]"]
    assert rhat.offenders[0].value > 1.05
    assert "la_effect[384]" in str(result)


def test_offenders_are_sorted_worst_first():
    idata = make_idata(shift_384=1.0)
    idata["posterior"]["intercept"][0] += 3.0  # a worse disagreement than la_effect[384]
    rhat = check_convergence(idata).failure(Reason.RHAT)
    assert [o.name for o in rhat.offenders] == ["intercept", "la_effect[384]"]
    assert rhat.offenders[0].value > rhat.offenders[1].value


def test_injected_divergences_name_the_chain():
    idata = make_idata()
    idata["sample_stats"]["diverging"][2, [10, 20, 30]] = True
    idata["sample_stats"]["diverging"][1, 5] = True
    result = check_convergence(idata)
    assert result.reasons == [Reason.DIVERGENCES]
    offenders = result.failure(Reason.DIVERGENCES).offenders
    assert offenders == (Offender("chain 2", 3.0), Offender("chain 1", 1.0))


def test_max_treedepth_saturation_fails():
    idata = make_idata()
    idata["sample_stats"]["reached_max_treedepth"][3, :7] = True
    result = check_convergence(idata)
    assert result.reasons == [Reason.TREEDEPTH]
    assert result.failure(Reason.TREEDEPTH).offenders == (Offender("chain 3", 7.0),)


def test_two_chains_fail_too_few_chains_only():
    result = check_convergence(make_idata(chains=2, draws=2000))
    assert result.reasons == [Reason.TOO_FEW_CHAINS]
    failure = result.failure(Reason.TOO_FEW_CHAINS)
    assert failure.offenders == (Offender("chains", 2.0),) and failure.threshold == 4


def test_random_walk_energy_fails_ebfmi_in_that_chain():
    rng = np.random.default_rng(1)
    energy = rng.normal(size=(4, 1000))
    energy[1] = np.cumsum(rng.normal(size=1000))  # E-BFMI = mean(dE^2) / var(E) << 0.3
    result = check_convergence(make_idata(energy=energy))
    assert result.reasons == [Reason.EBFMI]
    offenders = result.failure(Reason.EBFMI).offenders
    assert [o.name for o in offenders] == ["chain 1"] and offenders[0].value < 0.3


def test_few_draws_fail_bulk_and_tail_ess():
    result = check_convergence(make_idata(draws=40))
    assert {Reason.ESS_BULK, Reason.ESS_TAIL} <= set(result.reasons)
    bulk = result.failure(Reason.ESS_BULK)
    assert {o.name for o in bulk.offenders} == {"intercept"} | {f"la_effect[{la}]" for la in LAS}
    values = [o.value for o in bulk.offenders]
    assert values == sorted(values) and values[-1] < 400


def test_constant_variable_is_skipped_but_stuck_chains_fail():
    fixed = np.full((4, 1000), 2.0)
    assert check_convergence(make_idata(extra={"fixed": fixed})).passed
    stuck = np.repeat(np.arange(4.0)[:, None], 1000, axis=1)  # each chain constant, all differ
    rhat = check_convergence(make_idata(extra={"stuck": stuck})).failure(Reason.RHAT)
    assert rhat is not None and rhat.offenders[0].name == "stuck"


def test_custom_thresholds_and_var_names():
    idata = make_idata(draws=60)  # ESS about 4 x 60 = 240
    assert Reason.ESS_BULK in check_convergence(idata).reasons
    relaxed = GateThresholds(max_rhat=1.1, min_ess_bulk=100, min_ess_tail=100)
    assert check_convergence(idata, thresholds=relaxed).passed
    result = check_convergence(make_idata(shift_384=1.0), var_names=["intercept"])
    assert result.passed and result.var_names == ["intercept"]


def test_to_dict_round_trips_through_strict_json():
    result = check_convergence(make_idata(chains=2, shift_384=1.0))
    result.failures.append(GateFailure(Reason.RHAT, 1.01, (Offender("stuck", float("nan")),)))
    text = json.dumps(result.to_dict(), allow_nan=False)
    back = GateResult.from_dict(json.loads(text))
    assert back.reasons == result.reasons and back.thresholds == result.thresholds
    assert back.failures[:-1] == result.failures[:-1]
    assert np.isnan(back.failures[-1].offenders[0].value)
    assert back.to_dict() == json.loads(text)


def test_summaries_and_raise():
    result = check_convergence(make_idata(chains=2))
    assert "FAILED" in str(result) and "TOO_FEW_CHAINS" in str(result)
    console = Console(record=True, width=200)
    console.print(result.to_rich_table())
    text = console.export_text()
    assert all(reason in text for reason in Reason) and "FAIL" in text
    with pytest.raises(DiagnosticsGateError, match="TOO_FEW_CHAINS"):
        result.raise_if_failed()
    check_convergence(make_idata()).raise_if_failed()  # passes silently


def test_missing_inputs_are_named():
    idata = make_idata()
    del idata["sample_stats"]["energy"]
    with pytest.raises(ValueError, match="energy"):
        check_convergence(idata)
    with pytest.raises(ValueError, match="beta"):
        check_convergence(make_idata(), var_names=["beta"])
