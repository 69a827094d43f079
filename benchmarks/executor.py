"""The optimizer's local executor on one batch of trials: one worker beside two, in one run.

Both pools are started and warmed up (interpreter, imports, libsumo) before they are timed,
as an optimizer keeps its pool across batches. They take turns over the rounds and each one's
best round counts: on a shared machine, other work stretches some rounds (``cpu_capacity``, the
cores this run actually got, before and after, says how much). The same trials also
run one after another in this process with ``simulate``: what a fresh process per trial costs,
and whether reusing one process would have given the same KPIs.
Prints one JSON object; progress goes to stderr.
Usage: python benchmarks/executor.py [--scenario resco/cologne8] [--controller max-pressure]
       [--trials 8] [--minutes M] [--rounds 2]
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from rich.console import Console

from core.settings import Settings
from sim.evaluate import shorten
from sim.executor import LocalExecutor, Trial, simulate
from sim.scenarios import resolve

#: The worker counts compared; the speedup is the first's time over the second's.
WORKER_COUNTS = (1, 2)
#: Window of the warm-up trials (minutes): enough to load the network and run the controller.
WARM_UP_MINUTES = 2


def _spin(cpu_seconds: float) -> float:
    """Busy work until ``cpu_seconds`` of CPU are used; returns the wall time that took."""
    started, cpu = time.perf_counter(), time.process_time()
    while time.process_time() - cpu < cpu_seconds:
        pass
    return time.perf_counter() - started


def _cpu_capacity(cpu_seconds: float = 1.0) -> float:
    """How many cores this run gets now: one busy process per core, CPU time over wall time.

    The core count in the result at most; less when other work shares the machine (the
    scheduler groups processes by session, so a busy neighbour may leave this run one core
    however many it starts), and then the speedup says little about the executor."""
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_spin, [0.1] * cores))  # the processes started
        walls = list(pool.map(_spin, [cpu_seconds] * cores))
    return round(cores * cpu_seconds / max(walls), 2)


def _progress(console: Console, what: str, total: int) -> Callable[[int], None]:
    done = 0

    def advance(index: int) -> None:
        nonlocal done
        done += 1
        console.log(f"{what}: {done}/{total} (seed {index + 1})")

    return advance


def run_executor_benchmark(
    scenario_name: str, controller: str, trials: int, minutes: float | None, rounds: int, console: Console
) -> dict[str, Any]:
    scenario = shorten(resolve(scenario_name, Settings().sim_dir / "build"), minutes)
    batch = [Trial(scenario, controller, seed) for seed in range(1, trials + 1)]
    warm_up = Trial(shorten(scenario, WARM_UP_MINUTES), controller, 0)
    load_before, capacity_before = os.getloadavg()[0], _cpu_capacity()
    seconds: dict[int, list[float]] = {workers: [] for workers in WORKER_COUNTS}
    kpis: list[list[dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        executors = {workers: stack.enter_context(LocalExecutor(workers)) for workers in WORKER_COUNTS}
        for workers, executor in executors.items():
            console.log(f"{workers} worker(s): starting and warming up")
            executor.map([warm_up] * workers)
        for round_number in range(1, rounds + 1):
            for workers, executor in executors.items():
                what = f"round {round_number}, {workers} worker(s)"
                started = time.perf_counter()
                kpis.append(executor.map(batch, on_done=_progress(console, what, trials)))
                seconds[workers].append(round(time.perf_counter() - started, 3))
    simulate(warm_up)
    started = time.perf_counter()
    in_process = []
    for number, trial in enumerate(batch, 1):
        in_process.append(simulate(trial))
        console.log(f"in this process: {number}/{trials}")
    in_process_s = time.perf_counter() - started
    one, two = (min(seconds[workers]) for workers in WORKER_COUNTS)
    return {
        "benchmark": "executor",
        "scenario": scenario.name,
        "window": [scenario.begin, scenario.end],
        "controller": controller,
        "trials": trials,
        "cpu_count": os.cpu_count(),
        "rounds": rounds,
        f"workers_{WORKER_COUNTS[0]}_s": one,
        f"workers_{WORKER_COUNTS[1]}_s": two,
        f"speedup_{WORKER_COUNTS[1]}_workers": round(one / two, 3),
        "rounds_s": {str(workers): times for workers, times in seconds.items()},
        "trial_s": round(one / trials, 3),
        "results_identical": all(run == kpis[0] for run in kpis),
        "in_process_s": round(in_process_s, 3),
        "fork_overhead_per_trial_s": round((one - in_process_s) / trials, 3),
        "in_process_runs_differing": sum(a != b for a, b in zip(in_process, kpis[0], strict=True)),
        "mean_resco_delay": round(sum(run["resco_delay"] for run in kpis[0]) / trials, 3),
        # The machine may be shared: the speedup means something when the cores were free.
        "cpu_capacity": [capacity_before, _cpu_capacity()],
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="resco/cologne8")
    parser.add_argument("--controller", default="max-pressure")
    parser.add_argument("--trials", type=int, default=8, help="one per seed, 1..N")
    parser.add_argument("--minutes", type=float, default=None, help="cut the window (default: full)")
    parser.add_argument("--rounds", type=int, default=2, help="timed batches per worker count")
    args = parser.parse_args()
    result = run_executor_benchmark(
        args.scenario, args.controller, args.trials, args.minutes, args.rounds, Console(stderr=True)
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
