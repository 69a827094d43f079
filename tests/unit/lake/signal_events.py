"""A hand-built ``silver.signal_events``: events written as the lake's job writes them, for the tests
of what reads the table without Spark (plots, comparisons, the console)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lake.measure_plots import EVENTS
from lake.tables import partition_of


def write_lake(lake: Path, events: list[tuple[datetime, int, int]], signal_id: str = "1002") -> None:
    """The events as silver.signal_events Parquet, one file per quarter-hour partition."""
    slots: dict[tuple[str, str], list[dict]] = {}
    for ts, code, param in events:
        row = {
            "signal_id": signal_id,
            "ts": ts,
            "event_code": code,
            "event_param": param,
            "source": "controller",
            "late": False,
            "copies": 1,
            "arrived": ts,
            "window_start": ts.replace(minute=ts.minute // 15 * 15, second=0, microsecond=0),
        }
        slots.setdefault(partition_of(ts), []).append(row)
    for values, rows in slots.items():
        folder = EVENTS.partition_path(lake, values)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{signal_id}.snappy.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=EVENTS.arrow_schema()), folder / name)
