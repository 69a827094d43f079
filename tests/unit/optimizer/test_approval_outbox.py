"""The approval outbox with a fake producer: an approval is stored with its records in the
transaction that approves, sent valid and keyed by tls id; a failed send leaves it standing and
queued, and the next drain sends it, in approval order, once."""

from __future__ import annotations

import pytest

from core.settings import Settings
from optimizer.proposing import propose as proposing
from optimizer.proposing import store
from optimizer.proposing.propose import PUBLISH_FAILED, PUBLISHED, approve, publish_pending
from schemas import contract
from streaming.connection import BrokerUnreachable
from tests.unit.optimizer.test_store import saved, small_plan

APPROVED_TOPIC = "control.plan.approved.v1"


class FakeBroker:
    """Stands in for :class:`streaming.producer.RecordProducer`: validates and keys each record
    as the real one does, keeps what it was sent, and can be down."""

    def __init__(self) -> None:
        self.down = False
        self.sent: list[tuple[str, bytes, dict]] = []

    def producer(self, settings: Settings, *, validate: bool = True) -> FakeBroker.Producer:
        if self.down:
            raise BrokerUnreachable("cannot reach Kafka at 127.0.0.1:1 within 1 s")
        return FakeBroker.Producer(self)

    class Producer:
        def __init__(self, broker: FakeBroker) -> None:
            self.broker, self.batch = broker, []

        def send(self, topic: str, record: dict) -> None:
            topic_contract = contract(topic)
            topic_contract.validate(record)
            self.batch.append((topic, topic_contract.key_of(record), record))

        def flush(self) -> None:
            self.broker.sent += self.batch  # acknowledged only when flushed
            self.batch = []

        def close(self) -> None:
            self.flush()


@pytest.fixture
def broker(monkeypatch):
    fake = FakeBroker()
    monkeypatch.setattr(proposing, "RecordProducer", fake.producer)
    return fake


@pytest.fixture
def settings(tmp_path):
    return Settings(var_dir=tmp_path / "var")


@pytest.fixture
def engine(settings):
    return store.open_store(settings)


def approved_sent(broker: FakeBroker) -> list[tuple[bytes, dict]]:
    return [(key, record) for topic, key, record in broker.sent if topic == APPROVED_TOPIC]


def test_an_approval_is_sent_valid_and_keyed_by_signal(settings, engine, broker):
    plan_id = saved(engine).plan_id
    approval = approve(settings, plan_id, "op-anna", "fine for Sunday", engine=engine)
    assert approval.outcome == PUBLISHED and not approval.pending, approval.reason
    assert approval.plan.status == "approved" and approval.plan.approval_published_at is not None

    sent = approved_sent(broker)
    assert [key for key, _ in sent] == [b"J1", b"J2"]
    for _, record in sent:
        contract(APPROVED_TOPIC).validate(record)
        assert record["plan_id"] == plan_id
        assert record["approval"]["approved_by"] == "op-anna"
        assert record["approval"]["comment"] == "fine for Sunday"
        assert record["ts"] == record["approval"]["approved_at"]
    assert [record for _, record in sent] == approval.plan.approval_records, "what was stored is sent"
    proposed = {r["tls_id"]: r for r in approval.plan.records}
    for _, record in sent:  # the proposed record as published, plus who approved it and when
        assert {k: v for k, v in record.items() if k not in ("ts", "approval")} == {
            k: v for k, v in proposed[record["tls_id"]].items() if k != "ts"
        }
    assert approval.plan.events[-1].note == f"2 record(s) to {APPROVED_TOPIC}"
    assert publish_pending(settings, engine) == [] and len(approved_sent(broker)) == 2, "sent once"


def test_with_the_broker_down_the_approval_stands_queued_and_is_sent_later(settings, engine, broker):
    plan_id = saved(engine).plan_id
    broker.down = True
    approval = approve(settings, plan_id, "op-anna", engine=engine)
    assert approval.outcome == PUBLISH_FAILED and approval.pending and "cannot reach Kafka" in approval.reason
    stored = store.get(engine, plan_id)
    assert stored.status == "approved" and stored.approval_pending
    assert "cannot reach Kafka" in stored.approval_publish_error
    assert [p.plan_id for p in store.unpublished_approvals(engine)] == [plan_id]
    assert broker.sent == []

    (failed,) = publish_pending(settings, engine)  # still down: still queued
    assert failed.outcome == PUBLISH_FAILED and store.get(engine, plan_id).approval_pending

    broker.down = False
    (retried,) = publish_pending(settings, engine)
    assert (retried.plan_id, retried.outcome, retried.published) == (plan_id, PUBLISHED, 2)
    assert [record for _, record in approved_sent(broker)] == stored.approval_records, "the stored bytes"
    assert "comment" not in stored.approval_records[0]["approval"], "no comment, none sent"
    after = store.get(engine, plan_id)
    assert not after.approval_pending and after.approval_publish_error is None
    assert store.unpublished_approvals(engine) == []


def test_queued_approvals_go_in_the_order_they_were_given(settings, engine, broker):
    first = saved(engine, small_plan(green_s=30)).plan_id
    second = saved(engine, small_plan(green_s=35)).plan_id
    broker.down = True
    approve(settings, first, "op-anna", engine=engine)
    broker.down = False
    # The second approval drains the queue: the first goes before it.
    approval = approve(settings, second, "op-ben", engine=engine)
    assert approval.outcome == PUBLISHED
    assert [record["plan_id"] for _, record in approved_sent(broker)] == [first, first, second, second]


def test_a_failure_stops_the_drain_so_no_later_approval_overtakes(settings, engine, broker, monkeypatch):
    first = saved(engine, small_plan(green_s=30)).plan_id
    second = saved(engine, small_plan(green_s=35)).plan_id
    broker.down = True
    approve(settings, first, "op-anna", engine=engine)
    approve(settings, second, "op-anna", engine=engine)
    broker.down = False
    real_publish, calls = proposing.publish, []

    def first_fails(settings, records, topic=proposing.PROPOSED_TOPIC):
        calls.append(records[0]["plan_id"])
        if len(calls) == 1:
            raise proposing.PublishError("1 record(s) not acknowledged by Kafka")
        return real_publish(settings, records, topic)

    monkeypatch.setattr(proposing, "publish", first_fails)
    (failed,) = publish_pending(settings, engine)
    assert (failed.plan_id, failed.outcome) == (first, PUBLISH_FAILED) and calls == [first]
    assert [p.plan_id for p in store.unpublished_approvals(engine)] == [first, second]
    assert [(p.plan_id, p.outcome) for p in publish_pending(settings, engine)] == [
        (first, PUBLISHED),
        (second, PUBLISHED),
    ]


def test_an_approval_that_breaks_the_contract_is_not_stored(engine):
    plan_id = saved(engine).plan_id
    with pytest.raises(store.StoreError, match=APPROVED_TOPIC):
        store.set_status(engine, plan_id, "approved", "op anna")  # not an identifier: approved_by
    stored = store.get(engine, plan_id)
    assert stored.status == "proposed" and stored.approval_records is None, "one transaction: nothing changed"


def test_a_stale_queued_approval_is_not_sent(settings, engine, broker):
    plan_id = saved(engine).plan_id
    broker.down = True
    approve(settings, plan_id, "op-anna", engine=engine)
    store.set_status(engine, plan_id, "superseded", "optimizer", "a newer plan")
    broker.down = False
    assert store.unpublished_approvals(engine) == []
    assert publish_pending(settings, engine) == [] and broker.sent == []
