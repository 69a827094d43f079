"""Bronze → silver: each feed deduplicated, checked, flagged and located on the network.

Every transform takes a bronze DataFrame (the contract's columns plus ``_partition``, ``_offset``,
``_kafka_timestamp``) and returns rows in its silver table's schema (:mod:`lake.tables`) for the
events in [start, end). Input may reach back before ``start`` (a lookback) where a row's flags
depend on what came before it; only rows of the interval come out.

Rules that every transform follows:

- a detector reading or probe fix is *late* when it reached Kafka more than the watermark after
  its interval ended; it is kept and flagged, never used for fusion, so a backfill run later gives
  the same answer. Signal events are flagged the same way but used all the same: controllers
  upload their logs in batches every 10–15 minutes, and an ATSPM import is late as a whole;
- duplicates (the same key and event time, e.g. a producer retry) collapse to the earliest
  arrival; ``copies`` says how many there were.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from lake.mapmatch import match
from lake.network import NetworkIndex
from lake.tables import TABLES, Table

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: Highest believable flow of one lane (veh/h); saturation flow is about 1,900.
MAX_LANE_FLOW_VPH = 3000
#: Highest believable detector speed (m/s): 180 km/h.
MAX_SPEED_MPS = 50.0
#: An incident's position is located on the nearest edge within this distance.
INCIDENT_LOCATE_DISTANCE_M = 100.0


# -- shared steps ------------------------------------------------------------------------------


def with_window(df: DataFrame, time_column: str = "ts") -> DataFrame:
    """Add ``window_start`` (the quarter hour of the event) and the ``date``/``slot`` partitions."""
    from pyspark.sql import functions as F

    start = F.timestamp_seconds(F.floor(F.unix_timestamp(time_column) / 900) * 900)
    return (
        df.withColumn("window_start", start)
        .withColumn("date", F.date_format("window_start", "yyyy-MM-dd"))
        .withColumn("slot", F.date_format("window_start", "HHmm"))
    )


def deduplicate(df: DataFrame, key: tuple[str, ...]) -> DataFrame:
    """One row per key: the earliest on time, then earliest arrival; ``copies`` counts them all."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_key = Window.partitionBy(*key)
    first = by_key.orderBy("late", "_kafka_timestamp", "_partition", "_offset")
    return (
        df.withColumn("copies", F.count(F.lit(1)).over(by_key).cast("int"))
        .withColumn("_rank", F.row_number().over(first))
        .where("_rank = 1")
        .drop("_rank")
    )


def in_interval(df: DataFrame, start: datetime, end: datetime, time_column: str = "ts") -> DataFrame:
    from pyspark.sql import functions as F

    return df.where((F.col(time_column) >= F.lit(start)) & (F.col(time_column) < F.lit(end)))


