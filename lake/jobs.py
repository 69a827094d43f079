"""The lake's jobs: fuse an interval of bronze into silver, then gold.

``fuse(settings, start, end)`` is what the CLI (``citybrain lake fuse``), the Airflow DAG
(``citybrain_fuse``) and ``spark-submit lake/jobs.py --start T --end T`` run. An interval is whole
quarter hours in UTC; each table's partitions for it are replaced in one Delta commit
(:mod:`lake.commit`), so running a job twice gives the same rows, and a killed job run again gives
the same result as one clean run. Every bronze file is checked before anything is written.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from core.errors import CitybrainError
from core.spark import spark_session
from lake import gold, signal_gold, silver
from lake.bronze_input import read_bronze
from lake.commit import CRASH_POINTS, Written, overwrite_partitions
from lake.location import tables_location
from lake.network import NetworkIndex, network_index
from lake.tables import SLOT, TABLES, floor_to
from sim.signal_config import configuration

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from core.settings import Settings

LAYERS = ("silver", "gold")
#: How far before the interval a probe's earlier fixes are read, to give standing fixes a heading.
PROBE_LOOKBACK = timedelta(minutes=10)


class BadInterval(CitybrainError, ValueError):
    """An interval that is not whole quarter hours, or ends before it starts."""


@dataclass
class FuseReport:
    """What a fuse run wrote: rows, partitions replaced and removed per table, and how long it took."""

    start: datetime
    end: datetime
    layers: tuple[str, ...]
    written: list[Written] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> dict[str, int]:
        return {w.table: w.rows for w in self.written}

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "layers": list(self.layers),
            "tables": {
                w.table: {
                    "rows": w.rows,
                    "partitions": w.partitions,
                    "removed": w.removed,
                    "version": w.version,
                }
                for w in self.written
            },
            "seconds": round(self.seconds, 3),
        }


def check_interval(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """UTC, whole quarter hours, start before end; naive datetimes are taken as UTC."""
    start, end = (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC) for t in (start, end))
    for name, moment in (("start", start), ("end", end)):
        if floor_to(moment, SLOT) != moment:
            raise BadInterval(
                f"{name} {moment.isoformat()} is not on a quarter hour (the lake's 15-minute grain)"
            )
    if end <= start:
        raise BadInterval(f"end {end.isoformat()} must be after start {start.isoformat()}")
    return start, end


def fuse(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    layers: Sequence[str] = LAYERS,
    spark: SparkSession | None = None,
    progress: Callable[[str], None] | None = None,
) -> FuseReport:
    """Fuse [start, end): bronze → silver, then silver → gold (``layers`` picks either or both)."""
    start, end = check_interval(start, end)
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown or not layers:
        raise CitybrainError(f"layers must be among {', '.join(LAYERS)}, got {', '.join(layers) or 'none'}")
    if settings.lake_crash_at is not None and settings.lake_crash_at not in CRASH_POINTS:
        raise CitybrainError(f"CITYBRAIN_LAKE_CRASH_AT must be one of {', '.join(CRASH_POINTS)}")
    began = time.perf_counter()
    spark = spark or spark_session(settings)
    index = network_index(settings.lake_network, settings.sim_dir / "build")
    report = FuseReport(start, end, tuple(layer for layer in LAYERS if layer in layers))
    say = progress or (lambda _message: None)
    if "silver" in layers:
        say(f"silver {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}")
        report.written.extend(run_silver(spark, settings, index, start, end))
    if "gold" in layers:
        say(f"gold {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}")
        report.written.extend(run_gold(spark, settings, index, start, end))
    report.seconds = time.perf_counter() - began
    return report


def run_silver(
    spark: SparkSession, settings: Settings, index: NetworkIndex, start: datetime, end: datetime
) -> list[Written]:
    """Bronze (in the lake folder) → the silver tables (where the settings keep the tables) for
    [start, end); every bronze input is checked first."""
    lake = settings.lake_path
    tables = tables_location(settings)
    lookback = timedelta(minutes=settings.lake_stuck_intervals)  # a stuck run of 1-minute readings
    # Read (and so check) every input before writing anything.
    bronze = {
        "detectors": read_bronze(spark, lake, "traffic.detector.v1", start - lookback, end),
        "probes": read_bronze(spark, lake, "operator.probe.v1", start - PROBE_LOOKBACK, end),
        "weather": read_bronze(spark, lake, "public.weather.v1", start, end),
        "incidents": read_bronze(spark, lake, "public.incident.v1", start, end),
        "signal_events": read_bronze(spark, lake, "traffic.signal_event.v1", start, end),
    }
    outputs = {
        "silver.detector_readings": silver.detector_readings(
            bronze["detectors"],
            silver.lanes_frame(spark, index),
            start=start,
            end=end,
            watermark_s=settings.lake_watermark_s,
            stuck_intervals=settings.lake_stuck_intervals,
        ),
        "silver.probe_points": silver.probe_points(
            bronze["probes"],
            index,
            start=start,
            end=end,
            watermark_s=settings.lake_watermark_s,
            max_distance_m=settings.lake_match_distance_m,
            heading_tolerance_deg=settings.lake_heading_tolerance_deg,
        ),
        "silver.weather": silver.weather(
            bronze["weather"], start=start, end=end, watermark_s=settings.lake_watermark_s
        ),
        "silver.incidents": silver.incidents(bronze["incidents"], index, start=start, end=end),
        "silver.signal_events": silver.signal_events(
            bronze["signal_events"], start=start, end=end, watermark_s=settings.lake_watermark_s
        ),
    }
    return [
        overwrite_partitions(df, TABLES[name], tables, start, end, crash_at=settings.lake_crash_at)
        for name, df in outputs.items()
    ]


def run_gold(
    spark: SparkSession, settings: Settings, index: NetworkIndex, start: datetime, end: datetime
) -> list[Written]:
    """Silver → link state, turning movements, signal cycles and approach measures for [start, end),
    and the detector health of each day it touches."""
    lake = tables_location(settings)
    crash_at = settings.lake_crash_at
    signals = configuration(settings).by_controller()
    outputs = {
        "gold.link_state_15min": gold.link_state(
            spark, lake, start, end, settings.lake_detector_effective_length_m
        ),
        "gold.turning_movements_15min": gold.turning_movements(spark, lake, index, start, end),
        "gold.signal_cycles": signal_gold.signal_cycles(spark, lake, signals, start, end),
        "gold.approach_measures_15min": signal_gold.approach_measures(spark, lake, signals, start, end),
    }
    written = [
        overwrite_partitions(df, TABLES[name], lake, start, end, crash_at=crash_at)
        for name, df in outputs.items()
    ]
    health = TABLES["gold.detector_health_daily"]
    day = floor_to(start, timedelta(days=1))
    rows = partitions = removed = 0
    version = None
    while day < end:  # each day the interval touches, recomputed whole from its silver readings
        done = overwrite_partitions(
            gold.detector_health(spark, lake, day),
            health,
            lake,
            day,
            day + timedelta(days=1),
            crash_at=crash_at,
        )
        rows, partitions, removed = rows + done.rows, partitions + done.partitions, removed + done.removed
        version = done.version
        day += timedelta(days=1)
    written.append(Written(health.name, rows, partitions, removed, version))
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``spark-submit lake/jobs.py --start 2026-11-28T07:00Z --end 2026-11-28T08:00Z [--layers silver]``."""
    from core.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, type=datetime.fromisoformat, help="UTC start, ISO 8601")
    parser.add_argument("--end", required=True, type=datetime.fromisoformat, help="UTC end, ISO 8601")
    parser.add_argument("--layers", default=",".join(LAYERS), help="silver, gold or silver,gold")
    args = parser.parse_args(argv)
    report = fuse(Settings(), args.start, args.end, layers=tuple(args.layers.split(",")))
    print(json.dumps(report.to_dict()))


if __name__ == "__main__":
    main()
