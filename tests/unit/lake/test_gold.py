"""The gold link-state aggregation on hand-made silver rows, in Spark and in DuckDB."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from lake.gold import (
    DETECTOR_MODEL_REL_ERROR,
    PROBE_DEFAULT_VARIANCE,
    PROBE_VARIANCE_FLOOR,
    link_state_sql,
)
from lake.tables import TABLES
from tests.unit.lake.frames import T0, at

L = 20.0


def silver_rows():
    detector = dict(
        detector_id="d",
        intersection_id="J",
        edge_id="E",
        interval_s=60,
        speed_mps=10.0,
        source="loop",
        quality_flags=[],
        copies=1,
        window_start=T0,
        date="2026-11-28",
        slot="0700",
    )
    readings = [
        {**detector, "lane_id": "E_0", "ts": at(0), "count": 10, "occupancy": 0.5, "usable": True},
        {**detector, "lane_id": "E_0", "ts": at(1), "count": 10, "occupancy": 0.5, "usable": True},
        {**detector, "lane_id": "E_1", "ts": at(0), "count": 5, "occupancy": 0.25, "usable": True},
        {**detector, "lane_id": "E_1", "ts": at(1), "count": 99, "occupancy": 0.9, "usable": False},
    ]
    for row in readings:
        row["arrived"] = row["ts"]
    point = dict(
        lat=0.0,
        lon=0.0,
        x=0.0,
        y=0.0,
        heading_deg=90.0,
        accuracy_m=5.0,
        provider="p",
        lane_id="E_0",
        match_distance_m=1.0,
        late=False,
        window_start=T0,
        date="2026-11-28",
        slot="0700",
    )
    probes = [
        {**point, "probe_id": f"p{i}", "ts": at(i), "arrived": at(i), "speed_mps": v, "edge_id": "E"}
        for i, v in enumerate([4.0, 6.0, 8.0, 6.0])
    ]
    probes.append(
        {
            **point,
            "probe_id": "late",
            "ts": at(5),
            "arrived": at(40),
            "speed_mps": 30.0,
            "edge_id": "E",
            "late": True,
        }
    )
    probes.append(
        {**point, "probe_id": "lone", "ts": at(6), "arrived": at(6), "speed_mps": 12.0, "edge_id": "F"}
    )
    incident = dict(
        kind="crash",
        severity=3,
        lat=0.0,
        lon=0.0,
        edge_id="E",
        lane_ids=[],
        description="",
        source="s",
        located_by="report",
        window_start=T0 - timedelta(minutes=15),
        date="2026-11-28",
        slot="0645",
    )
    incidents = [
        {**incident, "incident_id": "open", "ts": at(-10), "status": "active", "start": at(-10), "end": None},
        {**incident, "incident_id": "gone", "ts": at(-12), "status": "active", "start": at(-12), "end": None},
        {
            **incident,
            "incident_id": "gone",
            "ts": at(-5),
            "status": "cleared",
            "start": at(-12),
            "end": at(-5),
        },
    ]
    weather = [
        dict(
            station_id="w",
            ts=at(m),
            lat=0.0,
            lon=0.0,
            air_temp_c=5.0,
            precipitation_mm_h=p,
            visibility_m=None,
            wind_speed_mps=1.0,
            road_surface="wet",
            condition=c,
            window_start=T0,
            date="2026-11-28",
            slot="0700",
        )
        for m, p, c in ((-20, 0.0, "cloudy"), (10, 2.5, "rain"))
    ]
    return {"detector_readings": readings, "probe_points": probes, "incidents": incidents, "weather": weather}


def expected_edge_e() -> dict[str, float]:
    flow = 20 * 3600 / 120 + 5 * 3600 / 60  # lane E_0: 20 vehicles in 2 min; E_1: 5 in 1 (one unusable)
    occupied, seconds, vehicles = 0.5 * 60 * 2 + 0.25 * 60, 180, 25
    detector = L * vehicles / occupied
    w_detector = 1 / (detector**2 * (DETECTOR_MODEL_REL_ERROR**2 + 1 / vehicles))
    speeds = [4.0, 6.0, 8.0, 6.0]
    mean = sum(speeds) / 4
    variance = max(sum((v - mean) ** 2 for v in speeds) / 3, PROBE_DEFAULT_VARIANCE / 4)
    w_probe = 1 / (variance / 4 + PROBE_VARIANCE_FLOOR)
    fused = (detector * w_detector + mean * w_probe) / (w_detector + w_probe)
    se = math.sqrt(1 / (w_detector + w_probe))
    return {
        "flow_vph": flow,
        "occupancy": occupied / seconds,
        "detector_speed_mps": detector,
        "probe_speed_mps": mean,
        "speed_mps": fused,
        "speed_std_error_mps": se,
        "confidence": 1 - se / fused,
    }


def check(rows: dict[str, dict]) -> None:
    e, f = rows["E"], rows["F"]
    for column, value in expected_edge_e().items():
        assert e[column] == pytest.approx(value, rel=1e-9), column
    assert (e["detector_samples"], e["probe_samples"]) == (25, 4)
    assert list(e["incident_ids"]) == ["open"] and e["incident_severity"] == 3
    assert (e["weather_condition"], e["precipitation_mm_h"]) == ("rain", 2.5)
    assert e["window_end"] - e["window_start"] == timedelta(minutes=15)
    # A lone fix: no detector, the default variance, and a low confidence.
    assert f["flow_vph"] is None and f["detector_samples"] == 0 and f["speed_mps"] == pytest.approx(12.0)
    se = math.sqrt(PROBE_DEFAULT_VARIANCE + PROBE_VARIANCE_FLOOR)
    assert f["confidence"] == pytest.approx(1 - se / 12.0) and list(f["incident_ids"]) == []


def test_link_state_in_spark(spark):
    from pyspark.sql.types import StructType

    for name, rows in silver_rows().items():
        schema = StructType.fromDDL(TABLES[f"silver.{name}"].ddl)
        frame = spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)
        if name == "incidents":
            frame = frame.withColumnRenamed("end", "ends")
        frame.createOrReplaceTempView(name)
    check({r["edge_id"]: r.asDict() for r in spark.sql(link_state_sql(L, "spark")).collect()})


def test_the_same_sql_gives_the_same_answer_in_duckdb():
    import duckdb
    import pandas as pd

    con = duckdb.connect()
    for name, rows in silver_rows().items():
        frame = pd.DataFrame(rows)
        if name == "incidents":
            frame = frame.rename(columns={"end": "ends"})
        con.register(name, frame)
    result = con.execute(link_state_sql(L, "duckdb")).fetch_df()
    rows = {
        r["edge_id"]: {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in result.to_dict("records")
    }
    for row in rows.values():
        row["window_end"], row["window_start"] = (
            row["window_end"].to_pydatetime(),
            row["window_start"].to_pydatetime(),
        )
    check(rows)
