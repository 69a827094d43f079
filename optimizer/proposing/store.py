"""The plan store: every proposed network plan, its lifecycle status and an audit trail.

Two tables of the project database (:mod:`core.database`, whose migration 0001 creates them),
in SQLAlchemy Core with portable types only, so the same code runs on the default SQLite file
and on PostgreSQL (``CITYBRAIN_DATABASE_URL``):

``plans``
    One row per network plan (``plan_id``, the digest :class:`optimizer.plans.model.NetworkPlan`
    derives from its content): method, scenario, creation time, validity window, status, the
    full ``control.plan.proposed.v1`` records exactly as published (so a republish sends the
    same bytes and the console shows what the operator approves, not a re-derivation) and the
    evaluation behind it. ``published_at`` stays empty until the broker acknowledged every
    record; ``publish_error`` says why the last attempt failed. That makes the table an outbox:
    :func:`unpublished` finds what still has to go to Kafka.

    An approval is an outbox entry too (migration 0003): the transaction that moves a plan to
    ``approved`` also writes its ``control.plan.approved.v1`` records (``approval_records``,
    the proposed records with the operator's ``approval``, validated against the contract)
    and ``approved_at``; ``approval_published_at`` stays empty until the broker acknowledged
    them and ``approval_publish_error`` says why the last attempt failed.
    :func:`unpublished_approvals` lists them in approval order.
``plan_events``
    Append-only: each status change (and each publish attempt) with time, actor and note, so
    an operator's approval or rejection can always be traced to a person.

Statuses and the transitions :func:`set_status` allows (:data:`TRANSITIONS`)::

    proposed ──► approved ──► applied ──► superseded
       │  │          │  │         └────► rolled_back
       │  │          │  └──► refused / failed
       │  │          └─────► superseded
       │  └──► rejected
       └─────► superseded

The field's outcomes (applied, refused, failed, rolled back) come from the field adapter's
``control.plan.applied.v1`` records (:mod:`field.lifecycle`). ``rejected``, ``refused``,
``failed``, ``superseded`` and ``rolled_back`` are final: a plan that ran in the field is
replaced by proposing a new plan, never by editing the old row. A transition is one conditional
``UPDATE … WHERE status = <expected>``, so two operators acting at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator

from core import database
from core.errors import CitybrainError
from core.settings import Settings
from optimizer.plans.model import NetworkPlan, format_utc
from schemas import RecordInvalid, contract

PROPOSED = "proposed"
APPROVED = "approved"
REJECTED = "rejected"
APPLIED = "applied"
REFUSED = "refused"
FAILED = "failed"
SUPERSEDED = "superseded"
ROLLED_BACK = "rolled_back"
STATUSES: tuple[str, ...] = (PROPOSED, APPROVED, REJECTED, APPLIED, REFUSED, FAILED, SUPERSEDED, ROLLED_BACK)
#: Where an approval goes: the field adapter consumes it.
APPROVED_TOPIC = "control.plan.approved.v1"
#: The statuses each status may move to; anything else is refused by :func:`set_status`.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    PROPOSED: frozenset({APPROVED, REJECTED, SUPERSEDED}),
    APPROVED: frozenset({APPLIED, REFUSED, FAILED, SUPERSEDED}),
    REJECTED: frozenset(),
    APPLIED: frozenset({SUPERSEDED, ROLLED_BACK}),
    REFUSED: frozenset(),
    FAILED: frozenset(),
    SUPERSEDED: frozenset(),
    ROLLED_BACK: frozenset(),
}


class StoreError(CitybrainError, ValueError):
    """A request the plan store cannot carry out; the message names the plan and why."""


class PlanNotFound(StoreError, LookupError):
    """No plan with that id is stored."""


class PlanExists(StoreError):
    """A plan with that id is stored already (the same content proposed twice)."""


class TransitionRefused(StoreError):
    """A status change the lifecycle does not allow, e.g. applying a plan nobody approved."""


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL keeps the zone (``timestamptz``); SQLite has no zone type and would hand back
    naive values, so they are stored as naive UTC and given their zone back when read. Naive
    input is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise StoreError(f"timestamp {value.isoformat()} has no time zone; the store keeps UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

plans = Table(
    "plans",
    metadata,
    Column("plan_id", String(128), primary_key=True),
    Column("method", String(64), nullable=False),
    Column("scenario", String(256)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("valid_from", UtcDateTime(), nullable=False),
    Column("valid_to", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("records", JSON, nullable=False),
    Column("evaluation", JSON, nullable=False),
    Column("published_at", UtcDateTime()),
    Column("publish_error", Text),
    Column("approved_at", UtcDateTime()),
    Column("approval_records", JSON(none_as_null=True)),
    Column("approval_published_at", UtcDateTime()),
    Column("approval_publish_error", Text),
    # each signal's outcome in the field, from the applied records (migration 0004)
    Column("signal_outcomes", JSON(none_as_null=True)),
    Index("ix_plans_status_created", "status", "created_at"),
)

plan_events = Table(
    "plan_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(128), ForeignKey("plans.plan_id"), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("note", Text, nullable=False, default=""),
)


@dataclass(frozen=True)
class PlanEvent:
    """One line of a plan's audit trail."""

    at: datetime
    status: str
    actor: str
    note: str


