"""Proposing against the real embedded broker: a safe, better plan is stored and its records
come back from ``control.plan.proposed.v1`` valid and keyed by tls id; an unsafe one sends
nothing."""

from __future__ import annotations

import orjson

from optimizer.plans.model import PROPOSED_TOPIC
from optimizer.plans.safety import read_network
from optimizer.proposing import store
from optimizer.proposing.propose import propose
from schemas import contract
from tests.integration.conftest import read_records
from tests.unit.optimizer.conftest import resco_net
from tests.unit.optimizer.test_propose import BETTER, cologne1_plan


def test_a_proposal_reaches_the_topic_and_the_store(kafka, reader):
    networks = read_network(resco_net("cologne1"))
    plan = cologne1_plan(BETTER, green_s=25)
    proposal = propose(kafka, plan, networks)
    assert proposal.outcome == "published", proposal.reason

    (message,) = read_records(reader, PROPOSED_TOPIC, wait_s=5.0)
    record = orjson.loads(message.value)
    contract(PROPOSED_TOPIC).validate(record)
    assert message.key == b"GS_cluster_357187_359543"
    assert record["plan_id"] == plan.plan_id and record["evaluation"] == BETTER.to_record()

    stored = store.get(store.open_store(kafka), plan.plan_id)
    assert stored.status == "proposed" and stored.published
    assert stored.records == [record]
    assert stored.events[-1].note == f"1 record(s) to {PROPOSED_TOPIC}"


def test_an_unsafe_plan_publishes_nothing(kafka, reader):
    networks = read_network(resco_net("cologne1"))
    proposal = propose(kafka, cologne1_plan(BETTER, green_s=3), networks)
    assert proposal.outcome == "refused-unsafe" and proposal.violations
    assert read_records(reader, PROPOSED_TOPIC, wait_s=1.0) == []
    assert store.list_plans(store.open_store(kafka)) == []
