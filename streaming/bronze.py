"""The bronze landing zone: raw, append-only Parquet, one file per topic, partition and offsets.

Layout: ``bronze/<topic>/date=YYYY-MM-DD/hour=HH/<partition>-<first>-<last>.parquet``, where
date and hour are those of the records' event time (``ts``, UTC) and first/last are the
smallest and largest Kafka offsets in the file. A batch that spans hours lands as one file
per hour. Each file is written durably through :func:`core.files.atomic_path`, so a reader (or
a crash) sees a whole file or none.

Besides the contract's columns every row carries where it came from: ``_partition``,
``_offset``, ``_kafka_timestamp`` (the broker's timestamp) and ``_key``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.files import atomic_path
from schemas.arrow import TIMESTAMP, record_schema

PROVENANCE_FIELDS = (
    pa.field("_partition", pa.int32(), nullable=False),
    pa.field("_offset", pa.int64(), nullable=False),
    pa.field("_kafka_timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
    pa.field("_key", pa.binary()),
)


def bronze_schema(topic: str) -> pa.Schema:
    """The Arrow schema of a topic's bronze files: the contract's fields, then provenance."""
    records = record_schema(topic)
    return pa.schema([*records, *PROVENANCE_FIELDS], metadata=records.metadata)


def bronze_root(lake: Path, topic: str) -> Path:
    return lake / "bronze" / topic


def bronze_file(lake: Path, topic: str, date: str, hour: str, partition: int, first: int, last: int) -> Path:
    return bronze_root(lake, topic) / f"date={date}" / f"hour={hour}" / f"{partition}-{first}-{last}.parquet"


@dataclass(slots=True)
class Row:
    """One valid record with its Kafka coordinates."""

    record: dict[str, Any]
    offset: int
    timestamp_ms: int
    key: bytes | None


def plan_files(lake: Path, topic: str, partition: int, rows: Sequence[Row]) -> dict[Path, list[Row]]:
    """Group a batch's valid rows by event hour and name the file each group lands in."""
    by_hour: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_hour[row.record["ts"][:13]].append(row)  # 'YYYY-MM-DDTHH' of a UTC timestamp
    files = {}
    for hour_key, group in sorted(by_hour.items()):
        offsets = [r.offset for r in group]
        path = bronze_file(lake, topic, hour_key[:10], hour_key[11:13], partition, min(offsets), max(offsets))
        files[path] = group
    return files


def unstorable_timestamps(topic: str, rows: Sequence[Row]) -> dict[int, str]:
    """Rows (by index) whose timestamps match the contract's pattern but name no real instant.

    A pattern cannot know that 2026-02-30 does not exist; Arrow's cast does. One vectorised
    cast per timestamp column; only when it fails are the rows checked one by one.
    """
    bad: dict[int, str] = {}
    for field in record_schema(topic):
        if field.type != TIMESTAMP:
            continue
        values = [row.record.get(field.name) for row in rows]
        try:
            pa.array(values, pa.string()).cast(TIMESTAMP)
        except pa.ArrowInvalid:
            for index, value in enumerate(values):
                try:
                    pa.array([value], pa.string()).cast(TIMESTAMP)
                except pa.ArrowInvalid:
                    bad.setdefault(index, f"data.{field.name} {value!r} is not a real date and time")
    return bad


def to_table(topic: str, partition: int, rows: Sequence[Row]) -> pa.Table:
    """Rows → an Arrow table in the bronze schema (timestamps parsed from their ISO strings)."""
    records = record_schema(topic)
    as_text = pa.schema([f.with_type(pa.string()) if f.type == TIMESTAMP else f for f in records])
    table = pa.Table.from_pylist([row.record for row in rows], schema=as_text)
    for index, field in enumerate(records):
        if field.type == TIMESTAMP:
            table = table.set_column(index, field, table.column(index).cast(TIMESTAMP))
    provenance = [
        pa.array([partition] * len(rows), pa.int32()),
        pa.array([r.offset for r in rows], pa.int64()),
        pa.array([r.timestamp_ms for r in rows], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        pa.array([r.key for r in rows], pa.binary()),
    ]
    for field, column in zip(PROVENANCE_FIELDS, provenance, strict=True):
        table = table.append_column(field, column)
    return table.replace_schema_metadata(records.metadata)


def write_durably(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` so that it is complete on disk before it appears there."""
    with atomic_path(path) as staging:
        pq.write_table(table, staging, compression="snappy")  # Spark's default codec; cheapest to write


def read_topic(lake: Path, topic: str) -> pa.Table:
    """Every bronze row of a topic (for tests, the demo summary and small backfills)."""
    root = bronze_root(lake, topic)
    files = sorted(p for p in root.rglob("*.parquet") if not p.name.startswith(".")) if root.exists() else []
    if not files:
        return bronze_schema(topic).empty_table()
    return pa.concat_tables(pq.read_table(f, schema=bronze_schema(topic)) for f in files)
