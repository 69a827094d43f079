"""Silver → gold: fused link state, turning-movement demand and detector health.

``gold.link_state_15min`` is one SQL text (:func:`link_state_sql`) that Spark and DuckDB both run
over the same silver files, so the benchmark compares engines on the same aggregation. Speed:

- from detectors, the single-loop estimate ``v = L · N / T_occ`` (vehicles over occupied time,
  times an effective vehicle length ``L``). At a stop-line loop, standing queues make ``T_occ``
  large, so ``L`` is a calibration constant of the site (``CITYBRAIN_LAKE_DETECTOR_EFFECTIVE_LENGTH_M``)
  rather than a car's length. Its variance is ``v² (REL² + 1/N)``: a model error plus the counting
  error of N vehicles;
- from probes, the mean of the fixes matched to the edge, time-sampled like the edge's true space
  mean speed; its variance is the sample variance over n plus a floor for the map-matching error;
- fused by inverse variance, with a standard error and a confidence ``1 − se / speed`` in [0, 1].

Sums are taken over DECIMAL values: they are exact whatever the order Spark adds the partial
sums in, which keeps a rerun's rows identical.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from lake.network import NetworkIndex
from lake.silver import conform
from lake.tables import TABLES, read_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from lake.delta import Lake

#: Relative error of the detector speed model, calibrated on the corridor twin (see the README).
DETECTOR_MODEL_REL_ERROR = 0.4
#: Variance floor of a probe mean (m²/s²): map-matching and GPS error that more fixes don't remove.
PROBE_VARIANCE_FLOOR = 0.25
#: Speed variance assumed for a single fix, or a sample with no spread (m²/s²).
PROBE_DEFAULT_VARIANCE = 4.0
#: Consecutive fixes of a probe further apart than this (s) are not read as one turn.
MAX_TURN_GAP_S = 60
#: How far back incidents and weather are looked up for a window's context.
INCIDENT_LOOKBACK = timedelta(hours=24)
WEATHER_LOOKBACK = timedelta(hours=1)

Dialect = Literal["spark", "duckdb"]
_LIST = {
    "spark": ("sort_array(collect_list(incident_id))", "array()"),
    "duckdb": ("list_sort(list(incident_id))", "[]"),
}


def link_state_sql(effective_length_m: float, dialect: Dialect = "spark") -> str:
    """The link-state aggregation over the views ``detector_readings``, ``probe_points``,
    ``incidents`` (with ``end`` renamed ``ends``) and ``weather``, in Spark's or DuckDB's SQL."""
    sorted_ids, empty_list = _LIST[dialect]
    length, rel = repr(effective_length_m), repr(DETECTOR_MODEL_REL_ERROR)
    var_default, var_floor = repr(PROBE_DEFAULT_VARIANCE), repr(PROBE_VARIANCE_FLOOR)
    return f"""
