"""Proposing without a broker: the significance criterion, unsafe and not-better plans refused
before anything is stored or sent, and the store-then-publish order when Kafka fails."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core.settings import Settings
from optimizer.plans.model import Evaluation, KpiEstimate, NetworkPlan, Phase
from optimizer.plans.safety import Rule, read_network
from optimizer.plans.sumo_programs import read_net_programs
from optimizer.proposing import propose as proposing
from optimizer.proposing import store
from optimizer.proposing.propose import decide, propose, publish_pending
from schemas import contract
from tests.unit.optimizer.conftest import resco_net

START = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
SEEDS = (11, 12, 13, 14, 15)


def kpi(mean: float, half: float, std: float = 1.0) -> KpiEstimate:
    return KpiEstimate(mean, std, (mean - half, mean + half))


def evaluation(baseline: KpiEstimate, plan: KpiEstimate, seeds=SEEDS, name="resco_delay") -> Evaluation:
    return Evaluation(
        scenario="resco/cologne1",
        seeds=seeds,
        baseline={name: baseline},
        plan={name: plan},
        baseline_method="fixed",
    )


def cologne1_plan(evaluation: Evaluation | None, green_s: float | None = None) -> NetworkPlan:
    """cologne1's own program, its first green re-timed when ``green_s`` is given, as a plan."""
    (own,) = read_net_programs(resco_net("cologne1"))
    if green_s is not None:
        first = own.phases[0]
        phases = (Phase(first.state, green_s, min(green_s, first.min_s), first.max_s), *own.phases[1:])
        own = dataclasses.replace(own, phases=phases, cycle_s=None)
    return NetworkPlan(
        signals=(own,),
        method="coordinated",
        valid_from=START,
        valid_to=START + timedelta(hours=3),
        evaluation=evaluation,
    )


@pytest.fixture(scope="module")
def networks():
    return read_network(resco_net("cologne1"))


BETTER = evaluation(kpi(44.0, 2.0), kpi(30.0, 2.0))


# --- the criterion ----------------------------------------------------------------------------


def test_a_large_improvement_with_separate_intervals_is_significant():
    decision = decide(BETTER)
    assert decision.better and decision.test == "ci-overlap"
    assert decision.improvement == pytest.approx(14 / 44)
    assert "significant (95% CIs do not overlap)" in decision.reason


def test_overlapping_intervals_are_not_significant_without_a_paired_test():
    decision = decide(evaluation(kpi(44.0, 6.0), kpi(38.0, 6.0)))
    assert not decision.better and "95% CIs overlap" in decision.reason


def test_a_paired_test_can_see_what_overlapping_intervals_hide():
    ev = evaluation(kpi(44.0, 6.0), kpi(38.0, 6.0))
    paired = {"mean": -6.0, "std": 0.5, "ci95": [-6.6, -5.4], "p_value": 1e-5, "significant": True}
    decision = decide(ev, difference=paired)
    assert decision.better and decision.test == "paired-t" and decision.p_value == 1e-5


@pytest.mark.parametrize(
    ("paired", "reason"),
    [
        ({"mean": -6.0, "ci95": [-13.0, 1.0], "p_value": 0.09}, "not significant (paired t-test p = 0.09"),
        ({"mean": -6.0, "ci95": None, "p_value": None}, "has no test"),
        ({"mean": -2.0, "ci95": [-2.5, -1.5], "p_value": 0.001}, "does not match this evaluation"),
    ],
)
def test_a_paired_difference_must_be_significant_and_belong_to_the_evaluation(paired, reason):
    decision = decide(evaluation(kpi(44.0, 6.0), kpi(38.0, 6.0)), difference=paired)
    assert not decision.better and reason in decision.reason


def test_a_small_improvement_is_not_worth_proposing_however_significant():
    decision = decide(evaluation(kpi(44.0, 0.1), kpi(43.0, 0.1)))
    assert not decision.better and "below the required 5% improvement" in decision.reason
    assert decide(evaluation(kpi(44.0, 0.1), kpi(43.0, 0.1)), min_improvement=0.02).better


def test_one_seed_is_never_significant():
    decision = decide(evaluation(kpi(44.0, 0.0), kpi(20.0, 0.0), seeds=(1,)))
    assert not decision.better and "one seed" in decision.reason


def test_throughput_is_better_when_higher():
    up = evaluation(kpi(1000, 10), kpi(1100, 10), name="throughput")
    assert decide(up, kpi="throughput").better
    down = evaluation(kpi(1100, 10), kpi(1000, 10), name="throughput")
    assert not decide(down, kpi="throughput").better


def test_a_missing_kpi_or_evaluation_is_refused():
    assert "has no mean_delay" in decide(BETTER, kpi="mean_delay").reason
    assert "no evaluation" in decide(None).reason
    with pytest.raises(ValueError, match="min_improvement"):
        decide(BETTER, min_improvement=5)


