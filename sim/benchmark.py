"""The simulation benchmark: libsumo against TraCI on the same runs, and seeds over 2 local workers.

Both backends run the same scenario, controller and seed in this one process run, so the
ratio is measured side by side. The controller is max-pressure, which reads lane counts
and may set signal states every simulated second: that per-step traffic is where the
in-process API saves (a controller that never acts runs at plain SUMO speed either way).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.executor import LocalExecutor, Trial
from sim.runner import RunRequest, run, run_seeds
from sim.scenarios import Scenario

#: Simulated seconds of each worker's warm-up run.
WARM_UP_S = 60


def _timed(request: RunRequest) -> float:
    started = time.perf_counter()
    run(request)
    return time.perf_counter() - started


def _timed_seeds(scenario: Scenario, controller: str, seeds: list[int], out: Path, workers: int) -> float:
    """Wall time of the seeds on ``workers`` local workers, started and warmed up (imports,
    libsumo, the network) by a one-minute run each before the clock starts, so that the figure
    is the runs', not the pool's start."""
    warm_up = Trial(dataclasses.replace(scenario, end=scenario.begin + WARM_UP_S), controller, 0)
    with LocalExecutor(workers) as executor:
        executor.map([warm_up] * workers)
        started = time.perf_counter()
        run_seeds(scenario, controller, seeds, out, executor=executor)
        return time.perf_counter() - started


def run_sim_benchmark(scenario: Scenario, controller: str = "max-pressure", seeds: int = 4) -> dict[str, Any]:
    simulated = scenario.end - scenario.begin
    with tempfile.TemporaryDirectory(prefix="citybrain-bench-sim-") as tmp:
        out = Path(tmp)
        libsumo_s = _timed(RunRequest(scenario, controller, 1, out / "libsumo", "libsumo"))
        traci_s = _timed(RunRequest(scenario, controller, 1, out / "traci", "traci"))
        seed_list = list(range(1, seeds + 1))
        serial_s = _timed_seeds(scenario, controller, seed_list, out / "serial", workers=1)
        parallel_s = _timed_seeds(scenario, controller, seed_list, out / "parallel", workers=2)
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
