"""The SUMO twin adapter in a real libsumo run of the corridor (seven 120 s signals; greens,
3 s yellows and 2 s all-reds): plans with new offsets, a new cycle, an unchanged offset, a
replaced submission and one submitted during a transition, each checked on every simulation step.

The run happens once, in a subprocess (``libsumo_twin``); the tests read its record. Times are the
start of the second SUMO showed a state for, from the scenario's begin at 23400 s; everything is
submitted at 23430 s unless said otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from field.transition import UNSET_MIN_GREEN_S, plan_transition
from field.twin_adapter import TRANSITION_SUFFIX
from optimizer.methods.webster import is_green_phase
from optimizer.plans.model import Phase, SignalPlan
from optimizer.plans.sumo_programs import cycle_position, read_net_programs, write_tls
from sim.scenarios import resolve

REPO = Path(__file__).resolve().parents[3]
SUBMITTED_AT = 23430.0
END_S = 24090.0
YELLOW_S, ALL_RED_S = 3.0, 2.0


def _with(plan: SignalPlan, program_id: str, **changes: object) -> SignalPlan:
    return dataclasses.replace(plan, program_id=program_id, **changes)


def _durations(plan: SignalPlan, durations: list[float]) -> tuple[Phase, ...]:
    return tuple(Phase(p.state, d) for p, d in zip(plan.phases, durations, strict=True))


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory):
    build = tmp_path_factory.mktemp("build")
    scenario = resolve("corridor", build)
    own = {p.tls_id: p for p in read_net_programs(scenario.net_file, scenario.additional_files)}
    j2_phases = (Phase(own["J2"].phases[0].state, 44, min_s=10, max_s=50), *own["J2"].phases[1:])
    j3_phases = _durations(own["J3"], [48, 3, 2, 12, 3, 2, 25, 3, 2])
    j4_phases = _durations(own["J4"], [40, 3, 2, 20, 3, 2, 28, 3, 2, 12, 3, 2])
    plans = {
        # offset 0 → 90: 30 s behind at the boundary 23520, caught up in two cycles 15 s shorter
        "j1": _with(own["J1"], "j1", offset_s=90),
        # offset 50 → 90: 80 s behind at 23450; lengthening 40 s (two cycles) is shorter than
        # cutting 80 s, and the first green (max 50 s) stretches at most to 50
        "j2": _with(own["J2"], "j2", offset_s=90, phases=j2_phases),
        # cycle 120 → 100 and offset 59 → 20: 39 s behind at 23459, three cycles 13 s shorter
        "j3": _with(own["J3"], "j3", offset_s=20, phases=j3_phases),
        # new splits, same offset: in force at the boundary 23518 with no transition
        "j4": _with(own["J4"], "j4", phases=j4_phases),
        # replaced before its boundary (23530) by j5b: offset 10 → 40, 90 s behind, two cycles +15 s
        "j5a": _with(own["J5"], "j5a", offset_s=20),
        "j5b": _with(own["J5"], "j5b", offset_s=40),
        # j7x: offset 64 → 100 from 23464, two cycles +18 s; j7y (offset 110), submitted during
        # that transition, starts where it ends (23740), 110 s behind: one cycle 10 s longer
        "j7x": _with(own["J7"], "j7x", offset_s=100),
        "j7y": _with(own["J7"], "j7y", offset_s=110),
        # refused: four links where J6 controls eight; a signal the network does not have
        "bad": SignalPlan("J6", (Phase("GGrr", 30), Phase("rrGG", 30)), program_id="bad"),
        "nope": SignalPlan("nope", (Phase("Gr", 30), Phase("rG", 30)), program_id="nope"),
    }
    late = {"j5b": SUBMITTED_AT + 5, "j7y": 23600.0}
    submits = [
        [late.get(name, SUBMITTED_AT), f"plan-{name}", plan.tls_id, plan.program_id]
        for name, plan in plans.items()
    ]
    plans_file = write_tls(list(plans.values()), build / "plans.add.xml")
    submits_file = build / "submits.json"
    submits_file.write_text(json.dumps(submits))
    command = [str(build), str(plans_file), str(submits_file), str(END_S)]
    result = subprocess.run(
        [sys.executable, "-m", "tests.unit.field.libsumo_twin", *command],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return own, plans, report


def _runs(values: list) -> Iterator[tuple[object, int, int]]:
    """Each maximal run of equal values as (value, first index, length), except the first and the
    last run, which the record cuts."""
    starts = [0] + [i for i in range(1, len(values)) if values[i] != values[i - 1]] + [len(values)]
    for first, end in zip(starts[1:-2], starts[2:-1], strict=True):
        yield values[first], first, end - first


def _phase(own, plans, tls_id: str, program_id: str, index: int) -> Phase:
    if program_id == "0":
        return own[tls_id].phases[index]
    plan = next(
        p
        for p in plans.values()
        if p.tls_id == tls_id and p.program_id == program_id.removesuffix(TRANSITION_SUFFIX)
    )
    return plan.phases[index % len(plan.phases)]


def test_every_step_keeps_each_yellow_and_all_red_whole_and_no_green_below_its_minimum(corridor):
    own, plans, report = corridor
    checked = {"yellow": 0, "all-red": 0, "green": 0, "phase": 0}
    for tls_id, steps in report["steps"].items():
        assert [t for t, *_ in steps] == [23400.0 + i for i in range(len(steps))]
        states = [state for *_, state in steps]
        for link in range(len(states[0])):
            letters = ["G" if s[link] in "gG" else "Y" if s[link] in "yY" else "r" for s in states]
            for letter, first, length in _runs(letters):
                if letter == "Y":
                    assert length == YELLOW_S, (
                        f"{tls_id} link {link}: {length} s of yellow from {steps[first][0]}"
                    )
                    checked["yellow"] += 1
                elif letter == "G":
                    assert length >= UNSET_MIN_GREEN_S, (
                        f"{tls_id} link {link}: {length} s green at {steps[first][0]}"
                    )
                    checked["green"] += 1
        cleared = [not set(s) & set("gGyY") for s in states]
        for is_clear, first, length in _runs(cleared):
            if is_clear:
                assert length == ALL_RED_S, f"{tls_id}: {length} s of all-red from {steps[first][0]}"
                checked["all-red"] += 1
        # phase by phase: a green keeps its minimum (and an explicit maximum), anything else its duration
        for (program_id, index), first, length in _runs([(program, index) for _, program, index, _ in steps]):
            phase = _phase(own, plans, tls_id, program_id, index)
            assert steps[first][3] == phase.state
            if not is_green_phase(phase.state):
                assert length == phase.duration_s, f"{tls_id} {program_id}/{index} at {steps[first][0]}"
            else:
                floor = phase.min_s if phase.min_s < phase.duration_s else UNSET_MIN_GREEN_S
                assert length >= floor, f"{tls_id} {program_id}/{index} at {steps[first][0]}: {length} s"
                if phase.max_s > phase.duration_s:
                    assert length <= phase.max_s
            checked["phase"] += 1
    assert checked["yellow"] > 300 and checked["all-red"] > 100 and checked["phase"] > 400


EXPECTED = {  # plan: (boundary where the transition starts, direction, cycles, when in force)
    "j1": (23520.0, "shorten", 2, 23730.0),
    "j2": (23450.0, "lengthen", 2, 23730.0),
    "j3": (23459.0, "shorten", 3, 23720.0),
    "j4": (23518.0, None, 0, 23518.0),
    "j5b": (23530.0, "lengthen", 2, 23800.0),
    "j7x": (23464.0, "lengthen", 2, 23740.0),
    "j7y": (23740.0, "lengthen", 1, 23870.0),
}


def _shown(report, tls_id: str) -> dict[float, tuple[str, int, str]]:
    return {t: (program, index, state) for t, program, index, state in report["steps"][tls_id]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_transition_runs_from_the_cycle_boundary_as_planned_and_the_plan_then_keeps_its_offset(
    corridor, name
):
    own, plans, report = corridor
    plan = plans[name]
    starts, direction, cycles, in_force = EXPECTED[name]
    shown = _shown(report, plan.tls_id)
    before = own[plan.tls_id] if name != "j7y" else plans["j7x"]
    if name == "j7y":
        # j7x was in force for no step: its transition's last phase (two cycles) hands over to j7y's
        assert shown[starts - 1][:2] == ("j7x+transition", 2 * len(plan.phases) - 1)
    else:
        assert shown[starts - 1][:2] == (before.program_id, len(before.phases) - 1)  # its last phase, whole
    transition = plan_transition(before, plan, starts)
    assert (transition.starts_at_s, transition.direction, len(transition.cycles)) == (
        starts,
        direction,
        cycles,
    )
    assert transition.ends_at_s == in_force
    # SUMO ran the planned transition cycles, phase by phase, from the boundary on
    t = starts
    for cycle in transition.cycles:
        for index, duration in enumerate(cycle):
            for second in range(int(duration)):
                assert shown[t + second][0] == plan.program_id + TRANSITION_SUFFIX
                assert shown[t + second][1] % len(plan.phases) == index, f"{name} at {t + second}"
            t += duration
    assert t == in_force
    # then the plan itself, exactly where its offset puts it, to the end of the run (j7x: until
    # j7y's transition takes over, on the very step j7x went in force)
    until = EXPECTED["j7y"][0] if name == "j7x" else END_S
    after = [t for t in shown if in_force <= t < until]
    assert len(after) >= (0 if name == "j7x" else 200)
    for t in after:
        index, _ = cycle_position(plan, t)
        assert shown[t] == (plan.program_id, index, plan.phases[index].state), f"{name} at {t}"


def test_the_shortened_and_lengthened_greens_stay_within_their_bounds(corridor):
    own, plans, report = corridor
    j1 = plan_transition(own["J1"], plans["j1"], 23520.0)
    assert j1.cycles == ((53, 3, 2, 13, 3, 2, 24, 3, 2),) * 2  # 15 s a cycle, in proportion to 62/15/28
    j2 = plan_transition(own["J2"], plans["j2"], 23450.0)
    # 20 s a cycle: the 44 s green stops at its 50 s maximum, the rest goes to the others
    assert j2.cycles == ((50, 3, 2, 20, 3, 2, 35, 3, 2, 15, 3, 2),) * 2


def test_each_plan_is_confirmed_once_with_the_moment_it_took_over_and_the_program_read_back(corridor):
    _, plans, report = corridor
    confirmed = report["confirmed"]
    assert sorted((a["plan_id"], a["outcome"]) for a in confirmed) == sorted(
        [(f"plan-{name}", "applied") for name in EXPECTED] + [("plan-j5a", "failed")]
    )
    by_plan = {a["plan_id"]: a for a in confirmed}
    assert by_plan["plan-j5a"]["detail"] == "superseded by plan plan-j5b before it took effect"
    assert by_plan["plan-j5a"]["at"] == SUBMITTED_AT + 5
    clock = {  # 2026-11-28 00:00Z + simulation seconds
        "j1": "06:35:30", "j2": "06:35:30", "j3": "06:35:20", "j4": "06:31:58",
        "j5b": "06:36:40", "j7x": "06:35:40", "j7y": "06:37:50",
    }  # fmt: skip
    for name, (_, _, cycles, in_force) in EXPECTED.items():
        application, plan = by_plan[f"plan-{name}"], plans[name]
        assert application["tls_id"] == plan.tls_id
        assert application["at"] == in_force  # confirmed on the step it took over
        assert application["effective_at"] == f"2026-11-28T{clock[name]}+00:00"
        assert application["transition_cycles"] == cycles
        assert application["running"] == {
            "program_id": plan.program_id,
            "offset_s": plan.offset_s,
            "phases": [[p.state, p.duration_s] for p in plan.phases],
        }
    assert "after 2 transition cycles, shortened by 30 s" in by_plan["plan-j1"]["detail"]


def test_running_reads_back_each_signals_program_and_the_offset_it_runs_at(corridor):
    own, plans, report = corridor
    running = report["running"]
    for name in ("j1", "j2", "j3", "j4", "j5b", "j7y"):
        plan = plans[name]
        assert running[plan.tls_id]["program_id"] == plan.program_id
        assert running[plan.tls_id]["offset_s"] == plan.offset_s
    assert running["J6"] == {
        "program_id": "0",
        "offset_s": 30.0,
        "phases": [[p.state, p.duration_s] for p in own["J6"].phases],
    }
    assert report["running_unknown"].startswith("signal nope is not in the simulation")


def test_an_unknown_signal_or_a_wrong_link_count_is_refused_and_changes_nothing(corridor):
    _, _, report = corridor
    refused = {plan_id: (tls_id, detail) for plan_id, tls_id, detail in report["refused"]}
    assert set(refused) == {"plan-bad", "plan-nope"}
    assert refused["plan-bad"] == (
        "J6",
        "signal J6 controls 8 links in the simulation, but its plan's states have 4",
    )
    assert refused["plan-nope"][1].startswith("signal nope is not in the simulation")
    assert {program for _, program, _, _ in report["steps"]["J6"]} == {"0"}
    assert not [a for a in report["confirmed"] if a["tls_id"] in ("J6", "nope")]
