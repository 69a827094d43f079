"""``citybrain demo``: the closed loop on the corridor, with a person or a script approving.

Registered in :mod:`citybrain.cli` with ``app.command("demo")(demo)``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, emit, err, out, settings


def _seconds(value: float | None, unit: str = "s") -> str:
    return "—" if value is None else f"{value:.1f} {unit}"


def _loop_table(summary: dict[str, Any]) -> Table:
    table = Table("", "value", title="The loop")
    table.add_row("records sent", f"{summary['records']:,}")
    table.add_row("plan", str(summary["plan_id"]))
    table.add_row("state", summary["state"])
    table.add_row(
        "predicted RESCO delay (evaluation): current → plan",
        f"{_seconds(summary['predicted_delay_before'])} → {_seconds(summary['predicted_delay_after'])}",
    )
    table.add_row(
        "approach delay from gold: before → after",
        f"{_seconds(summary['delay_before'])} → {_seconds(summary['delay_after'])}",
    )
    truth = summary.get("truth") or {}
    table.add_row(
        "approach delay from SUMO's truth: before → after",
        f"{_seconds(truth.get('delay_before'))} → {_seconds(truth.get('delay_after'))}",
    )
    without = truth.get("without_plan") or {}
    table.add_row(
        "… the same run without the plan: before → after",
        f"{_seconds(without.get('delay_before'))} → {_seconds(without.get('delay_after'))}",
    )
    if summary.get("unmeasured"):
        table.add_row("delay not measured", summary["unmeasured"])
    if summary.get("windows"):
        before, after = summary["windows"]["before"], summary["windows"]["after"]
        spans = [f"{start[11:16]}–{end[11:16]}" for start, end in (before, after)]
        table.add_row("windows (UTC): before / after", " / ".join(spans))
    measured = summary.get("signal_measures")
    if measured:
        for phase, found in sorted(measured["phases"].items(), key=lambda item: int(item[0])):
            on_green = found["percent_on_green"]
            if on_green["before"] is not None and on_green["after"] is not None:
                table.add_row(
                    f"signal {measured['signal']} phase {phase}: arrivals on green",
                    f"{on_green['before']:.0f} % → {on_green['after']:.0f} %",
                )
        table.add_row("coordination diagrams", " · ".join(d["path"] for d in measured["pcd"].values()))
    return table


def show(summary: dict[str, Any]) -> None:
    """The loop's figures, what landed where, and the lake's score against the twin's truth."""
    out.print(_loop_table(summary))
    landed = Table(
        "topic", "sent", "valid sent", "in bronze", "bronze files", "dead-lettered", title="What landed"
    )
    for topic, row in summary["topics"].items():
        landed.add_row(
            topic, *(str(row[k]) for k in ("sent", "valid_sent", "bronze_rows", "bronze_files", "dlq"))
        )
    out.print(landed)
    out.print("why records were dead-lettered (first five):")
    for reason in summary["sample_dead_letter_reasons"]:
        out.print(f"  · {reason}", highlight=False, markup=False)
    lake = summary["lake_stage"]
    mape = lake["speed_mape"]
    out.print(
        f"lake: {summary['lake']} · {lake['map_matching_accuracy']:.1%} of probe fixes on their true edge · "
        f"speed error (MAPE) fused {mape['fused']:.1%}, detectors alone {mape['detectors']:.1%}, "
        f"probes alone {mape['probes']:.1%} over {lake['speed_cells']} edge-quarter-hours"
    )
    busiest = Table(
        "edge", "window", "flow veh/h", "speed m/s", "confidence", "probe fixes",
        title="gold.link_state_15min: busiest edges",
    )  # fmt: skip
    for row in lake["busiest_edges"]:
        busiest.add_row(
            row["edge_id"], f"{row['window_start']:%H:%M}", f"{row['flow_vph']:,.0f}",
            "—" if row["speed_mps"] is None else f"{row['speed_mps']:.1f}", f"{row['confidence']:.2f}",
            str(row["probe_samples"]),
        )  # fmt: skip
    out.print(busiest)


def demo(
    records: Annotated[int, typer.Option(min=1, help="Sample feed records to send.")] = 20_000,
    invalid_fraction: Annotated[float, typer.Option(min=0, max=1, help="Share of broken records.")] = 0.01,
    headless: Annotated[
        bool,
        typer.Option(
            help="Approve the plan by script instead of waiting for a person in the console "
            "(also when stdin is not a terminal)."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="The console's address (interactive).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The console's port (interactive).")] = 8080,
    decide_within: Annotated[
        float, typer.Option(min=0.1, help="Minutes the simulated city waits for a person's decision.")
    ] = 15.0,
    as_json: JsonFlag = False,
) -> None:
    """The whole loop on the corridor: sensors → Kafka → lake → plan → approval → signals → measured."""
    from citybrain.demo import Interactive, run_demo

    interactive = None
    shown: list[dict[str, Any]] = []

    def show_once(summary: dict[str, Any]) -> None:
        shown.append(summary)
        if as_json:
            emit(True, summary, "")
        else:
            show(summary)

    if not headless and sys.stdin.isatty():
        interactive = Interactive(host, port, decide_within * 60, show=show_once)
    elif not headless:
        err.log("stdin is not a terminal: the plan is approved by script (as --headless)")
    try:
        summary = run_demo(settings(), records, invalid_fraction, progress=err, interactive=interactive)
    except KeyboardInterrupt:
        err.log("demo stopped" + ("" if shown else " before the loop closed"))
        raise typer.Exit(0 if shown else 130) from None
    if not shown:
        show_once(summary)
