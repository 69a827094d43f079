"""Each safety rule refuses a plan that breaks it, naming signal, phase and rule; the scenarios'
own programs pass (with the waivers their published programs need, stated here)."""

from __future__ import annotations

import dataclasses

import pytest

from optimizer.plans.model import NetworkPlan, Phase, SignalPlan
from optimizer.plans.safety import (
    Rule,
    SafetyRules,
    SignalNetwork,
    UnsafePlan,
    check,
    check_signal,
    enforce,
    read_network,
    required_clearances,
)
from optimizer.plans.sumo_programs import read_net_programs
from tests.unit.optimizer.conftest import RESCO_NAMES, resco_net

COLOGNE1_TLS = "GS_cluster_357187_359543"
#: Rules the scenarios' own programs break, waived per signal (see the report in test names).
SCENARIO_WAIVERS = {
    # gneJ210: two left-turn lanes each turn into both target lanes, and phase 4 gives all four
    # turns 'G': links 6/8 and 7/9 merge into the same lane with priority at once.
    "resco/ingolstadt7": {(Rule.CONFLICTING_GREENS, "gneJ210")},
    "resco/ingolstadt21": {(Rule.CONFLICTING_GREENS, "gneJ210")},
}


def with_phases(plan: SignalPlan, changes: dict[int, Phase]) -> SignalPlan:
    phases = tuple(changes.get(i, p) for i, p in enumerate(plan.phases))
    return dataclasses.replace(plan, phases=phases, cycle_s=None)


def retimed(plan: SignalPlan, durations: dict[int, float]) -> SignalPlan:
    """``plan`` with some phases re-timed (fixed time: min = max = duration)."""
    return with_phases(plan, {i: Phase(plan.phases[i].state, d) for i, d in durations.items()})


@pytest.fixture(scope="module")
def cologne1() -> tuple[SignalPlan, dict[str, SignalNetwork]]:
    net_file = resco_net("cologne1")
    (own,) = read_net_programs(net_file)
    return own, read_network(net_file)


def only(violations, rule):
    assert violations, "expected a violation"
    assert {v.rule for v in violations} == {rule}, [str(v) for v in violations]
    return violations


@pytest.mark.parametrize("name", ["corridor", *(f"resco/{n}" for n in RESCO_NAMES)])
def test_the_scenarios_own_programs_pass(name, corridor_net):
    net_file = corridor_net if name == "corridor" else resco_net(name.removeprefix("resco/"))
    network = read_network(net_file)
    programs = read_net_programs(net_file)
    assert {p.tls_id for p in programs} == set(network)
    rules = SafetyRules(waivers=frozenset(SCENARIO_WAIVERS.get(name, ())))
    assert [str(v) for v in check(programs, network, rules)] == []
    if name in SCENARIO_WAIVERS:  # the waiver is needed, and only for that rule
        broken = check(programs, network)
        assert {(v.rule, v.tls_id) for v in broken} == SCENARIO_WAIVERS[name]
        assert str(broken[0]).startswith(
            "signal gneJ210 phase 4: conflicting-greens: links 6 and 8 both have priority"
        )


def test_the_crossing_nets_own_program_passes_and_has_crossings(crossing_net):
    network = read_network(crossing_net)
    (own,) = read_net_programs(crossing_net)
    assert network["C"].crossing_links == frozenset({14, 15, 16, 17})
    assert check([own], network) == []


def test_state_letters_length_and_phase_count(cologne1):
    own, network = cologne1
    bad = with_phases(own, {2: Phase("rrrrrrrrGGrrrrrrrrGx", 6), 3: Phase("rrrrrrrryyrrrrrrrryR", 5)})
    violations = only(check_signal(bad, network[COLOGNE1_TLS]), Rule.STATE)
    assert [v.phase_index for v in violations] == [2, 3]
    assert "'x', not SUMO signal letters" in violations[0].message
    short = SignalPlan(COLOGNE1_TLS, tuple(Phase(p.state[:-1], p.duration_s) for p in own.phases))
    violations = only(check_signal(short, network[COLOGNE1_TLS]), Rule.STATE)
    assert "has 19 letters, the signal controls 20 links" in violations[0].message
    with pytest.raises(ValueError, match="cannot be skipped"):
        SafetyRules(skip=frozenset({Rule.STATE}))
    single = SignalPlan(COLOGNE1_TLS, (Phase("G" * 20, 60),))
    assert any("at least two phases" in v.message for v in check_signal(single, network[COLOGNE1_TLS]))


