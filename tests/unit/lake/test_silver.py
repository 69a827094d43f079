"""Bronze → silver transforms on a few hand-made rows, in the shared Spark session."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from lake import silver
from tests.unit.lake.frames import T0, at, bronze, detector, probe
from tests.unit.lake.test_mapmatch import INDEX

pytestmark = pytest.mark.usefixtures("spark")


def readings(spark, records, **options):
    lanes = spark.createDataFrame([("A_0", "A")], "lane_id STRING, edge_id STRING")
    df = silver.detector_readings(
        bronze(spark, "traffic.detector.v1", records),
        lanes,
        start=T0,
        end=T0 + timedelta(minutes=30),
        watermark_s=options.get("watermark_s", 600),
        stuck_intervals=options.get("stuck_intervals", 5),
    )
    return {(r["ts"].minute, r["detector_id"]): r for r in df.collect()}


def test_duplicates_collapse_to_the_first_arrival_and_late_ones_are_flagged(spark):
    early = detector(0, count=7, _kafka_timestamp=at(1.1))
    retry = detector(0, count=7, _kafka_timestamp=at(1.5))
    late = detector(1, count=9, _kafka_timestamp=at(1 + 1 + 11))  # interval ended 07:02, watermark 10 min
    rows = readings(spark, [retry, early, late])
    first = rows[(0, "e1_A_0")]
    assert first["copies"] == 2 and first["arrived"].minute == 1 and first["usable"]
    assert first["edge_id"] == "A" and first["slot"] == "0700" and first["quality_flags"] == []
    assert rows[(1, "e1_A_0")]["quality_flags"] == ["late"] and not rows[(1, "e1_A_0")]["usable"]


def test_stuck_zero_and_implausible_readings(spark):
    stuck = [detector(m, count=4, occupancy=0.05, speed=11.11) for m in range(5)]
    zero = [detector(m, count=0, occupancy=0.0, speed=None, detector_id="e1_Z") for m in range(5)]
    queue = [detector(m, count=0, occupancy=1.0, speed=None, detector_id="e1_Q") for m in range(5)]
    odd = [
        detector(0, count=80, detector_id="e1_X1"),  # 4,800 veh/h on one lane
        detector(0, count=5, occupancy=0.0, detector_id="e1_X2"),  # counted, never occupied
        detector(0, count=3, occupancy=0.9, speed=20.0, detector_id="e1_X3"),  # fast and occupied
        detector(0, count=3, speed=60.0, detector_id="e1_X4"),
        detector(0, count=0, occupancy=0.0, speed=None, detector_id="e1_OK"),
    ]
    rows = readings(spark, [*stuck, *zero, *queue, *odd])
    assert all(rows[(m, "e1_A_0")]["quality_flags"] == ["stuck"] for m in range(5))
    assert not rows[(2, "e1_A_0")]["usable"]
    assert rows[(2, "e1_Z")]["quality_flags"] == ["zero"] and rows[(2, "e1_Z")]["usable"]
    assert rows[(2, "e1_Q")]["quality_flags"] == [] and rows[(2, "e1_Q")]["usable"]  # a standing queue
    for name in ("e1_X1", "e1_X2", "e1_X3", "e1_X4"):
        assert rows[(0, name)]["quality_flags"] == ["implausible"] and not rows[(0, name)]["usable"], name
    assert rows[(0, "e1_OK")]["usable"] and rows[(0, "e1_OK")]["edge_id"] == "A"


def test_a_source_flag_of_maintenance_makes_a_reading_unusable(spark):
    rows = readings(spark, [detector(0, quality_flags=["maintenance"])])
    assert rows[(0, "e1_A_0")]["quality_flags"] == ["maintenance"] and not rows[(0, "e1_A_0")]["usable"]


def test_a_standing_probe_is_matched_with_its_last_heading(spark):
    lon, lat = (
        a.tolist() for a in INDEX.projection.lonlat(np.array([40.0, 50.0, 50.0]), np.array([1.0] * 3))
    )
    points = [
        probe(0, 90.0, lon[0], lat[0]),  # eastbound, nearer the westbound lane
        probe(5, None, lon[1], lat[1], speed=0.0),  # stands: no heading of its own
        probe(10, None, lon[2], lat[2], speed=0.0, probe_id="probe-0002"),  # never had one
    ]
    df = silver.probe_points(
        bronze(spark, "operator.probe.v1", points),
        INDEX,
        start=T0,
        end=T0 + timedelta(minutes=15),
        watermark_s=600,
        max_distance_m=20,
        heading_tolerance_deg=45,
    )
    rows = {(r["probe_id"], r["ts"].second): r for r in df.collect()}
    assert rows[("probe-0001", 0)]["edge_id"] == "east"
    assert rows[("probe-0001", 5)]["edge_id"] == "east" and rows[("probe-0001", 5)]["heading_deg"] is None
    assert rows[("probe-0002", 10)]["edge_id"] == "west"  # nearest, with no heading to go by
    assert rows[("probe-0001", 0)]["match_distance_m"] == pytest.approx(3.0, abs=1e-3)
    assert rows[("probe-0001", 0)]["x"] == pytest.approx(40.0, abs=1e-3)


def test_incidents_keep_a_known_edge_and_locate_an_unknown_one(spark):
    lon, lat = (a.tolist() for a in INDEX.projection.lonlat(np.array([100.5, 0.0]), np.array([50.0, 500.0])))
    base = {
        "schema_version": 1,
        "kind": "crash",
        "status": "active",
        "severity": 3,
        "lane_ids": [],
        "start": at(1),
        "end": None,
        "description": "",
        "source": "test",
    }
    reports = [
        {**base, "ts": at(1), "incident_id": "known", "edge_id": "west", "lat": lat[0], "lon": lon[0]},
        {**base, "ts": at(2), "incident_id": "placed", "edge_id": None, "lat": lat[0], "lon": lon[0]},
        {**base, "ts": at(3), "incident_id": "lost", "edge_id": "elsewhere", "lat": lat[1], "lon": lon[1]},
    ]
    df = silver.incidents(bronze(spark, "public.incident.v1", reports), INDEX, start=T0, end=at(15))
    rows = {r["incident_id"]: (r["edge_id"], r["located_by"]) for r in df.collect()}
    assert rows == {"known": ("west", "report"), "placed": ("north", "position"), "lost": (None, "unlocated")}
