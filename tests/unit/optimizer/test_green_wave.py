"""The green-wave method: common cycle, arterials from the flows, and offsets that progress."""

from __future__ import annotations

import dataclasses

import pytest

from optimizer.demand.own_routes import movement_flows
from optimizer.methods.green_wave import (
    Arterial,
    RoadLink,
    arterials,
    common_cycle,
    downstream_offset,
    green_start,
    green_wave_plan,
    progression_offsets,
    retime_at_cycle,
    road_links,
    signal_movements,
    upstream_offset,
    wrap_offset,
)
from optimizer.methods.webster import Link, is_green_phase, webster_plan
from optimizer.plans.model import Phase, SignalPlan
from optimizer.plans.safety import SafetyRules, SignalNetwork, check, read_network
from optimizer.plans.sumo_programs import cycle_position
from sim.scenarios import resolve

# A small net, west to east: A --ab1--(unsignalised)--ab2--> B --bc--> C --cE-->, with a cross
# street through B from signal D (nD --D--> dB --B--> bS) on to signal E (bS --E--> sE).
TLS_LINKS = {
    "A": {0: (Link("wA_0", "wA", "ab1"),)},
    "B": {
        0: (Link("ab2_0", "ab2", "bc"),),
        1: (Link("ab2_1", "ab2", "bS"),),
        2: (Link("dB_0", "dB", "bS"),),
        3: (Link("dB_0", "dB", "bc"),),
    },
    "C": {0: (Link("bc_0", "bc", "cE"),)},
    "D": {0: (Link("nD_0", "nD", "dB"),)},
    "E": {0: (Link("bS_0", "bS", "sE"),)},
}
FLOWS = {
    ("wA", "ab1"): 600.0,
    ("ab1", "ab2"): 500.0,
    ("ab1", "side"): 100.0,  # leaves the route at the unsignalised junction
    ("ab2", "bc"): 400.0,
    ("ab2", "bS"): 100.0,
    ("dB", "bS"): 250.0,
    ("dB", "bc"): 50.0,
    ("bc", "cE"): 450.0,
    ("nD", "dB"): 300.0,
    ("bS", "sE"): 350.0,
}
TRAVEL_S = {"ab1": 10.0, "ab2": 15.0, "bc": 42.0, "dB": 12.0, "bS": 9.0}
CYCLE_S = 60.0
#: 60 s programs; the comment gives where each route movement's green starts.
PLANS = {
    "A": SignalPlan("A", (Phase("G", 27), Phase("y", 3), Phase("r", 30))),  # 0
    "B": SignalPlan(  # arterial (link 0) at 0, cross street (link 2) at 28
        "B", (Phase("GGrr", 25), Phase("yyrr", 3), Phase("rrGG", 29), Phase("rryy", 3))
    ),
    "C": SignalPlan("C", (Phase("r", 20), Phase("G", 37), Phase("y", 3))),  # 20
    "D": SignalPlan("D", (Phase("G", 30), Phase("y", 3), Phase("r", 27))),  # 0
    "E": SignalPlan("E", (Phase("r", 10), Phase("G", 47), Phase("y", 3))),  # 10
}


def _routes() -> list[Arterial]:
    return arterials(road_links(TLS_LINKS, FLOWS, TRAVEL_S), FLOWS, signal_movements(TLS_LINKS))


def test_links_follow_the_flows_through_unsignalised_junctions():
    links = road_links(TLS_LINKS, FLOWS, TRAVEL_S)
    assert links == [
        # least of: A sends 600 onto ab1, 500 go on to ab2, 500 leave ab2 through B
        RoadLink("A", "B", ("ab1", "ab2"), 500.0, 25.0),
        RoadLink("B", "C", ("bc",), 450.0, 42.0),
        RoadLink("B", "E", ("bS",), 350.0, 9.0),
        RoadLink("D", "B", ("dB",), 300.0, 12.0),
    ]


def test_arterials_take_the_heaviest_chain_first_and_follow_the_heaviest_movement():
    main, cross = _routes()
    # from B the route goes on to C (400 veh/h go straight), not to E (100 turn right)
    assert main.signals == ("A", "B", "C")
    assert main.movements == (("wA", "ab1"), ("ab2", "bc"), ("bc", "cE"))
    assert main.weight_vph == 500 + 400  # A→B, then the 400 of B→C's 450 that come from A
    # B→E is left for the next chain, which grows back onto the cross street from D
    assert cross.signals == ("D", "B", "E")
    assert cross.movements == (("nD", "dB"), ("dB", "bS"), ("bS", "sE"))
    assert cross.weight_vph == 350 + 250


def test_a_chain_does_not_continue_on_a_movement_without_flow():
    flows = {**FLOWS, ("ab2", "bc"): 0.0}  # what comes from A turns right at B
    links = road_links(TLS_LINKS, flows, TRAVEL_S)
    routes = arterials(links, flows, signal_movements(TLS_LINKS))
    # B→E is heaviest and takes the cross street back to D; A's chain cannot go on to C
    assert [route.signals for route in routes] == [("D", "B", "E"), ("A", "B"), ("B", "C")]


def test_offset_arithmetic_follows_the_travel_time_modulo_the_cycle():
    assert downstream_offset(0, 0, 25, 0, 60) == 25
    assert downstream_offset(25, 0, 42, 20, 60) == 47
    assert downstream_offset(50, 10, 30, 5, 60) == 25  # 85 wraps to 25
    assert upstream_offset(25, 28, 12, 0, 60) == 41
    assert upstream_offset(5, 0, 30, 10, 60) == 25  # -35 wraps to 25
    assert wrap_offset(-5, 60) == 55 and wrap_offset(125.04, 60) == 5.0
    assert wrap_offset(59.96, 60) == 0.0  # rounds to the cycle: that is offset 0


