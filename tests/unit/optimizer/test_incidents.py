"""Incident re-planning's pure parts: a report read from the contract or the lake, the signals
near a closed road, the watch's remembered state, and a plan cut to those signals — no SUMO run,
no broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from optimizer.incidents.model import Incident, IncidentError, latest
from optimizer.incidents.nearby import nearby_signals, signal_distances
from optimizer.incidents.watch import STATE_FORMAT, WatchState, state_file
from optimizer.plans.model import NetworkPlan, Phase, SignalPlan
from optimizer.search.optimize import OptimizeError, only, optimize
from schemas import contract
from sim.network import Network, load
from sim.scenarios import Scenario, resolve
from tests.unit.contract_examples import valid_record

TOPIC = "public.incident.v1"
REPORTED = datetime(2026, 11, 28, 7, 31, tzinfo=UTC)
STARTED = datetime(2026, 11, 28, 7, 30, tzinfo=UTC)


def record(**overrides: Any) -> dict[str, Any]:
    """A valid ``public.incident.v1`` record on the corridor's J3w_J3, changed by ``overrides``."""
    values = valid_record(TOPIC)
    values.update(edge_id="J3w_J3", lane_ids=["J3w_J3_1"])
    values.update(overrides)
    contract(TOPIC).validate(values)
    return values


def incident(**overrides: Any) -> Incident:
    return Incident.from_record(record(**overrides))


# -- one report ------------------------------------------------------------------------------


def test_a_contract_record_becomes_an_incident_with_aware_utc_times():
    found = Incident.from_record(record(end="2026-11-28T08:15:00Z"))
    assert found == Incident(
        incident_id="inc7",
        ts=REPORTED,
        kind="crash",
        status="confirmed",
        severity=3,
        edge_id="J3w_J3",
        lane_ids=("J3w_J3_1",),
        start=STARTED,
        end=datetime(2026, 11, 28, 8, 15, tzinfo=UTC),
        description="two cars, right lane blocked",
    )
    assert found.ts.tzinfo is not None and found.ts.utcoffset() == timedelta(0)


def test_an_unlocated_open_ended_record_has_no_edge_lanes_or_end():
    found = incident(edge_id=None, lane_ids=[], end=None)
    assert (found.edge_id, found.lane_ids, found.end) == (None, (), None)


def test_a_lake_row_with_datetimes_reads_naive_times_as_utc():
    """``silver.incidents`` rows come back from Parquet as datetimes, naive ones in UTC."""
    row = record(end=None)
    row.update(
        ts=datetime(2026, 11, 28, 7, 31),
        start=datetime(2026, 11, 28, 8, 30, tzinfo=timezone(timedelta(hours=1))),
        end=datetime(2026, 11, 28, 8, 15),
        lane_ids=None,
        severity=3.0,
    )
    found = Incident.from_record(row)
    assert found.ts == REPORTED and found.ts.tzinfo is not None
    assert found.start == STARTED  # an aware time keeps its instant
    assert found.end == datetime(2026, 11, 28, 8, 15, tzinfo=UTC)
    assert found.lane_ids == () and found.severity == 3 and isinstance(found.severity, int)


@pytest.mark.parametrize(("status", "is_open"), [("reported", False), ("confirmed", True), ("active", True)])
def test_an_incident_opens_when_confirmed_or_active(status, is_open):
    assert incident(status=status).is_open(REPORTED) is is_open


@pytest.mark.parametrize("status", ["cleared", "cancelled"])
def test_a_cleared_or_cancelled_incident_is_over_and_not_open(status):
    found = incident(status=status)
    assert found.is_over(REPORTED) and not found.is_open(REPORTED)


def test_an_incident_is_over_when_its_end_passes_without_a_word():
    found = incident(status="active", end="2026-11-28T08:00:00Z")
    end = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert found.is_open(end - timedelta(seconds=1)) and not found.is_over(end - timedelta(seconds=1))
    assert found.is_over(end) and not found.is_open(end)
    assert not incident(status="active", end=None).is_over(REPORTED + timedelta(days=30))


def test_the_expected_end_is_the_reported_one_while_it_is_ahead():
    found = incident(end="2026-11-28T08:00:00Z")
    end = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert found.expected_end(REPORTED, hour) == end
    # a reported end already passed, or none reported: the default from now
    assert found.expected_end(end, hour) == end + hour
    assert found.expected_end(end + hour, hour) == end + 2 * hour
    assert incident(end=None).expected_end(REPORTED, hour) == REPORTED + hour


# -- many reports ----------------------------------------------------------------------------


def test_latest_keeps_the_newest_report_of_each_incident_in_any_order():
    first = record(ts="2026-11-28T07:31:00Z", status="reported")
    second = record(ts="2026-11-28T07:40:00Z", status="active")
    other = record(incident_id="inc8", ts="2026-11-28T07:35:00Z", status="confirmed")
    for records in ([first, second, other], [second, other, first]):
        found = latest(records)
        assert set(found) == {"inc7", "inc8"}
        assert found["inc7"].status == "active" and found["inc8"].status == "confirmed"
    assert latest([]) == {}


def test_latest_lets_a_later_record_with_the_same_time_win():
    """An update re-sent with the same time replaces the first."""
    first = record(status="confirmed")
    resent = record(status="cleared")
    assert latest([first, resent])["inc7"].status == "cleared"
    assert latest([resent, first])["inc7"].status == "confirmed"


