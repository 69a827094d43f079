"""The plan page's time-space diagram: the route found through a plan's signals on the corridor
(seven signals on one arterial, 120 s programs whose index 0 is the eastbound through movement
and index 2 the westbound), each signal's greens along it, the through bands, and the API."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from console.time_space import find_route, movement_intervals, through_bands
from optimizer.plans.model import Evaluation, KpiEstimate, NetworkPlan, Phase, SignalPlan
from optimizer.plans.sumo_programs import read_net_programs
from optimizer.proposing import store
from sim.network import for_scenario
from sim.scenarios import resolve
from tests.unit.console.plans_and_users import START, client, logged_in, stored_plan

CORRIDOR = tuple(f"J{i}" for i in range(1, 8))
#: The corridor's posted arterial speed (its types file: 60 km/h).
ARTERIAL_MPS = 16.67


@pytest.fixture(scope="module")
def corridor(tmp_path_factory):
    return for_scenario(resolve("corridor", tmp_path_factory.mktemp("build")))


def corridor_plan(engine, settings, offsets: dict[str, float] | None = None) -> str:
    """Store the corridor's own programs as a plan, with some offsets changed; its id."""
    scenario = resolve("corridor", settings.sim_dir / "build")
    programs = [
        dataclasses.replace(p, offset_s=(offsets or {}).get(p.tls_id, p.offset_s))
        for p in read_net_programs(scenario.net_file, scenario.additional_files)
    ]
    plan = NetworkPlan(
        signals=tuple(programs),
        method="green-wave",
        valid_from=START,
        valid_to=START + timedelta(hours=2),
        evaluation=Evaluation(
            scenario="corridor",
            seeds=(1, 2),
            baseline={"resco_delay": KpiEstimate(40.0, 1.0, (39.0, 41.0))},
            plan={"resco_delay": KpiEstimate(30.0, 1.0, (29.0, 31.0))},
        ),
    )
    store.save_proposal(engine, plan, plan.to_records(ts=START))
    assert plan.plan_id is not None
    return plan.plan_id


# --- the route ---------------------------------------------------------------------------------


def test_the_corridor_route_runs_through_its_seven_signals_with_the_distances_between_them(corridor):
    forward, backward = find_route(corridor, list(corridor.signals))
    assert [stop.tls_id for stop in forward.stops] == list(CORRIDOR)
    assert [stop.movement for stop in forward.stops[1:3]] == [("J2w_J2", "J2_J3w"), ("J3w_J3", "J3_J4w")]
    assert {stop.link_indices for stop in forward.stops} == {(0,)}
    steps = [b - a for a, b in zip(forward.distances_m, forward.distances_m[1:], strict=False)]
    centres = [corridor.junctions[tls].position[0] for tls in CORRIDOR]
    spacing = [b - a for a, b in zip(centres, centres[1:], strict=False)]
    assert all(step > 0 for step in steps)
    # stop line to stop line is the junctions' spacing, give or take their widths
    assert all(abs(step - space) < 30 for step, space in zip(steps, spacing, strict=True))
    assert forward.arrivals_s == pytest.approx([d / ARTERIAL_MPS for d in forward.distances_m], abs=0.5)
    assert [stop.tls_id for stop in backward.stops] == list(reversed(CORRIDOR))
    assert {stop.link_indices for stop in backward.stops} == {(2,)}
    # the other direction is drawn on the same axis: each signal where the first direction has it
    assert backward.distances_m == tuple(reversed(forward.distances_m))
    assert backward.arrivals_s[-1] == pytest.approx(forward.arrivals_s[-1], abs=3.0)


def test_a_road_through_a_signal_the_plan_does_not_time_joins_nothing(corridor):
    legs = find_route(corridor, ["J1", "J2", "J4"])
    assert [[stop.tls_id for stop in leg.stops] for leg in legs] == [["J1", "J2"], ["J2", "J1"]]
    assert find_route(corridor, ["J1", "J3"]) == []


# --- greens and bands --------------------------------------------------------------------------


def test_a_green_lasts_its_phase_and_starts_at_the_offset_every_cycle(corridor):
    program = dataclasses.replace(
        next(p for p in read_net_programs(corridor.path) if p.tls_id == "J2"), offset_s=50.0
    )
    green = program.phases[0].duration_s
    found = movement_intervals(program, [0], 300.0)
    greens = [(a, b) for a, b, kind in found if kind == "green"]
    assert greens == [(50.0, 50.0 + green), (170.0, 170.0 + green), (290.0, 300.0)]
    assert [(a, b) for a, b, kind in found if kind == "yellow"] == [(94.0, 97.0), (214.0, 217.0)]
    # the cross street (index 4) is green in neither
    assert all(not (a < 50.0 + green and b > 50.0) for a, b, kind in movement_intervals(program, [4], 300.0))


