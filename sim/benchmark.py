"""The simulation benchmark: libsumo against TraCI on the same runs, and seeds over 2 local workers.

Both backends run the same scenario, controller and seed in this one process run, so the
ratio is measured side by side. The controller is max-pressure, which reads lane counts
and may set signal states every simulated second: that per-step traffic is where the
in-process API saves (a controller that never acts runs at plain SUMO speed either way).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from sim.executor import LocalExecutor
from sim.runner import RunRequest, run, run_seeds
from sim.scenarios import Scenario


def _timed(request: RunRequest) -> float:
    started = time.perf_counter()
    run(request)
    return time.perf_counter() - started


def run_sim_benchmark(scenario: Scenario, controller: str = "max-pressure", seeds: int = 4) -> dict[str, Any]:
    simulated = scenario.end - scenario.begin
    with tempfile.TemporaryDirectory(prefix="citybrain-bench-sim-") as tmp:
        out = Path(tmp)
        libsumo_s = _timed(RunRequest(scenario, controller, 1, out / "libsumo", "libsumo"))
        traci_s = _timed(RunRequest(scenario, controller, 1, out / "traci", "traci"))
        seed_list = list(range(1, seeds + 1))
        started = time.perf_counter()
        with LocalExecutor(1) as serial:
            run_seeds(scenario, controller, seed_list, out / "serial", executor=serial)
        serial_s = time.perf_counter() - started
        started = time.perf_counter()
        with LocalExecutor(2) as parallel:
            run_seeds(scenario, controller, seed_list, out / "parallel", executor=parallel)
        parallel_s = time.perf_counter() - started
    return {
        "scenario": scenario.name,
        "controller": controller,
        "simulated_s": simulated,
        "libsumo_sim_s_per_wall_s": round(simulated / libsumo_s, 1),
        "traci_sim_s_per_wall_s": round(simulated / traci_s, 1),
        "ratio": round(traci_s / libsumo_s, 2),
        "seeds": seeds,
        "serial_wall_s": round(serial_s, 2),
        "parallel_wall_s": round(parallel_s, 2),
        "parallel_speedup": round(serial_s / parallel_s, 2),
        "processes": 2,
    }
