"""The console's API in process (FastAPI's TestClient) on a fresh SQLite database: sessions and
their cookie, CSRF, roles, the login rate limit, input limits, decisions on plans and the audit
trail each of them leaves."""

from __future__ import annotations

import time
from typing import get_args

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from console import audit, sessions, users
from console.app import NOTE_MAX_CHARS, SESSION_COOKIE, PlanState, create_app
from core import database
from core.settings import Settings
from optimizer.proposing import store
from tests.unit.console.plans_and_users import PASSWORD, client, logged_in, stored_plan


@pytest.fixture
def settings(tmp_path):
    return Settings(var_dir=tmp_path / "var", console_login_max_failures=3, console_max_body_bytes=4096)


def actions(engine, action: str | None = None) -> list[audit.Entry]:
    return audit.entries(engine, action=action)


# --- health, login, sessions ------------------------------------------------------------------


def test_health_answers_without_a_login_and_names_the_schema(app):
    answer = client(app).get("/api/health")
    assert answer.json() == {"status": "ok", "schema_revision": database.head()}
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/plans"),
        ("GET", "/api/plans/p1"),
        ("POST", "/api/plans/p1/approve"),
        ("POST", "/api/plans/p1/reject"),
        ("GET", "/api/audit"),
        ("GET", "/api/network"),
        ("POST", "/api/logout"),
    ],
)
def test_without_a_session_every_route_but_health_and_login_is_401(app, method, path):
    assert client(app).request(method, path, json={"reason": "x"}).status_code == 401


