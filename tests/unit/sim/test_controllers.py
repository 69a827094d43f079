"""Controller registry and max-pressure's reading of signal programs (a fake simulation)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from sim.controllers import (
    CONTROLLERS,
    Controller,
    MaxPressure,
    UnknownController,
    _clearance,
    create,
    register,
)


def test_the_builtin_controllers_are_registered():
    assert {"fixed", "max-pressure"} <= set(CONTROLLERS)


def test_an_unknown_controller_lists_the_known_ones():
    with pytest.raises(UnknownController) as raised:
        create("nope")
    assert "known: " in str(raised.value) and "max-pressure" in str(raised.value)


def test_a_researcher_registers_a_controller_by_name():
    @register
    class Hold(Controller):
        name = "test-hold"

        def start(self, sim):
            pass

    try:
        assert isinstance(create("test-hold"), Hold)
    finally:
        del CONTROLLERS["test-hold"]


def test_clearance_turns_only_links_that_lose_green():
    assert _clearance("GGrr", "rGGr", "y") == "yGrr"
    assert _clearance("GgrG", "rrGG", "r") == "rrrG"


@dataclass
class Phase:
    state: str
    duration: float
    minDur: float = 0  # noqa: N815 - SUMO's attribute name


class FakeSim:
    """Just enough of libsumo for max-pressure: one signal, two approaches, a program with
    two greens, yellow and an all-red phase; vehicle counts per lane are set by the test."""

    def __init__(self, phases: list[Phase], counts: dict[str, int]):
        self.states: list[str] = []
        self.counts = counts
        logic = SimpleNamespace(programID="0", type=0, phases=phases)
        self.trafficlight = SimpleNamespace(
            getIDList=lambda: ["J"],
            getProgram=lambda tls: "0",
            getAllProgramLogics=lambda tls: [logic],
            getControlledLinks=lambda tls: [[("ns_in", "ns_out", "via")], [("ew_in", "ew_out", "via")]],
            setRedYellowGreenState=lambda tls, state: self.states.append(state),
        )
        self.lane = SimpleNamespace(getLastStepVehicleNumber=lambda lane: self.counts.get(lane, 0))
        self.simulation = SimpleNamespace(getTime=lambda: 0.0)


PROGRAM = [Phase("Gr", 30), Phase("yr", 4), Phase("rr", 2), Phase("rG", 30), Phase("ry", 4), Phase("rr", 2)]


def run(controller: MaxPressure, sim: FakeSim, seconds: int) -> None:
    for t in range(seconds):
        controller.step(sim, float(t))


def test_max_pressure_switches_through_the_programs_yellow_and_all_red():
    sim = FakeSim(PROGRAM, {"ns_in": 0, "ew_in": 10})
    controller = MaxPressure(min_green_s=5)
    controller.start(sim)
    run(controller, sim, 20)
    # starts on the first green, holds it 5 s, then yellow 4 s, all-red 2 s, then the other green
    assert sim.states[:4] == ["Gr", "yr", "rr", "rG"]


def test_max_pressure_holds_a_green_at_least_its_minimum():
    sim = FakeSim(PROGRAM, {"ns_in": 0, "ew_in": 10})
    controller = MaxPressure(min_green_s=8)
    controller.start(sim)
    run(controller, sim, 8)
    assert sim.states == ["Gr"]
    run_from = 8
    controller.step(sim, float(run_from))
    assert sim.states[-1] == "yr"


def test_max_pressure_stays_when_the_current_green_has_the_most_pressure():
    sim = FakeSim(PROGRAM, {"ns_in": 10, "ew_in": 1})
    controller = MaxPressure()
    controller.start(sim)
    run(controller, sim, 60)
    assert sim.states == ["Gr"]


def test_a_signal_with_a_single_green_is_left_to_its_program():
    sim = FakeSim([Phase("GG", 30), Phase("yy", 3)], {})
    controller = MaxPressure()
    controller.start(sim)
    assert controller.signals == [] and sim.states == []