def _turns_green_at(plan: SignalPlan, link_index: int, time_s: float) -> bool:
    """Whether SUMO, running ``plan``, switches ``link_index`` to green at simulation time ``time_s``."""
    index, left = cycle_position(plan, time_s)
    green_now = plan.phases[index].state[link_index] == "G"
    return (
        green_now
        and plan.phases[index - 1].state[link_index] != "G"
        and left == plan.phases[index].duration_s
    )


def test_offsets_put_each_green_start_one_travel_time_after_the_one_before():
    routes = _routes()
    movements = signal_movements(TLS_LINKS)
    offsets = progression_offsets(PLANS, routes, movements, CYCLE_S)
    # A starts the first chain; B was set by it, so it anchors the second: E follows, D is solved backwards
    assert offsets == {"A": 0.0, "B": 25.0, "C": 47.0, "E": 52.0, "D": 41.0}
    plans = {tls: dataclasses.replace(plan, offset_s=offsets[tls]) for tls, plan in PLANS.items()}
    for route in routes:
        for link, before, after in zip(route.links, route.movements[:-1], route.movements[1:], strict=True):
            (upstream_link,) = movements[link.upstream][before]
            (downstream_link,) = movements[link.downstream][after]
            upstream = plans[link.upstream]
            start = upstream.offset_s + green_start(upstream, [upstream_link])
            # in SUMO's time: when the upstream green starts, the downstream one starts τ later
            assert _turns_green_at(upstream, upstream_link, start)
            assert _turns_green_at(plans[link.downstream], downstream_link, start + link.travel_s)


def test_a_signal_keeps_the_offset_of_the_first_chain_that_reaches_it():
    main, cross = _routes()
    movements = signal_movements(TLS_LINKS)
    alone = progression_offsets(PLANS, [cross], movements, CYCLE_S)
    assert alone["D"] == 0.0 and alone["B"] == 0.0 + 0 + 12 - 28 + 60  # D starts the chain here
    both = progression_offsets(PLANS, [main, cross], movements, CYCLE_S)
    assert both["B"] == 25.0 and both["D"] != alone["D"]


def test_green_start_reads_the_longest_green_and_wraps_around_the_cycle():
    wrapping = SignalPlan("J", (Phase("G", 10), Phase("y", 3), Phase("r", 20), Phase("G", 15)))
    assert green_start(wrapping, [0]) == 33  # green from phase 3 on into phase 0
    twice = SignalPlan("J", (Phase("Gr", 10), Phase("rG", 5), Phase("Gr", 20), Phase("rG", 5)))
    assert green_start(twice, [0]) == 15  # the longer of the two greens
    assert green_start(twice, [0, 1]) == 15
    always = SignalPlan("J", (Phase("Gr", 10), Phase("Gy", 5)))
    assert green_start(always, [0]) is None
    permissive = SignalPlan("J", (Phase("r", 10), Phase("g", 20), Phase("y", 3)))
    assert green_start(permissive, [0]) == 10


def test_the_common_cycle_is_the_longest_webster_cycle_within_the_limits():
    def plan(cycle: float) -> SignalPlan:
        return SignalPlan("J", (Phase("Gr", cycle - 10), Phase("yr", 3), Phase("rG", 4), Phase("ry", 3)))

    assert common_cycle([plan(60), plan(95.3), plan(70)]) == 95.3
    assert common_cycle([plan(60), plan(200)]) == 180
    assert common_cycle([plan(60), plan(200)], SafetyRules(cycle_max_s=120)) == 120
    assert common_cycle([plan(30)]) == 40


def test_retiming_at_the_common_cycle_keeps_clearances_and_splits_by_demand():
    program = SignalPlan("j", (Phase("GGr", 30), Phase("yyr", 3), Phase("rrG", 20), Phase("rry", 3)))
    links = {0: (Link("a_0", "a", "b"),), 1: (Link("a_1", "a", "b"),), 2: (Link("d_0", "d", "e"),)}
    flows = {("a", "b"): 900.0, ("d", "e"): 300.0}
    network = SignalNetwork("j", link_count=3, foes=frozenset({(0, 2), (1, 2)}), program=program)
    timed = retime_at_cycle(program, network, links, flows, 90.0)
    assert timed.phase_sum_s == pytest.approx(90.0)
    assert [p.duration_s for p in timed.phases if not is_green_phase(p.state)] == [3, 3]
    first, second = (p.duration_s for p in timed.phases if is_green_phase(p.state))
    assert first > second  # 450 veh/h per lane against 300
    assert check([timed], {"j": network}) == []


@pytest.fixture(scope="module")
def cologne1(tmp_path_factory):
    scenario = resolve("resco/cologne1", tmp_path_factory.mktemp("build"))
    return dataclasses.replace(scenario, end=scenario.begin + 900)


def test_a_single_signal_gets_its_webster_plan_at_offset_zero(cologne1, tmp_path):
    flows = movement_flows(cologne1, tmp_path)
    plan = green_wave_plan(cologne1, flows)
    assert plan.method == "green-wave"
    assert plan.signals == webster_plan(cologne1, flows).signals
    assert [s.offset_s for s in plan.signals] == [0.0]
    assert check(plan, read_network(cologne1.net_file)) == []


def test_a_progression_speed_must_be_positive(cologne1):
    with pytest.raises(ValueError, match="progression speed"):
        green_wave_plan(cologne1, {}, progression_speed_mps=0)