def test_unknown_signal_is_refused(cologne1):
    own, network = cologne1
    violations = check([dataclasses.replace(own, tls_id="nowhere")], network)
    assert [str(v) for v in violations] == ["signal nowhere: state: the network has no such traffic light"]


def test_cycle_bounds_and_sum(cologne1):
    own, network = cologne1
    assert own.cycle_s == 90
    long = retimed(own, {0: 120})
    (violation,) = only(check_signal(long, network[COLOGNE1_TLS]), Rule.CYCLE)
    assert violation.phase_index is None and "cycle 181 s is outside [40, 180] s" in violation.message
    short = retimed(own, {0: 5, 1: 4, 2: 5, 3: 4, 4: 5, 5: 4, 6: 5, 7: 4})
    (violation,) = only(check_signal(short, network[COLOGNE1_TLS]), Rule.CYCLE)
    assert "cycle 36 s is outside [40, 180] s" in violation.message
    stated = dataclasses.replace(own, cycle_s=100)
    (violation,) = only(check_signal(stated, network[COLOGNE1_TLS]), Rule.CYCLE)
    assert "cycle 100 s differs from its phases' sum 90 s" in violation.message
    relaxed = SafetyRules(cycle_max_s=190)
    assert check_signal(long, network[COLOGNE1_TLS], relaxed) == []


@pytest.mark.parametrize("offset", [-1, 90, 100])
def test_offset_within_the_cycle(cologne1, offset):
    own, network = cologne1
    (violation,) = only(
        check_signal(dataclasses.replace(own, offset_s=offset), network[COLOGNE1_TLS]), Rule.OFFSET
    )
    assert f"offset {offset} s is outside [0, 90) s" in violation.message


def test_minimum_green_per_green_interval_in_duration_and_minimum(cologne1):
    own, network = cologne1
    short = retimed(own, {0: 4, 4: 4})
    violations = only(check_signal(short, network[COLOGNE1_TLS]), Rule.MIN_GREEN)
    assert [v.phase_index for v in violations] == [0, 4]
    assert "green shorter than 5 s: link 5 (" in violations[0].message and " 4 s" in violations[0].message
    # links 8/9 are green from phase 0 through phase 2: 4 + 5 + 6 s is enough for them
    assert "link 8 " not in violations[0].message
    actuated = with_phases(own, {0: Phase(own.phases[0].state, 29, min_s=3, max_s=50)})
    (violation,) = only(check_signal(actuated, network[COLOGNE1_TLS]), Rule.MIN_GREEN)
    assert violation.phase_index == 0 and "29 s (min 3 s)" in violation.message
    assert check_signal(short, network[COLOGNE1_TLS], SafetyRules(min_green_s=4)) == []


def test_yellow_after_every_green_that_ends(cologne1):
    own, network = cologne1
    brief = retimed(own, {1: 2, 0: 32})
    (violation,) = only(check_signal(brief, network[COLOGNE1_TLS]), Rule.YELLOW)
    assert violation.phase_index == 1 and "2 s of yellow, outside [3, 6] s" in violation.message
    long = retimed(own, {1: 8, 0: 26})
    (violation,) = only(check_signal(long, network[COLOGNE1_TLS]), Rule.YELLOW)
    assert "8 s of yellow" in violation.message
    no_yellow = with_phases(own, {1: Phase(own.phases[1].state.replace("y", "r"), 5)})
    (violation,) = only(check_signal(no_yellow, network[COLOGNE1_TLS]), Rule.YELLOW)
    assert (
        violation.phase_index == 1
        and "link 5 (" in violation.message
        and "from green to 'r' without yellow" in violation.message
    )
    assert check_signal(long, network[COLOGNE1_TLS], SafetyRules(yellow_max_s=8)) == []


def test_conflicting_greens_both_with_priority(cologne1):
    own, network = cologne1
    signal = network[COLOGNE1_TLS]
    # phase 0 lets 8/9 turn left permissively ('g'), yielding to the oncoming through traffic
    assert (8, 16) in signal.foes and (8, 16) in signal.yields and (16, 8) not in signal.yields
    state = own.phases[0].state
    protected = with_phases(own, {0: Phase(state[:8] + "GG" + state[10:], 29)})
    (violation,) = only(check_signal(protected, signal), Rule.CONFLICTING_GREENS)
    assert violation.phase_index == 0 and "links 8 and 16 both have priority (GG)" in violation.message


