"""Turning movements and detector health from a few silver rows written to a throwaway lake."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from lake import gold
from lake.commit import overwrite_partitions
from lake.network import Movement, NetworkIndex
from lake.silver import conform, with_window
from lake.tables import TABLES
from sim.geo import NetProjection
from tests.unit.lake.frames import T0, at

END = T0 + timedelta(minutes=15)
# Intersection J: lane A_0 turns onto B or C, lane A_1 onto C only; lane D_0 onto B or C.
INDEX = NetworkIndex(
    name="turns",
    projection=NetProjection(None, (0.0, 0.0), (0.0, 0.0)),
    lane_ids=(),
    lane_edges=(),
    segments=np.empty((0, 4)),
    segment_lane=np.empty(0, dtype=np.int32),
    movements=(
        Movement("J", "A_0", "A", "B"),
        Movement("J", "A_0", "A", "C"),
        Movement("J", "A_1", "A", "C"),
        Movement("J", "D_0", "D", "B"),
        Movement("J", "D_0", "D", "C"),
    ),
    fingerprint="turns",
)


def write(spark, lake, name, rows):
    from pyspark.sql.types import StructType

    table = TABLES[name]
    columns = StructType.fromDDL(table.columns)
    frame = spark.createDataFrame([tuple(r.get(f.name) for f in columns.fields) for r in rows], columns)
    overwrite_partitions(conform(with_window(frame), table), table, lake, T0, END)


def reading(detector, lane, minute, count, usable=True, flags=(), copies=1):
    return dict(
        detector_id=detector, intersection_id="J", lane_id=lane, edge_id=lane[0], ts=at(minute),
        interval_s=60, count=count, occupancy=0.1, speed_mps=10.0, source="loop", quality_flags=list(flags),
        usable=usable, copies=copies, arrived=at(minute + 1), window_start=T0,
    )  # fmt: skip


def fix(probe, second, edge):
    return dict(
        probe_id=probe, ts=T0 + timedelta(seconds=second), lat=0.0, lon=0.0, x=0.0, y=0.0, speed_mps=5.0,
        heading_deg=None, accuracy_m=5.0, provider="p", edge_id=edge, lane_id=None, match_distance_m=1.0,
        late=False, arrived=T0 + timedelta(seconds=second), window_start=T0,
    )  # fmt: skip


@pytest.fixture
def lake(spark, tmp_path):
    lake = tmp_path / "lake"
    write(spark, lake, "silver.detector_readings", [
        reading("dA0", "A_0", 0, 10), reading("dA0", "A_0", 1, 20),  # 30 vehicles in 2 min: 900 veh/h
        reading("dA1", "A_1", 0, 5),  # 300 veh/h
        reading("dD0", "D_0", 0, 4), reading("dD0", "D_0", 1, 99, usable=False, flags=["stuck"], copies=2),
    ])  # fmt: skip
    write(spark, lake, "silver.probe_points", [
        fix("p1", 0, "A"), fix("p1", 5, "B"),  # A → B
        fix("p2", 0, "A"), fix("p2", 5, "C"),  # A → C
        fix("p3", 0, "A"), fix("p3", 5, "B"),  # A → B
        fix("p4", 0, "A"), fix("p4", 300, "B"),  # too far apart to be one turn
    ])  # fmt: skip
    return lake


def test_lane_flows_split_by_probe_turns_or_evenly(spark, lake):
    rows = gold.turning_movements(spark, lake, INDEX, T0, END).collect()
    got = {(r["from_edge"], r["to_edge"]): r for r in rows}
    # A_0: 900 veh/h split 2:1 by the probes' turns; A_1: 300 veh/h all to C (the probes' one A → C).
    assert got[("A", "B")]["volume_vph"] == pytest.approx(600.0)
    assert got[("A", "C")]["volume_vph"] == pytest.approx(300.0 + 300.0)
    assert (
        got[("A", "B")]["turning_ratio"] == pytest.approx(0.5) and got[("A", "B")]["probe_transitions"] == 2
    )
    assert {got[("A", "B")]["ratio_source"], got[("A", "C")]["ratio_source"]} == {"probe"}
    # D_0: no probe turned there, so its 240 veh/h (the stuck reading left out) split evenly.
    assert (
        got[("D", "B")]["volume_vph"] == pytest.approx(120.0) and got[("D", "C")]["ratio_source"] == "uniform"
    )
    assert all(r["window_end"] - r["window_start"] == timedelta(minutes=15) for r in rows)


def test_detector_health_counts_what_arrived_against_the_networks_span(spark, lake):
    rows = {r["detector_id"]: r for r in gold.detector_health(spark, lake, T0.replace(hour=0)).collect()}
    assert rows["dA0"]["expected_intervals"] == 2 and rows["dA0"]["availability"] == 1.0
    assert rows["dA0"]["status"] == "ok"
    assert (
        rows["dA1"]["received_intervals"] == 1 and rows["dA1"]["status"] == "degraded"
    )  # half its intervals
    d = rows["dD0"]
    assert (d["duplicates"], d["stuck_intervals"], d["usable_share"], d["status"]) == (1, 1, 0.5, "degraded")
