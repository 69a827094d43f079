"""The project's one database: one SQLAlchemy engine per URL and process, at the newest schema.

The plan store, the console's users and sessions and the audit log share it (SQLite under the
var folder by default, PostgreSQL by ``CITYBRAIN_DATABASE_URL``). Its schema is versioned with
Alembic: the scripts in ``core/migrations/versions`` are written by hand and applied on the first
use of a URL in a process, so a fresh checkout, an old database and a production server reach the
same tables without a separate step. A database the plan store made before migrations existed
(its tables, no ``alembic_version``) is adopted: stamped at revision 1, then upgraded.
"""

from __future__ import annotations

import functools
import weakref
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from filelock import FileLock
from sqlalchemy import URL, Connection, Engine, create_engine, inspect, make_url, text
from sqlalchemy.exc import ArgumentError

from core.errors import CitybrainError
from core.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
#: The revision whose tables the plan store used to create itself (``metadata.create_all``).
PLAN_STORE_REVISION = "0001"
PLAN_STORE_TABLES = frozenset({"plans", "plan_events"})
#: Any constant both processes agree on: PostgreSQL's advisory lock serialising upgrades.
_PG_UPGRADE_LOCK = 0x636974796272

_UPGRADED: weakref.WeakSet[Engine] = weakref.WeakSet()
#: The backends the migrations are written and tested for, each with the one driver installed
#: (``setup.cfg``); a URL naming the backend alone gets that driver, so ``postgresql://`` means
#: psycopg 3, not SQLAlchemy's default psycopg2, which is not installed.
DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}
URL_FORMS = "sqlite:///path/to/citybrain.db or postgresql+psycopg://user:password@host:5432/citybrain"


class UnsupportedDatabase(CitybrainError, ValueError):
    """The database URL names a backend or driver citybrain does not run on; the message says which."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our scripts, run on ``connection`` (see ``migrations/env.py``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head() -> str:
    """The newest revision of the scripts."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def revision(connection: Connection) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def _sqlite_file(engine: Engine) -> Path | None:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database)
    return None


def _upgrade_lock(engine: Engine) -> AbstractContextManager[object]:
    """Two processes starting on a fresh SQLite file would both create the tables: one waits."""
    path = _sqlite_file(engine)
    return FileLock(f"{path}.migrate.lock") if path is not None else nullcontext()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (once per engine and process)."""
    if engine in _UPGRADED:
        return
    with _upgrade_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK})
        current = revision(connection)
        if current != head():
            config = alembic_config(connection)
            if current is None and set(inspect(connection).get_table_names()) >= PLAN_STORE_TABLES:
                command.stamp(config, PLAN_STORE_REVISION)
            command.upgrade(config, "head")
    _UPGRADED.add(engine)


def ready(engine: Engine) -> Engine:
    """``engine`` upgraded (an engine made elsewhere, a test's say, is upgraded on first use)."""
    upgrade(engine)
    return engine


def supported_url(url: str) -> URL:
    """``url`` parsed, with its backend's driver filled in; :class:`UnsupportedDatabase` unless it
    names SQLite or PostgreSQL through the installed driver (the message hides any password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedDatabase(f"the database URL is not a URL; expected {URL_FORMS}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in DRIVERS or driver not in ("", DRIVERS[backend]):
        shown = parsed.render_as_string(hide_password=True)
        raise UnsupportedDatabase(
            f"database URL {shown}: citybrain runs on SQLite or on PostgreSQL through psycopg 3, "
            f"not {parsed.drivername}; expected {URL_FORMS}"
        )
    return parsed.set(drivername=f"{backend}+{DRIVERS[backend]}")


@functools.cache
def engine_for(url: str) -> Engine:
    """The engine (with its connection pool) of ``url``, upgraded; one per URL and process.

    For a SQLite file its folder is created too (SQLite makes the file, not its folder), so the
    local profile works on a fresh checkout. A server's pooled connections are tested before use
    (``pool_pre_ping``): one the server dropped (a restart, a failover, a proxy's idle timeout)
    is replaced rather than failing the request that drew it.
    """
    parsed = supported_url(url)
    engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    path = _sqlite_file(engine)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(engine)
    return engine


def open_database(settings: Settings) -> Engine:
    """The engine of ``settings.sqlalchemy_url``."""
    return engine_for(settings.sqlalchemy_url)
