"""A hand-built ``silver.signal_events``: events committed to the Delta table as the lake's job
commits them, for the tests of what reads the table without Spark (plots, comparisons, the console)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lake.delta import read_partitions, write_partitions
from lake.measure_plots import EVENTS
from lake.tables import partition_of
from sim.signal_config import DetectorChannel


def write_lake(lake: Path, events: list[tuple[datetime, int, int]], signal_id: str = "1002") -> None:
    """The events as signal ``signal_id``'s rows of silver.signal_events, in one commit that
    replaces their quarter hours' partitions, other signals' rows there kept (a job writes every
    signal of a quarter hour at once)."""
    rows = []
    for ts, code, param in events:
        day, slot = partition_of(ts)
        rows.append(
            {
                "signal_id": signal_id,
                "ts": ts,
                "event_code": code,
                "event_param": param,
                "source": "controller",
                "late": False,
                "copies": 1,
                "arrived": ts,
                "window_start": ts.replace(minute=ts.minute // 15 * 15, second=0, microsecond=0),
                "date": day,
                "slot": slot,
            }
        )
    partitions = {(row["date"], row["slot"]) for row in rows}
    kept = read_partitions(lake, EVENTS, partitions)
    kept = kept.filter(pc.not_equal(kept["signal_id"], signal_id))
    written = pa.Table.from_pylist(rows, schema=kept.schema)
    write_partitions(lake, EVENTS, pa.concat_tables([kept, written]), partitions)


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
