"""What the console's tests share: a database with an operator, a viewer and an admin, and
stored plans on cologne1 (its own program passes the safety rules; a 1 s green does not)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from console import users
from console.app import CSRF_HEADER
from optimizer.plans.model import Evaluation, KpiEstimate, NetworkPlan, Phase
from optimizer.plans.sumo_programs import read_net_programs
from optimizer.proposing import store
from tests.unit.optimizer.conftest import resco_net

PASSWORD = "correct horse battery"
START = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
PEOPLE = {"olga": users.OPERATOR, "vera": users.VIEWER, "adam": users.ADMIN}


def add_people(engine: Engine) -> None:
    for name, role in PEOPLE.items():
        users.add(engine, name, role, PASSWORD, actor="test")


def stored_plan(
    engine: Engine,
    *,
    scenario: str = "resco/cologne1",
    green_s: float | None = None,
    offset_s: float | None = None,
    published: bool = True,
) -> str:
    """Store (and by default mark published) cologne1's program as a plan (its first green
    ``green_s`` long, its offset ``offset_s``, when given); its id."""
    (own,) = read_net_programs(resco_net("cologne1"))
    if offset_s is not None:
        own = dataclasses.replace(own, offset_s=offset_s)
    if green_s is not None:
        first = own.phases[0]
        phases = (Phase(first.state, green_s, min(green_s, first.min_s), first.max_s), *own.phases[1:])
        own = dataclasses.replace(own, phases=phases, cycle_s=None)
    plan = NetworkPlan(
        signals=(own,),
        method="coordinated",
        valid_from=START,
        valid_to=START + timedelta(hours=3),
        evaluation=Evaluation(
            scenario=scenario,
            seeds=(1, 2, 3),
            baseline={"resco_delay": KpiEstimate(44.0, 1.0, (42.0, 46.0))},
            plan={"resco_delay": KpiEstimate(30.0, 1.0, (28.0, 32.0))},
            baseline_method="fixed",
            lake_versions={"gold.turning_movements_15min": 3, "gold.link_state_15min": 3},
        ),
    )
    store.save_proposal(engine, plan, plan.to_records(ts=START))
    if published:
        store.mark_published(engine, plan.plan_id)
    assert plan.plan_id is not None
    return plan.plan_id


def client(app, address: str = "10.0.0.1", https: bool = False) -> TestClient:
    return TestClient(
        app, base_url="https://testserver" if https else "http://testserver", client=(address, 5000)
    )


def logged_in(app, name: str) -> tuple[TestClient, dict[str, str]]:
    """A client with ``name``'s session cookie, and the CSRF header for its POSTs."""
    browser = client(app)
    answer = browser.post("/api/login", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return browser, {CSRF_HEADER: answer.json()["csrf_token"]}


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` served by a real uvicorn in a thread, on a loopback socket bound before it starts
    (no port race); yields its base URL and stops it afterwards."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
