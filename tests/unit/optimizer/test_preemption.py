"""A preemption reaches the vehicle's green the quickest safe way, and the record of what a
signal showed is judged by the safety rules step by step (every rule caught, nothing invented).

The signal: links 0 and 1 run north-south, 2 and 3 east-west, every north-south link conflicts
with every east-west one, and the network's own program keeps 2 s of all-red between them.
"""

from __future__ import annotations

import itertools

import pytest

from optimizer.plans.model import Phase, SignalPlan
from optimizer.plans.safety import Rule, SafetyRules, SignalNetwork
from optimizer.plans.shown import Shown, check_shown
from optimizer.plans.sumo_programs import cycle_position
from optimizer.priority.preemption import NoPriorityPhase, is_transition, preempt, priority_phases, resume

PROGRAM = SignalPlan(
    "J",
    (
        Phase("GGrr", 30),
        Phase("yyrr", 3),
        Phase("rrrr", 2),
        Phase("rrGG", 30),
        Phase("rryy", 3),
        Phase("rrrr", 2),
    ),
)
NETWORK = SignalNetwork(
    "J",
    4,
    foes=frozenset({(0, 2), (0, 3), (1, 2), (1, 3)}),
    program=PROGRAM,
    link_labels=("N", "S", "E", "W"),
)
RULES = SafetyRules()


def states(*stretches: tuple[str, int]) -> list[str]:
    return [state for state, seconds in stretches for _ in range(seconds)]


def rules_broken(record: list[str], network: SignalNetwork = NETWORK) -> list[Rule]:
    return [v.rule for v in check_shown(Shown.of_states("J", record), network, RULES)]


def test_the_programs_own_cycles_pass() -> None:
    cycle = states(*((p.state, int(p.duration_s)) for p in PROGRAM.phases))
    assert rules_broken(cycle * 3) == []


@pytest.mark.parametrize(
    ("record", "rule"),
    [
        (states(("rrGG", 10), ("GGrr", 3), ("yyrr", 3), ("rrrr", 2), ("rrGG", 10)), Rule.MIN_GREEN),
        (states(("GGrr", 10), ("rrrr", 5), ("rrGG", 10)), Rule.YELLOW),
        (states(("GGrr", 10), ("yyrr", 2), ("rrrr", 5), ("rrGG", 10)), Rule.YELLOW),
        (states(("GGrr", 10), ("yyrr", 9), ("rrrr", 5), ("rrGG", 10)), Rule.YELLOW),
        (states(("GGrr", 10), ("yyrr", 3), ("rrrr", 1), ("rrGG", 10)), Rule.ALL_RED),
        (states(("GGrr", 10), ("GGGr", 6), ("yyyr", 3), ("rrrr", 2), ("rrGG", 10)), Rule.CONFLICTING_GREENS),
        (states(("GGrr", 10), ("GGr", 1), ("GGrr", 10)), Rule.STATE),
    ],
    ids=["short-green", "no-yellow", "short-yellow", "long-yellow", "short-all-red", "conflict", "state"],
)
def test_each_broken_rule_is_found_in_the_record(record: list[str], rule: Rule) -> None:
    assert rule in rules_broken(record)


def test_a_green_cut_by_the_records_start_or_end_is_not_judged() -> None:
    assert rules_broken(states(("GGrr", 2), ("yyrr", 3), ("rrrr", 2), ("rrGG", 1))) == []


def test_a_waived_rule_is_not_reported() -> None:
    record = states(("GGrr", 10), ("yyrr", 3), ("rrrr", 1), ("rrGG", 10))
    waived = SafetyRules(waivers=frozenset({(Rule.ALL_RED, "J")}))
    assert check_shown(Shown.of_states("J", record), NETWORK, waived) == []


def test_priority_phases_are_the_greens_serving_every_link() -> None:
    assert priority_phases(PROGRAM, {2, 3}) == [3]
    assert priority_phases(PROGRAM, {0}) == [0]
    assert priority_phases(PROGRAM, {0, 2}) == []
    assert is_transition("yyrr") and is_transition("rrrr") and not is_transition("GGrr")


def test_no_phase_for_the_links_is_an_error_naming_them() -> None:
    with pytest.raises(NoPriorityPhase, match=r"links \[0, 2\]"):
        preempt(NETWORK, PROGRAM, "GGrr", [30, 30, 0, 0], {0, 2}, RULES)


def test_a_transition_is_never_cut() -> None:
    assert preempt(NETWORK, PROGRAM, "yyrr", [0, 0, 0, 0], {2}, RULES) is None
    assert preempt(NETWORK, PROGRAM, "rrrr", [0, 0, 0, 0], {2}, RULES) is None


