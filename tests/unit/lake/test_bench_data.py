"""The lake benchmark's generated bronze: valid records, the ingest's layout, and right geometry.

Small sizes (one hour, a few hundred detectors, a handful of probes) on the real network the
benchmark uses, resco/ingolstadt21 from the installed sumo-rl, so the suite stays fast.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sumolib import geomhelper

from core.errors import CitybrainError
from core.settings import Settings
from lake.bench_data import (
    BENCH_TOPICS,
    DETECTOR_TOPIC,
    HOUR_S,
    INCIDENT_TOPIC,
    PROBE_INTERVAL_S,
    PROBE_TOPIC,
    WEATHER_TOPIC,
    DetectorModel,
    ProbeFleet,
    day_start_s,
    demand,
    detector_sites,
    generate_bronze,
    load_bench_network,
)
from lake.benchmark import BENCH_MANIFEST, PeakMemory, duckdb_views, prepare_bench_lake
from schemas import contract
from sim.detectors import approach_lanes, contract_id, detector_id
from sim.twin import utc_timestamp
from streaming.bronze import PROVENANCE_FIELDS, bronze_file, bronze_root, bronze_schema, read_topic
from tests.lake_rows import write_rows

DAY = date(2026, 3, 2)  # a Monday
DETECTORS = 300  # more than ingolstadt21's 158 stop-line loops, so upstream loops are made too
PROBES = 6
FILE_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.parquet$")


@pytest.fixture(scope="module")
def bench():
    return load_bench_network()


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "lake"
    summary = generate_bronze(path, start_day=DAY, detectors=DETECTORS, probes=PROBES, seed=3, hours=2)
    return path, summary


@pytest.fixture(scope="module")
def fleet_hour(bench):
    start = day_start_s(DAY) + 7 * HOUR_S  # the morning peak: slow traffic, red lights, trips ending
    return ProbeFleet(bench, 40, seed=5, start_s=start).hour(start)


def _as_record(row: dict) -> dict:
    """A bronze row back as the producer sent it: no provenance, timestamps as UTC text."""
    provenance = {f.name for f in PROVENANCE_FIELDS}
    return {
        name: utc_timestamp(value) if isinstance(value, datetime) else value
        for name, value in row.items()
        if name not in provenance
    }


# --------------------------------------------------------------------------- contracts


def test_every_generated_record_is_valid_under_its_contract(lake):
    path, summary = lake
    for topic in BENCH_TOPICS:
        table = read_topic(path, topic)
        assert table.num_rows == summary["rows"][topic]
        validate = contract(topic).validate
        for row in table.to_pylist():
            validate(_as_record(row))
    assert summary["rows"][DETECTOR_TOPIC] > 0.98 * DETECTORS * 120  # a few readings go missing
    assert summary["rows"][PROBE_TOPIC] == PROBES * 2 * HOUR_S // PROBE_INTERVAL_S
    assert summary["rows"][WEATHER_TOPIC] == 12


def test_detector_speed_is_null_exactly_when_nothing_passed(lake):
    table = read_topic(lake[0], DETECTOR_TOPIC)
    count = table.column("count").to_numpy()
    speed_null = table.column("speed_mps").is_null().to_numpy(zero_copy_only=False)
    assert (speed_null == (count == 0)).all()
    assert speed_null.any() and not speed_null.all()


def test_a_day_of_incidents_reports_and_clears_each(tmp_path, bench):
    summary = generate_bronze(tmp_path, start_day=DAY, detectors=1, probes=1, seed=3, hours=24)
    incidents = read_topic(tmp_path, INCIDENT_TOPIC).to_pylist()
    for row in incidents:
        contract(INCIDENT_TOPIC).validate(_as_record(row))
        assert row["edge_id"] in set(bench.edge_ids)
    statuses = {(r["incident_id"], r["status"]) for r in incidents}
    assert len(statuses) == summary["rows"][INCIDENT_TOPIC] == 6
    assert {status for _, status in statuses} == {"reported", "cleared"}


# --------------------------------------------------------------------------- bronze layout


def test_files_are_laid_out_and_named_as_the_ingest_lands_them(lake):
    path, summary = lake
    files = 0
    for topic in BENCH_TOPICS:
        expected_offset = 0
        found = sorted(
            bronze_root(path, topic).rglob("*.parquet"), key=lambda p: int(FILE_NAME.match(p.name)[2])
        )
        for file in found:
            table = pq.read_table(file)
            assert table.schema == bronze_schema(topic)
            assert table.schema.metadata == bronze_schema(topic).metadata
            offsets = table.column("_offset").to_numpy()
            assert offsets[0] == expected_offset and (np.diff(offsets) == 1).all()
            expected_offset = offsets[-1] + 1
            ts = table.column("ts").to_pylist()
            hour = min(ts).replace(minute=0, second=0, microsecond=0)
            assert max(ts) < hour + timedelta(hours=1)
            assert file == bronze_file(
                path, topic, f"{hour:%Y-%m-%d}", f"{hour:%H}", 0, int(offsets[0]), int(offsets[-1])
            )
            assert set(table.column("_partition").to_pylist()) == {0}
            key_field = contract(topic).key_field
            assert table.column("_key").to_pylist() == [
                str(v).encode() for v in table.column(key_field).to_pylist()
            ]
            files += 1
        assert expected_offset == summary["rows"][topic]
    assert files == summary["files"]
    assert not list(path.rglob(".*"))  # no temporary files left behind


def test_records_reach_the_broker_in_offset_order_soon_after_they_are_complete(lake):
    watermark = Settings().lake_watermark_s
    for topic, complete_after in ((DETECTOR_TOPIC, 60), (PROBE_TOPIC, 0), (WEATHER_TOPIC, 0)):
        for file in bronze_root(lake[0], topic).rglob("*.parquet"):
            table = pq.read_table(file)
            arrival = table.column("_kafka_timestamp").cast(pa.int64()).to_numpy()  # ms
            event = table.column("ts").cast(pa.int64()).to_numpy() // 1000 + complete_after * 1000
            delay = arrival - event
            assert (delay > 0).all() and (delay <= 60_000).all() and (delay < watermark * 1000).all()
            assert (np.diff(arrival) >= 0).all()  # offsets follow arrival within an event hour


# --------------------------------------------------------------------------- detectors


def test_detectors_are_the_twins_stop_line_loops_then_upstream_loops_on_other_lanes(bench):
    sites = detector_sites(bench, 2000)
    twins = approach_lanes(bench.net)
    assert len(sites) == 2000 == len(set(sites.detector_ids))
    assert list(sites.detector_ids[: len(twins)]) == [a.detector_id for a in twins]
    assert list(sites.intersection_ids[: len(twins)]) == [contract_id(a.tls_id) for a in twins]
    pattern = re.compile(contract(DETECTOR_TOPIC).schema["properties"]["detector_id"]["pattern"])
    assert all(pattern.match(d) for d in sites.detector_ids)
    for i in range(len(twins), 2000, 97):
        lane = bench.net.getLane(sites.lane_ids[i])
        assert lane.allows("passenger")
        assert sites.detector_ids[i].startswith(detector_id(lane.getID()))
        if bench.tls[sites.lane_index[i]] is None:
            assert sites.intersection_ids[i] == contract_id(lane.getEdge().getToNode().getID())
    assert sites.detector_ids[-1].endswith(":1")  # ingolstadt21 has 1,098 passenger lanes


def test_detector_counts_follow_the_daily_profile(bench):
    model = DetectorModel(bench, detector_sites(bench, 400), seed=1)
    night = model.hour(day_start_s(DAY) + 3 * HOUR_S)
    peak = model.hour(day_start_s(DAY) + 8 * HOUR_S)
    assert peak["count"].mean() > 5 * night["count"].mean()
    assert np.nanmean(peak["speed"]) < np.nanmean(night["speed"])
    saturday = day_start_s(DAY + timedelta(days=5))
    assert demand(np.array([saturday + 8 * HOUR_S]), True)[0] < demand(np.array([8 * HOUR_S]))[0] / 2


# --------------------------------------------------------------------------- probe geometry


def test_vectorised_projection_matches_sumolib(bench):
    (xmin, ymin), (xmax, ymax) = bench.net.getBBoxXY()
    rng = np.random.default_rng(0)
    x, y = rng.uniform(xmin, xmax, 25), rng.uniform(ymin, ymax, 25)
    lon, lat = bench.lonlat(x, y)
    for i in range(25):
        expected = bench.net.convertXY2LonLat(float(x[i]), float(y[i]))
        assert lon[i] == pytest.approx(expected[0], abs=1e-9)
        assert lat[i] == pytest.approx(expected[1], abs=1e-9)


def test_true_probe_positions_lie_on_the_lane_they_were_generated_on(bench, fleet_hour):
    hour = fleet_hour
    for i in range(0, len(hour.x), 37):
        shape = bench.net.getLane(bench.lane_ids[hour.lane[i]]).getShape()
        assert geomhelper.distancePointToPolygon((hour.x[i], hour.y[i]), shape, perpendicular=False) < 0.01


def test_reported_fixes_lie_within_gps_noise_of_their_lane(bench, fleet_hour):
    hour = fleet_hour
    x, y = bench.projection.xy(hour.lon, hour.lat)
    distances = np.array(
        [
            geomhelper.distancePointToPolygon(
                (x[i], y[i]), bench.net.getLane(bench.lane_ids[hour.lane[i]]).getShape(), perpendicular=False
            )
            for i in range(0, len(x), 7)
        ]
    )
    assert np.median(distances) < 5.0
    assert distances.max() < 25.0  # σ per axis is at most 4 m
    error = np.hypot(x - hour.x, y - hour.y)
    assert 2.0 < error.mean() < 6.0


def test_heading_is_the_true_north_direction_of_travel(bench, fleet_hour):
    import pyproj

    hour = fleet_hour
    n = 40
    seg = hour.segment.reshape(-1, n)
    moving = ~np.isnan(hour.heading.reshape(-1, n))
    lon, lat = bench.lonlat(hour.x, hour.y)
    lon, lat = lon.reshape(-1, n), lat.reshape(-1, n)
    x, y = hour.x.reshape(-1, n), hour.y.reshape(-1, n)
    same = (seg[1:] == seg[:-1]) & moving[:-1] & (np.hypot(x[1:] - x[:-1], y[1:] - y[:-1]) > 10.0)
    steps, vehicles = np.nonzero(same)
    assert len(steps) > 200
    azimuth, _, _ = pyproj.Geod(ellps="WGS84").inv(
        lon[steps, vehicles], lat[steps, vehicles], lon[steps + 1, vehicles], lat[steps + 1, vehicles]
    )
    heading = hour.heading.reshape(-1, n)[steps, vehicles]
    difference = (heading - azimuth + 180.0) % 360.0 - 180.0
    assert np.abs(difference).max() < 0.1
    assert abs(bench.projection.grid_north_deg) > 0.5  # the check would miss an ignored convergence


def test_vehicles_only_drive_on_along_connections_or_start_a_new_trip(bench, fleet_hour):
    hour = fleet_hour
    n = 40
    lane, trip = hour.lane.reshape(-1, n), hour.trip.reshape(-1, n)
    reach: dict[int, set[int]] = {}

    def reachable(origin: int, hops: int = 6) -> set[int]:
        if origin not in reach:
            seen, queue = {origin}, deque([(origin, 0)])
            while queue:
                here, depth = queue.popleft()
                if depth == hops:
                    continue
                for nxt in bench.next_lanes[bench.next_at[here] : bench.next_at[here + 1]]:
                    if int(nxt) not in seen:
                        seen.add(int(nxt))
                        queue.append((int(nxt), depth + 1))
            reach[origin] = seen
        return reach[origin]

    changed = lane[1:] != lane[:-1]
    steps, vehicles = np.nonzero(changed & (trip[1:] == trip[:-1]))
    assert len(steps) > 100
    for k, v in zip(steps, vehicles, strict=True):
        assert lane[k + 1, v] in reachable(int(lane[k, v]))
    new_trips = np.nonzero(trip[1:] != trip[:-1])
    assert set(lane[1:][new_trips].tolist()) <= set(bench.sources.tolist())
    assert (hour.speed == 0).any()  # some wait at red lights


def test_probe_ids_are_pseudonyms_that_change_with_the_day(tmp_path):
    generate_bronze(tmp_path, start_day=DAY, days=2, detectors=1, probes=3, seed=1, hours=25)
    table = read_topic(tmp_path, PROBE_TOPIC)
    ids_by_day: dict[str, set[str]] = {}
    for ts, probe_id in zip(
        table.column("ts").to_pylist(), table.column("probe_id").to_pylist(), strict=True
    ):
        ids_by_day.setdefault(ts.date().isoformat(), set()).add(probe_id)
    first, second = ids_by_day[DAY.isoformat()], ids_by_day[(DAY + timedelta(days=1)).isoformat()]
    assert len(second) >= 3 and not first & second


# --------------------------------------------------------------------------- determinism


def test_the_output_is_a_function_of_the_seed(tmp_path):
    def tables(folder: Path, seed: int) -> dict[str, pa.Table]:
        generate_bronze(folder, start_day=DAY, detectors=30, probes=4, seed=seed, hours=1)
        return {topic: read_topic(folder, topic) for topic in BENCH_TOPICS}

    first, again, other = tables(tmp_path / "a", 7), tables(tmp_path / "b", 7), tables(tmp_path / "c", 8)
    for topic in BENCH_TOPICS:
        assert first[topic].equals(again[topic])
    assert not first[PROBE_TOPIC].equals(other[PROBE_TOPIC])
    assert not first[DETECTOR_TOPIC].equals(other[DETECTOR_TOPIC])


def test_sizes_out_of_range_are_refused(tmp_path):
    with pytest.raises(ValueError, match="hours"):
        generate_bronze(tmp_path, start_day=DAY, hours=25)
    with pytest.raises(ValueError, match="probes"):
        generate_bronze(tmp_path, start_day=DAY, probes=0, hours=1)
    assert datetime(2026, 3, 2, tzinfo=UTC).timestamp() == day_start_s(DAY)


# --------------------------------------------------------------------------- the harness (no Spark)


def test_a_folder_that_is_not_a_bench_lake_is_never_emptied(tmp_path):
    (tmp_path / "bronze").mkdir()
    (tmp_path / "bronze" / "precious.parquet").write_bytes(b"x")
    with pytest.raises(CitybrainError, match="not a bench lake"):
        prepare_bench_lake(tmp_path, {"days": 1}, reuse=True)
    assert (tmp_path / "bronze" / "precious.parquet").exists()


def test_a_bench_lake_keeps_its_bronze_only_for_the_same_sizes(tmp_path):
    lake = tmp_path / "lake"
    assert prepare_bench_lake(lake, {"days": 1}, reuse=True) is None and lake.is_dir()
    for folder in ("bronze/t", "silver/t", "gold/t", "_staging/x"):
        (lake / folder).mkdir(parents=True)
    (lake / BENCH_MANIFEST).write_text('{"wanted": {"days": 1}, "summary": {"rows": {}}}')

    assert prepare_bench_lake(lake, {"days": 1}, reuse=True) == {"rows": {}}
    assert sorted(p.name for p in lake.iterdir()) == sorted(["bronze", BENCH_MANIFEST])
    assert (lake / "bronze" / "t").is_dir()

    assert prepare_bench_lake(lake, {"days": 2}, reuse=True) is None
    assert list(lake.iterdir()) == []


def test_duckdb_views_read_the_live_rows_of_the_windows_partitions_or_stand_empty(tmp_path):
    import duckdb

    from lake.tables import TABLES

    start = datetime(2026, 3, 2, 7, tzinfo=UTC)
    readings = [
        {"detector_id": "e1_old", "ts": start + timedelta(minutes=15)},
        {"detector_id": "e1_later", "ts": start + timedelta(hours=1)},
    ]
    write_rows(tmp_path, "silver.detector_readings", readings)
    rerun = [{"detector_id": "e1_a", "ts": start + timedelta(minutes=15)}]
    write_rows(tmp_path, "silver.detector_readings", rerun)
    replaced = TABLES["silver.detector_readings"].partition_path(tmp_path, ("2026-03-02", "0715"))
    assert len(list(replaced.glob("*.parquet"))) == 2  # the replaced file is still there

    con = duckdb.connect()
    duckdb_views(con, tmp_path, start, start + timedelta(hours=1))

    assert con.execute("SELECT detector_id, slot FROM detector_readings").fetchall() == [("e1_a", "0715")]
    assert con.execute("SELECT count(*) FROM probe_points").fetchone() == (0,)
    columns = [row[0] for row in con.execute("DESCRIBE incidents").fetchall()]
    assert "ends" in columns and "end" not in columns and "lane_ids" in columns


def test_peak_memory_counts_the_processes_this_one_started():
    import subprocess
    import sys

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)",
        ]
    )
    try:
        with PeakMemory(interval_s=0.05) as memory:
            memory.enter("alone")
            alone = memory.sample()
            memory.enter("with child")
            deadline = datetime.now(UTC) + timedelta(seconds=10)
            while memory.sample() < alone + 250 * 2**20 and datetime.now(UTC) < deadline:
                pass
    finally:
        child.kill()
        child.wait()
    assert memory.peak_mb("with child") > memory.peak_mb("start") + 250
