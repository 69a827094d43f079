"""The sensor twin on a real city scenario: records, ground truth, a real lane closure, and Kafka."""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest

from schemas import INPUT_TOPICS, contract
from sim.network import for_scenario
from sim.scenarios import resco, resolve
from sim.signal_config import derive
from sim.twin import TwinError, TwinProgress, run_twin
from streaming.bronze import read_topic
from streaming.ingest import Ingest
from tests.integration.conftest import both_brokers

pytestmark = pytest.mark.integration

MINUTES = 15
SCENARIO = resco("cologne1")
BEGIN = SCENARIO.begin  # 25200 s: 07:00Z
MIDNIGHT = datetime.fromisoformat("2026-11-28T00:00:00+00:00")


def sim_seconds(ts: str) -> float:
    return (datetime.fromisoformat(ts) - MIDNIGHT).total_seconds()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """cologne1 for 15 simulated minutes, with an emergency dispatch, into a list; the summary,
    the records and progress reports."""
    records: list[tuple[str, dict]] = []
    reports: list[TwinProgress] = []
    summary = run_twin(
        None,
        SCENARIO,
        out_dir=tmp_path_factory.mktemp("twin"),
        until=BEGIN + MINUTES * 60,
        emergency=True,
        sink=lambda topic, record: records.append((topic, record)),
        progress=reports.append,
    )
    by_topic = defaultdict(list)
    for topic, record in records:
        by_topic[topic].append(record)
    return summary, by_topic, reports


def test_every_record_passes_its_contract_and_is_counted(run):
    summary, by_topic, _ = run
    assert set(by_topic) == set(INPUT_TOPICS)
    for topic, records in by_topic.items():
        validate = contract(topic).validate
        for record in records:
            validate(record)
    assert summary.counts == {topic: len(records) for topic, records in by_topic.items()}
    assert summary.simulated_s == MINUTES * 60


