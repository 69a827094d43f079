"""Approving through the console's API against the real embedded broker: the approval comes back
from ``control.plan.approved.v1`` valid and keyed by tls id; with the broker down it stands,
queued, and the console sends it when it starts again."""

from __future__ import annotations

import time

import orjson
from fastapi.testclient import TestClient
from kafka import KafkaConsumer

from console.app import CSRF_HEADER, create_app
from core import database
from optimizer.proposing import store
from schemas import contract
from streaming import admin, broker
from streaming.connection import connect
from tests.integration.conftest import read_records
from tests.unit.console.plans_and_users import PASSWORD, add_people, stored_plan

APPROVED_TOPIC = "control.plan.approved.v1"
COLOGNE1_TLS = b"GS_cluster_357187_359543"


def approve(app, plan_id: str) -> dict:
    browser = TestClient(app)
    login = browser.post("/api/login", json={"name": "olga", "password": PASSWORD})
    answer = browser.post(
        f"/api/plans/{plan_id}/approve",
        headers={CSRF_HEADER: login.json()["csrf_token"]},
        json={"comment": "ok for the evening peak"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_the_approval_is_on_the_topic(reader, plan_id: str) -> None:
    (message,) = read_records(reader, APPROVED_TOPIC)
    record = orjson.loads(message.value)
    contract(APPROVED_TOPIC).validate(record)
    assert message.key == COLOGNE1_TLS
    assert record["plan_id"] == plan_id
    assert record["approval"] == {
        **record["approval"],
        "approved_by": "olga",
        "comment": "ok for the evening peak",
    }


def test_an_approval_reaches_the_topic(kafka, reader):
    engine = database.open_database(kafka)
    add_people(engine)
    plan_id = stored_plan(engine)
    answer = approve(create_app(kafka), plan_id)
    assert answer["state"] == "approved" and answer["approval_publish"] == "published"
    assert_the_approval_is_on_the_topic(reader, plan_id)
    assert store.get(engine, plan_id).events[-1].note == f"1 record(s) to {APPROVED_TOPIC}"


def test_an_approval_made_while_the_broker_is_down_is_sent_when_the_console_starts(kafka):
    engine = database.open_database(kafka)
    add_people(engine)
    plan_id = stored_plan(engine)
    broker.stop(kafka)
    answer = approve(create_app(kafka), plan_id)
    assert answer["state"] == "approved" and answer["approval_publish"] == "pending"
    assert "no Kafka broker" in answer["approval_publish_error"]

    broker.start(kafka)
    admin.ensure_topics(kafka)
    with TestClient(create_app(kafka)):  # startup: the queue is sent in the background
        deadline = time.monotonic() + 60
        while store.get(engine, plan_id).approval_pending:
            assert time.monotonic() < deadline, store.get(engine, plan_id).approval_publish_error
            time.sleep(0.2)
    reader = connect(kafka, KafkaConsumer, enable_auto_commit=False)  # one that knows the new broker
    try:
        assert_the_approval_is_on_the_topic(reader, plan_id)
    finally:
        reader.close()
