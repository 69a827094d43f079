"""The console over real HTTP: uvicorn on a loopback port, clients as separate cookie jars.

An operator logs in, lists, approves; a second approval is 409; a viewer gets 403, an anonymous
client 401, a POST without the CSRF header 403; the audit log shows each of them. Schemathesis
then drives the read-only routes from the OpenAPI schema, logged in as the operator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from console.app import CSRF_HEADER, SESSION_COOKIE, create_app
from core import database
from core.settings import Settings
from tests.unit.console.plans_and_users import PASSWORD, add_people, serving, stored_plan

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Console:
    url: str
    plan_id: str


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The console served by uvicorn in a thread, on a socket bound before it starts."""
    config = Settings(var_dir=tmp_path_factory.mktemp("console") / "var")
    engine = database.open_database(config)
    add_people(engine)
    plan_id = stored_plan(engine)
    with serving(create_app(config)) as url:
        yield Console(url, plan_id)


def log_in(console: Console, name: str) -> tuple[httpx.Client, dict[str, str]]:
    browser = httpx.Client(base_url=console.url, timeout=30)
    answer = browser.post("/api/login", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return browser, {CSRF_HEADER: answer.json()["csrf_token"]}


def test_login_list_approve_and_every_refusal_on_record(console):
    plan = f"/api/plans/{console.plan_id}"
    anonymous = httpx.Client(base_url=console.url, timeout=30)
    assert anonymous.get("/api/health").json()["status"] == "ok"
    assert anonymous.get("/api/plans").status_code == 401
    assert anonymous.post(f"{plan}/approve").status_code == 401

    viewer, viewer_csrf = log_in(console, "vera")
    assert viewer.post(f"{plan}/approve", headers=viewer_csrf).status_code == 403

    operator, csrf = log_in(console, "olga")
    listed = operator.get("/api/plans", params={"state": "proposed"}).json()
    assert [p["plan_id"] for p in listed] == [console.plan_id]
    assert operator.post(f"{plan}/approve").status_code == 403, "no CSRF header"
    approved = operator.post(f"{plan}/approve", headers=csrf, json={"comment": "ok"})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert operator.post(f"{plan}/approve", headers=csrf).status_code == 409
    assert operator.get("/api/plans", params={"state": "approved"}).json()[0]["plan_id"] == console.plan_id

    trail = [(e["actor"], e["action"]) for e in reversed(operator.get("/api/audit").json())]
    assert trail[-3:] == [("vera", "login"), ("olga", "login"), ("olga", "plan.approve")]
    assert operator.post("/api/logout", headers=csrf).status_code == 204
    admin, _ = log_in(console, "adam")
    assert [(e["actor"], e["action"]) for e in admin.get("/api/audit", params={"limit": 2}).json()] == [
        ("adam", "login"),
        ("olga", "logout"),
    ]


def test_the_map_layers_are_geojson(console):
    viewer, _ = log_in(console, "vera")
    answer = viewer.get("/api/network")
    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "FeatureCollection"


def test_read_only_routes_keep_to_their_schema(console):
    """Schemathesis's default checks on every GET, a bounded number of generated requests each
    (its pytest plugin, ``from_fixture``, fails on pytest 9: cases are drawn with hypothesis here)."""
    browser, _ = log_in(console, "adam")
    cookies = {SESSION_COOKIE: browser.cookies[SESSION_COOKIE]}
    schema = schemathesis.openapi.from_url(f"{console.url}/openapi.json").include(method="GET")
    schema = schema.exclude(path="/api/events")  # an endless stream: tests/unit/console/test_events.py
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/health",
        "/api/plans",
        "/api/plans/{plan_id}",
        "/api/audit",
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(cookies=cookies)

        check()


def test_several_server_processes_share_sessions_and_agree_on_plans(tmp_path):
    several_processes_share_sessions_and_agree(Settings(var_dir=tmp_path / "var"))


def several_processes_share_sessions_and_agree(config: Settings) -> None:
    """``citybrain console --workers 2`` on the database of ``config``: a session opened on one
    process works on the other, and an approval made through either is in every process's
    (cached) plan list at once (``tests/integration/postgres`` runs it on PostgreSQL)."""
    import os
    import socket
    import subprocess
    import sys
    import time

    engine = database.open_database(config)
    add_people(engine)
    plan_id = stored_plan(engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CITYBRAIN_VAR_DIR": str(config.var_dir)}
    if config.database_url is not None:
        env["CITYBRAIN_DATABASE_URL"] = config.database_url
    command = [sys.executable, "-m", "citybrain.cli", "console", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the console did not start"
                time.sleep(0.2)
        answer = httpx.post(f"{url}/api/login", json={"name": "olga", "password": PASSWORD})
        cookies, csrf = answer.cookies, {CSRF_HEADER: answer.json()["csrf_token"]}

        def states() -> set[str]:
            """The plan's state as a dozen fresh connections see it (the kernel spreads them)."""
            found = set()
            for _ in range(12):
                with httpx.Client(base_url=url, cookies=cookies, timeout=10) as fresh:
                    answer = fresh.get("/api/plans")
                    assert answer.status_code == 200, answer.text
                    found |= {p["state"] for p in answer.json() if p["plan_id"] == plan_id}
            return found

        assert states() == {"proposed"}
        approved = httpx.post(f"{url}/api/plans/{plan_id}/approve", cookies=cookies, headers=csrf)
        assert approved.status_code == 200, approved.text
        assert states() == {"approved"}
    finally:
        server.terminate()
        server.wait(30)