def test_the_vehicles_green_already_shown_is_held() -> None:
    found = preempt(NETWORK, PROGRAM, "rrGG", [0, 0, 12, 12], {3}, RULES)
    assert found is not None and found.resume_phase == 3 and found.until_green_s == 0


def test_the_way_keeps_min_green_then_yellow_then_all_red() -> None:
    found = preempt(NETWORK, PROGRAM, "GGrr", [2, 2, 0, 0], {2}, RULES)
    assert found is not None
    assert [(s.state, s.seconds) for s in found.steps] == [
        ("GGrr", 3.0),  # the ending green keeps its 5 s minimum
        ("yyrr", 3.0),
        ("rrrr", 2.0),  # the network's own all-red
        ("rrGG", 5.0),  # held at least the minimum of the links it starts
    ]
    assert found.until_green_s == 8 and found.resume_phase == 3


@pytest.mark.parametrize(
    ("shown", "green_for", "links"),
    [
        (state, [g if state[i] == "G" else 0 for i in range(4)], links)
        for state, g, links in itertools.product(("GGrr", "rrGG"), (0, 3, 40), ({0}, {1}, {2}, {3}, {2, 3}))
    ],
)
def test_every_preemption_passes_every_rule_on_every_step(
    shown: str, green_for: list[int], links: set[int]
) -> None:
    """From any green and any time into it, the record of the program, then the preemption and
    the program resumed at the priority phase, shows nothing unsafe."""
    found = preempt(NETWORK, PROGRAM, shown, green_for, links, RULES)
    assert found is not None
    other = "rrGG" if shown == "GGrr" else "GGrr"
    into = "".join("y" if letter == "G" else "r" for letter in other)
    before = states((other, 30), (into, 3), ("rrrr", 2), (shown, max(green_for)))
    during = [step.state for step in found.steps for _ in range(int(step.seconds) + (step is found.green))]
    resumed = PROGRAM.phases[found.resume_phase :] + PROGRAM.phases[: found.resume_phase]
    after = states(*((p.state, int(p.duration_s)) for p in resumed[1:])) * 2
    assert rules_broken(before + during + after) == []
    assert all(during[-1][link] == "G" for link in links)


@pytest.mark.parametrize("release_s", [0, 7, 20, 33, 36, 50, 69])
def test_the_way_back_is_safe_and_ends_in_step_with_the_cycle(release_s: int) -> None:
    """Released at any time of the cycle, the signal goes back safely to the phase its program
    would be in had nothing happened, and that phase ends when it would have."""
    held = states(("GGrr", 30), ("yyrr", 3), ("rrrr", 2), ("rrGG", 12))
    back = resume(NETWORK, PROGRAM, "rrGG", [0, 0, 12, 12], float(release_s), RULES)
    during = [step.state for step in back.steps for _ in range(int(step.seconds))]
    phase, left = cycle_position(PROGRAM, release_s + len(during))
    resumed = PROGRAM.phases[back.resume_phase + 1 :] + PROGRAM.phases[: back.resume_phase + 1]
    after = states(*((p.state, int(p.duration_s)) for p in resumed)) * 2
    assert rules_broken(held + during + after) == []
    next_phase = (back.resume_phase + 1) % len(PROGRAM.phases)
    in_step = phase == next_phase and left == PROGRAM.phases[phase].duration_s
    assert in_step or back.steps[-1].seconds == PROGRAM.phases[back.resume_phase].duration_s


def test_a_phase_that_also_clears_the_vehicles_lane_is_preferred() -> None:
    """Links 0 and 1 leave one lane: a green for 1 alone would keep the vehicle behind those
    queued for 0."""
    program = SignalPlan(
        "J",
        (
            Phase("rGrr", 20),
            Phase("ryrr", 3),
            Phase("rrrr", 2),
            Phase("GGrr", 20),
            Phase("yyrr", 3),
            Phase("rrrr", 2),
            Phase("rrGG", 30),
            Phase("rryy", 3),
            Phase("rrrr", 2),
        ),
    )
    network = SignalNetwork("J", 4, foes=NETWORK.foes, program=program)
    alone = preempt(network, program, "rrGG", [0, 0, 30, 30], {1}, RULES)
    cleared = preempt(network, program, "rrGG", [0, 0, 30, 30], {1}, RULES, lane_links={0, 1})
    assert alone is not None and alone.resume_phase == 0
    assert cleared is not None and cleared.resume_phase == 3
