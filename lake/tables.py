"""The lake's silver and gold tables: name, columns, partitioning and where each lives.

This is the one definition of the lake's tables (bronze follows the topic contracts in
``schemas/``). Columns are Spark DDL, so a job's output is cast to exactly this schema before it
is written, readers pass it instead of inferring one, and DuckDB reads the same rows.

Each table is a Delta table at ``<lake>/<layer>/<table>``, partitioned by ``date`` and ``slot``
(``date=YYYY-MM-DD/slot=HHMM/``, ``slot`` the UTC start of the quarter hour) for the 15-minute
tables and by ``date`` for daily ones. Partition values are strings (``slot`` ``0715``, not 715).
Which files are live is for the table's log to say (:mod:`lake.delta`), not a folder listing.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from lake.location import TableLocation

#: The time grain of the 15-minute tables, and of the intervals a fuse job accepts.
SLOT = timedelta(minutes=15)
DAY = timedelta(days=1)


class UnknownTable(CitybrainError):
    """A table name that the lake does not have."""


@dataclass(frozen=True)
class Table:
    """One silver or gold table."""

    name: str
    description: str
    columns: str
    #: ``("date", "slot")`` for 15-minute tables, ``("date",)`` for daily ones.
    partition_by: tuple[str, ...]
    #: Columns that identify a row; files are sorted by them, so a rerun writes its rows in the same order.
    key: tuple[str, ...]
    #: The column holding each row's event time, for freshness checks.
    time_column: str

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def grain(self) -> timedelta:
        return SLOT if "slot" in self.partition_by else DAY

    def arrow_schema(self) -> pa.Schema:
        """The Parquet schema a lake job writes for the table (its columns, not the partition
        columns), for writers and readers outside Spark (the console's tests and benchmark)."""
        import pyarrow as pa

        kinds = {
            "STRING": pa.string(),
            "TIMESTAMP": pa.timestamp("us", tz="UTC"),
            "DOUBLE": pa.float64(),
            "BIGINT": pa.int64(),
            "INT": pa.int32(),
            "BOOLEAN": pa.bool_(),
            "ARRAY<STRING>": pa.list_(pa.string()),
        }
        fields = re.findall(r"`?(\w+)`? ([A-Z<>]+)( NOT NULL)?", self.columns)
        return pa.schema(
            [pa.field(name, kinds[kind], nullable=not required) for name, kind, required in fields]
        )

    @property
    def ddl(self) -> str:
        """Columns then partition columns, as Spark DDL."""
        parts = ", ".join(f"{column} STRING NOT NULL" for column in self.partition_by)
        return f"{self.columns}, {parts}"

    def path(self, lake: Path) -> Path:
        return lake / self.layer / self.short_name

    def partition_values(self, start: datetime, end: datetime) -> list[tuple[str, ...]]:
        """Every partition that [start, end) covers, in time order, whether or not it has rows."""
        values = []
        moment = floor_to(start, self.grain)
        while moment < end:
            values.append(partition_of(moment)[: len(self.partition_by)])
            moment += self.grain
        return values

    def partition_path(self, lake: Path, values: tuple[str, ...]) -> Path:
        path = self.path(lake)
        for column, value in zip(self.partition_by, values, strict=True):
            path = path / f"{column}={value}"
        return path


def floor_to(moment: datetime, grain: timedelta) -> datetime:
    """The start of the ``grain`` (15 minutes or a day, UTC) that holds ``moment``."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment.astimezone(UTC) - epoch) // grain) * grain


def ceil_to(moment: datetime, grain: timedelta) -> datetime:
    """The start of the first whole ``grain`` at or after ``moment``."""
    start = floor_to(moment, grain)
    return start if start == moment else start + grain


def partition_of(moment: datetime) -> tuple[str, str]:
    """``("2026-11-28", "0715")``: the date and slot partition values of a UTC instant."""
    start = floor_to(moment, SLOT)
    return start.strftime("%Y-%m-%d"), start.strftime("%H%M")


def latest_period(
    filled: Collection[datetime], end: datetime | None, longest: timedelta
) -> tuple[datetime, datetime] | None:
    """[start, end): the consecutive ``filled`` quarter hours ending at ``end`` (default: the newest
    one's end), at most ``longest``; None when the quarter hour before ``end`` is not filled. A gap
    ends the period, since a period across a quarter hour without data would read as no traffic."""
    if end is None:
        if not filled:
            return None
        end = max(filled) + SLOT
    start = end
    while start - SLOT in filled and end - (start - SLOT) <= longest:
        start -= SLOT
    return (start, end) if start < end else None


_TABLES = (
    Table(
        name="silver.detector_readings",
        description=(
            "Detector readings, one per (detector, interval): deduplicated, located on their edge, "
            "range-checked and flagged; late arrivals kept but flagged 'late' and not usable."
        ),
        columns=(
            "detector_id STRING NOT NULL, intersection_id STRING NOT NULL, lane_id STRING NOT NULL, "
            "edge_id STRING, ts TIMESTAMP NOT NULL, interval_s INT NOT NULL, count INT NOT NULL, "
            "occupancy DOUBLE NOT NULL, speed_mps DOUBLE, source STRING NOT NULL, "
            "quality_flags ARRAY<STRING> NOT NULL, usable BOOLEAN NOT NULL, copies INT NOT NULL, "
            "arrived TIMESTAMP NOT NULL, window_start TIMESTAMP NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("detector_id", "ts"),
        time_column="ts",
    ),
    Table(
        name="silver.probe_points",
        description=(
            "Probe GPS fixes, deduplicated, map-matched to the nearest edge within the distance "
            "limit whose direction agrees with the heading (edge_id null when none does)."
        ),
        columns=(
            "probe_id STRING NOT NULL, ts TIMESTAMP NOT NULL, lat DOUBLE NOT NULL, lon DOUBLE NOT NULL, "
            "x DOUBLE NOT NULL, y DOUBLE NOT NULL, speed_mps DOUBLE NOT NULL, heading_deg DOUBLE, "
            "accuracy_m DOUBLE NOT NULL, provider STRING NOT NULL, edge_id STRING, lane_id STRING, "
            "match_distance_m DOUBLE, late BOOLEAN NOT NULL, arrived TIMESTAMP NOT NULL, "
            "window_start TIMESTAMP NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("probe_id", "ts"),
        time_column="ts",
    ),
    Table(
        name="silver.weather",
        description="Weather observations, deduplicated by (station, time).",
        columns=(
            "station_id STRING NOT NULL, ts TIMESTAMP NOT NULL, lat DOUBLE NOT NULL, lon DOUBLE NOT NULL, "
            "air_temp_c DOUBLE NOT NULL, precipitation_mm_h DOUBLE NOT NULL, visibility_m DOUBLE, "
            "wind_speed_mps DOUBLE NOT NULL, road_surface STRING NOT NULL, condition STRING NOT NULL, "
            "window_start TIMESTAMP NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("station_id", "ts"),
        time_column="ts",
    ),
    Table(
        name="silver.incidents",
        description=(
            "Incident reports, deduplicated, each located on an edge: the reported edge when it is "
            "in the network, else the nearest edge to its position (located_by says which)."
        ),
        columns=(
            "incident_id STRING NOT NULL, ts TIMESTAMP NOT NULL, kind STRING NOT NULL, "
            "status STRING NOT NULL, severity INT NOT NULL, lat DOUBLE NOT NULL, lon DOUBLE NOT NULL, "
            "edge_id STRING, lane_ids ARRAY<STRING> NOT NULL, start TIMESTAMP NOT NULL, `end` TIMESTAMP, "
            "description STRING NOT NULL, source STRING NOT NULL, located_by STRING NOT NULL, "
            "window_start TIMESTAMP NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("incident_id", "ts"),
        time_column="ts",
    ),
    Table(
        name="silver.signal_events",
        description=(
            "Signal controllers' high-resolution events (Indiana enumerations), deduplicated by "
            "(signal, time, code, parameter); late ones flagged but used: controllers upload logs in batches."
        ),
        columns=(
            "signal_id STRING NOT NULL, ts TIMESTAMP NOT NULL, event_code INT NOT NULL, "
            "event_param INT NOT NULL, source STRING NOT NULL, late BOOLEAN NOT NULL, copies INT NOT NULL, "
            "arrived TIMESTAMP NOT NULL, window_start TIMESTAMP NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("signal_id", "ts", "event_code", "event_param"),
        time_column="ts",
    ),
    Table(
        name="gold.link_state_15min",
        description=(
            "State of each edge per 15 minutes: flow from detectors, speed fused from detectors and "
            "probes by inverse variance, occupancy, a confidence in [0, 1], incident and weather."
        ),
        columns=(
            "edge_id STRING NOT NULL, window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL, "
            "flow_vph DOUBLE, occupancy DOUBLE, detector_speed_mps DOUBLE, detector_samples BIGINT NOT NULL, "
            "probe_speed_mps DOUBLE, probe_samples BIGINT NOT NULL, speed_mps DOUBLE, "
            "speed_std_error_mps DOUBLE, confidence DOUBLE NOT NULL, incident_ids ARRAY<STRING> NOT NULL, "
            "incident_severity INT, weather_condition STRING, precipitation_mm_h DOUBLE, road_surface STRING"
        ),
        partition_by=("date", "slot"),
        key=("edge_id",),
        time_column="window_start",
    ),
    Table(
        name="gold.turning_movements_15min",
        description=(
            "Demand per signalised intersection, movement (from edge → to edge) and 15 minutes: lane "
            "detector counts split over each lane's movements by probe turning ratios."
        ),
        columns=(
            "intersection_id STRING NOT NULL, from_edge STRING NOT NULL, to_edge STRING NOT NULL, "
            "window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL, volume_vph DOUBLE NOT NULL, "
            "turning_ratio DOUBLE NOT NULL, probe_transitions BIGINT NOT NULL, ratio_source STRING NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("intersection_id", "from_edge", "to_edge"),
        time_column="window_start",
    ),
    Table(
        name="gold.signal_cycles",
        description=(
            "Per signal phase and cycle (begin green to next begin green), in the quarter hour of its end: "
            "green, yellow, red clearance and red durations, how the green ended, the coordination pattern."
        ),
        columns=(
            "signal_id STRING NOT NULL, phase INT NOT NULL, cycle_start TIMESTAMP NOT NULL, "
            "cycle_end TIMESTAMP NOT NULL, cycle_s DOUBLE NOT NULL, green_s DOUBLE NOT NULL, "
            "yellow_s DOUBLE NOT NULL, red_clearance_s DOUBLE NOT NULL, red_s DOUBLE NOT NULL, "
            "termination STRING NOT NULL, pattern INT, window_start TIMESTAMP NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("signal_id", "phase", "cycle_start"),
        time_column="cycle_end",
    ),
    Table(
        name="gold.approach_measures_15min",
        description=(
            "ATSPM measures per signal phase (approach) and 15 minutes, over the cycles ending then: "
            "volume, arrivals on green, green and platoon ratios, occupancy ratios and split failures, "
            "approach delay."
        ),
        columns=(
            "signal_id STRING NOT NULL, phase INT NOT NULL, approach STRING NOT NULL, "
            "direction STRING NOT NULL, movement STRING NOT NULL, window_start TIMESTAMP NOT NULL, "
            "window_end TIMESTAMP NOT NULL, "
            "cycles INT NOT NULL, volume INT NOT NULL, volume_vph DOUBLE NOT NULL, "
            "arrivals_on_green INT NOT NULL, arrivals_on_yellow INT NOT NULL, arrivals_on_red INT NOT NULL, "
            "percent_on_green DOUBLE, green_s DOUBLE NOT NULL, green_ratio DOUBLE, platoon_ratio DOUBLE, "
            "green_occupancy_ratio DOUBLE, red_occupancy_ratio DOUBLE, split_failures INT, "
            "approach_delay_s DOUBLE NOT NULL, delay_per_vehicle_s DOUBLE, yellow_actuations INT NOT NULL, "
            "red_actuations INT NOT NULL"
        ),
        partition_by=("date", "slot"),
        key=("signal_id", "phase"),
        time_column="window_start",
    ),
    Table(
        name="gold.detector_health_daily",
        description=(
            "Per detector and day: intervals expected and received, duplicates, late, stuck, zero and "
            "implausible readings, and a status (ok, degraded, down)."
        ),
        columns=(
            "detector_id STRING NOT NULL, intersection_id STRING NOT NULL, lane_id STRING NOT NULL, "
            "edge_id STRING, expected_intervals BIGINT NOT NULL, received_intervals BIGINT NOT NULL, "
            "availability DOUBLE NOT NULL, duplicates BIGINT NOT NULL, late_intervals BIGINT NOT NULL, "
            "stuck_intervals BIGINT NOT NULL, zero_intervals BIGINT NOT NULL, "
            "implausible_intervals BIGINT NOT NULL, usable_share DOUBLE NOT NULL, status STRING NOT NULL, "
            "last_seen TIMESTAMP NOT NULL"
        ),
        partition_by=("date",),
        key=("detector_id",),
        time_column="last_seen",
    ),
)

TABLES: dict[str, Table] = {table.name: table for table in _TABLES}
#: The gold tables the optimizer's demand is sampled from: turning movements, then link flows.
DEMAND_TABLES = ("gold.turning_movements_15min", "gold.link_state_15min")
SILVER = tuple(name for name in TABLES if name.startswith("silver."))
GOLD = tuple(name for name in TABLES if name.startswith("gold."))


def table(name: str) -> Table:
    """The table called ``name`` (``gold.link_state_15min``; the layer may be left off)."""
    if name in TABLES:
        return TABLES[name]
    matches = [t for t in TABLES.values() if t.short_name == name]
    if len(matches) == 1:
        return matches[0]
    raise UnknownTable(f"no lake table {name!r}; the tables are: {', '.join(TABLES)}")


def read_table(
    spark: SparkSession, table: Table, lake: Path | TableLocation, start: datetime, end: datetime
) -> DataFrame:
    """The table's rows in the partitions of [start, end), as of its newest version (an empty
    frame when no job wrote the table yet); ``lake`` is the lake folder or where its tables are."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    from lake.delta import sql_predicate
    from lake.location import table_location

    path = table_location(lake).spark_uri(table)
    if not DeltaTable.isDeltaTable(spark, path):
        return spark.createDataFrame([], StructType.fromDDL(table.ddl))
    rows = (
        spark.read.format("delta").load(path).where(sql_predicate(table, table.partition_values(start, end)))
    )
    return rows.select(*StructType.fromDDL(table.ddl).fieldNames())
