"""``citybrain lake check``: a data-quality report of every lake table, with expectations.

Per table: rows, partitions, null rate per column, the newest event and its age. A table fails
when it is empty, when a column declared NOT NULL has nulls, when a column's null rate is above
what is expected of it (:data:`MAX_NULL_RATES`: e.g. probe fixes no edge took), or when its
newest row is older than ``CITYBRAIN_LAKE_FRESHNESS_MAX_S`` at ``as_of``.

Partitions come from each table's Delta log and rows from one streaming pass of delta-rs's engine
over the files the log names (:mod:`lake.delta`): a partition folder may also hold replaced or torn
files, which must not count. Batches are counted as they stream, so the check scales with the lake
in time, not memory, and starts no JVM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lake.delta import delta_table, filled_partitions, full_schema
from lake.location import tables_location
from lake.tables import TABLES, Table

if TYPE_CHECKING:
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


def check_table(settings: Settings, table: Table, as_of: datetime) -> TableQuality:
    import pyarrow as pa
    import pyarrow.compute as pc

    result = TableQuality(table.name)
    lake = tables_location(settings)
    found = delta_table(lake, table)
    result.partitions = 0 if found is None else len(filled_partitions(lake, table, found.version()))
    if not result.partitions:
        result.failures.append("no data")
        return result
    schema = full_schema(table)
    nulls = dict.fromkeys(schema.names, 0)
    for batch in pa.RecordBatchReader.from_stream(found.scan(columns=schema.names)):
        result.rows += batch.num_rows
        for name in schema.names:
            nulls[name] += batch.column(name).null_count
        newest = pc.max(batch.column(table.time_column)).as_py()
        if newest is not None and (result.newest is None or newest > result.newest):
            result.newest = newest
    if result.rows == 0:
        result.failures.append("no rows")
        return result
    result.age_s = round((as_of - result.newest).total_seconds(), 3)
    for column in schema:
        rate = nulls[column.name] / result.rows
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
    from lake.tables import table as lookup

    as_of = as_of or datetime.now(UTC)
    chosen = [lookup(name) for name in tables] if tables else list(TABLES.values())
    return QualityReport(as_of, [check_table(settings, t, as_of) for t in chosen])
