"""``citybrain measures``: a signal's performance measures (ATSPM) from the lake's event logs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, UsageProblem, emit, settings

measures_app = typer.Typer(
    help="Signal performance measures (ATSPM: PCD, splits, split failures, delay, arrivals on red) "
    "from silver.signal_events."
)


class Measure(StrEnum):
    pcd = "pcd"
    split_monitor = "split-monitor"
    split_failure = "split-failure"
    approach_delay = "approach-delay"
    arrivals_on_red = "arrivals-on-red"


SignalOption = Annotated[str, typer.Option(help="The signal: its controller id or its SUMO tls id.")]


def _instant(text: str, option: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC, the lake's time."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(
            f"{option} {text!r}: expected an ISO 8601 time such as 2026-11-28T07:00Z"
        ) from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _period(start: datetime, end: datetime, what: str) -> tuple[datetime, datetime]:
    if end <= start:
        raise UsageProblem(
            f"{what}: the end {end:%Y-%m-%dT%H:%M}Z is not after the start {start:%Y-%m-%dT%H:%M}Z"
        )
    return start, end


def _pair(text: str, option: str) -> tuple[datetime, datetime]:
    parts = text.split(",")
    if len(parts) != 2:
        raise UsageProblem(
            f"{option} {text!r}: expected START,END such as 2026-11-28T07:00Z,2026-11-28T09:00Z"
        )
    return _period(_instant(parts[0], option), _instant(parts[1], option), option)


def _signal(name: str):  # noqa: ANN202 - sim.signal_config.SignalConfig, imported late
    from lake.measure_plots import find_signal
    from sim.signal_config import configuration

    return find_signal(configuration(settings()), name)


@measures_app.command("plot")
def measures_plot(
    signal: SignalOption,
    measure: Annotated[Measure, typer.Option(help="What to draw.")],
    start: Annotated[str, typer.Option("--from", help="Start, ISO 8601 (UTC unless it says otherwise).")],
    end: Annotated[str, typer.Option("--to", help="End (exclusive), ISO 8601.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The PNG to write.")],
    phase: Annotated[
        int | None, typer.Option(min=1, max=40, help="Only this phase (default the through phases 2 and 6).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Draw one measure of one signal over [--from, --to) to a PNG, as ATSPM draws it."""
    from lake.location import tables_location
    from lake.measure_plots import chosen_phases, plot_measure, read_events

    period = _period(_instant(start, "--from"), _instant(end, "--to"), "--from/--to")
    if output.suffix.lower() != ".png":
        raise UsageProblem(f"--output {output}: expected a .png file name")
    config = _signal(signal)
    chosen_phases(config, phase)  # a phase the signal lacks is refused before the lake is read
    events = read_events(tables_location(settings()), config, *period)
    figure = plot_measure(measure.value, events, config, *period, output, phase)
    summary = figure.to_dict()
    phases = ", ".join(map(str, figure.phases))
    text = f"{measure.value} of signal {config.controller_id}, phases {phases} → {output}"
    if figure.percent_on_green:
        text += "; arrivals on green: " + ", ".join(
            f"phase {p} {v if v is not None else '—'} %" for p, v in figure.percent_on_green.items()
        )
    emit(as_json, summary, text)


@measures_app.command("compare")
def measures_compare(
    signal: SignalOption,
    before: Annotated[str, typer.Option(help="The period before: START,END in ISO 8601.")],
    after: Annotated[str, typer.Option(help="The period after: START,END in ISO 8601.")],
    as_json: JsonFlag = False,
) -> None:
    """Each measure per phase in both periods and the change (after − before)."""
    from lake.location import tables_location
    from lake.measure_plots import compare, read_events

    first, second = _pair(before, "--before"), _pair(after, "--after")
    config = _signal(signal)
    lake = tables_location(settings())
    result = compare(
        read_events(lake, config, *first), read_events(lake, config, *second), config, first, second
    )
    table = Table(
        "phase",
        "measure",
        "before",
        "after",
        "change",
        title=f"signal {config.controller_id}: before → after",
    )
    for row in result.rows:
        table.add_row(
            str(row.phase), row.measure, _number(row.before), _number(row.after), _number(row.change)
        )
    emit(as_json, result.to_dict(), table)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"