@dataclass(frozen=True)
class StoredPlan:
    """A plan as the store holds it; ``events`` is filled by :func:`get` only (oldest first)."""

    plan_id: str
    method: str
    scenario: str | None
    created_at: datetime
    valid_from: datetime
    valid_to: datetime
    status: str
    records: list[dict[str, Any]]
    evaluation: dict[str, Any]
    published_at: datetime | None
    publish_error: str | None
    approved_at: datetime | None = None
    approval_records: list[dict[str, Any]] | None = None
    approval_published_at: datetime | None = None
    approval_publish_error: str | None = None
    #: Contract tls id → its outcome in the field (applied, refused, failed, rolled_back).
    signal_outcomes: dict[str, str] | None = None
    events: tuple[PlanEvent, ...] = ()

    @property
    def published(self) -> bool:
        return self.published_at is not None

    @property
    def approval_pending(self) -> bool:
        """Approved, and the approval not yet acknowledged by the broker."""
        return self.approval_records is not None and self.approval_published_at is None

    def network_plan(self, sumo_ids: Sequence[str] | None = None) -> NetworkPlan:
        """The plan back as the model (``sumo_ids`` map contract tls ids to SUMO ids)."""
        return NetworkPlan.from_records(self.records, sumo_ids)


def open_store(settings: Settings) -> Engine:
    """The project database's engine (:func:`core.database.open_database`)."""
    return database.open_database(settings)


def open_url(url: str) -> Engine:
    """The engine of ``url`` at the newest schema, one per URL and process."""
    return database.engine_for(url)


def _now() -> datetime:
    return datetime.now(UTC)


