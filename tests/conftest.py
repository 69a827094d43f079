"""Fixtures shared by unit and integration tests."""

from tests.spark_session import spark  # noqa: F401  (a session-scoped fixture, used by name)
