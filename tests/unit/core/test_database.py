"""The project database's migrations: a fresh database reaches the newest schema, that schema is
exactly what the code's tables declare, and a plan store made by the old ``create_all`` is
adopted (stamped at revision 1, then upgraded) with its plans kept."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, text

from console import audit, sessions, users
from core import database
from field import applications
from optimizer.proposing import store
from tests.unit.optimizer.test_store import saved, small_plan


def declared() -> MetaData:
    """Every table the code declares, in one metadata."""
    everything = MetaData()
    for metadata in (
        store.metadata,
        users.metadata,
        sessions.metadata,
        audit.metadata,
        applications.metadata,
    ):
        for table in metadata.tables.values():
            table.to_metadata(everything)
    return everything


def test_a_fresh_database_is_migrated_to_what_the_code_declares(tmp_path):
    engine = database.engine_for(f"sqlite:///{tmp_path / 'new' / 'citybrain.db'}")
    with engine.connect() as connection:
        assert database.revision(connection) == database.head() == "0004"
        assert compare_metadata(MigrationContext.configure(connection), declared()) == []


def test_a_plan_store_made_by_create_all_is_adopted_with_its_plans(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = create_engine(url)
    with old.begin() as connection:  # the tables the store made before migrations: revision 0001's
        command.upgrade(database.alembic_config(connection), database.PLAN_STORE_REVISION)
        connection.execute(text("DROP TABLE alembic_version"))
    plan = small_plan()
    with old.begin() as connection:
        connection.execute(
            store.plans.insert().values(
                plan_id=plan.plan_id,
                method=plan.method,
                scenario="corridor",
                created_at=plan.valid_from,
                valid_from=plan.valid_from,
                valid_to=plan.valid_to,
                status=store.PROPOSED,
                records=plan.to_records(),
                evaluation={},
            )
        )
    old.dispose()

    engine = database.engine_for(url)
    with engine.connect() as connection:
        assert database.revision(connection) == database.head()
        assert {"users", "sessions", "audit"} <= set(inspect(connection).get_table_names())
        assert compare_metadata(MigrationContext.configure(connection), declared()) == []
    assert store.get(engine, plan.plan_id).status == store.PROPOSED


def test_an_engine_made_elsewhere_is_upgraded_on_first_use_once(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    saved(engine)  # the store upgrades the engine it is given
    with engine.connect() as connection:
        assert database.revision(connection) == database.head()
    database.upgrade(engine)  # a no-op now
    assert len(store.list_plans(engine)) == 1


def test_a_postgresql_url_gets_the_installed_driver_and_others_are_refused_without_their_password():
    assert database.supported_url("postgresql://citybrain:pw@db:5432/citybrain").drivername == (
        "postgresql+psycopg"
    )
    assert database.supported_url("postgresql+psycopg://db/citybrain").drivername == "postgresql+psycopg"
    assert database.supported_url("sqlite:///var/citybrain.db").drivername == "sqlite+pysqlite"
    for url in ("mysql://citybrain:secret@db/citybrain", "postgresql+psycopg2://citybrain:secret@db/x"):
        with pytest.raises(database.UnsupportedDatabase, match="SQLite or on PostgreSQL") as refused:
            database.engine_for(url)
        assert "secret" not in str(refused.value) and "***" in str(refused.value)
    with pytest.raises(database.UnsupportedDatabase, match="not a URL"):
        database.engine_for("citybrain:secret@db/citybrain")
