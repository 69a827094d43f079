"""Run by test_twin_adapter in a subprocess (libsumo allows one simulation per process).

Runs the corridor in libsumo with a :class:`~field.twin_adapter.TwinAdapter` stepped after every
simulation step, submits plans at the given times, and prints as JSON what every watched signal
showed on every step, what ``confirmed()`` returned, and what the submits refused.

Usage: ``python -m tests.unit.field.libsumo_twin BUILD_DIR PLANS.add.xml SUBMITS.json END_S``;
``SUBMITS.json`` is a list of ``[time_s, plan_id, tls_id, program_id]``, the plan being the
program of that signal in ``PLANS.add.xml``.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from functools import partial
from pathlib import Path

from field.adapter import FieldError
from field.twin_adapter import TwinAdapter
from optimizer.plans.model import SignalPlan
from optimizer.plans.sumo_programs import read_tls
from sim.scenarios import resolve
from sim.sumo_home import import_libsumo, sumo_binary
from sim.twin import sim_time_to_utc

DAY = date(2026, 11, 28)


def main(build_dir: str, plans_file: str, submits_file: str, end_s: float) -> dict:
    scenario = resolve("corridor", Path(build_dir))
    plans = {(p.tls_id, p.program_id): p for p in read_tls(Path(plans_file))}
    submits = sorted(json.loads(Path(submits_file).read_text()))
    sim = import_libsumo()
    sim.start(
        [
            sumo_binary("sumo"),
            "-c", str(scenario.sumocfg),
            "--begin", str(scenario.begin), "--end", str(end_s + 1), "--seed", "1",
            "--no-step-log", "true", "--no-warnings", "true", "--time-to-teleport", "-1",
        ]
    )  # fmt: skip
    adapter = TwinAdapter(sim, partial(sim_time_to_utc, DAY))
    watched = sorted(sim.trafficlight.getIDList())
    steps: dict[str, list] = {tls: [] for tls in watched}
    refused, confirmed = [], []
    try:
        step_s = sim.simulation.getDeltaT()
        while sim.simulation.getTime() < end_s:
            sim.simulationStep()
            now = sim.simulation.getTime()
            for tls in watched:  # after a step to ``now`` SUMO shows what ran from ``now - step``
                tl = sim.trafficlight
                steps[tls].append(
                    [now - step_s, tl.getProgram(tls), tl.getPhase(tls), tl.getRedYellowGreenState(tls)]
                )
            adapter.step(now)
            while submits and submits[0][0] <= now:
                _, plan_id, tls_id, program_id = submits.pop(0)
                try:
                    adapter.submit(plan_id, plans[(tls_id, program_id)])
                except FieldError as exc:
                    refused.append([plan_id, tls_id, str(exc)])
            confirmed += [
                {
                    "at": now,
                    "tls_id": a.tls_id,
                    "plan_id": a.plan_id,
                    "outcome": a.outcome,
                    "detail": a.detail,
                    "effective_at": None if a.effective_at is None else a.effective_at.isoformat(),
                    "transition_cycles": a.transition_cycles,
                    "running": None if a.running is None else _plan(a.running),
                }
                for a in adapter.confirmed()
            ]
        running = {tls: _plan(adapter.running(tls)) for tls in watched}
        unknown = None
        try:
            adapter.running("nope")
        except FieldError as exc:
            unknown = str(exc)
    finally:
        sim.close()
    return {
        "steps": steps,
        "confirmed": confirmed,
        "refused": refused,
        "running": running,
        "running_unknown": unknown,
    }


def _plan(plan: SignalPlan) -> dict:
    return {
        "program_id": plan.program_id,
        "offset_s": plan.offset_s,
        "phases": [[p.state, p.duration_s] for p in plan.phases],
    }


if __name__ == "__main__":
    build, plans_path, submits_path, end = sys.argv[1:5]
    print(json.dumps(main(build, plans_path, submits_path, float(end))))