def conform(df: DataFrame, table: Table) -> DataFrame:
    """Exactly the table's columns, in its order and types."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    schema = StructType.fromDDL(table.ddl)
    return df.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields))


# -- detectors ---------------------------------------------------------------------------------


def _implausible(count: Column, interval: Column, occupancy: Column, speed: Column) -> Column:
    """A reading no working detector gives: over-saturated flow, an impossible speed, vehicles
    counted on a loop never occupied, or a loop mostly occupied by vehicles going fast."""
    from pyspark.sql import functions as F

    fast = F.coalesce(speed, F.lit(0.0))  # no speed (nothing counted) is never too fast
    return (
        (count * 3600 / interval > MAX_LANE_FLOW_VPH)
        | (fast > MAX_SPEED_MPS)
        | ((count >= 3) & (occupancy == 0))
        | ((occupancy > 0.8) & (fast > 15))
    )


def detector_readings(
    bronze: DataFrame,
    lanes: DataFrame,
    *,
    start: datetime,
    end: datetime,
    watermark_s: int,
    stuck_intervals: int,
) -> DataFrame:
    """Silver detector readings. ``lanes`` maps contract ``lane_id`` to ``edge_id``.

    Flags added to the source's own: ``late``; ``stuck`` (the same reading with vehicles counted
    ``stuck_intervals`` times in a row: real traffic never repeats count, occupancy and speed
    exactly, while a car standing on a loop through a long queue — nothing counted, fully
    occupied — is real and stays usable); ``zero`` (nothing counted or occupied that many times in a
    row — a dead loop or an empty road, kept usable); ``implausible`` (:func:`_implausible`).
    A reading is usable unless late, stuck, implausible or marked stuck/maintenance by its source.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = bronze.withColumn(
        "late",
        F.col("_kafka_timestamp")
        > F.col("ts") + F.make_dt_interval(secs=F.col("interval_s").cast("double") + watermark_s),
    )
    df = deduplicate(df, ("detector_id", "ts"))
    speed_key = F.coalesce(F.col("speed_mps"), F.lit(-1.0))
    series = Window.partitionBy("detector_id").orderBy("ts")
    same = Window.partitionBy("detector_id", "count", "occupancy", "_speed_key").orderBy("ts")
    df = (
        df.withColumn("_speed_key", speed_key)
        .withColumn("_run", F.row_number().over(series) - F.row_number().over(same))
        .withColumn(
            "_run_length",
            F.count(F.lit(1)).over(
                Window.partitionBy("detector_id", "count", "occupancy", "_speed_key", "_run")
            ),
        )
    )
    repeated = F.col("_run_length") >= stuck_intervals
    stuck = repeated & (F.col("count") > 0)
    zero = repeated & (F.col("count") == 0) & (F.col("occupancy") == 0)
    implausible = _implausible(F.col("count"), F.col("interval_s"), F.col("occupancy"), F.col("speed_mps"))
    ours = F.filter(
        F.array(
            F.when(F.col("late"), F.lit("late")),
            F.when(stuck, F.lit("stuck")),
            F.when(zero, F.lit("zero")),
            F.when(implausible, F.lit("implausible")),
        ),
        lambda flag: flag.isNotNull(),
    )
    source_says_unusable = F.arrays_overlap(
        F.col("quality_flags"), F.array(F.lit("stuck"), F.lit("maintenance"))
    )
    df = (
        df.withColumn("usable", ~(F.col("late") | stuck | implausible | source_says_unusable))
        .withColumn("quality_flags", F.array_sort(F.array_distinct(F.concat(F.col("quality_flags"), ours))))
        .withColumn("arrived", F.col("_kafka_timestamp"))
        .join(F.broadcast(lanes), "lane_id", "left")
    )
    return conform(with_window(in_interval(df, start, end)), TABLES["silver.detector_readings"])


# -- probes ------------------------------------------------------------------------------------


def _matcher(index: NetworkIndex, max_distance_m: float, heading_tolerance_deg: float, heading_column: str):
    """A ``mapInArrow`` function adding x, y, lane_id, edge_id and match_distance_m to each batch."""
    lane_ids = np.array(index.lane_ids, dtype=object)
    lane_edges = np.array(index.lane_edges, dtype=object)

    def add_matches(batches):
        for batch in batches:
            lon = batch.column("lon").to_numpy(zero_copy_only=False)
            lat = batch.column("lat").to_numpy(zero_copy_only=False)
            heading = batch.column(heading_column).to_numpy(zero_copy_only=False).astype(float)
            x, y = index.projection.xy(lon, lat)
            found = match(
                index,
                x,
                y,
                heading,
                max_distance_m=max_distance_m,
                heading_tolerance_deg=heading_tolerance_deg,
            )
            matched = found.lane >= 0
            lanes = np.where(matched, lane_ids[np.maximum(found.lane, 0)], None)
            edges = np.where(matched, lane_edges[np.maximum(found.lane, 0)], None)
            yield pa.RecordBatch.from_arrays(
                [
                    *batch.columns,
                    pa.array(x, pa.float64()),
                    pa.array(y, pa.float64()),
                    pa.array(lanes, pa.string()),
                    pa.array(edges, pa.string()),
                    pa.array(found.distance_m, pa.float64(), from_pandas=True),
                ],
                names=[*batch.schema.names, "x", "y", "lane_id", "edge_id", "match_distance_m"],
            )

    return add_matches


def _with_matches(
    df: DataFrame,
    index: NetworkIndex,
    max_distance_m: float,
    heading_tolerance_deg: float,
    heading_column: str,
) -> DataFrame:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    schema = StructType(
        [
            *df.schema.fields,
            StructField("x", DoubleType()),
            StructField("y", DoubleType()),
            StructField("lane_id", StringType()),
            StructField("edge_id", StringType()),
            StructField("match_distance_m", DoubleType()),
        ]
    )
    return df.mapInArrow(_matcher(index, max_distance_m, heading_tolerance_deg, heading_column), schema)


