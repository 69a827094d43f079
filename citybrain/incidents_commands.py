"""``citybrain incidents``: signal plans for the roads an incident closes, and the way back."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from citybrain.terminal import JsonFlag, UsageProblem, emit, err, settings, stop_flag

incidents_app = typer.Typer(help="Incidents: re-plan the signals around a closed road, stand down after.")


@incidents_app.command("watch")
def incidents_watch(
    scenario: Annotated[
        str | None,
        typer.Option(
            help="The city's scenario to plan on (a name or a .sumocfg); default the lake's newest "
            "hour of fused counts."
        ),
    ] = None,
    budget_minutes: Annotated[
        float | None,
        typer.Option(help="Search wall time per incident; default CITYBRAIN_INCIDENT_BUDGET_MINUTES (2)."),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(help="Evaluation seeds 1..K (at least 2); default CITYBRAIN_INCIDENT_SEEDS (5)."),
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds; default run until stopped.")
    ] = None,
    group: Annotated[str, typer.Option(help="Consumer group (offsets and the state file are its own).")] = (
        "citybrain-incidents"
    ),
    as_json: JsonFlag = False,
) -> None:
    """Follow public.incident.v1: re-plan the signals near each confirmed or active incident and
    propose the plan (valid until its expected end); when it clears, withdraw the plan or propose
    the return to the normal programs."""
    from optimizer.demand.lake_counts import latest_demand
    from optimizer.incidents.watch import watch
    from sim.scenarios import resolve

    if budget_minutes is not None and budget_minutes <= 0:
        raise UsageProblem(f"--budget-minutes {budget_minutes:g}: expected a positive number of minutes")
    if seeds is not None and seeds < 2:
        raise UsageProblem(f"--seeds {seeds}: expected at least 2 (a significance test needs a spread)")
    if max_seconds is not None and max_seconds <= 0:
        raise UsageProblem(f"--max-seconds {max_seconds:g}: expected a positive number of seconds")
    if not group.replace("-", "").replace("_", "").isalnum():
        raise UsageProblem(f"--group {group!r}: expected letters, digits, '-' and '_' only")
    update = {}
    if budget_minutes is not None:
        update["incident_budget_minutes"] = budget_minutes
    if seeds is not None:
        update["incident_seeds"] = seeds
    config = settings().model_copy(update=update)
    if scenario is not None:
        city = resolve(
            scenario, config.sim_dir / "build"
        )  # a wrong name fails now, not at the first incident

        def chosen():
            return city
    else:

        def chosen():
            return latest_demand(config, config.sim_dir / "lake_demand").scenario

    stop = stop_flag()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def said(line: str) -> None:
        err.print(line, soft_wrap=True, markup=False, highlight=False)

    report = watch(
        config,
        chosen,
        group=group,
        stop_when=lambda: stop[0] or (deadline is not None and time.monotonic() >= deadline),
        on_step=said,
    )
    result = report.to_dict()
    lines = [f"read {report.read} report(s), {report.invalid} invalid"]
    lines += [f"{r['incident_id']}: {r['outcome']} — {r.get('reason', '')}" for r in report.replanned]
    lines += [
        f"{r['incident_id']}: {r['action'] or 'nothing'} ({r['plan_id']}) — {r['reason']}"
        for r in report.stood_down
    ]
    emit(as_json, result, "\n".join(lines))