# -- the signals near a closed road ----------------------------------------------------------


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return resolve("corridor", tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def network(corridor: Scenario) -> Network:
    return load(corridor.net_file)


def test_the_signal_at_the_closed_edge_s_end_is_nearest(network):
    """J3w_J3 ends at J3; J2 is the next signal back (~300 m), J4 the next ahead (~570 m)."""
    distances = signal_distances(network, "J3w_J3")
    assert set(distances) == set(network.signals) == {f"J{i}" for i in range(1, 8)}
    assert distances["J3"] < 15.0  # the lanes stop at the junction's edge, a few metres out
    assert sorted(distances, key=distances.get)[:3] == ["J3", "J2", "J4"]
    assert all(d >= 0 for d in distances.values())


def test_nearby_signals_are_nearest_first_within_the_radius_and_limit(network):
    assert nearby_signals(network, "J3w_J3", radius_m=5000, limit=3) == ("J3", "J2", "J4")
    assert nearby_signals(network, "J3w_J3", radius_m=400, limit=10) == ("J3", "J2")
    assert nearby_signals(network, "J3w_J3", radius_m=5000, limit=1) == ("J3",)
    assert nearby_signals(network, "J3w_J3", radius_m=5000, limit=100) == tuple(
        sorted(network.signals, key=signal_distances(network, "J3w_J3").get)
    )
    assert nearby_signals(network, "J3w_J3", radius_m=1.0, limit=10) == ()


def test_the_signals_near_an_unknown_edge_are_refused_by_name(network):
    with pytest.raises(IncidentError, match="no edge 'nowhere'"):
        signal_distances(network, "nowhere")
    with pytest.raises(IncidentError, match="no edge 'nowhere'"):
        nearby_signals(network, "nowhere", radius_m=500, limit=3)


# -- the watch's remembered state ------------------------------------------------------------


def test_the_state_file_is_per_group_under_the_run_folder(tmp_path):
    settings = Settings(var_dir=tmp_path)
    assert (
        state_file(settings, "citybrain-incidents") == tmp_path / "run" / "incidents-citybrain-incidents.json"
    )
    assert state_file(settings, "a") != state_file(settings, "b")


def test_the_watch_keeps_the_newest_report_and_refuses_an_older_one():
    state = WatchState()
    confirmed = record(ts="2026-11-28T07:31:00Z", status="confirmed")
    active = record(ts="2026-11-28T07:40:00Z", status="active")
    assert state.take(confirmed)
    assert state.take(active)
    assert not state.take(confirmed)  # late delivery of an older report
    assert state.reports == {"inc7": active}
    resent = record(ts="2026-11-28T07:40:00Z", status="cleared")
    assert state.take(resent)  # the same time: the later one wins, as in `latest`
    assert state.take(record(incident_id="inc8"))
    assert [i.incident_id for i in state.incidents()] == ["inc7", "inc8"]
    assert state.incidents()[0].status == "cleared"


def test_the_watch_state_survives_a_restart(tmp_path):
    path = tmp_path / "run" / "incidents-g.json"
    state = WatchState()
    state.take(record())
    state.take(record(incident_id="inc8", end="2026-11-28T09:00:00Z"))
    state.replanned["inc7"] = "proposed"
    state.stood_down["inc7"] = "rolled-back at 2026-11-28T09:00:00Z"
    state.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == STATE_FORMAT
    assert WatchState.load(path) == state


def test_a_missing_state_file_is_a_fresh_start(tmp_path):
    assert WatchState.load(tmp_path / "nothing.json") == WatchState()


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "\xff\xfe",
        json.dumps({"format": STATE_FORMAT + 1, "reports": {}, "replanned": {}, "stood_down": {}}),
        json.dumps({"reports": {}, "replanned": {}, "stood_down": {}}),
        json.dumps({"format": STATE_FORMAT, "reports": {}}),
    ],
    ids=["damaged", "not-utf8", "newer-format", "no-format", "missing-key"],
)
def test_an_unreadable_state_file_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "incidents-g.json"
    path.write_bytes(content.encode("latin-1") if content == "\xff\xfe" else content.encode())
    with pytest.raises(IncidentError, match="incidents-g.json: cannot read") as caught:
        WatchState.load(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("content", ["[]", '"state"', "null"])
def test_a_state_file_that_is_not_an_object_is_refused_naming_it(tmp_path, content):
    path = tmp_path / "incidents-g.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(IncidentError, match="incidents-g.json: cannot read"):
        WatchState.load(path)


# -- a plan for some of the signals ----------------------------------------------------------


def signal(tls_id: str) -> SignalPlan:
    return SignalPlan(
        tls_id=tls_id, phases=(Phase("Gr", 30), Phase("yr", 3), Phase("rG", 27), Phase("ry", 3))
    )


def test_only_keeps_the_named_signals_and_the_method():
    plan = NetworkPlan(signals=(signal("J1"), signal("J2"), signal("J3")), method="coordinated")
    assert only(plan, None) is plan
    cut = only(plan, frozenset({"J3", "J1", "J9"}))  # a signal the plan lacks is no error
    assert [s.tls_id for s in cut.signals] == ["J1", "J3"]
    assert cut.method == "coordinated"
    assert cut.signals[0] == plan.signals[0]
    assert only(plan, frozenset()).signals == ()


def test_only_the_coordinated_search_plans_a_subset_of_signals(tmp_path):
    """Refused before anything runs: the executor is never used (None here)."""
    nowhere = Scenario(
        "test/nowhere", Path("/nonexistent/x.sumocfg"), Path("/nonexistent/x.net.xml"), 0, 60, "file"
    )
    with pytest.raises(OptimizeError, match="not adaptive"):
        optimize(
            nowhere,
            "adaptive",
            None,  # type: ignore[arg-type]
            budget_s=1.0,
            demand_dir=tmp_path,
            signals=frozenset({"J3"}),
        )
