"""Run by test_sumo_programs in a subprocess (libsumo allows one simulation per process).

Starts a scenario with a plan file loaded as an additional file, watches it run, then puts a
second plan in force with :func:`optimizer.plans.sumo_programs.apply` and watches that; prints as JSON
what SUMO showed against what each plan's offset says it should show.

Usage: ``python -m tests.unit.optimizer.libsumo_apply SCENARIO LOADED.add.xml APPLIED.add.xml
APPLY_AT SECONDS``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from optimizer.plans.model import SignalPlan
from optimizer.plans.sumo_programs import apply, cycle_position, read_tls
from sim.scenarios import resolve
from sim.sumo_home import import_libsumo, run_options, sumo_binary


def _watch(sim: Any, signals: tuple[SignalPlan, ...], until: float) -> tuple[int, list]:
    """Step to ``until``; compare each signal's shown state with its plan.

    After a step to time ``t`` SUMO shows the state vehicles drove under during that step, so
    a phase due to start at ``t`` shows from the next step: the plan is read at ``t - step``.
    """
    step = sim.simulation.getDeltaT()
    observed, mismatches = 0, []
    while sim.simulation.getTime() < until:
        sim.simulationStep()
        now = sim.simulation.getTime()
        for signal in signals:
            index, _left = cycle_position(signal, now - step)
            shown = sim.trafficlight.getRedYellowGreenState(signal.tls_id)
            observed += 1
            if shown != signal.phases[index].state or sim.trafficlight.getPhase(signal.tls_id) != index:
                mismatches.append([now, signal.tls_id, shown, signal.phases[index].state])
    return observed, mismatches


def main(scenario_name: str, loaded_file: str, applied_file: str, apply_at: float, seconds: float) -> dict:
    scenario = resolve(scenario_name, Path("."))
    loaded, applied = read_tls(Path(loaded_file)), read_tls(Path(applied_file))
    sim = import_libsumo()
    end = scenario.begin + apply_at + seconds + 1
    sim.start(
        [
            sumo_binary("sumo"),
            "-c",
            str(scenario.sumocfg),
            *run_options(scenario.begin, end, 1, [loaded_file]),
        ]
    )
    try:
        programs_at_start = {s.tls_id: sim.trafficlight.getProgram(s.tls_id) for s in loaded}
        loaded_observed, loaded_mismatches = _watch(sim, loaded, scenario.begin + apply_at)
        apply(sim, applied)
        applied_observed, applied_mismatches = _watch(sim, applied, scenario.begin + apply_at + seconds)
        logics = {
            s.tls_id: {
                logic.programID: [[p.duration, p.state, p.minDur, p.maxDur, p.name] for p in logic.phases]
                for logic in sim.trafficlight.getAllProgramLogics(s.tls_id)
            }
            for s in applied
        }
        programs = {s.tls_id: sim.trafficlight.getProgram(s.tls_id) for s in applied}
    finally:
        sim.close()
    return {
        "programs_at_start": programs_at_start,
        "loaded": {"observed": loaded_observed, "mismatches": loaded_mismatches},
        "applied": {"observed": applied_observed, "mismatches": applied_mismatches},
        "programs": programs,
        "logics": logics,
    }


if __name__ == "__main__":
    name, loaded_file, applied_file, at, seconds = sys.argv[1:6]
    print(json.dumps(main(name, loaded_file, applied_file, float(at), float(seconds))))
