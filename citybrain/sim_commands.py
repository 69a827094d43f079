"""``citybrain sim``: the scenarios, simulation runs with KPIs over seeds, and the sensor twin."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, UsageProblem, emit, err, settings

sim_app = typer.Typer(help="SUMO: scenarios, simulation runs with KPIs over seeds.")


@sim_app.command("list")
def sim_list(as_json: JsonFlag = False) -> None:
    """The scenarios: the project's own and the RESCO benchmarks, with signal count and window."""
    from sim.scenarios import all_scenarios

    rows = [
        {
            "name": sc.name,
            "signals": sc.signal_count(),
            "begin": sc.begin,
            "end": sc.end,
            "source": sc.source,
            "sumocfg": str(sc.sumocfg),
        }
        for sc in all_scenarios(settings().sim_dir / "build")
    ]
    table = Table("scenario", "signals", "window (s)", "source")
    for row in rows:
        table.add_row(row["name"], str(row["signals"]), f"{row['begin']}–{row['end']}", row["source"])
    emit(as_json, {"scenarios": rows}, table)


@sim_app.command("run")
def sim_run(
    scenario: Annotated[str, typer.Option(help="resco/<name>, an own scenario, or a .sumocfg path.")],
    controller: Annotated[str, typer.Option(help="Controller name: fixed, max-pressure, ...")] = "fixed",
    seeds: Annotated[int, typer.Option(min=1, help="Number of seeds (first-seed, first-seed+1, ...).")] = 1,
    first_seed: Annotated[int, typer.Option(min=0, help="The first seed.")] = 1,
    backend: Annotated[str, typer.Option(help="libsumo (in-process, fast) or traci.")] = "libsumo",
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Simulations in parallel (local executor processes; Spark: its parallelism)."
        ),
    ] = 2,
    gui: Annotated[bool, typer.Option("--gui", help="Watch in sumo-gui (TraCI, one run at a time).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run a controller on a scenario over seeds; each KPI's mean, std and 95% CI."""
    from rich.progress import Progress

    from sim.controllers import registry
    from sim.kpis import summarise_intersections, summarise_runs
    from sim.runner import BACKENDS, run_seeds
    from sim.scenarios import resolve

    if controller not in registry():
        raise UsageProblem(f"--controller {controller!r} is unknown; known: {', '.join(sorted(registry()))}")
    if backend not in BACKENDS:
        raise UsageProblem(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    s = settings()
    chosen = resolve(scenario, s.sim_dir / "build")
    seed_list = list(range(first_seed, first_seed + seeds))
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"{chosen.name} · {controller}", total=len(seed_list))
        runs = run_seeds(
            chosen,
            controller,
            seed_list,
            s.sim_dir / "runs",
            backend="traci" if gui else backend,
            workers=1 if gui else min(workers, len(seed_list)),
            gui=gui,
            on_done=lambda _seed: progress.advance(task),
        )
    summary = summarise_runs(runs)
    payload = {
        "scenario": chosen.name,
        "controller": controller,
        "window": [chosen.begin, chosen.end],
        "kpis": summary,
        "intersections": summarise_intersections(run["intersections"] for run in runs),
        "seeds": seed_list,
        "runs": runs,
    }
    table = Table(
        "KPI", "mean", "std", "95% CI", title=f"{chosen.name} · {controller} · {len(seed_list)} seeds"
    )
    for name, value in summary.items():
        low, high = value["ci95"]
        table.add_row(name, f"{value['mean']:.2f}", f"{value['std']:.2f}", f"[{low:.2f}, {high:.2f}]")
    emit(as_json, payload, table)


@sim_app.command("stream")
def sim_stream(
    scenario: Annotated[
        str, typer.Option(help="resco/<name>, an own scenario, or a .sumocfg path.")
    ] = "corridor",
    speed: Annotated[
        float | None,
        typer.Option(min=0.1, help="Simulated seconds per wall second (default: as fast as it goes)."),
    ] = None,
    minutes: Annotated[
        float | None, typer.Option(min=1, help="Simulate only this many minutes from the window's start.")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Simulation seed.")] = 1,
    probe_share: Annotated[
        float, typer.Option(min=0, max=1, help="Share of vehicles that are probes.")
    ] = 0.10,
    incident: Annotated[
        bool, typer.Option("--incident/--no-incident", help="Close a lane for a while.")
    ] = True,
    emergency: Annotated[
        bool,
        typer.Option(
            help="Dispatch an emergency vehicle across signals at half the window (operator.emergency.v1)."
        ),
    ] = False,
    emergency_route: Annotated[
        str | None, typer.Option(help="The emergency vehicle's origin and destination edges: FROM,TO.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The sensor twin: detectors, probes, weather, incidents and emergency dispatches from SUMO,
    produced to Kafka."""
    from sim.scenarios import resolve
    from sim.twin import run_twin

    wanted: bool | tuple[str, str] = emergency
    if emergency_route is not None:
        edges = [e.strip() for e in emergency_route.split(",")]
        if len(edges) != 2 or not all(edges):
            raise UsageProblem(f"--emergency-route {emergency_route!r}: expected two edge ids, FROM,TO")
        wanted = (edges[0], edges[1])
    s = settings()
    chosen = resolve(scenario, s.sim_dir / "build")
    summary = run_twin(
        s,
        chosen,
        out_dir=s.sim_dir / "twin" / chosen.name.replace("/", "_"),
        seed=seed,
        speed=speed,
        probe_share=probe_share,
        incident=incident,
        emergency=wanted,
        until=None if minutes is None else chosen.begin + minutes * 60,
        progress=err,
    )
    payload = summary.to_dict()
    table = Table("topic", "records sent", title=f"sensor twin · {chosen.name}")
    for topic, count in summary.counts.items():
        table.add_row(topic, str(count))
    emit(as_json, payload, table)
