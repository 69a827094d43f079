"""The field service's record of every approved signal timing it received: what became of it,
and the ``control.plan.applied.v1`` record that says so, kept until the broker acknowledged it.

One row per ``(plan_id, tls_id)``, claimed by an insert before anything is sent to a signal: a
redelivered approval (a consumer restarted before its offset was committed, a drain that sent
twice) finds the row and is not applied again. The answer is an outbox entry, like the plan
store's proposals: written with the outcome, published after, resent by :func:`unpublished`
until acknowledged. Migration 0004 creates the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Engine, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.exc import IntegrityError

from core import database
from optimizer.proposing.store import UtcDateTime

#: Handed to the signal, not yet confirmed; then one of the adapter's outcomes.
SUBMITTED = "submitted"
#: Applied, judged worse by the watcher, the previous timing handed back to the signal.
ROLLING_BACK = "rolling_back"
#: Waiting for the signal's confirmation (of the plan, or of the previous timing).
WAITING = (SUBMITTED, ROLLING_BACK)

metadata = MetaData()

field_applications = Table(
    "field_applications",
    metadata,
    Column("plan_id", String(128), primary_key=True),
    Column("tls_id", String(128), primary_key=True),
    Column("adapter", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("effective_at", UtcDateTime()),
    Column("record", JSON(none_as_null=True)),
    Column("published_at", UtcDateTime()),
    Column("publish_error", Text),
    # the timing the signal ran before (what a rollback restores), and the watcher's verdict
    Column("previous", JSON(none_as_null=True)),
    Column("watched_at", UtcDateTime()),
    Column("verdict", JSON(none_as_null=True)),
)


@dataclass(frozen=True)
class FieldApplication:
    plan_id: str
    tls_id: str
    adapter: str
    outcome: str
    detail: str
    received_at: datetime
    effective_at: datetime | None
    record: dict[str, Any] | None
    published_at: datetime | None
    publish_error: str | None
    previous: dict[str, Any] | None = None
    watched_at: datetime | None = None
    verdict: dict[str, Any] | None = None

    @property
    def settled_at(self) -> datetime | None:
        """When the plan's timing ran as planned: after the cycles over which its offset was
        moved (none when it took over at once); None when it never took effect."""
        if self.effective_at is None:
            return None
        answer = self.record or {}
        cycles = answer.get("application", {}).get("transition_cycles", 0)
        return self.effective_at + timedelta(seconds=cycles * answer.get("cycle_s", 0))


def claim(engine: Engine, plan_id: str, tls_id: str, adapter: str, approved: Mapping[str, Any]) -> bool:
    """Take ``(plan_id, tls_id)`` for this service, keeping the approved record it answers until
    the answer replaces it; False when it was received before."""
    row = {
        "plan_id": plan_id,
        "tls_id": tls_id,
        "adapter": adapter,
        "outcome": SUBMITTED,
        "detail": "",
        "received_at": datetime.now(UTC),
        "record": dict(approved),
    }
    try:
        with database.ready(engine).begin() as connection:
            connection.execute(insert(field_applications).values(**row))
    except IntegrityError:
        return False
    return True


def settle(
    engine: Engine,
    plan_id: str,
    tls_id: str,
    outcome: str,
    detail: str,
    record: Mapping[str, Any],
    effective_at: datetime | None = None,
) -> None:
    """Record what became of ``(plan_id, tls_id)`` with the applied record to publish."""
    _update(
        engine,
        plan_id,
        tls_id,
        outcome=outcome,
        detail=detail[:1000],
        record=dict(record),
        effective_at=effective_at,
    )


def get(engine: Engine, plan_id: str, tls_id: str) -> FieldApplication | None:
    with database.ready(engine).connect() as connection:
        row = connection.execute(
            select(field_applications).where(
                field_applications.c.plan_id == plan_id, field_applications.c.tls_id == tls_id
            )
        ).one_or_none()
    return None if row is None else FieldApplication(**row._mapping)


def submitted(engine: Engine) -> list[FieldApplication]:
    """Applications handed to a signal and never settled (their ``record`` the approved one, or
    for a rollback the applied answer)."""
    table = field_applications
    query = select(table).where(table.c.outcome.in_(WAITING)).order_by(table.c.received_at)
    with database.ready(engine).connect() as connection:
        return [FieldApplication(**row._mapping) for row in connection.execute(query)]


def unpublished(engine: Engine) -> list[FieldApplication]:
    """Settled applications whose answer the broker has not acknowledged, oldest first."""
    table = field_applications
    query = (
        select(table)
        .where(table.c.outcome.not_in(WAITING), table.c.published_at.is_(None))
        .order_by(table.c.received_at, table.c.plan_id, table.c.tls_id)
    )
    with database.ready(engine).connect() as connection:
        return [FieldApplication(**row._mapping) for row in connection.execute(query)]


def mark_published(engine: Engine, plan_id: str, tls_id: str, error: str | None = None) -> None:
    """The broker acknowledged the record (``error`` None), or why it did not."""
    values = {"publish_error": error} if error else {"published_at": datetime.now(UTC), "publish_error": None}
    _update(engine, plan_id, tls_id, **values)


def _update(engine: Engine, plan_id: str, tls_id: str, **values: Any) -> None:
    with database.ready(engine).begin() as connection:
        connection.execute(
            update(field_applications)
            .where(field_applications.c.plan_id == plan_id, field_applications.c.tls_id == tls_id)
            .values(**values)
        )


def remember_previous(engine: Engine, plan_id: str, tls_id: str, previous: Mapping[str, Any]) -> None:
    """Keep the timing the signal ran before this plan (a rollback restores it)."""
    _update(engine, plan_id, tls_id, previous=dict(previous))


def due_for_watching(engine: Engine, took_effect_before: datetime) -> list[FieldApplication]:
    """Applied timings not yet judged that took effect before ``took_effect_before``."""
    table = field_applications
    query = (
        select(table)
        .where(
            table.c.outcome == "applied",
            table.c.watched_at.is_(None),
            table.c.effective_at <= took_effect_before,
        )
        .order_by(table.c.effective_at)
    )
    with database.ready(engine).connect() as connection:
        return [FieldApplication(**row._mapping) for row in connection.execute(query)]


def judged(engine: Engine, plan_id: str, tls_id: str, verdict: Mapping[str, Any], rolling_back: bool) -> None:
    """Record the watcher's verdict; ``rolling_back`` when the previous timing was handed back."""
    values: dict[str, Any] = {"watched_at": datetime.now(UTC), "verdict": dict(verdict)}
    if rolling_back:
        values.update(outcome=ROLLING_BACK, published_at=None)
    _update(engine, plan_id, tls_id, **values)


def of_plan(engine: Engine, plan_id: str) -> list[FieldApplication]:
    """Every signal's application of ``plan_id``, by tls id."""
    table = field_applications
    query = select(table).where(table.c.plan_id == plan_id).order_by(table.c.tls_id)
    with database.ready(engine).connect() as connection:
        return [FieldApplication(**row._mapping) for row in connection.execute(query)]
