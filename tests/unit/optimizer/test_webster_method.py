"""The webster method: each signal's own program re-timed from its movement flows, and safe."""

from __future__ import annotations

import dataclasses

import pytest

from optimizer.demand.own_routes import movement_flows
from optimizer.methods.webster import (
    SATURATION_VPH_PER_LANE,
    Link,
    critical_ratios,
    inherited_waivers,
    is_green_phase,
    webster_plan,
)
from optimizer.plans.model import Phase, SignalPlan
from optimizer.plans.safety import Rule, SafetyRules, check, read_network
from sim.scenarios import resolve

#: Quarter-hour windows keep the demand runs short; the plan must be safe for any flows.
WINDOW_S = 900


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demand")


def _scenario(name, tmp_path_factory):
    scenario = resolve(name, tmp_path_factory.mktemp("build"))
    return dataclasses.replace(scenario, end=scenario.begin + WINDOW_S)


def test_a_phase_without_a_movement_of_its_own_gets_no_ratio():
    # Link 0 (lane a0) goes through, link 1 (lane a1) turns left: permissive in phase 0, then
    # protected in phase 2 — its green starts in phase 0, which carries it. Link 2 crosses.
    program = SignalPlan(
        "j",
        (
            Phase("Ggr", 30),
            Phase("ygr", 3),
            Phase("rGr", 6),
            Phase("ryr", 3),
            Phase("rrG", 20),
            Phase("rry", 3),
        ),
    )
    links = {
        0: (Link("a_0", "a", "b"),),
        1: (Link("a_1", "a", "c"),),
        2: (Link("d_0", "d", "e"),),
    }
    flows = {("a", "b"): 540.0, ("a", "c"): 720.0, ("d", "e"): 360.0}
    assert [is_green_phase(p.state) for p in program.phases] == [True, False, True, False, True, False]
    y = critical_ratios(program, links, flows)
    assert y == pytest.approx([720 / SATURATION_VPH_PER_LANE, 0.0, 360 / SATURATION_VPH_PER_LANE])


def test_a_movement_over_several_lanes_is_split_evenly_and_a_shared_lane_adds_up():
    program = SignalPlan("j", (Phase("GGGr", 30), Phase("yyyr", 3), Phase("rrrG", 20), Phase("rrry", 3)))
    links = {
        0: (Link("a_0", "a", "b"),),  # through on two lanes: 900 veh/h → 450 each
        1: (Link("a_1", "a", "b"),),
        2: (Link("a_1", "a", "c"),),  # a right turn sharing lane a_1: 450 + 180
        3: (Link("d_0", "d", "e"),),
    }
    flows = {("a", "b"): 900.0, ("a", "c"): 180.0, ("d", "e"): 90.0}
    y = critical_ratios(program, links, flows)
    assert y == pytest.approx([630 / SATURATION_VPH_PER_LANE, 90 / SATURATION_VPH_PER_LANE])


def test_cologne1_plan_keeps_the_program_shape_and_changes_its_timing(tmp_path_factory, flows_dir):
    scenario = _scenario("resco/cologne1", tmp_path_factory)
    plan = webster_plan(scenario, movement_flows(scenario, flows_dir))
    network = read_network(scenario.net_file)
    assert plan.method == "webster" and plan.tls_ids == tuple(sorted(network))
    for signal in plan.signals:
        original = network[signal.tls_id].program
        assert [p.state for p in signal.phases] == [p.state for p in original.phases]
        for new, old in zip(signal.phases, original.phases, strict=True):
            if not is_green_phase(old.state):
                assert new.duration_s == old.duration_s  # yellow and all-red kept as they are
        assert signal.offset_s == 0.0 and signal.cycle_s == signal.phase_sum_s
    assert [p.duration_s for s in plan.signals for p in s.phases] != [
        p.duration_s for tls in plan.tls_ids for p in network[tls].program.phases
    ]
    assert check(plan, network) == []


@pytest.mark.parametrize(
    "name", ["resco/cologne1", "resco/cologne3", "resco/ingolstadt1", "resco/grid4x4", "corridor"]
)
def test_webster_plans_pass_every_safety_rule(name, tmp_path_factory, flows_dir):
    scenario = _scenario(name, tmp_path_factory)
    plan = webster_plan(scenario, movement_flows(scenario, flows_dir))
    assert plan.signals
    assert check(plan, read_network(scenario.net_file)) == []


@pytest.mark.parametrize("name", ["resco/ingolstadt7", "resco/ingolstadt21"])
def test_ingolstadt_keeps_only_the_conflict_its_own_program_has(name, tmp_path_factory, flows_dir):
    scenario = _scenario(name, tmp_path_factory)
    plan = webster_plan(scenario, movement_flows(scenario, flows_dir))
    network = read_network(scenario.net_file)
    assert {(v.rule, v.tls_id) for v in check(plan, network)} == {(Rule.CONFLICTING_GREENS, "gneJ210")}
    waived = SafetyRules(waivers={(Rule.CONFLICTING_GREENS, "gneJ210")})
    assert check(plan, network, waived) == []
    assert inherited_waivers(network).waivers == waived.waivers
