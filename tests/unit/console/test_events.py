"""Live updates: the event stream on its own (fast polls), then ``GET /api/events`` on a real
uvicorn server: 401 without a session, a ``plan`` event soon after a proposal is stored and
after an approval through the API, and an ``end`` when the session is logged out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import orjson
import pytest

from console import events, sessions, users
from console.app import CSRF_HEADER, SESSION_COOKIE, create_app
from tests.unit.console.plans_and_users import PASSWORD, serving, stored_plan


def parse(chunk: bytes) -> dict:
    """One server-sent event's fields (``data`` parsed as JSON)."""
    fields = dict(line.split(": ", 1) for line in chunk.decode().strip().splitlines() if ": " in line)
    if "data" in fields:
        fields["data"] = orjson.loads(fields["data"])
    return fields


def test_the_stream_sends_plan_changes_heartbeats_and_ends_at_logout(engine):
    olga = users.verify(engine, "olga", PASSWORD)
    opened = sessions.open_session(engine, olga, 3600, None)
    seen: list[bytes] = []

    async def run() -> None:
        chunks = events.stream(engine, opened.token, poll_s=0.02, heartbeat_s=0.2)
        assert (await anext(chunks)).startswith(b"retry: ")
        plan_id = stored_plan(engine, published=False)
        async for chunk in chunks:
            seen.append(chunk)
            if chunk.startswith(b": heartbeat"):
                sessions.close(engine, sessions.find(engine, opened.token), None)
        assert parse(seen[0])["data"] == {**parse(seen[0])["data"], "plan_id": plan_id, "change": "proposed"}

    anyio.run(run)
    plan = parse(seen[0])
    assert plan["event"] == "plan" and plan["id"].isdigit()
    assert b": heartbeat\n\n" in seen, "a quiet stream sends heartbeats"
    assert parse(seen[-1])["event"] == "end", "logging out closes the stream"


def test_a_reconnecting_browser_gets_what_it_missed(engine):
    olga = users.verify(engine, "olga", PASSWORD)
    opened = sessions.open_session(engine, olga, 3600, None)
    before = events.last_event_id(engine)
    plan_id = stored_plan(engine)  # proposed, then published: two lines while disconnected

    async def first_two() -> list[dict]:
        chunks = events.stream(engine, opened.token, after=before, poll_s=0.02)
        await anext(chunks)
        got = [parse(await anext(chunks)), parse(await anext(chunks))]
        await chunks.aclose()
        return got

    missed = anyio.run(first_two)
    assert [(m["event"], m["data"]["plan_id"], m["data"]["state"]) for m in missed] == [
        ("plan", plan_id, "proposed"),
        ("plan", plan_id, "proposed"),
    ]
    assert int(missed[-1]["id"]) == events.last_event_id(engine)
    assert events.resume_from(missed[-1]["id"]) == int(missed[-1]["id"])
    assert events.resume_from("nonsense") is None and events.resume_from("9" * 40) is None


@pytest.fixture
def server(settings, engine) -> Iterator[str]:
    with serving(create_app(settings)) as url:
        yield url


def next_event(lines: Iterator[str], kind: str, within_s: float = 10.0) -> dict:
    """The next event of ``kind`` on the stream (other events and comments skipped)."""
    deadline, fields = time.monotonic() + within_s, {}
    for line in lines:
        assert time.monotonic() < deadline, f"no {kind} event within {within_s} s"
        if line:
            key, _, value = line.partition(": ")
            fields[key] = value
        elif fields.get("event") == kind:
            return {**fields, "data": orjson.loads(fields["data"])}
        else:
            fields = {}
    raise AssertionError(f"the stream ended before a {kind} event")


def test_events_need_a_session_and_show_a_new_proposal_and_an_approval(server, engine):
    assert httpx.get(f"{server}/api/events").status_code == 401
    with httpx.Client(base_url=server, timeout=30) as browser:
        csrf = {
            CSRF_HEADER: browser.post("/api/login", json={"name": "olga", "password": PASSWORD}).json()[
                "csrf_token"
            ]
        }
        with browser.stream("GET", "/api/events") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            plan_id = stored_plan(engine)
            proposed = next_event(lines, "plan")
            assert proposed["data"]["plan_id"] == plan_id and proposed["data"]["change"] == "proposed"

            with httpx.Client(
                base_url=server, timeout=30, cookies={SESSION_COOKIE: browser.cookies[SESSION_COOKIE]}
            ) as other:
                assert other.post(f"/api/plans/{plan_id}/approve", headers=csrf).status_code == 200
            while (approved := next_event(lines, "plan"))["data"]["change"] != "approved":
                pass
            assert approved["data"] == {**approved["data"], "plan_id": plan_id, "state": "approved"}

            browser.post("/api/logout", headers=csrf)
            assert next_event(lines, "end")["data"]["reason"].startswith("logged out")
