"""``citybrain optimize``: search a scenario's best coordinated plan or adaptive policy, then prove it.

Registered in :mod:`citybrain.cli` with ``app.command("optimize")(optimize)``. The search runs
on the training seeds (:data:`optimizer.search.optimize.TRAIN_SEEDS`) through the configured executor;
the result is stored where the ``coordinated``/``adaptive`` controllers find it, then judged
against ``fixed`` on seeds 1..K that the search never saw, and written out for people
(:mod:`optimizer.proposing.results`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from citybrain.terminal import JsonFlag, UsageProblem, emit, err, out, settings


def optimize(
    scenario: Annotated[str, typer.Option(help="resco/<name>, an own scenario, or a .sumocfg path.")],
    method: Annotated[
        str,
        typer.Option(help="A registered method: coordinated (fixed-time plan), adaptive (tuned policy), …"),
    ] = ("coordinated"),
    budget_minutes: Annotated[float, typer.Option(help="Wall time the search may take.")] = 5.0,
    seeds: Annotated[int, typer.Option(help="Evaluation seeds 1..K, none of them searched on.")] = 5,
    minutes: Annotated[
        float | None, typer.Option(help="Optimize only this many minutes from the window's begin.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes of the local executor; default per core.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the plan files; default var/plans.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Search the scenario's best plan or policy by simulation, prove it on unseen seeds, write it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from optimizer.proposing.results import write_results
    from optimizer.search.optimize import TRAIN_SEEDS, store
    from optimizer.search.optimize import optimize as run_search
    from optimizer.search.optimize import registry as method_registry
    from sim.controllers import registry as controller_registry
    from sim.evaluate import evaluate, shorten
    from sim.executor import open_executor
    from sim.scenarios import resolve

    if method not in method_registry():
        raise UsageProblem(f"--method {method!r}: expected one of {', '.join(method_registry())}")
    if method not in controller_registry():
        raise UsageProblem(
            f"--method {method!r}: no controller of that name runs its result, so it cannot be evaluated"
        )
    if budget_minutes <= 0:
        raise UsageProblem(f"--budget-minutes {budget_minutes:g}: expected a positive number of minutes")
    if seeds < 2:
        raise UsageProblem(f"--seeds {seeds}: expected at least 2 (a difference needs a spread)")
    if minutes is not None and minutes <= 0:
        raise UsageProblem(f"--minutes {minutes:g}: expected a positive number of minutes")
    if workers is not None and workers < 1:
        raise UsageProblem(f"--workers {workers}: expected at least 1")
    s = settings()
    chosen = shorten(resolve(scenario, s.sim_dir / "build"), minutes)
    budget_s = budget_minutes * 60
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[best]}"),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"{method} search · {chosen.name}", total=budget_s, best="")

        def searched(result: Any) -> None:
            progress.update(
                task,
                completed=min(result.seconds, budget_s),
                best=f"gen {result.generations} · {result.evaluations} candidates · "
                f"best delay {result.best_value:.2f} s (start {result.start_value:.2f})",
            )

        with open_executor(s, workers) as executor:
            found = run_search(
                chosen,
                method,
                executor,
                budget_s=budget_s,
                demand_dir=s.sim_dir / "demand",
                on_generation=searched,
            )
            store(s, chosen, found)
            seed_list = list(range(1, seeds + 1))
            proving = progress.add_task(f"evaluating on seeds 1–{seeds}", total=2 * seeds, best="")
            evaluation = evaluate(
                chosen,
                ["fixed", method],
                seed_list,
                s.sim_dir / "runs",
                executor=executor,
                on_done=lambda _name, _seed: progress.advance(proving),
            )
    assert not set(seed_list) & set(TRAIN_SEEDS)
    document = write_results(out_dir or s.var_dir / "plans", chosen.name, found, evaluation, budget_s)
    if as_json:
        emit(True, document, "")
        return
    fixed = evaluation["controllers"]["fixed"]["kpis"]["resco_delay"]["mean"]
    mine = evaluation["controllers"][method]["kpis"]["resco_delay"]
    difference = evaluation["controllers"][method]["difference"]["resco_delay"]
    out.print(
        f"{chosen.name} · {method}: {found.evaluations} candidates in {found.seconds:.0f} s, "
        f"training delay {found.start_delay:.2f} → {found.best_delay:.2f} s",
        highlight=False,
    )
    out.print(
        f"seeds 1–{seeds} (unseen): RESCO delay fixed {fixed:.2f} s → {method} {mine['mean']:.2f} s "
        f"(Δ {difference['mean']:+.2f} s, p = {difference['p_value']:.3g})",
        highlight=False,
    )
    out.print(
        f"plan: {document['plan_json']}"
        + (f" · SUMO: {document['tls_file']}" if "tls_file" in document else "")
    )