# --- proposing ---------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Local settings with no broker running: real publishing fails at once."""
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture
def sent(monkeypatch):
    """Stand in for Kafka: collect what would be published."""
    records: list[dict] = []

    def publish(settings, batch):
        for record in batch:
            contract("control.plan.proposed.v1").validate(record)
        records.extend(batch)
        return len(batch)

    monkeypatch.setattr(proposing, "publish", publish)
    return records


def test_an_unsafe_plan_is_refused_with_its_violations_before_anything_happens(settings, networks, sent):
    plan = cologne1_plan(BETTER, green_s=3)
    proposal = propose(settings, plan, networks)
    assert proposal.outcome == "refused-unsafe" and proposal.refused
    assert {v.rule for v in proposal.violations} == {Rule.MIN_GREEN}
    assert "min-green" in proposal.reason
    assert sent == [] and not proposal.stored
    assert not (settings.var_dir / "citybrain.db").exists(), "the store was not even opened"


def test_a_plan_that_is_not_better_is_refused_with_the_reason(settings, networks, sent):
    plan = cologne1_plan(evaluation(kpi(44.0, 6.0), kpi(42.0, 6.0)))
    proposal = propose(settings, plan, networks)
    assert proposal.outcome == "refused-not-better"
    assert "below the required 5% improvement" in proposal.reason
    assert sent == [] and not (settings.var_dir / "citybrain.db").exists()


def test_a_plan_without_a_window_is_refused_as_invalid(settings, networks, sent):
    plan = dataclasses.replace(cologne1_plan(BETTER), valid_to=None, plan_id=None)
    proposal = propose(settings, plan, networks)
    assert proposal.outcome == "refused-invalid" and "valid_to" in proposal.reason
    assert sent == []


def test_a_safe_better_plan_is_stored_then_published(settings, networks, sent):
    plan = cologne1_plan(BETTER, green_s=25)
    proposal = propose(settings, plan, networks)
    assert proposal.outcome == "published", proposal.reason
    assert proposal.published == 1 and proposal.stored
    assert [r["tls_id"] for r in sent] == ["GS_cluster_357187_359543"]
    assert sent[0]["cycle_s"] == 86 and sent[0]["evaluation"] == BETTER.to_record()

    stored = store.get(store.open_store(settings), plan.plan_id)
    assert stored.status == "proposed" and stored.published
    assert stored.records == sent
    assert stored.evaluation["significance"]["better"] is True
    assert stored.evaluation["plan"] == BETTER.to_record()["plan"]

    again = propose(settings, plan, networks)
    assert again.outcome == "already-published" and len(sent) == 1, "nothing is sent twice"


def test_the_paired_difference_is_kept_in_the_store(settings, networks, sent):
    ev = evaluation(kpi(44.0, 6.0), kpi(38.0, 6.0))
    paired = {"mean": -6.0, "std": 0.5, "ci95": [-6.6, -5.4], "p_value": 1e-5, "significant": True}
    proposal = propose(settings, cologne1_plan(ev), networks, difference=paired)
    assert proposal.outcome == "published"
    stored = store.get(store.open_store(settings), proposal.plan_id)
    assert stored.evaluation["difference"] == {"resco_delay": paired}
    assert stored.evaluation["significance"]["test"] == "paired-t"


def test_when_kafka_is_down_the_proposal_is_kept_and_published_later(settings, networks, monkeypatch):
    plan = cologne1_plan(BETTER)
    proposal = propose(settings, plan, networks)  # no broker is running
    assert proposal.outcome == "publish-failed" and proposal.stored and proposal.published == 0
    assert "no Kafka broker" in proposal.reason

    engine = store.open_store(settings)
    (pending,) = store.unpublished(engine)
    assert pending.plan_id == plan.plan_id and "no Kafka broker" in pending.publish_error
    with pytest.raises(store.TransitionRefused, match="never published"):
        store.set_status(engine, plan.plan_id, "approved", "op-anna")

    records: list[dict] = []
    monkeypatch.setattr(proposing, "publish", lambda settings, batch: records.extend(batch) or len(batch))
    (retried,) = publish_pending(settings)
    assert (retried.plan_id, retried.outcome, retried.published) == (plan.plan_id, "published", 1)
    assert records == pending.records, "the retry sends the stored records, byte for byte"
    assert store.unpublished(engine) == []
    store.set_status(engine, plan.plan_id, "approved", "op-anna")


def test_a_decided_plan_is_not_proposed_again(settings, networks, sent):
    plan = cologne1_plan(BETTER)
    propose(settings, plan, networks)
    store.set_status(store.open_store(settings), plan.plan_id, "rejected", "op-anna", "not on a match day")
    again = propose(settings, plan, networks)
    assert again.outcome == "refused-already-decided" and "stored as rejected" in again.reason
    assert len(sent) == 1
