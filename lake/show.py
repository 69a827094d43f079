"""``citybrain lake show``: a table's rows, newest partitions first, optionally filtered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.errors import CitybrainError
from lake.tables import table as lookup

if TYPE_CHECKING:
    from core.settings import Settings


class BadFilter(CitybrainError):
    """A ``--where`` that Spark cannot evaluate against the table; names the filter and why."""


def show_rows(
    settings: Settings, name: str, *, where: str | None = None, limit: int = 20
) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and up to ``limit`` rows (JSON-ready values) of table ``name``."""
    from pyspark.errors import AnalysisException, ParseException
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    from core.spark import spark_path, spark_session

    table = lookup(name)
    root = table.path(settings.lake_path)
    spark = spark_session(settings)  # parses the DDL too
    schema = StructType.fromDDL(table.ddl)
    columns = [f.name for f in schema.fields]
    if not root.is_dir():
        return columns, []
    df = spark.read.schema(schema).option("basePath", spark_path(root)).parquet(spark_path(root))
    try:
        if where:
            df = df.where(where)
        order = [F.col(c).desc() for c in table.partition_by] + [F.col(c) for c in table.key]
        rows = df.orderBy(*order).limit(limit).collect()
    except (AnalysisException, ParseException) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise BadFilter(f"--where {where!r} does not apply to {table.name}: {first_line}") from None
    return columns, [{c: _plain(row[c]) for c in columns} for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # PySpark hands back naive local times
        return value.astimezone(UTC).isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
