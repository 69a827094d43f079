"""Live updates for the console's pages: server-sent events fed from the plan store.

``GET /api/events`` streams a ``plan`` event for every line the plan store's trail
(``plan_events``) gains: a plan proposed, approved, rejected, or published. Its ``data`` is
``{"plan_id", "state", "change", "at"}`` (``state`` the plan's status now, ``change`` the status
that line recorded) and its ``id`` the trail's ``event_id``, so a browser's ``EventSource``
resumes after a dropped connection from ``Last-Event-ID`` without missing a change. A comment
line every :data:`HEARTBEAT_S` keeps proxies from closing an idle stream; an ``end`` event
closes it when the session is logged out or expires.

Why the store and not a consumer of ``control.plan.proposed.v1``: the store sees every
transition (approvals and rejections never pass through that topic), works while the broker is
down or restarted (the embedded one keeps nothing across a restart), needs no consumer group
per console process (group joins on Tansu take 5–23 s), and its append-only trail's ids give
resumption for free. The cost is one indexed query a second per open stream, run in a worker
thread so the event loop never waits on the database.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from sqlalchemy import BigInteger, Engine, func, literal, select

from console import sessions
from core import database
from optimizer.proposing import store

#: How often the store is asked for changes (a new proposal shows within about this long).
POLL_S = 1.0
#: Silence longer than this gets a comment line, so proxies and clients see the stream alive.
HEARTBEAT_S = 15.0
#: A stream ends after this long and the browser reconnects (``RETRY_MS``) from its last id:
#: bounds how long a server shutdown waits for open streams.
MAX_STREAM_S = 300.0
RETRY_MS = 3000
#: Most trail lines read per poll; a longer backlog is sent over the following polls.
BATCH = 500


def last_event_id(engine: Engine) -> int:
    """The newest line of the plan store's trail (0 when empty)."""
    with database.ready(engine).connect() as connection:
        newest = select(func.coalesce(func.max(store.plan_events.c.event_id), 0))
        return connection.execute(newest).scalar_one()


def changes_since(engine: Engine, after: int, limit: int = BATCH) -> list[dict[str, Any]]:
    """Trail lines after ``after``, oldest first, each with its plan's status now (``after``,
    from a browser's ``Last-Event-ID``, is compared as a 64-bit integer: PostgreSQL would cast it
    to the 32-bit ``event_id`` and fail on a larger one)."""
    events, plans = store.plan_events, store.plans
    query = (
        select(
            events.c.event_id,
            events.c.plan_id,
            events.c.status,
            events.c.at,
            plans.c.status.label("plan_status"),
        )
        .join(plans, plans.c.plan_id == events.c.plan_id)
        .where(events.c.event_id > literal(after, BigInteger))
        .order_by(events.c.event_id)
        .limit(limit)
    )
    with database.ready(engine).connect() as connection:
        return [
            {
                "event_id": row.event_id,
                "plan_id": row.plan_id,
                "state": row.plan_status,
                "change": row.status,
                "at": row.at.isoformat().replace("+00:00", "Z"),
            }
            for row in connection.execute(query)
        ]


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    """One server-sent event (JSON data on one line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def resume_from(last_event_id_header: str | None) -> int | None:
    """The trail id a reconnecting browser saw last, or ``None`` (start from now)."""
    if last_event_id_header and last_event_id_header.isdigit() and len(last_event_id_header) < 19:
        return int(last_event_id_header)
    return None


async def stream(
    engine: Engine,
    token: str | None,
    *,
    after: int | None = None,
    disconnected: Callable[[], Awaitable[bool]] | None = None,
    poll_s: float = POLL_S,
    heartbeat_s: float = HEARTBEAT_S,
    max_s: float = MAX_STREAM_S,
) -> AsyncIterator[bytes]:
    """The byte chunks of one client's event stream (see the module docstring).

    ``token`` is the session cookie's, checked at every poll; ``after`` the trail id to resume
    after (default: the newest now); ``disconnected`` tells when the client went away.
    """
    if after is None:
        after = await anyio.to_thread.run_sync(last_event_id, engine)
    yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
    started = last_sent = time.monotonic()
    while time.monotonic() - started < max_s:
        if disconnected is not None and await disconnected():
            return
        if await anyio.to_thread.run_sync(sessions.find, engine, token) is None:
            yield frame("end", {"reason": "logged out, or the session expired"})
            return
        for change in await anyio.to_thread.run_sync(changes_since, engine, after):
            after = change.pop("event_id")
            yield frame("plan", change, after)
            last_sent = time.monotonic()
        if time.monotonic() - last_sent >= heartbeat_s:
            yield b": heartbeat\n\n"
            last_sent = time.monotonic()
        await anyio.sleep(poll_s)
