"""A hand-built ``silver.signal_events``: events written as the lake's job writes them, for the tests
of what reads the table without Spark (plots, comparisons, the console)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lake.measure_plots import EVENTS
from lake.tables import partition_of
from sim.signal_config import DetectorChannel


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


def phase_2_log(start: datetime, minutes: int, arrivals: tuple[int, ...], advance: DetectorChannel) -> list:
    """(ts, code, param) of phase 2 on a 60 s fixed-time cycle from ``start`` (green :00–:30,
    yellow to :34, red clearance to :36) for ``minutes``, and vehicles detected on its advance loop
    so as to reach the stop bar ``arrivals`` seconds into each minute."""
    travel = timedelta(seconds=advance.distance_m / advance.speed_mps)
    events = []
    for minute in range(minutes):
        at = start + timedelta(minutes=minute)
        events += [(at, 1, 2), (at + timedelta(seconds=30), 6, 2), (at + timedelta(seconds=30), 7, 2)]
        events += [(at + timedelta(seconds=30), 8, 2), (at + timedelta(seconds=34), 9, 2)]
        events += [(at + timedelta(seconds=34), 10, 2), (at + timedelta(seconds=36), 11, 2)]
        for second in arrivals:
            detected = at + timedelta(seconds=second) - travel
            events += [
                (detected, 82, advance.channel),
                (detected + timedelta(seconds=0.5), 81, advance.channel),
            ]
    return events
