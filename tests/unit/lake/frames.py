"""Small bronze and silver DataFrames for the lake's transform tests, built from a few dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def bronze(spark, topic: str, records: list[dict[str, Any]]):
    """A bronze DataFrame of ``records``; provenance defaults to arrival 5 s after the event."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from streaming.bronze import bronze_schema

    schema = from_arrow_schema(bronze_schema(topic))
    rows = []
    for offset, record in enumerate(records):
        row = {"_partition": 0, "_offset": offset, "_key": None, **record}
        row.setdefault("_kafka_timestamp", row["ts"] + timedelta(seconds=5))
        rows.append(tuple(row.get(f.name) for f in schema.fields))
    return spark.createDataFrame(rows, schema)


def detector(minute: float, count: int = 10, occupancy: float = 0.1, speed: float | None = 12.0, **extra):
    return {
        "schema_version": 1,
        "ts": at(minute),
        "detector_id": "e1_A_0",
        "intersection_id": "J1",
        "lane_id": "A_0",
        "interval_s": 60,
        "count": count,
        "occupancy": occupancy,
        "speed_mps": speed,
        "source": "loop",
        "quality_flags": [],
        **extra,
    }


def probe(second: float, heading: float | None, lon: float, lat: float, speed: float = 10.0, **extra):
    return {
        "schema_version": 1,
        "ts": T0 + timedelta(seconds=second),
        "probe_id": "probe-0001",
        "lat": lat,
        "lon": lon,
        "speed_mps": speed,
        "heading_deg": heading,
        "accuracy_m": 5.0,
        "provider": "test",
        **extra,
    }
