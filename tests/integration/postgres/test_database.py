"""The project database on a real PostgreSQL server: the migrations reach the schema the code
declares, the audit log's triggers refuse every way of rewriting it, processes starting at once
upgrade a fresh database once, and a connection the server dropped is not handed out again."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from console import audit
from core import database
from optimizer.proposing import store
from tests.unit.core.test_database import declared
from tests.unit.optimizer.test_store import saved

pytestmark = pytest.mark.integration


def test_a_fresh_database_is_migrated_to_what_the_code_declares(postgres_url):
    engine = database.engine_for(postgres_url)
    with engine.connect() as connection:
        assert connection.dialect.name == "postgresql"
        assert database.revision(connection) == database.head()
        assert compare_metadata(MigrationContext.configure(connection), declared()) == []


def test_the_audit_log_refuses_update_delete_and_truncate(postgres_url):
    engine = database.engine_for(postgres_url)
    audit.write(engine, "olga", audit.LOGIN, "olga", {"role": "operator"}, address="10.0.0.1")
    for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit", "TRUNCATE audit"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action, entry.detail) == ("olga", audit.LOGIN, {"role": "operator"})


# Each process opens the database as the console or the CLI does, at the same moment.
_OPEN = """
import sys
from core import database
database.engine_for(sys.argv[1])
"""


def test_processes_starting_at_once_upgrade_a_fresh_database_once(postgres_url):
    starting = [
        subprocess.Popen([sys.executable, "-c", _OPEN, postgres_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    failures = [p.stderr.read() for p in starting if p.wait(timeout=120) != 0]
    assert failures == []
    engine = database.engine_for(postgres_url)
    with engine.connect() as connection:
        assert database.revision(connection) == database.head()
        assert {"plans", "users", "audit"} <= set(inspect(connection).get_table_names())


def test_a_connection_the_server_dropped_is_replaced_not_handed_out(postgres_url):
    engine = database.engine_for(postgres_url)
    plan_id = saved(engine).plan_id  # leaves a connection in the pool
    outside = create_engine(postgres_url)
    with outside.connect() as connection:  # as a restart, a failover or a proxy's idle timeout would
        dropped = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    outside.dispose()
    assert dropped >= 1
    assert store.get(engine, plan_id).status == store.PROPOSED