def test_greens_of_consecutive_phases_merge_across_the_end_of_the_cycle():
    plan = SignalPlan(
        "x",
        (Phase("Gr", 10.0), Phase("yr", 3.0), Phase("rG", 17.0), Phase("Gr", 5.0)),
        offset_s=0.0,
    )
    assert movement_intervals(plan, [0], 70.0) == [
        (0.0, 10.0, "green"),
        (10.0, 13.0, "yellow"),
        (30.0, 45.0, "green"),
        (45.0, 48.0, "yellow"),
        (65.0, 70.0, "green"),
    ]


def test_a_through_band_is_the_departures_that_meet_every_green():
    greens = [[(0.0, 30.0), (100.0, 130.0)], [(20.0, 40.0), (120.0, 125.0)]]
    assert through_bands(greens, [0.0, 10.0], 200.0) == [(10.0, 30.0), (110.0, 115.0)]
    assert through_bands(greens, [0.0, 45.0], 200.0) == []


# --- the API -----------------------------------------------------------------------------------


def test_the_diagram_needs_a_session_and_a_known_plan(app):
    assert client(app).get("/api/plans/p1/time-space").status_code == 401
    browser, _ = logged_in(app, "vera")
    answer = browser.get("/api/plans/nothing-here/time-space")
    assert answer.status_code == 404 and "nothing-here" in answer.json()["detail"]


def test_the_diagram_shows_the_plans_greens_after_and_the_running_programs_before(app, engine, settings):
    plan_id = corridor_plan(engine, settings, offsets={"J2": 80.0})
    browser, _ = logged_in(app, "vera")
    answer = browser.get(f"/api/plans/{plan_id}/time-space")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scenario"] == "corridor" and body["reason"] is None and body["before_error"] is None
    east, west = body["directions"]
    assert (east["heading"], west["heading"]) == ("eastbound", "westbound")
    assert east["street"] == "Changning Avenue" and east["speed_mps"] == pytest.approx(ARTERIAL_MPS, abs=0.1)
    assert [s["tls_id"] for s in east["signals"]] == list(CORRIDOR)
    # three cycles of departures and the time to drive the route
    assert body["horizon_s"] == pytest.approx(3 * 120.0 + max(east["travel_s"], west["travel_s"]), abs=0.2)
    j2 = east["signals"][1]
    assert (j2["movement"], j2["link_indices"]) == ("J2w_J2->J2_J3w", [0])
    greens = {name: [i for i in j2[name] if i["kind"] == "green"] for name in ("before", "after")}
    assert [(i["start_s"], i["end_s"]) for i in greens["before"][:2]] == [(50.0, 94.0), (170.0, 214.0)]
    # the green that started at 80 - 120 s still runs at 0
    assert [(i["start_s"], i["end_s"]) for i in greens["after"][:3]] == [
        (0.0, 4.0),
        (80.0, 124.0),
        (200.0, 244.0),
    ]
    # J1 is unchanged: the same greens before and after
    assert east["signals"][0]["before"] == east["signals"][0]["after"]
    # every band's departures meet green at every signal, and the corridor's own offsets give one
    assert east["bands"]["before"]
    for name in ("before", "after"):
        for band in east["bands"][name]:
            for signal in east["signals"]:
                for t in (band["start_s"], band["end_s"]):
                    arrival = t + signal["arrival_s"]
                    assert any(
                        i["kind"] == "green" and i["start_s"] - 0.2 <= arrival <= i["end_s"] + 0.2
                        for i in signal[name]
                    ), (name, band, signal["tls_id"])


def test_a_plan_of_one_signal_or_an_unknown_scenario_has_no_route_and_says_why(app, engine):
    browser, _ = logged_in(app, "olga")
    one = browser.get(f"/api/plans/{stored_plan(engine)}/time-space").json()
    assert one["directions"] == [] and "one signal" in one["reason"]
    lost = browser.get(
        f"/api/plans/{stored_plan(engine, scenario='nowhere', green_s=20.0)}/time-space"
    ).json()
    assert lost["directions"] == [] and "nowhere" in lost["reason"]
