"""``citybrain evaluate``: controllers compared on one scenario over the same seeds.

Registered in :mod:`citybrain.cli` with ``app.command("evaluate")(evaluate)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from citybrain.terminal import JsonFlag, UsageProblem, emit, err, out, settings


def _controller_names(text: str) -> list[str]:
    from sim.controllers import registry

    known = ", ".join(sorted(registry()))
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageProblem(f"--controllers is empty; expected a comma-separated list of: {known}")
    unknown = [name for name in names if name not in registry()]
    if unknown:
        raise UsageProblem(f"--controllers: unknown {', '.join(map(repr, unknown))}; known: {known}")
    if len(set(names)) != len(names):
        raise UsageProblem(f"--controllers names a controller twice: {text!r}")
    return names


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _interval(ci: list[float] | None) -> str:
    return "—" if ci is None else f"[{ci[0]:,.2f}, {ci[1]:,.2f}]"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def tables(result: dict[str, Any]) -> list[Table]:
    """One table per KPI: each controller's mean, std and 95% CI, and its paired difference to
    the baseline with p-value; ``*`` marks a significant difference."""
    names = list(result["controllers"])
    baseline = result["baseline"]
    kpi_names = list(result["controllers"][baseline]["kpis"])
    views = []
    for kpi in kpi_names:
        view = Table(
            "controller",
            "mean",
            "std",
            "95% CI",
            f"Δ to {baseline}",
            "Δ 95% CI",
            "p",
            "sig.",
            title=f"{kpi} · {result['scenario']} · {len(result['seeds'])} seeds",
            title_justify="left",
        )
        for name in names:
            summary = result["controllers"][name]["kpis"].get(kpi)
            if summary is None:
                continue
            difference = result["controllers"][name].get("difference", {}).get(kpi)
            if difference is None:
                delta = ("baseline", "", "", "")
            else:
                delta = (
                    f"{difference['mean']:+,.2f}",
                    _interval(difference["ci95"]),
                    _p(difference["p_value"]),
                    "[bold]*[/bold]" if difference["significant"] else "",
                )
            view.add_row(
                name, _number(summary["mean"]), _number(summary["std"]), _interval(summary["ci95"]), *delta
            )
        views.append(view)
    return views


def evaluate(
    scenario: Annotated[str, typer.Option(help="resco/<name>, an own scenario, or a .sumocfg path.")],
    controllers: Annotated[
        str,
        typer.Option(help="Comma-separated controller names; the first is the baseline of the differences."),
    ] = "fixed,max-pressure,actuated",
    seeds: Annotated[int, typer.Option(help="Seeds 1..K, the same for every controller (paired).")] = 3,
    minutes: Annotated[
        float | None, typer.Option(help="Simulate only this many minutes from the window's begin.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the comparison to this PNG file.")] = None,
    workers: Annotated[
        int, typer.Option(help="Simulations in parallel (local executor processes; Spark: its parallelism).")
    ] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Compare controllers over the same seeds: each KPI's mean, std and 95% CI, and the paired
    difference to the first controller with its p-value."""
    from rich.progress import Progress

    from sim.evaluate import evaluate as run_evaluation
    from sim.scenarios import resolve

    names = _controller_names(controllers)
    if seeds < 1:
        raise UsageProblem(f"--seeds {seeds}: expected a number of seeds of at least 1")
    if minutes is not None and minutes <= 0:
        raise UsageProblem(f"--minutes {minutes:g}: expected a positive number of minutes")
    if workers < 1:
        raise UsageProblem(f"--workers {workers}: expected at least 1")
    if plot is not None and plot.suffix.lower() != ".png":
        raise UsageProblem(f"--plot {plot}: expected a .png file name")
    s = settings()
    chosen = resolve(scenario, s.sim_dir / "build")
    seed_list = list(range(1, seeds + 1))
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"{chosen.name} · {len(names)} controllers", total=len(names) * seeds)
        result = run_evaluation(
            chosen,
            names,
            seed_list,
            s.sim_dir / "runs",
            minutes=minutes,
            workers=workers,
            on_done=lambda _name, _seed: progress.advance(task),
        )
    if plot is not None:
        from sim.plots import plot_comparison

        result["plot"] = str(plot_comparison(result, plot))
    if as_json:
        emit(True, result, "")
        return
    for view in tables(result):
        out.print(view)
    out.print(
        f"window {result['window'][0]}–{result['window'][1]} s · seeds {seed_list[0]}–{seed_list[-1]} · "
        f"* = significant paired difference (p < {result['alpha']})",
        highlight=False,
    )
    if plot is not None:
        out.print(f"plot: {result['plot']}", highlight=False)
