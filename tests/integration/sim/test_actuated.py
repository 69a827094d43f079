"""`actuated`: SUMO's own gap-based actuation replaces the static programs, on a RESCO city
scenario and on our own corridor, and it behaves differently from the fixed plan."""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import pytest

from core.settings import Settings
from sim.controllers import Actuated
from sim.runner import RunRequest, run, sumo_arguments
from sim.scenarios import resco, resolve
from sim.sumo_home import ensure_sumo_home

pytestmark = pytest.mark.integration


def _ten_minutes(scenario):
    return dataclasses.replace(scenario, end=scenario.begin + 600)


@pytest.fixture(scope="module")
def corridor(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    return _ten_minutes(resolve("corridor", Settings(var_dir=var).sim_dir / "build"))


@pytest.mark.parametrize("name", ["resco/cologne1", "corridor"])
def test_actuated_runs_and_differs_from_fixed(tmp_path, corridor, name):
    scenario = corridor if name == "corridor" else _ten_minutes(resco("cologne1"))
    fixed = run(RunRequest(scenario, "fixed", seed=1, out_dir=tmp_path))
    actuated = run(RunRequest(scenario, "actuated", seed=1, out_dir=tmp_path))
    for kpis in (fixed, actuated):
        assert kpis["vehicles"] > 200 and kpis["teleports"] == 0 and kpis["resco_delay"] > 0
    assert actuated["resco_delay"] != pytest.approx(fixed["resco_delay"], rel=1e-3)
    assert actuated["intersections"].keys() == fixed["intersections"].keys()


def test_greens_stretch_and_shrink_while_clearances_keep_the_plan(tmp_path, corridor):
    """Over TraCI (a separate SUMO process), watch every light for five minutes: each runs the
    actuated program, some green ends before or after its planned duration, and every yellow
    or all-red lasts exactly as planned."""
    import traci

    ensure_sumo_home()
    request = RunRequest(corridor, "actuated", seed=1, out_dir=tmp_path, backend="traci")
    request.out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):
        traci.start(sumo_arguments(request), label="actuated-test")
    sim = traci.getConnection("actuated-test")
    try:
        controller = Actuated()
        controller.start(sim)
        assert controller.converted and set(controller.converted) == set(sim.trafficlight.getIDList())
        plans, phase, since, lasted = {}, {}, {}, []
        for tls in controller.converted:
            assert sim.trafficlight.getProgram(tls) == Actuated.program_id
            logic = next(
                lg for lg in sim.trafficlight.getAllProgramLogics(tls) if lg.programID == Actuated.program_id
            )
            assert logic.type == 3  # actuated
            plans[tls] = logic.phases
            phase[tls], since[tls] = sim.trafficlight.getPhase(tls), None
        for _ in range(300):
            sim.simulationStep()
            now = sim.simulation.getTime()
            for tls in controller.converted:
                current = sim.trafficlight.getPhase(tls)
                if current != phase[tls]:
                    if since[tls] is not None:  # a phase seen from its start to its end
                        lasted.append((plans[tls][phase[tls]], now - since[tls]))
                    phase[tls], since[tls] = current, now
    finally:
        sim.close()
    greens = [(p, s) for p, s in lasted if "G" in p.state.upper() and "y" not in p.state.lower()]
    clearances = [(p, s) for p, s in lasted if (p, s) not in greens]
    assert greens and clearances
    assert any(seconds != plan.duration for plan, seconds in greens)
    assert all(plan.minDur <= seconds <= plan.maxDur for plan, seconds in greens)
    assert all(seconds == plan.duration for plan, seconds in clearances)
