"""The console's users: a name, a role, an argon2 password hash, and whether they are disabled.

Roles: ``viewer`` reads; ``operator`` also approves and rejects plans and reads the audit log;
``admin`` may do what an operator may (users themselves are managed from the CLI, by whoever
runs it on the server). A user is disabled, never deleted, so the audit log's names keep
pointing at someone; a disabled user's sessions stop working at their next request.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    false,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from console import audit
from core import database
from core.errors import CitybrainError
from optimizer.proposing.store import UtcDateTime

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES: tuple[str, ...] = (VIEWER, OPERATOR, ADMIN)
#: Roles that may approve or reject a plan and read the audit log.
DECIDERS = frozenset({OPERATOR, ADMIN})
#: Within the contracts' identifier pattern: the name goes into an approval's ``approved_by``.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PASSWORD_CHARS = 12
#: argon2 hashes whatever it is given: an unbounded password is an unbounded CPU bill.
MAX_PASSWORD_CHARS = 1024

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime(), nullable=False),
    CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="ck_users_role"),
)

# RFC 9106's second recommended parameter set (argon2id, 64 MiB, 3 passes): ~50 ms a hash here.
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name costs what a wrong password does."""
    return _HASHER.hash("no user has this password")


class UserError(CitybrainError, ValueError):
    """A user request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime

    @property
    def decides(self) -> bool:
        """Whether the user may approve and reject plans."""
        return self.role in DECIDERS


USER_COLUMNS = (users.c.user_id, users.c.name, users.c.role, users.c.disabled, users.c.created_at)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"a password has at most {MAX_PASSWORD_CHARS} characters")


def add(engine: Engine, name: str, role: str, password: str, *, actor: str) -> User:
    """Create an enabled user; the audit log names ``actor`` as who did it."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"user name {name!r}: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if role not in ROLES:
        raise UserError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    check_password(password)
    row = {
        "name": name,
        "role": role,
        "password_hash": _HASHER.hash(password),
        "disabled": False,
        "created_at": datetime.now(UTC),
    }
    try:
        with database.ready(engine).begin() as connection:
            user_id = connection.execute(insert(users).values(**row)).inserted_primary_key[0]
            audit.record(connection, actor, audit.USER_ADD, name, {"role": role})
    except IntegrityError:
        raise UserError(f"user {name!r} exists already") from None
    return User(user_id, name, role, False, row["created_at"])


def get(engine: Engine, name: str) -> User:
    with database.ready(engine).connect() as connection:
        row = connection.execute(select(*USER_COLUMNS).where(users.c.name == name)).one_or_none()
    if row is None:
        raise UserError(f"no user {name!r}")
    return User(*row)


def list_users(engine: Engine) -> list[User]:
    """Every user, disabled ones too, by name."""
    with database.ready(engine).connect() as connection:
        return [User(*row) for row in connection.execute(select(*USER_COLUMNS).order_by(users.c.name))]


def disable(engine: Engine, name: str, *, actor: str) -> User:
    """Disable ``name``: no new login, and their open sessions stop working."""
    with database.ready(engine).begin() as connection:
        row = connection.execute(select(users.c.disabled).where(users.c.name == name)).one_or_none()
        if row is None:
            raise UserError(f"no user {name!r}")
        if row.disabled:
            raise UserError(f"user {name!r} is disabled already")
        connection.execute(update(users).where(users.c.name == name).values(disabled=True))
        audit.record(connection, actor, audit.USER_DISABLE, name)
    return get(engine, name)


def verify(engine: Engine, name: str, password: str) -> User | None:
    """The enabled user ``name`` if ``password`` is theirs, else ``None`` (whichever part was wrong).

    A hash made with weaker parameters than today's is replaced on a successful check.
    """
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    with database.ready(engine).connect() as connection:
        row = connection.execute(
            select(*USER_COLUMNS, users.c.password_hash).where(users.c.name == name)
        ).one_or_none()
    stored = _dummy_hash() if row is None else row.password_hash
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled:
        return None
    if _HASHER.check_needs_rehash(stored):
        with database.ready(engine).begin() as connection:
            connection.execute(
                update(users)
                .where(users.c.user_id == row.user_id)
                .values(password_hash=_HASHER.hash(password))
            )
    return User(row.user_id, row.name, row.role, row.disabled, row.created_at)