def test_login_sets_an_httponly_strict_cookie_secure_only_over_https(app, engine):
    answer = client(app).post("/api/login", json={"name": "olga", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == {"name": "olga", "role": "operator"} and len(body["csrf_token"]) >= 40
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie
    secure = client(app, https=True).post("/api/login", json={"name": "olga", "password": PASSWORD})
    assert "Secure" in secure.headers["set-cookie"]
    (entry, _) = actions(engine, audit.LOGIN)
    assert (entry.actor, entry.address, entry.detail) == ("olga", "10.0.0.1", {"role": "operator"})


def test_a_wrong_password_and_an_unknown_name_fail_alike_and_are_audited(app, engine):
    wrong = client(app).post("/api/login", json={"name": "olga", "password": "not the password"})
    unknown = client(app).post("/api/login", json={"name": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers
    failed = actions(engine, audit.LOGIN_FAILED)
    assert [(e.actor, e.target, e.address) for e in failed] == [
        ("anonymous", "nobody", "10.0.0.1"),
        ("anonymous", "olga", "10.0.0.1"),
    ]


def test_logout_ends_the_session_and_is_audited(app, engine):
    browser, csrf = logged_in(app, "vera")
    assert browser.get("/api/plans").status_code == 200
    answer = browser.post("/api/logout", headers=csrf)
    assert answer.status_code == 204 and 'citybrain_session=""' in answer.headers["set-cookie"]
    assert browser.get("/api/plans").status_code == 401
    assert [e.actor for e in actions(engine, audit.LOGOUT)] == ["vera"]


def test_a_stolen_cookie_is_useless_after_logout(app):
    browser, csrf = logged_in(app, "vera")
    token = browser.cookies[SESSION_COOKIE]
    browser.post("/api/logout", headers=csrf)
    thief = client(app, address="10.6.6.6")
    thief.cookies.set(SESSION_COOKIE, token)
    assert thief.get("/api/plans").status_code == 401


def test_an_expired_session_is_not_found(engine):
    olga = users.get(engine, "olga")
    opened = sessions.open_session(engine, olga, 0, None)
    assert sessions.find(engine, opened.token) is None
    live = sessions.open_session(engine, olga, 60, None)
    assert sessions.find(engine, live.token).user.name == "olga"


def test_disabling_a_user_ends_their_sessions_and_logins(app, engine):
    browser, _ = logged_in(app, "olga")
    users.disable(engine, "olga", actor="test")
    assert browser.get("/api/plans").status_code == 401
    assert client(app).post("/api/login", json={"name": "olga", "password": PASSWORD}).status_code == 401


# --- the login rate limit -----------------------------------------------------------------------


def test_failures_on_one_account_lock_it_from_every_address(app, engine):
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        client(app, address).post("/api/login", json={"name": "olga", "password": "guess-guess"})
    locked = client(app, "10.0.0.4").post("/api/login", json={"name": "olga", "password": PASSWORD})
    assert locked.status_code == 429 and locked.headers["retry-after"] == "300"
    assert client(app, "10.0.0.4").post("/api/login", json={"name": "vera", "password": PASSWORD}).is_success
    assert [e.target for e in actions(engine, audit.LOGIN_THROTTLED)] == ["olga"]


def test_failures_from_one_address_lock_it_out_for_every_account(app):
    for name in ("olga", "vera", "adam"):
        client(app, "10.9.9.9").post("/api/login", json={"name": name, "password": "guess-guess"})
    assert (
        client(app, "10.9.9.9").post("/api/login", json={"name": "olga", "password": PASSWORD}).status_code
        == 429
    )
    assert client(app, "10.0.0.8").post("/api/login", json={"name": "olga", "password": PASSWORD}).is_success


def test_failures_count_only_within_the_window(tmp_path, engine):
    settings = Settings(var_dir=tmp_path / "var", console_login_max_failures=1, console_login_window_s=1)
    app = create_app(settings)
    client(app).post("/api/login", json={"name": "olga", "password": "guess-guess"})
    assert client(app).post("/api/login", json={"name": "olga", "password": PASSWORD}).status_code == 429
    time.sleep(1.1)
    assert client(app).post("/api/login", json={"name": "olga", "password": PASSWORD}).is_success


# --- CSRF and roles -----------------------------------------------------------------------------


def test_state_changing_requests_need_the_sessions_csrf_token(app, engine):
    plan_id = stored_plan(engine)
    browser, csrf = logged_in(app, "olga")
    _, other_csrf = logged_in(app, "adam")
    assert browser.post(f"/api/plans/{plan_id}/approve").status_code == 403
    assert browser.post(f"/api/plans/{plan_id}/approve", headers=other_csrf).status_code == 403
    assert browser.post(f"/api/plans/{plan_id}/reject", json={"reason": "no"}).status_code == 403
    assert browser.post("/api/logout").status_code == 403
    assert store.get(engine, plan_id).status == store.PROPOSED
    assert browser.post(f"/api/plans/{plan_id}/approve", headers=csrf).status_code == 200


def test_a_viewer_reads_plans_but_may_not_decide_or_read_the_audit_log(app, engine):
    plan_id = stored_plan(engine)
    browser, csrf = logged_in(app, "vera")
    assert browser.get(f"/api/plans/{plan_id}").status_code == 200
    assert browser.post(f"/api/plans/{plan_id}/approve", headers=csrf).status_code == 403
    assert (
        browser.post(f"/api/plans/{plan_id}/reject", headers=csrf, json={"reason": "no"}).status_code == 403
    )
    assert browser.get("/api/audit").status_code == 403
    assert store.get(engine, plan_id).status == store.PROPOSED


# --- plans ----------------------------------------------------------------------------------------


def test_plans_list_with_their_method_signals_window_evaluation_and_state(app, engine):
    plan_id = stored_plan(engine)
    browser, _ = logged_in(app, "vera")
    (summary,) = browser.get("/api/plans").json()
    assert summary["plan_id"] == plan_id and summary["state"] == "proposed"
    assert summary["method"] == "coordinated" and summary["scenario"] == "resco/cologne1"
    assert summary["signals"] == ["GS_cluster_357187_359543"]
    assert summary["valid_from"].startswith("2026-11-01T07:00:00")
    assert summary["evaluation"]["plan"]["resco_delay"]["mean"] == 30.0
    detail = browser.get(f"/api/plans/{plan_id}").json()
    assert detail["records"][0]["plan_id"] == plan_id
    assert [(e["state"], e["actor"]) for e in detail["events"]] == [("proposed", "optimizer")] * 2


def test_plans_filter_by_state_signal_and_scenario(app, engine):
    first = stored_plan(engine)
    second = stored_plan(engine, scenario="resco/elsewhere", green_s=25.0)
    store.set_status(engine, second, store.REJECTED, "test")
    browser, _ = logged_in(app, "vera")

    def ids(**query) -> set[str]:
        return {p["plan_id"] for p in browser.get("/api/plans", params=query).json()}

    assert ids() == {first, second}
    assert ids(state="proposed") == {first} and ids(state="rejected") == {second}
    assert ids(scenario="resco/elsewhere") == {second}
    assert ids(signal="GS_cluster_357187_359543") == {first, second} and ids(signal="J9") == set()
    assert browser.get("/api/plans", params={"state": "pending"}).status_code == 422


def test_the_api_knows_the_stores_states():
    assert set(get_args(PlanState)) == set(store.STATUSES)


def test_an_unknown_plan_is_404(app):
    browser, csrf = logged_in(app, "olga")
    assert browser.get("/api/plans/nope").status_code == 404
    assert browser.post("/api/plans/nope/approve", headers=csrf).status_code == 404
    assert browser.post("/api/plans/nope/reject", headers=csrf, json={"reason": "x"}).status_code == 404


def test_an_approval_is_recorded_in_the_store_and_the_audit_log_once(app, engine):
    plan_id = stored_plan(engine)
    browser, csrf = logged_in(app, "olga")
    answer = browser.post(f"/api/plans/{plan_id}/approve", headers=csrf, json={"comment": "fine for Sunday"})
    assert answer.status_code == 200 and answer.json()["state"] == "approved"
    decided, attempt = answer.json()["events"][-2:]
    assert (decided["state"], decided["actor"], decided["note"]) == ("approved", "olga", "fine for Sunday")
    # No broker in these tests: the approval stands, its publish queued (test_events_outbox sends it).
    assert answer.json()["approval_publish"] == "pending" and "no Kafka broker" in attempt["note"]
    again = browser.post(f"/api/plans/{plan_id}/approve", headers=csrf)
    assert again.status_code == 409 and "approved" in again.json()["detail"]
    assert browser.post(f"/api/plans/{plan_id}/reject", headers=csrf, json={"reason": "x"}).status_code == 409
    (entry,) = actions(engine, audit.PLAN_APPROVE)
    assert (entry.actor, entry.target, entry.address) == ("olga", plan_id, "10.0.0.1")
    assert entry.detail == {"comment": "fine for Sunday", "scenario": "resco/cologne1"}


def test_a_rejection_needs_a_reason_and_keeps_it(app, engine):
    plan_id = stored_plan(engine)
    browser, csrf = logged_in(app, "adam")
    for body in (None, {}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * (NOTE_MAX_CHARS + 1)}):
        assert browser.post(f"/api/plans/{plan_id}/reject", headers=csrf, json=body).status_code == 422
    answer = browser.post(f"/api/plans/{plan_id}/reject", headers=csrf, json={"reason": "match day"})
    assert answer.json()["state"] == "rejected"
    (entry,) = actions(engine, audit.PLAN_REJECT)
    assert (entry.actor, entry.target, entry.detail) == ("adam", plan_id, {"reason": "match day"})


def test_an_unsafe_plan_is_not_approved_and_the_refusal_is_audited(app, engine):
    plan_id = stored_plan(engine, green_s=1.0)
    browser, csrf = logged_in(app, "olga")
    answer = browser.post(f"/api/plans/{plan_id}/approve", headers=csrf)
    assert answer.status_code == 409
    assert {v["rule"] for v in answer.json()["detail"]["violations"]} >= {"min-green"}
    assert store.get(engine, plan_id).status == store.PROPOSED
    (entry,) = actions(engine, audit.PLAN_APPROVE_REFUSED)
    assert entry.actor == "olga" and "min-green" in entry.detail["reason"]


def test_a_plan_whose_network_cannot_be_found_is_not_approved(app, engine):
    plan_id = stored_plan(engine, scenario="resco/atlantis")
    browser, csrf = logged_in(app, "olga")
    answer = browser.post(f"/api/plans/{plan_id}/approve", headers=csrf)
    assert answer.status_code == 409 and "safety re-check cannot run" in answer.json()["detail"]
    assert store.get(engine, plan_id).status == store.PROPOSED


def test_a_plan_never_published_is_not_approved(app, engine):
    plan_id = stored_plan(engine, published=False)
    browser, csrf = logged_in(app, "olga")
    answer = browser.post(f"/api/plans/{plan_id}/approve", headers=csrf)
    assert answer.status_code == 409 and "never published" in answer.json()["detail"]


# --- input limits ---------------------------------------------------------------------------------


def test_malformed_and_unexpected_bodies_are_422(app, engine):
    plan_id = stored_plan(engine)
    browser, csrf = logged_in(app, "olga")
    json_headers = {**csrf, "content-type": "application/json"}
    assert browser.post(f"/api/plans/{plan_id}/reject", headers=json_headers, content=b"{").status_code == 422
    assert browser.post("/api/login", json={"name": "olga"}).status_code == 422
    assert (
        browser.post("/api/login", json={"name": "olga", "password": PASSWORD, "role": "admin"}).status_code
        == 422
    )
    extra = browser.post(f"/api/plans/{plan_id}/approve", headers=csrf, json={"comment": "", "force": True})
    assert extra.status_code == 422


def test_oversized_bodies_are_413_declared_or_streamed(app, engine):
    plan_id = stored_plan(engine)
    browser, csrf = logged_in(app, "olga")
    big = b'{"reason": "' + b"x" * 5000 + b'"}'
    assert browser.post(f"/api/plans/{plan_id}/reject", headers=csrf, content=big).status_code == 413

    def chunks():
        yield big[:3000]
        yield big[3000:]

    assert browser.post(f"/api/plans/{plan_id}/reject", headers=csrf, content=chunks()).status_code == 413
    assert store.get(engine, plan_id).status == store.PROPOSED


# --- the audit log ---------------------------------------------------------------------------------


def test_the_audit_log_reads_newest_first_pages_and_filters(app, engine):
    browser, _ = logged_in(app, "olga")
    everything = browser.get("/api/audit").json()
    assert [e["action"] for e in everything] == ["login", "user.add", "user.add", "user.add"]
    older = browser.get("/api/audit", params={"before": everything[1]["audit_id"], "limit": 1}).json()
    assert [e["target"] for e in older] == [everything[2]["target"]]
    assert [e["action"] for e in browser.get("/api/audit", params={"actor": "olga"}).json()] == ["login"]


def test_the_api_cannot_change_the_audit_log_and_neither_can_sql(app, engine):
    audit_routes = {(method, route.path) for route in app.routes for method in getattr(route, "methods", ())}
    assert {m for m, path in audit_routes if path.startswith("/api/audit")} == {"GET"}
    for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert len(actions(engine)) == 3