def test_every_detector_reports_every_minute_as_sumo_measured_it(run):
    summary, by_topic, _ = run
    readings = by_topic["traffic.detector.v1"]
    assert summary.detectors == 8 and len(readings) == 8 * MINUTES
    starts = Counter(r["ts"] for r in readings)
    expected = {
        (MIDNIGHT + timedelta(seconds=BEGIN + 60 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(MINUTES)
    }
    assert set(starts) == expected and set(starts.values()) == {8}
    assert {r["intersection_id"] for r in readings} == {"GS_cluster_357187_359543"}
    assert {r["interval_s"] for r in readings} == {60} and {r["source"] for r in readings} == {"sumo"}
    assert sum(r["count"] for r in readings) > 200

    # SUMO's own E1 output of the same run: the same counts and speeds; occupancy close to it.
    e1 = {
        (i.get("id"), float(i.get("begin"))): i
        for i in ET.parse(summary.out_dir / "e1.xml").getroot().iter("interval")
    }
    for reading in readings:
        written = e1[(reading["detector_id"], sim_seconds(reading["ts"]))]
        assert reading["count"] == int(written.get("nVehContrib"))
        speed = float(written.get("speed"))
        assert reading["speed_mps"] == (None if speed < 0 else pytest.approx(speed, abs=0.01))
        assert reading["occupancy"] == pytest.approx(float(written.get("occupancy")) / 100, abs=0.1)
    assert max(r["occupancy"] for r in readings) > 0.3, "queues stand on stop-line loops"


def test_probes_are_pseudonymous_fixes_near_cologne_from_a_tenth_of_the_vehicles(run):
    summary, by_topic, _ = run
    fixes = by_topic["operator.probe.v1"]
    assert len(fixes) > 300
    for fix in fixes:
        assert abs(fix["lat"] - 50.93) < 0.02 and abs(fix["lon"] - 6.93) < 0.02
        assert fix["provider"] == "sumo-twin" and fix["accuracy_m"] == 5.0
        assert (fix["heading_deg"] is None) == (fix["speed_mps"] < 0.1)
    vehicle_ids = {trip.get("id") for trip in ET.parse(SCENARIO.sumocfg.with_suffix(".rou.xml")).getroot()}
    probe_ids = {fix["probe_id"] for fix in fixes}
    assert all(re.fullmatch(r"[0-9a-f]{16}", p) for p in probe_ids) and not probe_ids & vehicle_ids
    assert summary.vehicles > 400
    assert 0.06 < summary.probes / summary.vehicles < 0.14
    assert 0.8 * summary.probes <= len(probe_ids) <= summary.probes

    by_probe = defaultdict(list)
    for fix in fixes:
        by_probe[fix["probe_id"]].append(sim_seconds(fix["ts"]))
    gaps = Counter(b - a for times in by_probe.values() for a, b in zip(times, times[1:], strict=False))
    assert set(gaps) == {5.0}, "each probe reports every probe_interval_s"

    # The heading agrees with the direction of travel between fixes (GPS noise: 5 m).
    errors = []
    for pid, _ in by_probe.items():
        track = [f for f in fixes if f["probe_id"] == pid]
        for a, b in zip(track, track[1:], strict=False):
            if a["heading_deg"] is None or min(a["speed_mps"], b["speed_mps"]) < 5:
                continue
            north = (b["lat"] - a["lat"]) * 111_195
            east = (b["lon"] - a["lon"]) * 111_195 * math.cos(math.radians(a["lat"]))
            if math.hypot(north, east) > 30:
                bearing = math.degrees(math.atan2(east, north)) % 360
                errors.append(abs((bearing - a["heading_deg"] + 180) % 360 - 180))
    assert len(errors) > 30 and sorted(errors)[len(errors) // 2] < 15


def test_weather_comes_from_one_station_every_ten_minutes(run):
    summary, by_topic, _ = run
    weather = by_topic["public.weather.v1"]
    assert [w["ts"] for w in weather] == ["2026-11-28T07:00:00Z", "2026-11-28T07:10:00Z"]
    assert summary.station_id == "twin_cologne1"
    assert {w["station_id"] for w in weather} == {"twin_cologne1"}
    assert all(abs(w["lat"] - 50.93) < 0.02 and abs(w["lon"] - 6.93) < 0.02 for w in weather)


def test_the_incident_really_closes_a_lane_and_reopens_it(run):
    summary, by_topic, _ = run
    log = summary.incident
    active, cleared = by_topic["public.incident.v1"]
    assert (active["status"], cleared["status"]) == ("active", "cleared")
    assert active["incident_id"] == cleared["incident_id"] == log.incident_id
    assert active["end"] is None and cleared["end"] == cleared["ts"] and active["start"] == cleared["start"]
    assert sim_seconds(active["start"]) == log.start_s == BEGIN + 300  # a third into the window
    assert sim_seconds(cleared["end"]) == log.end_s == BEGIN + 600
    assert active["edge_id"] == log.edge_id and active["lane_ids"] == [log.lane_id]
    assert abs(active["lat"] - 50.93) < 0.02 and abs(active["lon"] - 6.93) < 0.02

    # In the simulation: closed to every class, nobody new on it, and the permissions restored after.
    assert "passenger" in log.allowed_before and log.allowed_while_closed == ()
    assert log.allowed_after == log.allowed_before
    assert log.entered_while_closed == ()

    # SUMO's per-lane ground truth agrees: no vehicle on the lane while closed; it carried traffic
    # before, and its neighbours carried the edge's traffic meanwhile.
    used = defaultdict(float)
    for interval in ET.parse(summary.ground_truth_lanes).getroot().iter("interval"):
        begin = float(interval.get("begin"))
        phase = "before" if begin < log.start_s else "closed" if begin < log.end_s else "after"
        for lane in interval.iter("lane"):
            if lane.get("id").rsplit("_", 1)[0] == log.edge_id:
                which = "lane" if lane.get("id") == log.lane_id else "others"
                used[(phase, which)] += float(lane.get("sampledSeconds"))
    assert used[("closed", "lane")] == 0.0
    assert used[("before", "lane")] > 0 and used[("closed", "others")] > 0


def test_ground_truth_holds_sumo_edge_speeds_and_flows_per_quarter_hour(run):
    summary, _, _ = run
    root = ET.parse(summary.ground_truth).getroot()
    intervals = list(root.iter("interval"))
    assert [(float(i.get("begin")), float(i.get("end"))) for i in intervals] == [(BEGIN, BEGIN + 900)]
    edges = list(intervals[0].iter("edge"))
    assert len(edges) >= 9
    assert any(float(e.get("speed", -1)) > 0 and int(e.get("entered")) > 0 for e in edges)


def test_progress_is_reported_as_simulated_time_passes(run):
    _, _, reports = run
    assert [r.sim_time - BEGIN for r in reports] == [300, 600, 900]
    assert reports[-1].counts["operator.probe.v1"] > 0 and "07:15:00Z" in str(reports[-1])


def test_speed_keeps_pace_with_the_wall_clock(tmp_path):
    sent = Counter()
    started = time.perf_counter()
    summary = run_twin(
        None,
        SCENARIO,
        out_dir=tmp_path,
        until=BEGIN + 60,
        speed=100,
        incident=False,
        sink=lambda topic, _record: sent.update([topic]),
    )
    assert time.perf_counter() - started >= 0.6
    assert summary.incident is None and sent["traffic.detector.v1"] == 8


def test_the_emergency_vehicle_is_reported_from_dispatch_to_arrival(run):
    """Dispatched at half the window on a route across the signal, obeying it; the fleet system's
    records follow it: the dispatch, a position every probe interval, the arrival."""
    summary, by_topic, _ = run
    log = summary.emergency
    records = by_topic["operator.emergency.v1"]
    assert log is not None and log.dispatched_s == BEGIN + MINUTES * 30 and log.arrived_s is not None
    kinds = [r["kind"] for r in records]
    assert kinds == ["dispatch", *["position"] * log.positions, "arrived"] and log.positions > 0
    assert {r["dispatch_id"] for r in records} == {log.dispatch_id}
    assert {r["destination_edge"] for r in records} == {log.destination}
    times = [sim_seconds(r["ts"]) for r in records]
    assert times == sorted(times) and times[0] == log.dispatched_s and times[-1] == log.arrived_s
    assert all(r["speed_mps"] is not None for r in records if r["kind"] == "position")
    assert log.route[0] == log.origin and log.route[-1] == log.destination


def test_an_emergency_route_off_the_network_is_refused_naming_the_edge(tmp_path):
    with pytest.raises(TwinError, match="no edge 'nowhere'"):
        run_twin(None, SCENARIO, out_dir=tmp_path, emergency=("nowhere", "x"), sink=print)


def test_bad_options_are_refused_before_sumo_starts(tmp_path):
    with pytest.raises(TwinError, match="probe_share"):
        run_twin(None, SCENARIO, out_dir=tmp_path, probe_share=1.5, sink=print)
    with pytest.raises(TwinError, match="end after it begins"):
        run_twin(None, SCENARIO, out_dir=tmp_path, until=BEGIN, sink=print)
    with pytest.raises(TwinError, match="detector_period_s"):
        run_twin(None, SCENARIO, out_dir=tmp_path, detector_period_s=0, sink=print)


@both_brokers
def test_every_record_sent_to_kafka_lands_in_bronze(kafka, tmp_path):
    summary = run_twin(kafka, SCENARIO, out_dir=tmp_path / "twin", until=BEGIN + 300)
    sent = summary.total
    assert sent > 150 and summary.counts["public.incident.v1"] == 2

    counters = Ingest(kafka, group="twin").run(stop_when=lambda c: c.consumed >= sent, handle_signals=False)

    assert counters.dead_lettered == 0 and counters.landed == sent
    for topic in INPUT_TOPICS:
        assert read_topic(kafka.lake_path, topic).num_rows == summary.counts[topic], topic


# -- the signals' event log, against SUMO's own states and vehicle positions ------------------------

CORRIDOR_MINUTES = 10


@pytest.fixture(scope="module")
def corridor(tmp_path_factory):
    """The corridor (seed 2, as the twin lake) for ten minutes: the summary, the event log, the
    configuration it was logged by and the network's programs."""
    scenario = resolve("corridor", tmp_path_factory.mktemp("build"))
    events: list[dict] = []
    summary = run_twin(
        None,
        scenario,
        out_dir=tmp_path_factory.mktemp("corridor"),
        until=scenario.begin + CORRIDOR_MINUTES * 60,
        seed=2,
        sink=lambda topic, record: events.append(record) if topic == "traffic.signal_event.v1" else None,
    )
    network = for_scenario(scenario)
    return summary, events, derive(network, scenario.name), network


def begin_greens_in(states: list[dict], configuration) -> set[tuple[str, int, float]]:
    """(controller, phase, t) of every change of a phase's indication to green in SUMO's states;
    the first state of each signal counts as a change from red, as the log opens."""
    greens = set()
    last: dict[str, str] = {}
    for row in states:
        signal = configuration.signals[row["signal_id"]]
        before = last.get(row["signal_id"])
        for phase in signal.phases:
            if phase.indication(row["state"]) == "green" and (
                before is None or phase.indication(before) != "green"
            ):
                greens.add((signal.controller_id, phase.number, round(row["t"], 1)))
        last[row["signal_id"]] = row["state"]
    return greens


def test_the_event_log_begins_each_green_when_sumo_shows_it(corridor):
    summary, events, configuration, network = corridor
    validate = contract("traffic.signal_event.v1").validate
    for event in events:
        validate(event)
    assert summary.counts["traffic.signal_event.v1"] == len(events) and summary.signals == 7
    assert {e["source"] for e in events} == {"sumo"}
    assert {e["signal_id"] for e in events} == {s.controller_id for s in configuration.signals.values()}

    states = pq.read_table(summary.ground_truth_signal_states).to_pylist()
    assert {r["signal_id"] for r in states} == set(configuration.signals)
    assert all(
        a["t"] < b["t"] for a, b in zip(states, states[1:], strict=False) if a["signal_id"] == b["signal_id"]
    )
    logged = {
        (e["signal_id"], e["event_param"], round(sim_seconds(e["ts"]), 1))
        for e in events
        if e["event_code"] == 1
    }
    truth = begin_greens_in(states, configuration)
    assert len(truth) > 200 and logged == truth

    # fixed-time programs: every green is forced off, and the coordination is the network's
    codes = Counter(e["event_code"] for e in events)
    assert codes[6] == codes[7] == codes[8] > 0 and codes[4] == codes[5] == 0
    opening = {
        (e["signal_id"], e["event_code"]): e["event_param"] for e in events if e["event_code"] in (132, 133)
    }
    for tls_id, signal in network.signals.items():
        controller = configuration.signals[tls_id].controller_id
        assert opening[(controller, 132)] == 120
        assert opening[(controller, 133)] == round(signal.program.offset)


def test_advance_loops_see_every_vehicle_that_crossed_them(corridor):
    summary, events, configuration, _ = corridor
    arrivals = pq.read_table(summary.ground_truth_arrivals).to_pylist()
    advance = {
        (s.controller_id, d.channel): d
        for s in configuration.signals.values()
        for d in s.detectors
        if d.kind == "advance"
    }
    on = defaultdict(list)
    for event in events:
        if event["event_code"] == 82 and (event["signal_id"], event["event_param"]) in advance:
            on[(event["signal_id"], event["event_param"])].append(round(sim_seconds(event["ts"]), 1))
    crossed = defaultdict(list)
    for row in arrivals:
        crossed[(row["signal_id"], row["channel"])].append(round(row["crossed_at"], 1))
        channel = advance[(row["signal_id"], row["channel"])]
        assert row["distance_m"] == channel.distance_m and row["phase"] == channel.phase
        assert row["arrival_at"] == pytest.approx(row["crossed_at"] + channel.distance_m / channel.speed_mps)
        assert row["link_index"] is not None
    assert len(arrivals) > 1000 and set(crossed) <= set(advance)

    # Each crossing is the loop's detection, to the tenth of a second; the loop sees a few more:
    # vehicles changing lanes onto it while over it, which cross no loop position.
    for key, times in crossed.items():
        assert not Counter(times) - Counter(on[key]), key
    extra = sum(len(times) for times in on.values()) - len(arrivals)
    assert 0 <= extra <= 0.02 * len(arrivals)

    indications = Counter(row["indication_at_arrival"] for row in arrivals)
    assert (
        set(indications) <= {"green", "yellow", "red", None} and indications["green"] > indications["red"] > 0
    )
    assert indications[None] < 0.01 * len(arrivals), "only vehicles still short of the stop bar at the end"