def append_event(
    connection: Connection, at: datetime, plan_id: str, status: str, actor: str, note: str
) -> None:
    """Add a line to a plan's trail, in the caller's transaction.

    The trail's ids must become visible in id order: the console's live feed resumes after the
    last id it sent and its plan list is cached by the newest id. SQLite has one writer at a time;
    PostgreSQL hands out an id when the row is inserted, not when it commits, so a transaction
    holding id 7 could commit after another's id 8, and a reader that saw 8 would never see 7.
    There an appender first takes the table's write lock (plain reads go on), held until commit.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE plan_events IN EXCLUSIVE MODE"))
    connection.execute(
        insert(plan_events).values(plan_id=plan_id, at=at, status=status, actor=actor, note=note)
    )


def save_proposal(
    engine: Engine,
    plan: NetworkPlan,
    records: Sequence[Mapping[str, Any]],
    *,
    evaluation: Mapping[str, Any] | None = None,
    actor: str = "optimizer",
    note: str = "",
) -> StoredPlan:
    """Store ``plan`` as ``proposed``, unpublished, with the records that will be published.

    ``evaluation`` defaults to the plan's own (:meth:`Evaluation.to_record`); the proposer
    passes a superset carrying the significance test too. Raises :class:`PlanExists` when the
    id is stored already: ids are content digests, so that is the same plan proposed twice,
    and the caller decides whether it is a retry.
    """
    if plan.valid_from is None or plan.valid_to is None or plan.evaluation is None:
        raise StoreError(f"plan {plan.plan_id} needs a validity window and an evaluation to be stored")
    records = [dict(r) for r in records]
    foreign = sorted({str(r.get("plan_id")) for r in records} - {plan.plan_id})
    if not records or foreign:
        raise StoreError(f"plan {plan.plan_id}: records must be this plan's, got plan ids {foreign}")
    assert plan.plan_id is not None
    now = _now()
    row = {
        "plan_id": plan.plan_id,
        "method": plan.method,
        "scenario": plan.evaluation.scenario,
        "created_at": now,
        "valid_from": plan.valid_from,
        "valid_to": plan.valid_to,
        "status": PROPOSED,
        "records": records,
        "evaluation": dict(evaluation) if evaluation is not None else plan.evaluation.to_record(),
        "published_at": None,
        "publish_error": None,
    }
    try:
        with database.ready(engine).begin() as connection:
            connection.execute(insert(plans).values(**row))
            append_event(connection, now, plan.plan_id, PROPOSED, actor, note)
    except IntegrityError:
        raise PlanExists(f"plan {plan.plan_id} is stored already") from None
    return StoredPlan(**row)


def _stored(row: Any, events: tuple[PlanEvent, ...] = ()) -> StoredPlan:
    return StoredPlan(**{c.name: row._mapping[c.name] for c in plans.columns}, events=events)


def get(engine: Engine, plan_id: str) -> StoredPlan:
    """The stored plan with its audit trail; :class:`PlanNotFound` if there is none."""
    with database.ready(engine).connect() as connection:
        row = connection.execute(select(plans).where(plans.c.plan_id == plan_id)).one_or_none()
        if row is None:
            raise PlanNotFound(f"no stored plan {plan_id!r}")
        trail = connection.execute(
            select(plan_events.c.at, plan_events.c.status, plan_events.c.actor, plan_events.c.note)
            .where(plan_events.c.plan_id == plan_id)
            .order_by(plan_events.c.event_id)
        ).all()
    return _stored(row, tuple(PlanEvent(*event) for event in trail))


def list_plans(engine: Engine, status: str | None = None) -> list[StoredPlan]:
    """Stored plans, newest first, optionally of one status (without their audit trails)."""
    query = select(plans).order_by(plans.c.created_at.desc(), plans.c.plan_id)
    if status is not None:
        _check_status(status)
        query = query.where(plans.c.status == status)
    with database.ready(engine).connect() as connection:
        return [_stored(row) for row in connection.execute(query)]


def approval_records(
    records: Sequence[Mapping[str, Any]], actor: str, at: datetime, comment: str = ""
) -> list[dict[str, Any]]:
    """The ``control.plan.approved.v1`` records of an approval: each proposed record as it was
    published, stamped ``at`` and carrying who approved it; :class:`StoreError` if one breaks
    the contract (an approver name outside the identifier pattern, an over-long comment)."""
    stamp = format_utc(at)
    approval: dict[str, Any] = {"approved_by": actor, "approved_at": stamp}
    if comment:
        approval["comment"] = comment
    approved = [{**record, "ts": stamp, "approval": dict(approval)} for record in records]
    topic_contract = contract(APPROVED_TOPIC)
    try:
        for record in approved:
            topic_contract.validate(record)
    except RecordInvalid as exc:
        raise StoreError(f"the approval cannot be published to {APPROVED_TOPIC}: {exc}") from None
    return approved


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise StoreError(f"unknown plan status {status!r}; known: {', '.join(STATUSES)}")


def set_status(engine: Engine, plan_id: str, status: str, actor: str, note: str = "") -> StoredPlan:
    """Move a plan to ``status`` if the lifecycle allows it, recording who did it and why.

    Raises :class:`PlanNotFound`, or :class:`TransitionRefused` naming the current status and
    what it may become. Applying or approving a plan that never reached Kafka is refused too:
    the console and the field adapter act on the published records. Approving also queues the
    approval's records for ``control.plan.approved.v1`` in the same transaction (``note`` is
    their comment), so an approval is never stored without them;
    :func:`optimizer.proposing.propose.approve` then sends them.
    """
    _check_status(status)
    if not actor:
        raise StoreError("a status change needs an actor: the audit trail names who did it")
    now = _now()
    with database.ready(engine).begin() as connection:
        row = connection.execute(
            select(plans.c.status, plans.c.published_at, plans.c.records).where(plans.c.plan_id == plan_id)
        ).one_or_none()
        if row is None:
            raise PlanNotFound(f"no stored plan {plan_id!r}")
        current, published_at, records = row
        if status not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final)"
            raise TransitionRefused(f"plan {plan_id} is {current}; it can become {allowed}, not {status}")
        if status in (APPROVED, APPLIED) and published_at is None:
            raise TransitionRefused(f"plan {plan_id} was never published; it cannot become {status}")
        values: dict[str, Any] = {"status": status}
        if status == APPROVED:
            values.update(
                approved_at=now,
                approval_records=approval_records(records, actor, now, note),
                approval_published_at=None,
                approval_publish_error=None,
            )
        changed = connection.execute(
            update(plans).where(plans.c.plan_id == plan_id, plans.c.status == current).values(**values)
        )
        if changed.rowcount != 1:  # someone else moved it between our read and our write
            raise TransitionRefused(f"plan {plan_id} changed status concurrently; read it again")
        append_event(connection, now, plan_id, status, actor, note)
    return get(engine, plan_id)


#: What one signal's outcome in the field makes of its plan.
FIELD_OUTCOMES = (APPLIED, REFUSED, FAILED, ROLLED_BACK)


def record_signal_outcome(
    engine: Engine, plan_id: str, tls_id: str, outcome: str, actor: str, note: str = ""
) -> StoredPlan:
    """Note one signal's outcome in the field (from its ``control.plan.applied.v1`` record) and
    move the plan when its signals decide it: an approved plan becomes ``refused`` or ``failed``
    as soon as one signal is (the rest of it cannot run as evaluated), ``applied`` once every
    signal is applied; an applied plan becomes ``rolled_back`` when one signal is. An outcome
    that changes nothing (a redelivered record, a late one for a plan already decided) is
    noted on the plan and moves nothing. Raises :class:`PlanNotFound`."""
    if outcome not in FIELD_OUTCOMES:
        raise StoreError(f"unknown field outcome {outcome!r}; known: {', '.join(FIELD_OUTCOMES)}")
    now = _now()
    with database.ready(engine).begin() as connection:
        # Locked as read: two signals' answers come from different partitions, so at once; without
        # the lock PostgreSQL lets the second write back the outcomes it read before the first's.
        row = connection.execute(
            select(plans.c.status, plans.c.records, plans.c.signal_outcomes)
            .where(plans.c.plan_id == plan_id)
            .with_for_update()
        ).one_or_none()
        if row is None:
            raise PlanNotFound(f"no stored plan {plan_id!r}")
        current, records, outcomes = row
        outcomes = {**(outcomes or {}), tls_id: outcome}
        signals = {str(record["tls_id"]) for record in records}
        targets: list[str] = []
        if current == APPROVED and outcome in (REFUSED, FAILED):
            targets = [outcome]
        elif current == APPROVED and all(
            outcomes.get(signal) in (APPLIED, ROLLED_BACK) for signal in signals
        ):
            # A signal rolled back ran the plan first. The answers are keyed by signal, so they come
            # from several partitions: one signal's rollback may be read before another's application.
            targets = [APPLIED, *([ROLLED_BACK] if ROLLED_BACK in outcomes.values() else [])]
        elif current == APPLIED and outcome == ROLLED_BACK:
            targets = [ROLLED_BACK]
        values: dict[str, Any] = {"signal_outcomes": outcomes}
        if targets:
            values["status"] = targets[-1]
        changed = connection.execute(
            update(plans).where(plans.c.plan_id == plan_id, plans.c.status == current).values(**values)
        )
        if changed.rowcount != 1:
            raise TransitionRefused(f"plan {plan_id} changed status concurrently; read it again")
        for target in targets:
            append_event(
                connection, now, plan_id, target, actor, f"signal {tls_id}: {outcome}. {note}".strip()
            )
    return get(engine, plan_id)


def _mark(engine: Engine, plan_id: str, values: Mapping[str, Any], actor: str, note: str) -> None:
    """Update the plan's publish columns and add the attempt to its trail, in one transaction."""
    with database.ready(engine).begin() as connection:
        changed = connection.execute(update(plans).where(plans.c.plan_id == plan_id).values(**values))
        if changed.rowcount != 1:
            raise PlanNotFound(f"no stored plan {plan_id!r}")
        status = connection.execute(select(plans.c.status).where(plans.c.plan_id == plan_id)).scalar_one()
        append_event(connection, _now(), plan_id, status, actor, note[:2000])


