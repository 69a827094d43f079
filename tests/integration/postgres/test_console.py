"""The console's API on a real PostgreSQL server, as production runs it: people added from the
CLI's functions, logins, an approval and a rejection, the refusals (401, 403, 409, 429), the
audit trail each leaves, the live-update feed read from the plan store's trail (which must not
skip a change that commits late), and the console in several server processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from console import audit, events, users
from console.app import MAX_ID, create_app
from core import database
from core.settings import Settings
from optimizer.proposing import store
from tests.integration.console.test_console_server import several_processes_share_sessions_and_agree
from tests.unit.console.plans_and_users import PASSWORD, add_people, client, logged_in, stored_plan

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, postgres_url):
    return Settings(var_dir=tmp_path / "var", database_url=postgres_url, console_login_max_failures=3)


@pytest.fixture
def engine(settings):
    engine = database.open_database(settings)
    add_people(engine)
    return engine


@pytest.fixture
def app(settings, engine):
    return create_app(settings)


def test_operators_approve_and_reject_and_every_step_is_audited(app, engine):
    assert client(app).get("/api/health").json() == {"status": "ok", "schema_revision": database.head()}
    assert engine.dialect.name == "postgresql"
    good, other, unsafe = (
        stored_plan(engine),
        stored_plan(engine, green_s=25.0),
        stored_plan(engine, green_s=1.0),
    )

    assert client(app).get("/api/plans").status_code == 401
    wrong = client(app).post("/api/login", json={"name": "olga", "password": "not it at all"})
    assert wrong.status_code == 401

    viewer, viewer_csrf = logged_in(app, "vera")
    assert {p["plan_id"] for p in viewer.get("/api/plans").json()} == {good, other, unsafe}
    assert viewer.post(f"/api/plans/{good}/approve", headers=viewer_csrf).status_code == 403
    assert viewer.get("/api/audit").status_code == 403

    operator, csrf = logged_in(app, "olga")
    assert operator.post(f"/api/plans/{good}/approve").status_code == 403  # no CSRF token
    approved = operator.post(f"/api/plans/{good}/approve", headers=csrf, json={"comment": "for Sunday"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["approval_publish"] == "pending"
    assert operator.post(f"/api/plans/{good}/approve", headers=csrf).status_code == 409
    assert operator.post(f"/api/plans/{good}/reject", headers=csrf, json={"reason": "x"}).status_code == 409
    rejected = operator.post(f"/api/plans/{other}/reject", headers=csrf, json={"reason": "match day"})
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    refused = operator.post(f"/api/plans/{unsafe}/approve", headers=csrf)
    assert refused.status_code == 409 and store.get(engine, unsafe).status == store.PROPOSED
    assert operator.post("/api/plans/nope/approve", headers=csrf).status_code == 404

    assert {p["plan_id"] for p in viewer.get("/api/plans", params={"state": "approved"}).json()} == {good}
    trail = operator.get("/api/audit").json()
    assert [(e["action"], e["actor"], e["target"]) for e in trail] == [
        (audit.PLAN_APPROVE_REFUSED, "olga", unsafe),
        (audit.PLAN_REJECT, "olga", other),
        (audit.PLAN_APPROVE, "olga", good),
        (audit.LOGIN, "olga", "olga"),
        (audit.LOGIN, "vera", "vera"),
        (audit.LOGIN_FAILED, "anonymous", "olga"),
        *[(audit.USER_ADD, "test", name) for name in ("adam", "vera", "olga")],
    ]
    assert trail[1]["detail"] == {"reason": "match day"} and trail[0]["address"] == "10.0.0.1"
    assert [e["audit_id"] for e in operator.get("/api/audit", params={"before": MAX_ID}).json()] == [
        e["audit_id"] for e in trail
    ]
    assert [e["action"] for e in operator.get("/api/audit", params={"actor": "vera"}).json()] == ["login"]

    changes = events.changes_since(engine, 0)
    assert [(c["plan_id"], c["change"]) for c in changes if c["change"] != "proposed"] == [
        (good, "approved"),
        (good, "approved"),  # the publish attempt, queued: no broker in this test
        (other, "rejected"),
    ]
    assert all(c["at"].endswith("Z") for c in changes)
    assert events.last_event_id(engine) == len(changes)
    assert events.changes_since(engine, 2**62) == []  # a browser's Last-Event-ID may say anything

    assert operator.post("/api/logout", headers=csrf).status_code == 204
    assert operator.get("/api/plans").status_code == 401
    users.disable(engine, "vera", actor="test")
    assert viewer.get("/api/plans").status_code == 401


def test_failed_logins_lock_the_account_even_from_an_address_longer_than_its_column(app, engine):
    """A proxy's forwarded address is whatever its header said; PostgreSQL, unlike SQLite, refuses
    a value longer than the column, which would lose the failure's audit entry and so its count."""
    far = "2001:db8:" + "f" * 80
    for _ in range(3):
        answer = client(app, far).post("/api/login", json={"name": "olga", "password": "guess-guess"})
        assert answer.status_code == 401
    locked = client(app, "10.0.0.2").post("/api/login", json={"name": "olga", "password": PASSWORD})
    assert locked.status_code == 429
    failed = audit.entries(engine, action=audit.LOGIN_FAILED)
    assert len(failed) == 3 and all(far.startswith(e.address) for e in failed)
    assert all(e.at.tzinfo is UTC for e in failed)


