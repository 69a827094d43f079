"""Rolling an applied plan back from the console: operators only, applied plans only, the request
sent to control.plan.rollback.v1 and on record in the audit log whether or not it was sent."""

from __future__ import annotations

import pytest

from console import audit
from optimizer.proposing import propose, store
from schemas import contract
from tests.unit.console.plans_and_users import client, logged_in, stored_plan


def applied(engine) -> str:
    plan_id = stored_plan(engine)
    store.set_status(engine, plan_id, store.APPROVED, "olga")
    store.record_signal_outcome(engine, plan_id, "GS_cluster_357187_359543", "applied", "field:sumo-twin")
    assert store.get(engine, plan_id).status == "applied"
    return plan_id


@pytest.fixture
def sent(monkeypatch):
    """What the console publishes, validated, instead of a broker (the real one: the field tests)."""
    records = []

    def publish(settings, records_out, topic):
        for record in records_out:
            contract(topic).validate(record)
            records.append((topic, record))
        return len(records_out)

    monkeypatch.setattr(propose, "publish", publish)
    return records


def test_an_operator_rolls_an_applied_plan_back(app, engine, sent):
    plan_id = applied(engine)
    browser, csrf = logged_in(app, "olga")
    answer = browser.post(
        f"/api/plans/{plan_id}/rollback", headers=csrf, json={"reason": "queues to the bridge"}
    )
    assert answer.status_code == 200, answer.text
    ((topic, record),) = sent
    assert topic == "control.plan.rollback.v1"
    assert (record["plan_id"], record["requested_by"], record["reason"]) == (
        plan_id,
        "olga",
        "queues to the bridge",
    )
    (entry,) = audit.entries(engine, action=audit.PLAN_ROLLBACK)
    assert entry.actor == "olga" and entry.target == plan_id and entry.detail["sent"] is True
    # the plan stays applied until the field answers
    assert browser.get(f"/api/plans/{plan_id}").json()["signal_outcomes"] == {
        "GS_cluster_357187_359543": "applied"
    }


def test_who_may_roll_back_and_what(app, engine, sent):
    plan_id = applied(engine)
    assert client(app).post(f"/api/plans/{plan_id}/rollback", json={"reason": "x"}).status_code == 401
    viewer, viewer_csrf = logged_in(app, "vera")
    assert (
        viewer.post(f"/api/plans/{plan_id}/rollback", headers=viewer_csrf, json={"reason": "x"}).status_code
        == 403
    )
    operator, csrf = logged_in(app, "olga")
    assert operator.post(f"/api/plans/{plan_id}/rollback", json={"reason": "x"}).status_code == 403  # no CSRF
    assert operator.post(f"/api/plans/{plan_id}/rollback", headers=csrf, json={}).status_code == 422
    proposed = stored_plan(engine, green_s=25.0)
    refused = operator.post(f"/api/plans/{proposed}/rollback", headers=csrf, json={"reason": "x"})
    assert refused.status_code == 409 and "only an applied plan" in refused.json()["detail"]
    assert operator.post("/api/plans/nope/rollback", headers=csrf, json={"reason": "x"}).status_code == 404
    assert sent == []


def test_without_a_broker_the_request_is_refused_and_still_on_record(app, engine):
    plan_id = applied(engine)
    operator, csrf = logged_in(app, "olga")
    answer = operator.post(f"/api/plans/{plan_id}/rollback", headers=csrf, json={"reason": "queues"})
    assert answer.status_code == 503 and "control.plan.rollback.v1" in answer.json()["detail"]
    (entry,) = audit.entries(engine, action=audit.PLAN_ROLLBACK)
    assert entry.detail["sent"] is False and entry.detail["error"]
