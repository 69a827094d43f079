"""Login sessions and their CSRF tokens.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256 (the
tokens are 256 random bits, so a fast hash is enough), so a leaked database opens no session.
Each session has a second random token for CSRF: handed to the page at login, sent back in the
``X-CSRF-Token`` header of every state-changing request, and compared with the stored hash. A
cross-site form can make the browser send the cookie but cannot read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)

from console import audit
from console.users import USER_COLUMNS, User, users
from core import database
from optimizer.proposing.store import UtcDateTime

metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("session_id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey(users.c.user_id), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("csrf_hash", String(64), nullable=False),
    Column("address", String(audit.ADDRESS_CHARS)),
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_expires_at", "expires_at"),
)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: whose, until when, and the hash its CSRF token must match."""

    session_id: int
    user: User
    expires_at: datetime
    csrf_hash: str

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(_digest(token), self.csrf_hash)


@dataclass(frozen=True)
class Opened:
    """What a login hands out once: the cookie's token and the CSRF token."""

    token: str
    csrf_token: str
    expires_at: datetime


def open_session(engine: Engine, user: User, lifetime_s: int, address: str | None) -> Opened:
    """Start a session for ``user`` and audit the login; expired sessions are swept out on the way."""
    token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=lifetime_s)
    with database.ready(engine).begin() as connection:
        connection.execute(delete(sessions).where(sessions.c.expires_at <= now))
        connection.execute(
            insert(sessions).values(
                token_hash=_digest(token),
                user_id=user.user_id,
                created_at=now,
                expires_at=expires_at,
                csrf_hash=_digest(csrf_token),
                address=audit.clip_address(address),
            )
        )
        audit.record(connection, user.name, audit.LOGIN, user.name, {"role": user.role}, address)
    return Opened(token, csrf_token, expires_at)


def find(engine: Engine, token: str | None) -> Session | None:
    """The live session of ``token``: ``None`` if unknown, expired, or its user is disabled."""
    if not token:
        return None
    query = (
        select(sessions.c.session_id, sessions.c.expires_at, sessions.c.csrf_hash, *USER_COLUMNS)
        .join(users, users.c.user_id == sessions.c.user_id)
        .where(
            sessions.c.token_hash == _digest(token),
            sessions.c.expires_at > datetime.now(UTC),
            users.c.disabled.is_(False),
        )
    )
    with database.ready(engine).connect() as connection:
        row = connection.execute(query).one_or_none()
    if row is None:
        return None
    user = User(row.user_id, row.name, row.role, row.disabled, row.created_at)
    return Session(row.session_id, user, row.expires_at, row.csrf_hash)


def close(engine: Engine, session: Session, address: str | None) -> None:
    """End ``session`` and audit the logout."""
    with database.ready(engine).begin() as connection:
        connection.execute(delete(sessions).where(sessions.c.session_id == session.session_id))
        audit.record(connection, session.user.name, audit.LOGOUT, session.user.name, address=address)