def mark_published(engine: Engine, plan_id: str, *, actor: str = "optimizer", note: str = "") -> None:
    """Record that the broker acknowledged every record of the plan."""
    _mark(engine, plan_id, {"published_at": _now(), "publish_error": None}, actor, note or "published")


def mark_publish_failed(engine: Engine, plan_id: str, error: str, *, actor: str = "optimizer") -> None:
    """Record a failed publish: the plan stays stored and unpublished, with the reason."""
    _mark(engine, plan_id, {"publish_error": error[:2000]}, actor, f"publishing failed: {error}")


def mark_approval_published(engine: Engine, plan_id: str, *, actor: str, note: str = "") -> None:
    """Record that the broker acknowledged every record of the plan's approval."""
    values = {"approval_published_at": _now(), "approval_publish_error": None}
    _mark(engine, plan_id, values, actor, note or "approval published")


def mark_approval_publish_failed(engine: Engine, plan_id: str, error: str, *, actor: str) -> None:
    """Record a failed publish of the approval: it stays queued, with the reason."""
    values = {"approval_publish_error": error[:2000]}
    _mark(engine, plan_id, values, actor, f"publishing the approval failed: {error}")


def unpublished(engine: Engine) -> list[StoredPlan]:
    """Proposed plans whose records the broker has not acknowledged yet, oldest first: the
    outbox :func:`optimizer.proposing.propose.publish_pending` drains."""
    query = (
        select(plans)
        .where(plans.c.status == PROPOSED, plans.c.published_at.is_(None))
        .order_by(plans.c.created_at, plans.c.plan_id)
    )
    with database.ready(engine).connect() as connection:
        return [_stored(row) for row in connection.execute(query)]


def unpublished_approvals(engine: Engine) -> list[StoredPlan]:
    """Approved plans whose approval the broker has not acknowledged yet, in approval order.

    Only plans still ``approved``: once a plan moved on (superseded, say) its stale approval
    must not reach the field.
    """
    query = (
        select(plans)
        .where(
            plans.c.status == APPROVED,
            plans.c.approval_records.is_not(None),
            plans.c.approval_published_at.is_(None),
        )
        .order_by(plans.c.approved_at, plans.c.plan_id)
    )
    with database.ready(engine).connect() as connection:
        return [_stored(row) for row in connection.execute(query)]
