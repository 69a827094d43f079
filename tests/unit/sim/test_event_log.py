"""The event log's state machine on hand-made state sequences, and the twin's signal truth helpers."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from schemas import contract
from sim.event_log import (
    EventLog,
    EventLogError,
    ProgramInfo,
    SignalObservation,
    offset_s,
    pattern_number,
    program_info,
    split_s,
)
from sim.signal_config import DetectorChannel, PhaseGroup, SignalConfig, SignalConfiguration
from sim.twin import SignalTruth, crossing_time, indication_of

DAY = date(2026, 11, 28)
#: Link 0 is phase 2's, link 1 phase 4's, link 2 overlap 1's (with phase 2), link 3 the crossing
#: walking with phase 2.
CYCLE = (("GrGG", 30.0), ("yryr", 3.0), ("rrrr", 2.0), ("rGrr", 20.0), ("ryrr", 3.0), ("rrrr", 2.0))


def config(controller_id: str = "ctl-1") -> SignalConfig:
    def group(number: int, movement: str, link: int) -> PhaseGroup:
        return PhaseGroup(number, "" if movement == "pedestrian" else "a", "", movement, (link,))  # type: ignore[arg-type]

    def loop(channel: int, loop_id: str, kind: str) -> DetectorChannel:
        return DetectorChannel(channel, loop_id, "a_0", kind, 2, 60.0, 40.0, 12.0)  # type: ignore[arg-type]

    return SignalConfig(
        signal_id="J1",
        controller_id=controller_id,
        reference_phase=2,
        phases=(group(2, "through", 0), group(4, "through", 1)),
        overlaps=(group(1, "right", 2),),
        pedestrian_phases=(group(2, "pedestrian", 3),),
        detectors=(loop(1, "e1_a_0", "stop_bar"), loop(2, "adv_a_0", "advance")),
    )


def program(
    kind: str = "static", program_id: str = "0", max_dur: float = -1.0, offset: float = 0.0
) -> ProgramInfo:
    return ProgramInfo(
        program_id=program_id,
        kind=kind,
        pattern=pattern_number(program_id, [program_id]),
        offset_s=offset,
        states=tuple(state for state, _ in CYCLE),
        durations=tuple(duration for _, duration in CYCLE),
        max_durations=(max_dur,) * len(CYCLE),
    )


def event_log(step_s: float = 1.0) -> EventLog:
    return EventLog(SignalConfiguration("test", {"J1": config()}), ["J1"], day=DAY, step_s=step_s)


def run_cycle(log: EventLog, info: ProgramInfo, start: float = 0.0) -> list[tuple[float, int, int]]:
    """Feed one cycle second by second (and the next cycle's first second); (t, code, param)."""
    seen = []
    t = start
    for index, (state, duration) in [*enumerate(CYCLE), (0, CYCLE[0])]:
        for spent in range(1, int(duration) + 1):
            for record in log.observe(t, {"J1": SignalObservation(state, info, index, float(spent))}):
                seen.append((t, record["event_code"], record["event_param"]))
            t += 1
            if index == 0 and t > start + sum(d for _, d in CYCLE):
                return seen
    return seen


def test_a_static_cycle_logs_every_interval_in_order():
    events = [e for e in run_cycle(event_log(), program()) if e[1] < 131]
    assert events == [
        # the log opens with what is green
        (0, 1, 2),
        (0, 21, 2),
        (0, 61, 1),
        # phase 2 forced off into yellow; the overlap follows it; the walk ends
        (30, 6, 2),
        (30, 7, 2),
        (30, 8, 2),
        (30, 22, 2),
        (30, 63, 1),
        (33, 9, 2),
        (33, 10, 2),
        (33, 23, 2),  # its vehicle phase ended its yellow
        (33, 64, 1),
        # phase 4 begins green: the red clearance of phase 2 and the overlap end
        (35, 1, 4),
        (35, 11, 2),
        (35, 12, 2),
        (35, 65, 1),
        (55, 6, 4),
        (55, 7, 4),
        (55, 8, 4),
        (58, 9, 4),
        (58, 10, 4),
        (60, 1, 2),
        (60, 11, 4),
        (60, 12, 4),
        (60, 21, 2),
        (60, 61, 1),
    ]


def test_the_records_fit_the_contract_with_tenths_of_a_second():
    log = event_log()
    records = log.observe(25200.04, {"J1": SignalObservation("GrGG", program(), 0, 0.0)})
    records += log.observe(
        25201.0,
        {"J1": SignalObservation("GrGG", program(), 0, 1.0)},
        {"e1_a_0": [("v", 5.0, 25200.36, -1.0, "car")]},
    )
    for record in records:
        contract("traffic.signal_event.v1").validate(record)
    assert {r["ts"] for r in records[:-1]} == {"2026-11-28T07:00:00Z"}
    assert records[-1]["ts"] == "2026-11-28T07:00:00.4Z"
    assert {(r["signal_id"], r["source"]) for r in records} == {("ctl-1", "sumo")}


@pytest.mark.parametrize(
    ("kind", "max_dur", "spent_at_end", "cause"),
    [
        ("static", -1.0, 30.0, 6),  # fixed time: force off
        ("actuated", 30.0, 30.0, 5),  # ran to maxDur: max out
        ("actuated", 30.0, 18.0, 4),  # ended early: gap out
        ("actuated", -1.0, 30.0, 4),  # no maxDur: gap out
        ("delay_based", 30.0, 30.0, 5),
    ],
)
def test_the_termination_cause_depends_on_the_program(kind, max_dur, spent_at_end, cause):
    log = event_log()
    info = program(kind, max_dur=max_dur)
    log.observe(0, {"J1": SignalObservation("GrGG", info, 0, 0.0)})
    log.observe(spent_at_end, {"J1": SignalObservation("GrGG", info, 0, spent_at_end)})
    ended = log.observe(spent_at_end + 1, {"J1": SignalObservation("yryr", info, 1, 0.0)})
    assert [(r["event_code"], r["event_param"]) for r in ended if r["event_param"] == 2][:3] == [
        (cause, 2),
        (7, 2),
        (8, 2),
    ]


def test_green_straight_to_red_terminates_and_begins_red_clearance():
    log = event_log()
    log.observe(0, {"J1": SignalObservation("GrGG", program(), 0, 0.0)})
    ended = log.observe(1, {"J1": SignalObservation("rrrr", program(), 2, 0.0)})
    assert [(r["event_code"], r["event_param"]) for r in ended] == [
        (6, 2),
        (7, 2),
        (10, 2),
        (22, 2),
        (23, 2),
        (64, 1),
    ]


def test_a_detector_is_on_at_entry_and_off_at_leave_once_per_vehicle():
    log = event_log()
    state = {"J1": SignalObservation("rGrr", program(), 3, 0.0)}
    log.observe(10, state)
    steps = [
        (11, {"adv_a_0": [("a", 4.7, 10.31, -1.0, "car"), ("b", 4.7, 10.52, 10.86, "car")]}),
        (12, {"adv_a_0": [("a", 4.7, 10.31, -1.0, "car")]}),
        (13, {"adv_a_0": [("a", 4.7, 10.31, 12.44, "car")], "e1_a_0": [("c", 7.1, 12.05, -1.0, "truck")]}),
        (14, {}),
        (15, {"adv_a_0": [("a", 4.7, 14.2, 14.9, "car")]}),  # the same vehicle again, later
    ]
    seen = []
    for t, loops in steps:
        seen += [(r["ts"][-5:], r["event_code"], r["event_param"]) for r in log.observe(t, state, loops)]
    assert seen == [
        ("10.3Z", 82, 2),
        ("10.5Z", 82, 2),
        ("10.9Z", 81, 2),
        ("12.1Z", 82, 1),
        ("12.4Z", 81, 2),
        ("14.2Z", 82, 2),
        ("14.9Z", 81, 2),
    ]


def test_a_leave_reported_twice_is_logged_once():
    log = event_log()
    state = {"J1": SignalObservation("rGrr", program(), 3, 0.0)}
    log.observe(0, state)
    first = log.observe(1, state, {"adv_a_0": [("a", 4.7, 0.5, 0.8, "car")]})
    again = log.observe(2, state, {"adv_a_0": [("a", 4.7, 0.5, 0.8, "car")]})
    assert [r["event_code"] for r in first] == [82, 81] and again == []


def test_coordination_is_logged_at_the_start_and_on_each_program_change():
    log = event_log()
    start = log.observe(0, {"J1": SignalObservation("GrGG", program(offset=50.0), 0, 0.0)})
    coordination = [(r["event_code"], r["event_param"]) for r in start if r["event_code"] >= 131]
    # cycle 60 s; phase 2's split: 30 green + 3 yellow + 2 all red; phase 4's: 20 + 3 + 2
    assert coordination == [(131, 0), (132, 60), (133, 50), (135, 35), (137, 25)]
    same = log.observe(1, {"J1": SignalObservation("GrGG", program(offset=50.0), 0, 1.0)})
    assert same == []
    changed = log.observe(2, {"J1": SignalObservation("GrGG", program(program_id="7"), 0, 0.0)})
    assert [(r["event_code"], r["event_param"]) for r in changed] == [
        (131, 7),
        (132, 60),
        (133, 0),
        (135, 35),
        (137, 25),
    ]


def test_patterns_offsets_and_splits():
    assert pattern_number("3", ["0", "3"]) == 3
    assert pattern_number("citybrain", ["0", "citybrain"]) == 2
    assert pattern_number("300", ["0", "300"]) == 2  # beyond a byte: its place
    with pytest.raises(EventLogError, match="'x' is not among"):
        pattern_number("x", ["0"])
    durations = [d for _, d in CYCLE]
    # 10 s into phase 3 (35 s to 55 s into the cycle) at t = 1045: the cycle began at 1000
    assert offset_s(1045.0, durations, 3, 10.0) == 40.0  # 1000 % 60
    assert offset_s(1000.0, durations, 0, 30.0) == 40.0
    assert offset_s(1020.0, durations, 0, 10.0) == 40.0
    assert offset_s(1060.0, durations, 5, 0.0) == 40.0  # at its very end
    info = program()
    assert split_s(config().phase(2), info) == 35 and split_s(config().phase(4), info) == 25
    # all red that follows a phase's yellow across the end of the cycle counts too
    wrapped = ProgramInfo("0", "static", 0, 0.0, ("rrr", "Grr", "yrr"), (2.0, 30.0, 3.0), (-1.0,) * 3)
    assert split_s(PhaseGroup(2, "a", "", "through", (0,)), wrapped) == 35


def test_program_info_reads_a_libsumo_logic():
    phases = [SimpleNamespace(state=s, duration=d, maxDur=d + 10) for s, d in CYCLE]
    logic = SimpleNamespace(programID="plan-b", type=3, phases=phases)
    info = program_info(logic, ["0", "plan-b"], 1045.0, 3, 10.0)
    assert (info.program_id, info.kind, info.pattern, info.offset_s, info.cycle_s) == (
        "plan-b",
        "actuated",
        2,
        40.0,
        60.0,
    )
    assert info.max_durations[0] == 40.0
    with pytest.raises(EventLogError, match="no phases"):
        program_info(SimpleNamespace(programID="x", type=0, phases=[]), ["x"], 0.0, 0, 0.0)


def test_unknown_signals_and_loops_are_refused():
    configuration = SignalConfiguration("test", {"J1": config()})
    with pytest.raises(EventLogError, match="'J9' is not in the signal configuration"):
        EventLog(configuration, ["J9"], day=DAY)
    log = EventLog(configuration, ["J1"], day=DAY)
    with pytest.raises(EventLogError, match="'J2' is not one this event log follows"):
        log.observe(0, {"J2": SignalObservation("GrGG", program(), 0, 0.0)})
    with pytest.raises(EventLogError, match="'e1_x' is no detector channel"):
        log.observe(0, {}, {"e1_x": [("v", 4.7, 0.0, -1.0, "car")]})


# -- the twin's signal truth ---------------------------------------------------------------------


def test_a_crossing_is_interpolated_within_the_step():
    assert crossing_time(101.0, 1.0, 30.0, 40.0, 32.5) == pytest.approx(100.25)
    assert crossing_time(101.0, 0.5, 30.0, 40.0, 40.0) == pytest.approx(101.0)
    assert crossing_time(101.0, 1.0, 30.0, 40.0, 30.0) is None  # already there before the step
    assert crossing_time(101.0, 1.0, 30.0, 40.0, 41.0) is None


def test_the_indication_at_arrival_comes_from_the_state_history():
    truth = SignalTruth(
        SignalConfiguration("test", {"J1": config()}), ["J1"], day=DAY, step_s=1.0, lane_edge=lambda lane: "a"
    )
    for t, (state, index) in (
        (0.0, ("GrGG", 0)),
        (1.0, ("GrGG", 0)),
        (30.0, ("yryr", 1)),
        (33.0, ("rrrr", 2)),
    ):
        truth.record_state(t, "J1", SignalObservation(state, program(), index, 0.0))
    assert truth.changes["J1"] == ([0.0, 30.0, 33.0], ["GrGG", "yryr", "rrrr"])
    assert [truth.indication_at("J1", 0, at, 40.0) for at in (29.9, 30.0, 32.5, 33.0)] == [
        "green",
        "yellow",
        "yellow",
        "red",
    ]
    assert truth.indication_at("J1", 1, 10.0, 40.0) == "red"
    assert truth.indication_at("J1", None, 10.0, 40.0) is None
    assert truth.indication_at("J1", 0, 40.5, 40.0) is None  # after the run
    assert [indication_of(letter) for letter in "GgsyYoruO"] == ["green"] * 3 + ["yellow"] * 3 + ["red"] * 3
