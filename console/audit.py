"""The audit log: who did what, from where, when; append-only.

Every login (and failed login), logout, approval, rejection and user change is one row. Rows
are written inside the transaction of the change they record, so a change without its row
cannot happen; the database refuses UPDATE and DELETE on the table (migration 0002), and the
console's API only reads it. Failed logins are also what the login rate limit counts
(:func:`failures_since`), so the limit holds across processes and restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    literal,
    or_,
    select,
)

from core import database
from optimizer.proposing.store import UtcDateTime

LOGIN = "login"
LOGIN_FAILED = "login.failed"
LOGIN_THROTTLED = "login.throttled"
LOGOUT = "logout"
PLAN_APPROVE = "plan.approve"
PLAN_APPROVE_REFUSED = "plan.approve.refused"
PLAN_REJECT = "plan.reject"
PLAN_ROLLBACK = "plan.rollback"
USER_ADD = "user.add"
USER_DISABLE = "user.disable"

#: The longest client address kept. An IP address fits; a longer one (a proxy forwards whatever
#: its header said) is cut rather than refused: PostgreSQL, unlike SQLite, refuses a value longer
#: than its column, and a failed login whose entry is refused would go uncounted by the rate limit.
ADDRESS_CHARS = 64

metadata = MetaData()

audit = Table(
    "audit",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("address", String(ADDRESS_CHARS)),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
    Column("detail", JSON, nullable=False),
    Index("ix_audit_at", "at"),
    Index("ix_audit_action_at", "action", "at"),
)


def clip_address(address: str | None) -> str | None:
    """``address`` as stored, here and in the sessions (see :data:`ADDRESS_CHARS`)."""
    return None if address is None else address[:ADDRESS_CHARS]


@dataclass(frozen=True)
class Entry:
    audit_id: int
    at: datetime
    actor: str
    address: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


def record(
    connection: Connection,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    address: str | None = None,
) -> None:
    """Append one entry, in the caller's transaction."""
    connection.execute(
        insert(audit).values(
            at=datetime.now(UTC),
            actor=actor[:128],
            address=clip_address(address),
            action=action,
            target=None if target is None else target[:256],
            detail=dict(detail or {}),
        )
    )


def write(
    engine: Engine,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    address: str | None = None,
) -> None:
    """Append one entry in a transaction of its own."""
    with database.ready(engine).begin() as connection:
        record(connection, actor, action, target, detail, address)


def entries(
    engine: Engine,
    *,
    limit: int = 100,
    before: int | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> list[Entry]:
    """Entries newest first; ``before`` (an ``audit_id``) pages back through older ones.

    ``before`` is compared as a 64-bit integer: PostgreSQL casts a bound value to the column's
    type, and one past the 32-bit ``audit_id`` (which the API accepts) would be an error, not
    "all of them".
    """
    query = select(audit).order_by(audit.c.audit_id.desc()).limit(limit)
    if before is not None:
        query = query.where(audit.c.audit_id < literal(before, BigInteger))
    if action is not None:
        query = query.where(audit.c.action == action)
    if actor is not None:
        query = query.where(audit.c.actor == actor)
    with database.ready(engine).connect() as connection:
        return [Entry(**row._mapping) for row in connection.execute(query)]


def failures_since(engine: Engine, since: datetime, *, name: str, address: str | None) -> tuple[int, int]:
    """Failed logins since ``since``: for account ``name``, and from ``address``."""
    recent = (audit.c.action == LOGIN_FAILED) & (audit.c.at >= since)
    by_name = func.count().filter(audit.c.target == name)
    address = clip_address(address)
    by_address = func.count().filter(audit.c.address == address)
    query = select(by_name, by_address).where(recent, or_(audit.c.target == name, audit.c.address == address))
    with database.ready(engine).connect() as connection:
        account, place = connection.execute(query).one()
    return account, place
