"""Fixtures shared by unit and integration tests."""

from tests.apache_kafka import apache_kafka  # noqa: F401  (a session-scoped fixture, used by name)
from tests.postgres import postgres_url, postgresql  # noqa: F401  (fixtures, used by name)
from tests.spark_cluster import spark_cluster  # noqa: F401  (a session-scoped fixture, used by name)
from tests.spark_session import spark  # noqa: F401  (a session-scoped fixture, used by name)