WITH lane_detectors AS (
    SELECT edge_id, window_start, lane_id,
           SUM(count) AS vehicles,
           SUM(interval_s) AS seconds,
           SUM(CAST(occupancy * interval_s AS DECIMAL(18, 4))) AS occupied_s
    FROM detector_readings
    WHERE usable AND edge_id IS NOT NULL
    GROUP BY edge_id, window_start, lane_id
),
detectors AS (
    SELECT edge_id, window_start,
           SUM(CAST(vehicles * 3600 AS DECIMAL(18, 4)) / seconds) AS flow_vph,
           SUM(vehicles) AS vehicles,
           SUM(occupied_s) AS occupied_s,
           SUM(seconds) AS seconds
    FROM lane_detectors
    GROUP BY edge_id, window_start
),
probes AS (
    SELECT edge_id, window_start, COUNT(*) AS n,
           SUM(CAST(speed_mps AS DECIMAL(18, 4))) AS s1,
           SUM(CAST(speed_mps * speed_mps AS DECIMAL(22, 4))) AS s2
    FROM probe_points
    WHERE edge_id IS NOT NULL AND NOT late
    GROUP BY edge_id, window_start
),
estimates AS (
    SELECT COALESCE(d.edge_id, p.edge_id) AS edge_id,
           COALESCE(d.window_start, p.window_start) AS window_start,
           CAST(d.flow_vph AS DOUBLE) AS flow_vph,
           CAST(d.occupied_s AS DOUBLE) / d.seconds AS occupancy,
           CASE WHEN d.vehicles > 0 AND d.occupied_s > 0
                THEN {length} * d.vehicles / CAST(d.occupied_s AS DOUBLE) END AS detector_speed_mps,
           COALESCE(d.vehicles, 0) AS detector_samples,
           CAST(p.s1 AS DOUBLE) / p.n AS probe_speed_mps,
           COALESCE(p.n, 0) AS probe_samples,
           CASE WHEN p.n > 1
                THEN GREATEST(CAST(p.s2 - p.s1 * p.s1 / p.n AS DOUBLE) / (p.n - 1), {var_default} / 4)
                ELSE {var_default} END / p.n + {var_floor} AS probe_variance
    FROM detectors d
    FULL OUTER JOIN probes p ON d.edge_id = p.edge_id AND d.window_start = p.window_start
),
weighted AS (
    SELECT *,
           CASE WHEN detector_speed_mps IS NOT NULL
                THEN 1.0 / (detector_speed_mps * detector_speed_mps
                            * ({rel} * {rel} + 1.0 / detector_samples))
                ELSE 0.0 END AS w_detector,
           CASE WHEN probe_speed_mps IS NOT NULL THEN 1.0 / probe_variance ELSE 0.0 END AS w_probe
    FROM estimates
),
fused AS (
    SELECT *,
           CASE WHEN w_detector + w_probe > 0
                THEN (COALESCE(detector_speed_mps * w_detector, 0) + COALESCE(probe_speed_mps * w_probe, 0))
                     / (w_detector + w_probe) END AS speed_mps,
           CASE WHEN w_detector + w_probe > 0
                THEN SQRT(1.0 / (w_detector + w_probe)) END AS speed_std_error_mps
    FROM weighted
),
windows AS (SELECT DISTINCT window_start FROM fused),
reports AS (
    SELECT w.window_start, i.incident_id, i.edge_id, i.status, i.severity, i.start, i.ends,
           ROW_NUMBER() OVER (PARTITION BY w.window_start, i.incident_id ORDER BY i.ts DESC) AS latest
    FROM windows w
    JOIN incidents i ON i.ts < w.window_start + INTERVAL '15' MINUTE
),
incident_context AS (
    SELECT window_start, edge_id, {sorted_ids} AS incident_ids, MAX(severity) AS incident_severity
    FROM reports
    WHERE latest = 1 AND edge_id IS NOT NULL AND status IN ('reported', 'confirmed', 'active')
      AND start < window_start + INTERVAL '15' MINUTE AND (ends IS NULL OR ends > window_start)
    GROUP BY window_start, edge_id
),
weather_context AS (
    SELECT window_start, condition, precipitation_mm_h, road_surface FROM (
        SELECT w.window_start, x.condition, x.precipitation_mm_h, x.road_surface,
               ROW_NUMBER() OVER (PARTITION BY w.window_start ORDER BY x.ts DESC, x.station_id) AS latest
        FROM windows w
        JOIN weather x ON x.ts < w.window_start + INTERVAL '15' MINUTE
                      AND x.ts >= w.window_start - INTERVAL '1' HOUR
    ) ranked WHERE latest = 1
)
SELECT f.edge_id, f.window_start, f.window_start + INTERVAL '15' MINUTE AS window_end,
       f.flow_vph, f.occupancy, f.detector_speed_mps, f.detector_samples,
       f.probe_speed_mps, f.probe_samples, f.speed_mps, f.speed_std_error_mps,
       CASE WHEN f.speed_mps > 0
            THEN GREATEST(0.0, 1.0 - f.speed_std_error_mps / GREATEST(f.speed_mps, 1.0))
            ELSE 0.0 END AS confidence,
       COALESCE(i.incident_ids, {empty_list}) AS incident_ids, i.incident_severity,
       x.condition AS weather_condition, x.precipitation_mm_h, x.road_surface