def test_conflicting_greens_where_the_minor_one_does_not_yield(cologne1):
    own, network = cologne1
    signal = network[COLOGNE1_TLS]
    a, b = next((a, b) for a, b in sorted(signal.foes) if (a, b) not in signal.yields)
    state = ["r"] * signal.link_count
    state[a], state[b] = "g", "G"
    mixed = with_phases(own, {4: Phase("".join(state), 29)})
    violations = [v for v in check_signal(mixed, signal) if v.rule is Rule.CONFLICTING_GREENS]
    assert violations and violations[0].phase_index == 4
    assert f"links {a} and {b} (gG) move and neither yields to the other" in violations[0].message


def test_all_red_where_the_network_has_it(corridor_net):
    network = read_network(corridor_net)
    own = {p.tls_id: p for p in read_net_programs(corridor_net)}
    tls_id = next(t for t in sorted(own) if required_clearances(network[t]))
    signal, program = network[tls_id], own[tls_id]
    all_red = next(i for i, p in enumerate(program.phases) if set(p.state) == {"r"})
    assert required_clearances(signal)  # e.g. 2 s between conflicting links
    shorter = retimed(
        program, {all_red: program.phases[all_red].duration_s - 1, 0: program.phases[0].duration_s + 1}
    )
    violations = only(check_signal(shorter, signal), Rule.ALL_RED)
    assert violations[0].phase_index == (all_red + 1) % len(program.phases)
    assert "turns green 1 s after conflicting link" in violations[0].message
    assert "the network's own program keeps 2 s" in violations[0].message
    # dropping the all-red phase altogether, the cycle kept by a longer green
    phases = list(program.phases)
    removed = phases.pop(all_red)
    phases[0] = Phase(phases[0].state, phases[0].duration_s + removed.duration_s)
    dropped = dataclasses.replace(program, phases=tuple(phases), cycle_s=None)
    violations = only(check_signal(dropped, signal), Rule.ALL_RED)
    assert "turns green 0 s after conflicting link" in violations[0].message
    assert check_signal(dropped, signal, SafetyRules(skip=frozenset({Rule.ALL_RED}))) == []


def test_a_stage_in_between_is_not_taken_for_an_all_red(cologne1):
    """cologne1 has no all-red: its protected left-turn phase between the two through stages
    is a stage, so shortening it is no all-red violation."""
    own, network = cologne1
    assert required_clearances(network[COLOGNE1_TLS]) == {}
    assert check_signal(retimed(own, {2: 5, 0: 30}), network[COLOGNE1_TLS]) == []


def test_pedestrian_minimum_where_crossings_exist(crossing_net):
    network = read_network(crossing_net)
    (own,) = read_net_programs(crossing_net)
    walk = own.phases[0]
    assert walk.state[14] == "G"
    short_walk = retimed(own, {0: 5, 1: 37})
    violations = only(check_signal(short_walk, network["C"]), Rule.PEDESTRIAN_MINIMUM)
    assert violations[0].phase_index == 0
    assert "pedestrian green shorter than 7 s: link 14 (" in violations[0].message
    assert check_signal(short_walk, network["C"], SafetyRules(pedestrian_min_s=5)) == []


def test_enforce_raises_one_error_listing_every_violation(cologne1):
    own, network = cologne1
    broken = dataclasses.replace(retimed(own, {0: 4, 1: 2}), offset_s=200)
    plan = NetworkPlan(signals=(broken,), method="webster")
    with pytest.raises(UnsafePlan) as caught:
        enforce(plan, network)
    rules = [v.rule for v in caught.value.violations]
    assert {Rule.OFFSET, Rule.MIN_GREEN, Rule.YELLOW} <= set(rules)
    message = str(caught.value)
    assert message.startswith(f"unsafe plan, {len(rules)} violations: ")
    assert f"signal {COLOGNE1_TLS} phase 1: yellow: " in message and "\n" not in message
    assert caught.value.violations[0].to_dict()["tls_id"] == COLOGNE1_TLS
    enforce(NetworkPlan(signals=(own,), method="fixed"), network)  # the network's own plan is safe