def test_the_live_feed_never_passes_a_change_that_is_still_to_commit(engine):
    """The feed resumes after the newest trail id it sent, so an id must not show while a smaller
    one can still commit (PostgreSQL draws ids at insert, not at commit)."""
    first, second = stored_plan(engine), stored_plan(engine, green_s=25.0)
    seen = events.last_event_id(engine)
    with engine.connect() as slow:  # a change that drew its trail id and has not committed yet
        store.append_event(slow, datetime.now(UTC), first, store.PROPOSED, "optimizer", "slow")
        later = threading.Thread(target=store.mark_publish_failed, args=(engine, second, "no broker"))
        later.start()
        later.join(1.0)
        assert later.is_alive(), "a later change should wait for the earlier one to commit"
        assert events.changes_since(engine, seen) == []
        slow.commit()
    later.join(30)
    assert [change["plan_id"] for change in events.changes_since(engine, seen)] == [first, second]


def test_the_console_in_several_processes_on_one_database(tmp_path, postgres_url):
    several_processes_share_sessions_and_agree(Settings(var_dir=tmp_path / "var", database_url=postgres_url))


def test_a_nul_character_in_any_text_input_is_refused_not_a_server_error(app, engine):
    good, other = stored_plan(engine), stored_plan(engine, green_s=25.0)
    olga, csrf = logged_in(app, "olga")
    browser = TestClient(app, raise_server_exceptions=False, cookies=olga.cookies)
    answers = {
        "plan id": browser.get("/api/plans/a%00b"),
        "plan's programs": browser.get("/api/plans/a%00b/programs"),
        "scenario": browser.get("/api/plans", params={"scenario": "a\x00"}),
        "audit action": browser.get("/api/audit", params={"action": "a\x00"}),
        "audit actor": browser.get("/api/audit", params={"actor": "a\x00"}),
        "login name": browser.post("/api/login", json={"name": "olga\x00", "password": PASSWORD}),
        "approval comment": browser.post(
            f"/api/plans/{good}/approve", headers=csrf, json={"comment": "\x00"}
        ),
        "rejection reason": browser.post(
            f"/api/plans/{other}/reject", headers=csrf, json={"reason": "no\x00"}
        ),
    }
    assert {what: answer.status_code for what, answer in answers.items() if answer.status_code >= 500} == {}
    assert store.get(engine, good).status == store.get(engine, other).status == store.PROPOSED
