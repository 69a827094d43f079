"""``citybrain field``: carry approved plans to the signals, and let the plan store follow."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, emit, err, settings, stop_flag

field_app = typer.Typer(
    help="The field: approved plans applied to the signals, answers followed by the store."
)


class AdapterKind(StrEnum):
    twin = "twin"
    ntcip = "ntcip"


@field_app.command("run")
def field_run(
    adapter: Annotated[
        AdapterKind, typer.Option(help="twin: the scenario's SUMO twin; ntcip: controllers.")
    ] = (AdapterKind.twin),
    scenario: Annotated[
        str,
        typer.Option(
            help="The twin's scenario; with ntcip, the network whose safety rules and programs the "
            "controllers' configuration comes from."
        ),
    ] = "corridor",
    seed: Annotated[int, typer.Option(min=1, help="The twin's random seed.")] = 1,
    speed: Annotated[
        float | None,
        typer.Option(min=0.01, help="Simulated seconds per wall second; default as fast as it can."),
    ] = None,
    until: Annotated[
        float | None,
        typer.Option(help="End the twin at this simulation time (s); default the scenario's end."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply every approval on control.plan.approved.v1 and answer on control.plan.applied.v1."""
    from core.database import open_database
    from field.run import run_ntcip_field, run_twin_field

    config = settings()

    def said(handled) -> None:
        err.print(
            f"field: plan {handled.plan_id} signal {handled.tls_id}: {handled.outcome} ({handled.detail})"
        )

    if adapter is AdapterKind.ntcip:
        if not config.ntcip_controllers.strip():
            from citybrain.terminal import UsageProblem

            raise UsageProblem(
                "--adapter ntcip needs CITYBRAIN_NTCIP_CONTROLLERS (tls_id=host:port,… or one host:port)"
            )
        stop = stop_flag()
        counts = run_ntcip_field(
            config, open_database(config), scenario, stop_when=lambda: stop[0], on_handled=said
        )
        emit(as_json, {"scenario": scenario, "outcomes": counts.outcomes}, _outcomes(counts))
        return

    summary, counts = run_twin_field(
        config,
        open_database(config),
        scenario,
        out_dir=Path(config.run_dir) / "field-twin",
        seed=seed,
        speed=speed,
        until=until,
        progress=err,
        on_handled=said,
    )
    emit(
        as_json,
        {"scenario": summary.scenario, "simulated_s": summary.simulated_s, "outcomes": counts.outcomes},
        _outcomes(counts),
    )


def _outcomes(counts) -> Table:
    table = Table("outcome", "approvals")
    for outcome, count in sorted(counts.outcomes.items()):
        table.add_row(outcome, str(count))
    return table


@field_app.command("follow")
def field_follow(as_json: JsonFlag = False) -> None:
    """Record each signal's outcome from control.plan.applied.v1 in the plan store, until stopped."""
    from core.database import open_database
    from field.run import follow

    config = settings()
    stop = stop_flag()

    def said(followed) -> None:
        line = f"store: plan {followed.plan_id} signal {followed.tls_id}: {followed.outcome}" + (
            f" → plan {followed.status}" if followed.status else f" (skipped: {followed.skipped})"
        )
        err.print(line, soft_wrap=True, markup=False, highlight=False)

    read = follow(config, open_database(config), stop_when=lambda: stop[0], on_record=said)
    emit(as_json, {"records": read}, f"followed {read} applied record(s)")
