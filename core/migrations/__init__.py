"""Alembic migrations of the project's one database (see core.database)."""
