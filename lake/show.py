"""``citybrain lake show``: a table's rows, newest partitions first, optionally filtered, as of its
newest version or an earlier one (Delta time travel).

The version is looked up in the table's log with delta-rs before Spark starts, so a table no job
wrote yet, or a version its log does not have, is answered without a JVM. The rows are read by
Spark at exactly that version, so ``--where`` stays a Spark SQL filter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import CitybrainError
from lake.delta import NoSuchVersion, delta_table, full_schema, table_version
from lake.location import tables_location
from lake.tables import table as lookup

if TYPE_CHECKING:
    from core.settings import Settings


class BadFilter(CitybrainError):
    """A ``--where`` that Spark cannot evaluate against the table; names the filter and why."""


def show_rows(
    settings: Settings, name: str, *, where: str | None = None, limit: int = 20, version: int | None = None
) -> tuple[list[str], list[dict[str, Any]], int | None]:
    """Column names, up to ``limit`` rows (JSON-ready values) of table ``name`` at ``version``
    (default: the newest), and the version read (None when no job wrote the table yet). Raises
    :class:`~lake.delta.NoSuchVersion` for a version the table's log does not have."""
    from pyspark.errors import AnalysisException, ParseException
    from pyspark.sql import functions as F

    from core.spark import spark_session

    table = lookup(name)
    lake = tables_location(settings)
    columns = full_schema(table).names
    try:
        found = delta_table(lake, table, version)
    except NoSuchVersion:
        newest = table_version(lake, table)
        raise NoSuchVersion(f"{table.name} has no version {version}; its newest is {newest}") from None
    if found is None:
        if version is not None:
            raise NoSuchVersion(f"{table.name} has no version {version}: no job wrote it yet")
        return columns, [], None
    spark = spark_session(settings)
    read = spark.read.format("delta").option("versionAsOf", found.version())
    df = read.load(lake.spark_uri(table)).select(*columns)
    try:
        if where:
            df = df.where(where)
        order = [F.col(c).desc() for c in table.partition_by] + [F.col(c) for c in table.key]
        rows = df.orderBy(*order).limit(limit).collect()
    except (AnalysisException, ParseException) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise BadFilter(f"--where {where!r} does not apply to {table.name}: {first_line}") from None
    return columns, [{c: _plain(row[c]) for c in columns} for row in rows], found.version()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # PySpark hands back naive local times
        return value.astimezone(UTC).isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
