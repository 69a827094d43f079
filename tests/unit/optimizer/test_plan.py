"""The plan model and the published contract: records validate, convert back, and say what is missing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from optimizer.plans.model import (
    DEFAULT_PROGRAM_ID,
    Evaluation,
    KpiEstimate,
    NetworkPlan,
    Phase,
    PlanError,
    SignalPlan,
    format_utc,
    parse_utc,
)
from schemas import RecordInvalid, contract

START = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
LONG_ID = "cluster_" + "_".join(str(1000000 + i) for i in range(20))  # like ingolstadt7's 163 characters


def signal(tls_id: str = "J1", offset: float = 10.0) -> SignalPlan:
    return SignalPlan(
        tls_id=tls_id,
        phases=(
            Phase("GGrr", 30, min_s=10, max_s=45, name="main"),
            Phase("yyrr", 3),
            Phase("rrGG", 24.5),
            Phase("rryy", 3),
        ),
        offset_s=offset,
    )


def evaluation() -> Evaluation:
    delay = {"mean": 31.5, "std": 1.2, "ci95": [30.0, 33.0]}
    return Evaluation(
        scenario="resco/cologne1",
        seeds=(11, 12, 13),
        baseline={"resco_delay": {"mean": 44.0, "std": 2.0, "ci95": [41.5, 46.5]}},
        plan={"resco_delay": delay, "throughput": KpiEstimate(1500, 10, (1487.6, 1512.4))},
        baseline_method="fixed",
    )


def network_plan(**changes) -> NetworkPlan:
    fields = {
        "signals": (signal("J2", 0.0), signal("J1")),
        "method": "webster",
        "valid_from": START,
        "valid_to": START + timedelta(hours=2),
        "evaluation": evaluation(),
    }
    return NetworkPlan(**{**fields, **changes})


def test_phase_bounds_default_to_the_duration_and_must_contain_it():
    phase = Phase("Gr", 20)
    assert (phase.duration_s, phase.min_s, phase.max_s) == (20.0, 20.0, 20.0)
    with pytest.raises(PlanError, match=r"within \[min 25, max 30\]"):
        Phase("Gr", 20, min_s=25, max_s=30)
    with pytest.raises(PlanError, match="positive"):
        Phase("Gr", 0)
    with pytest.raises(PlanError, match="finite"):
        Phase("Gr", float("nan"))


def test_signal_plan_cycle_is_the_phase_sum_unless_stated_and_states_share_one_length():
    assert signal().cycle_s == 60.5 and signal().link_count == 4
    assert SignalPlan("J", (Phase("Gr", 30), Phase("rG", 30)), cycle_s=90).cycle_s == 90
    with pytest.raises(PlanError, match="same length"):
        SignalPlan("J", (Phase("Gr", 30), Phase("rGr", 30)))
    with pytest.raises(PlanError, match="at least one phase"):
        SignalPlan("J", ())


def test_records_meet_the_proposed_contract_and_convert_back():
    plan = network_plan()
    records = plan.to_records(ts=START - timedelta(minutes=5))
    proposed = contract("control.plan.proposed.v1")
    for record in records:
        proposed.validate(record)
    assert [r["tls_id"] for r in records] == ["J1", "J2"]  # sorted, one per signal
    assert {r["plan_id"] for r in records} == {plan.plan_id}
    assert records[0]["ts"] == "2026-11-02T06:55:00Z"
    assert records[0]["valid_to"] == "2026-11-02T09:00:00Z"
    assert records[0]["phases"][0] == {
        "state": "GGrr",
        "duration_s": 30.0,
        "min_s": 10.0,
        "max_s": 45.0,
        "name": "main",
    }
    assert records[0]["evaluation"]["baseline_method"] == "fixed"
    assert NetworkPlan.from_records(records) == plan


def test_the_gold_versions_behind_a_lake_plan_are_published_and_read_back():
    lake = replace(
        evaluation(), lake_versions={"gold.turning_movements_15min": 4, "gold.link_state_15min": 7}
    )
    plan = network_plan(evaluation=lake)
    records = plan.to_records(ts=START)
    contract("control.plan.proposed.v1").validate(records[0])
    assert records[0]["evaluation"]["lake_versions"] == {
        "gold.link_state_15min": 7,
        "gold.turning_movements_15min": 4,
    }
    assert NetworkPlan.from_records(records) == plan
    wrong = {**records[0], "evaluation": {**records[0]["evaluation"], "lake_versions": {"silver.x": 1}}}
    with pytest.raises(RecordInvalid):
        contract("control.plan.proposed.v1").validate(wrong)


def test_a_tls_id_outside_the_contract_is_published_as_its_contract_id_and_mapped_back():
    plan = network_plan(signals=(signal(LONG_ID), signal("a b")))
    records = plan.to_records(ts=START)
    for record in records:
        contract("control.plan.proposed.v1").validate(record)
    assert "a_b_" in {r["tls_id"][:4] for r in records}
    assert all(len(r["tls_id"]) <= 128 for r in records)
    back = NetworkPlan.from_records(records, sumo_ids=[LONG_ID, "a b", "other"])
    assert back == plan and set(back.tls_ids) == {LONG_ID, "a b"}
    with pytest.raises(PlanError, match="names no signal"):
        NetworkPlan.from_records(records, sumo_ids=["other"])


def test_publishing_needs_a_window_and_an_evaluation():
    with pytest.raises(PlanError, match="without evaluation"):
        network_plan(evaluation=None).to_records()
    with pytest.raises(PlanError, match="valid_from, valid_to"):
        network_plan(valid_from=None, valid_to=None).to_records()


def test_the_contract_itself_refuses_what_the_model_lets_through():
    """The model leaves safety to optimizer.plans.safety; the contract still bounds the numbers."""
    short = SignalPlan("J1", (Phase("Gr", 0.5), Phase("rG", 10)))
    record = network_plan(signals=(short,)).to_records(ts=START)[0]
    with pytest.raises(RecordInvalid):
        contract("control.plan.proposed.v1").validate(record)


def test_window_times_are_aware_utc_and_ordered():
    with pytest.raises(PlanError, match="no time zone"):
        network_plan(valid_from=datetime(2026, 11, 2, 7, 0))
    with pytest.raises(PlanError, match="before it starts"):
        network_plan(valid_to=START - timedelta(seconds=1))
    plus_eight = timezone(timedelta(hours=8))
    plan = network_plan(valid_from=datetime(2026, 11, 2, 15, 0, tzinfo=plus_eight))
    assert plan.valid_from == START and plan.valid_from.tzinfo == UTC
    assert format_utc(datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)) == "2026-01-01T00:00:00.250000Z"
    assert parse_utc("2026-11-02T07:00:00+00:00") == START


def test_plan_ids_are_content_digests_unless_given_and_methods_follow_the_contract():
    assert network_plan().plan_id == network_plan().plan_id
    assert network_plan().plan_id.startswith("webster-")
    assert network_plan(signals=(signal("J1", 5.0),)).plan_id != network_plan().plan_id
    assert network_plan(plan_id="p-1").plan_id == "p-1"
    with pytest.raises(PlanError, match="method"):
        network_plan(method="Webster!")
    with pytest.raises(PlanError, match="twice"):
        network_plan(signals=(signal("J1"), signal("J1")))


def test_a_signal_is_found_by_its_sumo_id():
    plan = network_plan()
    assert plan.signal("J2").offset_s == 0.0 and plan.signal("J2").program_id == DEFAULT_PROGRAM_ID
    with pytest.raises(PlanError, match="no signal 'J9'"):
        plan.signal("J9")
