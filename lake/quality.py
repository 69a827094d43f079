"""``citybrain lake check``: a data-quality report of every lake table, with expectations.

Per table: rows, partitions, null rate per column, the newest event and its age. A table fails
when it is empty, when a column declared NOT NULL has nulls, when a column's null rate is above
what is expected of it (:data:`MAX_NULL_RATES`: e.g. probe fixes no edge took), or when its
newest row is older than ``CITYBRAIN_LAKE_FRESHNESS_MAX_S`` at ``as_of``. One Spark aggregation
per table, so it scales with the lake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lake.tables import TABLES, Table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from core.settings import Settings

#: Highest acceptable null rate of nullable columns that should mostly be filled.
MAX_NULL_RATES = {
    ("silver.detector_readings", "edge_id"): 0.05,  # readings of lanes the network does not have
    ("silver.probe_points", "edge_id"): 0.10,  # fixes too far from any edge, or against the heading
    ("silver.incidents", "edge_id"): 0.0,
    ("gold.link_state_15min", "speed_mps"): 0.25,
}


@dataclass
class TableQuality:
    name: str
    rows: int = 0
    partitions: int = 0
    newest: datetime | None = None
    age_s: float | None = None
    null_rates: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "partitions": self.partitions,
            "newest": None if self.newest is None else self.newest.isoformat(),
            "age_s": self.age_s,
            "null_rates": self.null_rates,
            "failures": self.failures,
            "ok": not self.failures,
        }


@dataclass
class QualityReport:
    as_of: datetime
    tables: list[TableQuality]

    @property
    def ok(self) -> bool:
        return all(not t.failures for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "tables": {t.name: t.to_dict() for t in self.tables},
        }


def check_table(spark: SparkSession, settings: Settings, table: Table, as_of: datetime) -> TableQuality:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    from core.spark import spark_path

    result = TableQuality(table.name)
    root = table.path(settings.lake_path)
    folders = [p for p in root.rglob("*") if p.is_dir() and p.name.startswith(table.partition_by[-1] + "=")]
    folders = [
        p for p in folders if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    ]
    result.partitions = len(folders)
    if not folders:
        result.failures.append("no data")
        return result
    schema = StructType.fromDDL(table.ddl)
    df = spark.read.schema(schema).option("basePath", spark_path(root)).parquet(spark_path(root))
    row = df.agg(
        F.count(F.lit(1)).alias("_rows"),
        F.max(table.time_column).alias("_newest"),
        *(F.sum(F.col(f.name).isNull().cast("long")).alias(f.name) for f in schema.fields),
    ).first()
    result.rows = int(row["_rows"])
    if result.rows == 0:
        result.failures.append("no rows")
        return result
    result.newest = row["_newest"].replace(tzinfo=UTC) if row["_newest"].tzinfo is None else row["_newest"]
    result.age_s = round((as_of - result.newest).total_seconds(), 3)
    for column in schema.fields:
        rate = row[column.name] / result.rows
        result.null_rates[column.name] = round(rate, 6)
        limit = 0.0 if not column.nullable else MAX_NULL_RATES.get((table.name, column.name))
        if limit is not None and rate > limit:
            result.failures.append(f"{column.name} null rate {rate:.1%} above {limit:.0%}")
    if result.age_s > settings.lake_freshness_max_s:
        result.failures.append(
            f"newest {table.time_column} {result.newest.isoformat()} is {result.age_s:,.0f} s old "
            f"(more than {settings.lake_freshness_max_s:,} s)"
        )
    return result


def check(
    settings: Settings, *, as_of: datetime | None = None, tables: list[str] | None = None
) -> QualityReport:
    """The quality of ``tables`` (all by default) at ``as_of`` (now by default)."""
    from core.spark import spark_session
    from lake.tables import table as lookup

    as_of = as_of or datetime.now(UTC)
    chosen = [lookup(name) for name in tables] if tables else list(TABLES.values())
    spark = spark_session(settings)
    return QualityReport(as_of, [check_table(spark, settings, t, as_of) for t in chosen])