def probe_points(
    bronze: DataFrame,
    index: NetworkIndex,
    *,
    start: datetime,
    end: datetime,
    watermark_s: int,
    max_distance_m: float,
    heading_tolerance_deg: float,
) -> DataFrame:
    """Silver probe points, map-matched (:mod:`lake.mapmatch`).

    A standing vehicle reports no heading; it is matched with the probe's last heading before
    (or, failing that, its first after), without which a queued car would as often land on the
    opposite carriageway. ``bronze`` should reach a few minutes before ``start`` for that.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = bronze.withColumn(
        "late", F.col("_kafka_timestamp") > F.col("ts") + F.make_dt_interval(secs=F.lit(float(watermark_s)))
    )
    df = deduplicate(df, ("probe_id", "ts"))
    track = Window.partitionBy("probe_id").orderBy("ts")
    before = track.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    after = track.rowsBetween(Window.currentRow, Window.unboundedFollowing)
    df = df.withColumn(
        "_heading",
        F.coalesce(
            F.col("heading_deg"),
            F.last("heading_deg", ignorenulls=True).over(before),
            F.first("heading_deg", ignorenulls=True).over(after),
        ),
    )
    df = in_interval(df, start, end).select(
        "probe_id", "ts", "lat", "lon", "speed_mps", "heading_deg", "accuracy_m", "provider", "late",
        F.col("_kafka_timestamp").alias("arrived"), "_heading",
    )  # fmt: skip
    df = _with_matches(df, index, max_distance_m, heading_tolerance_deg, "_heading")
    return conform(with_window(df), TABLES["silver.probe_points"])


# -- weather and incidents ---------------------------------------------------------------------


def weather(bronze: DataFrame, *, start: datetime, end: datetime, watermark_s: int) -> DataFrame:
    from pyspark.sql import functions as F

    df = bronze.withColumn(
        "late", F.col("_kafka_timestamp") > F.col("ts") + F.make_dt_interval(secs=F.lit(float(watermark_s)))
    )
    df = deduplicate(df, ("station_id", "ts"))
    return conform(with_window(in_interval(df, start, end)), TABLES["silver.weather"])


def incidents(bronze: DataFrame, index: NetworkIndex, *, start: datetime, end: datetime) -> DataFrame:
    """Incident reports, each located: on its reported edge when the network has it, else on the
    nearest edge to its position within :data:`INCIDENT_LOCATE_DISTANCE_M` (any direction)."""
    from pyspark.sql import functions as F

    df = bronze.withColumn("late", F.lit(False))
    df = deduplicate(df, ("incident_id", "ts"))
    df = in_interval(df, start, end).withColumn("_no_heading", F.lit(None).cast("double"))
    df = df.withColumnRenamed("edge_id", "reported_edge").drop("x", "y")
    df = _with_matches(df, index, INCIDENT_LOCATE_DISTANCE_M, 180.0, "_no_heading")
    known = F.col("reported_edge").isin(list(index.edge_ids))
    df = df.withColumn(
        "located_by",
        F.when(known, "report").when(F.col("edge_id").isNotNull(), "position").otherwise("unlocated"),
    ).withColumn("edge_id", F.when(known, F.col("reported_edge")).otherwise(F.col("edge_id")))
    return conform(with_window(df), TABLES["silver.incidents"])


def lanes_frame(spark: SparkSession, index: NetworkIndex) -> DataFrame:
    """Contract lane id → SUMO edge id, for locating detector readings."""
    rows = sorted(index.edge_of_contract_lane.items())
    return spark.createDataFrame(rows, "lane_id STRING, edge_id STRING")


# -- signal events -----------------------------------------------------------------------------


def signal_events(bronze: DataFrame, *, start: datetime, end: datetime, watermark_s: int) -> DataFrame:
    """Controllers' high-resolution events, one per (signal, time, code, parameter): a log uploaded
    twice, or a batch the controller resent, collapses to one event (``copies``)."""
    from pyspark.sql import functions as F

    df = bronze.withColumn(
        "late", F.col("_kafka_timestamp") > F.col("ts") + F.make_dt_interval(secs=F.lit(float(watermark_s)))
    )
    df = deduplicate(df, ("signal_id", "ts", "event_code", "event_param"))
    df = df.withColumn("arrived", F.col("_kafka_timestamp"))
    return conform(with_window(in_interval(df, start, end)), TABLES["silver.signal_events"])