FROM fused f
LEFT JOIN incident_context i ON i.edge_id = f.edge_id AND i.window_start = f.window_start
LEFT JOIN weather_context x ON x.window_start = f.window_start
"""


def register_views(spark: SparkSession, lake: Lake, start: datetime, end: datetime) -> None:
    """The silver views :func:`link_state_sql` reads, for [start, end), as Spark temp views."""
    frames = {
        "detector_readings": read_table(spark, TABLES["silver.detector_readings"], lake, start, end),
        "probe_points": read_table(spark, TABLES["silver.probe_points"], lake, start, end),
        "incidents": read_table(
            spark, TABLES["silver.incidents"], lake, start - INCIDENT_LOOKBACK, end
        ).withColumnRenamed("end", "ends"),
        "weather": read_table(spark, TABLES["silver.weather"], lake, start - WEATHER_LOOKBACK, end),
    }
    for name, frame in frames.items():
        frame.createOrReplaceTempView(name)


def link_state(spark: SparkSession, lake: Lake, start: datetime, end: datetime, effective_length_m: float):
    from lake.silver import with_window

    register_views(spark, lake, start, end)
    df = spark.sql(link_state_sql(effective_length_m, "spark"))
    return conform(with_window(df, "window_start"), TABLES["gold.link_state_15min"])


def turning_movements(
    spark: SparkSession, lake: Lake, index: NetworkIndex, start: datetime, end: datetime
) -> DataFrame:
    """Movement volumes: each approach lane's detector flow split over the lane's movements.

    The split is the probes' turning ratios: consecutive fixes of one probe (at most
    :data:`MAX_TURN_GAP_S` apart) on two edges that a movement joins are one turn. A lane whose
    movements no probe made this window splits evenly (``ratio_source`` uniform).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from lake.silver import with_window

    probes = read_table(spark, TABLES["silver.probe_points"], lake, start, end).where(
        "edge_id IS NOT NULL AND NOT late"
    )
    track = Window.partitionBy("probe_id").orderBy("ts")
    turns = (
        probes.withColumn("from_edge", F.lag("edge_id").over(track))
        .withColumn("_gap", F.col("ts").cast("long") - F.lag("ts").over(track).cast("long"))
        .where((F.col("from_edge") != F.col("edge_id")) & (F.col("_gap") <= MAX_TURN_GAP_S))
        .groupBy("from_edge", F.col("edge_id").alias("to_edge"), "window_start")
        .agg(F.count(F.lit(1)).alias("transitions"))
    )
    movements = spark.createDataFrame(
        [(m.intersection_id, m.from_lane, m.from_edge, m.to_edge) for m in index.movements],
        "intersection_id STRING, lane_id STRING, from_edge STRING, to_edge STRING",
    )
    lane_flow = (
        read_table(spark, TABLES["silver.detector_readings"], lake, start, end)
        .where("usable")
        .groupBy("lane_id", "window_start")
        .agg((F.sum("count") * 3600 / F.sum("interval_s")).cast("decimal(18,6)").alias("lane_vph"))
    )
    by_lane = Window.partitionBy("lane_id", "window_start")
    lane_moves = (
        lane_flow.join(F.broadcast(movements), "lane_id")
        .join(turns, ["from_edge", "to_edge", "window_start"], "left")
        .fillna(0, subset=["transitions"])
        .withColumn("_lane_turns", F.sum("transitions").over(by_lane))
        .withColumn("_lane_moves", F.count(F.lit(1)).over(by_lane))
        .withColumn(
            "_share",
            F.when(F.col("_lane_turns") > 0, F.col("transitions") / F.col("_lane_turns")).otherwise(
                1.0 / F.col("_lane_moves")
            ),
        )
        .withColumn("_vph", (F.col("lane_vph") * F.col("_share")).cast("decimal(18,6)"))
        .withColumn("_from_probes", F.col("_lane_turns") > 0)
    )
    volumes = lane_moves.groupBy("intersection_id", "from_edge", "to_edge", "window_start").agg(
        F.sum("_vph").alias("volume_vph"),
        F.max("transitions").alias("probe_transitions"),
        F.min(F.col("_from_probes").cast("int")).alias("_all_probe"),
        F.max(F.col("_from_probes").cast("int")).alias("_any_probe"),
    )
    approach = Window.partitionBy("intersection_id", "from_edge", "window_start")
    volumes = (
        volumes.withColumn("_approach_vph", F.sum("volume_vph").over(approach))
        .withColumn(
            "turning_ratio",
            F.when(F.col("_approach_vph") > 0, F.col("volume_vph") / F.col("_approach_vph")).otherwise(0.0),
        )
        .withColumn(
            "ratio_source",
            F.when(F.col("_all_probe") == 1, "probe")
            .when(F.col("_any_probe") == 1, "mixed")
            .otherwise("uniform"),
        )
        .withColumn("window_end", F.col("window_start") + F.expr("INTERVAL 15 MINUTES"))
    )
    return conform(with_window(volumes, "window_start"), TABLES["gold.turning_movements_15min"])


def detector_health(spark: SparkSession, lake: Lake, day: datetime) -> DataFrame:
    """Per detector, over the UTC day starting at ``day``: what arrived against what was expected.

    Expected intervals run from the network's first to its last reading of the day, so a feed that
    covers only the morning peak is not counted as down for the night. Status: ``down`` below 50 %
    availability or usable share, ``degraded`` below 95 % / 90 %, else ``ok``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    readings = read_table(spark, TABLES["silver.detector_readings"], lake, day, day + timedelta(days=1))
    whole_day = Window.partitionBy()
    span = F.max("ts").over(whole_day).cast("long") - F.min("ts").over(whole_day).cast("long")
    per_reading = readings.withColumn("_span_s", span)

    def flagged(flag: str):
        return F.sum(F.array_contains("quality_flags", flag).cast("int")).cast("long")

    health = per_reading.groupBy("detector_id", "intersection_id", "lane_id", "edge_id").agg(
        (F.first("_span_s") / F.max("interval_s") + 1).cast("long").alias("expected_intervals"),
        F.sum((~F.array_contains("quality_flags", "late")).cast("int"))
        .cast("long")
        .alias("received_intervals"),
        F.sum(F.col("copies") - 1).cast("long").alias("duplicates"),
        flagged("late").alias("late_intervals"),
        flagged("stuck").alias("stuck_intervals"),
        flagged("zero").alias("zero_intervals"),
        flagged("implausible").alias("implausible_intervals"),
        (F.sum(F.col("usable").cast("int")) / F.count(F.lit(1))).alias("usable_share"),
        F.max("ts").alias("last_seen"),
    )
    availability = F.least(F.lit(1.0), F.col("received_intervals") / F.col("expected_intervals"))
    health = health.withColumn("availability", availability).withColumn(
        "status",
        F.when((F.col("availability") < 0.5) | (F.col("usable_share") < 0.5), "down")
        .when((F.col("availability") < 0.95) | (F.col("usable_share") < 0.9), "degraded")
        .otherwise("ok"),
    )
    return conform(health.withColumn("date", F.lit(f"{day:%Y-%m-%d}")), TABLES["gold.detector_health_daily"])
