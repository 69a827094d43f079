"""Running scenarios: libsumo in-process by default, TraCI for the GUI or a remote SUMO.

libsumo allows one simulation per process, so several seeds run in separate processes,
through the executor (:mod:`sim.executor`) as the optimizer's candidates do. Seeds are
explicit and reproducible, teleporting is off (``--time-to-teleport -1``, as RESCO runs),
and every run writes trip info with unfinished trips, emissions and SUMO's
statistics, from which :mod:`sim.kpis` computes the KPIs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import CitybrainError
from core.settings import Settings
from sim import kpis
from sim.controllers import controller_class, create
from sim.executor import Executor, LocalExecutor, Trial, open_executor
from sim.scenarios import Scenario
from sim.sumo_home import ensure_sumo_home, import_libsumo, run_options, sumo_binary
from sim.xml_files import element, render

BACKENDS = ("libsumo", "traci")


class SimulationFailed(CitybrainError, RuntimeError):
    """SUMO refused the scenario or stopped early; the message says which run and why."""


@dataclass(frozen=True)
class RunRequest:
    scenario: Scenario
    controller: str
    seed: int
    out_dir: Path
    backend: str = "libsumo"
    gui: bool = False
    controller_options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.scenario.name.replace('/', '_')}-{self.controller}-seed{self.seed}"


def _lane_data_file(request: RunRequest) -> Path:
    """An additional file asking SUMO for per-lane totals over the whole window."""
    out = (request.out_dir / request.label).resolve()  # SUMO resolves it against this file's folder
    begin, end = request.scenario.begin, request.scenario.end
    path = Path(f"{out}.lanedata.add.xml")
    root = element(None, "additional", {})
    lane_data = {
        "id": "citybrain",
        "begin": begin,
        "end": end,
        "period": end - begin,
        "file": f"{out}.lanes.xml",
        "excludeEmpty": "true",
    }
    element(root, "laneData", lane_data)
    path.write_text(render(root, indent="  "), encoding="utf-8")
    return path


def sumo_arguments(request: RunRequest) -> list[str]:
    """The SUMO command line of one run (the scenario's own additional files are kept)."""
    scenario = request.scenario
    out = request.out_dir / request.label
    additional = [*scenario.additional_files, _lane_data_file(request)]
    return [
        sumo_binary("sumo-gui" if request.gui else "sumo"),
        "-c", str(scenario.sumocfg),
        *run_options(scenario.begin, scenario.end, request.seed, [str(p) for p in additional]),
        "--tripinfo-output", f"{out}.tripinfo.xml",
        "--tripinfo-output.write-unfinished", "true",
        "--device.emissions.probability", "1",
        "--statistic-output", f"{out}.statistics.xml",
    ]  # fmt: skip


def run(request: RunRequest) -> dict[str, float]:
    """One simulation run; returns its KPIs."""
    ensure_sumo_home()
    if request.backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {request.backend!r}")
    request.out_dir.mkdir(parents=True, exist_ok=True)
    controller = create(request.controller, **request.controller_options)
    arguments = sumo_arguments(request)
    if request.backend == "libsumo" and not request.gui:
        sim = import_libsumo()

        try:
            sim.start(arguments)
        except sim.TraCIException as exc:
            raise SimulationFailed(f"SUMO refused {request.scenario.sumocfg}: {exc}") from None
    else:
        import traci

        try:
            with contextlib.redirect_stdout(sys.stderr):  # traci prints "Retrying in 1 seconds"
                traci.start(arguments, label=request.label)
        except (traci.TraCIException, traci.FatalTraCIError) as exc:
            raise SimulationFailed(f"SUMO refused {request.scenario.sumocfg}: {exc}") from None
        sim = traci.getConnection(request.label)
    try:
        controller.start(sim)
        end = request.scenario.end
        if not controller.acts_each_step:
            sim.simulationStep(float(end))
        else:
            now = sim.simulation.getTime()
            while now < end:
                controller.step(sim, now)
                sim.simulationStep()
                now = sim.simulation.getTime()
    finally:
        sim.close()
    out = request.out_dir / request.label
    result: dict[str, Any] = kpis.trip_kpis(Path(f"{out}.tripinfo.xml"), Path(f"{out}.statistics.xml"))
    measured = controller.measurements()
    if measured:
        result["controller"] = measured
    result["intersections"] = kpis.intersection_kpis(
        Path(f"{out}.lanes.xml"), request.scenario.approaches(), request.scenario.end - request.scenario.begin
    )
    return result


def run_seeds(
    scenario: Scenario,
    controller: str,
    seeds: list[int],
    out_dir: Path,
    *,
    executor: Executor | None = None,
    backend: str = "libsumo",
    workers: int | None = None,
    gui: bool = False,
    on_done: Callable[[int], None] | None = None,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run one controller on one scenario for each seed, through ``executor`` — else one opened
    for this call from the settings with ``workers`` (a single local worker for the GUI).

    Every run gets a fresh process (the executor forks one per trial): libsumo allows one
    simulation per process, and a run must not depend on what ran before it in the same
    process. The controller's :meth:`~sim.controllers.Controller.prepare` runs first, here, and
    its options go to every run, unless ``options`` are given (a caller that holds the
    controller's prepared options, e.g. the plan it just searched). Results, with their
    per-intersection KPIs, come back in seed order; ``on_done(seed)`` is called as each run
    finishes. Each run's SUMO outputs are kept under ``out_dir``.
    """
    if options is None:
        options = controller_class(controller).prepare(scenario)
    trials = [
        Trial(scenario, controller, seed, options, backend, gui, intersections=True, out_dir=out_dir)
        for seed in seeds
    ]
    done = None if on_done is None else (lambda index: on_done(seeds[index]))
    if executor is not None:
        return executor.map(trials, done)
    with LocalExecutor(1) if gui else open_executor(Settings(), workers) as own:
        return own.map(trials, done)
