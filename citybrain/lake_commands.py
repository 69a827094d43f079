"""``citybrain lake``: fuse an interval, look at a table, check the lake's data quality."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, UsageProblem, emit, err, out, settings

lake_app = typer.Typer(help="The data lake: Spark fusion of bronze into silver and gold, and its quality.")


def _instant(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(
            f"{option} {text!r}: expected an ISO 8601 time such as 2026-11-28T07:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@lake_app.command("fuse")
def lake_fuse(
    start: Annotated[str, typer.Option(help="Start of the interval, UTC ISO 8601, on a quarter hour.")],
    end: Annotated[str, typer.Option(help="End of the interval (exclusive), on a quarter hour.")],
    layers: Annotated[str, typer.Option(help="silver, gold, or silver,gold.")] = "silver,gold",
    as_json: JsonFlag = False,
) -> None:
    """Fuse [start, end): bronze → silver → gold, replacing exactly that interval's partitions."""
    from lake.jobs import fuse

    report = fuse(
        settings(),
        _instant(start, "--start"),
        _instant(end, "--end"),
        layers=tuple(layer.strip() for layer in layers.split(",") if layer.strip()),
        progress=lambda message: err.print(f"[dim]{message}[/dim]"),
    )
    table = Table("table", "rows", "partitions replaced", "removed", title=f"fused in {report.seconds:.1f} s")
    for written in report.written:
        table.add_row(written.table, f"{written.rows:,}", str(written.partitions), str(written.removed))
    emit(as_json, report.to_dict(), table)


@lake_app.command("show")
def lake_show(
    table: Annotated[str, typer.Argument(help="A table, e.g. gold.link_state_15min (see `lake check`).")],
    where: Annotated[str | None, typer.Option(help="A Spark SQL filter, e.g. \"edge_id = 'J1_J2'\".")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show at most.")] = 20,
    version: Annotated[
        int | None,
        typer.Option(min=0, help="Show the table as of this version of its Delta log (default: the newest)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rows of one lake table, newest partitions first; --version reads an earlier version."""
    from lake.show import show_rows

    columns, rows, read = show_rows(settings(), table, where=where, limit=limit, version=version)
    if as_json:
        emit(True, {"table": table, "columns": columns, "rows": rows, "version": read}, "")
        return
    at = "" if read is None else f" · version {read}"
    view = Table(*columns, title=f"{table}{at} · {len(rows)} rows")
    for row in rows:
        view.add_row(*(_cell(row[c]) for c in columns))
    out.print(view)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return str(value)


@lake_app.command("check")
def lake_check(
    table: Annotated[list[str] | None, typer.Option(help="Check only this table (repeatable).")] = None,
    as_of: Annotated[str | None, typer.Option(help="Judge freshness at this UTC time, not now.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Data quality per table: rows, null rates, freshness; exits 1 when an expectation fails."""
    from lake.quality import check

    report = check(settings(), as_of=None if as_of is None else _instant(as_of, "--as-of"), tables=table)
    view = Table(
        "table",
        "rows",
        "partitions",
        "newest",
        "age",
        "result",
        title=f"lake check at {report.as_of:%Y-%m-%d %H:%M}Z",
    )
    for quality in report.tables:
        age = "—" if quality.age_s is None else f"{quality.age_s:,.0f} s"
        newest = "—" if quality.newest is None else f"{quality.newest:%Y-%m-%d %H:%M}"
        result = (
            "[green]ok[/green]" if not quality.failures else "[red]" + "; ".join(quality.failures) + "[/red]"
        )
        view.add_row(quality.name, f"{quality.rows:,}", str(quality.partitions), newest, age, result)
    emit(as_json, report.to_dict(), view)
    if not report.ok:
        sys.exit(1)
