"""The RESCO benchmark: every method on the eight RESCO scenarios, beside RESCO's best published delay.

For each scenario :func:`run_resco_benchmark` first searches the two tuned methods
(``coordinated``, ``adaptive``) within the budget on the training seeds, timing each search,
and stores them where their controllers find them; then it evaluates ``fixed``,
``max-pressure``, ``actuated``, ``webster``, ``coordinated`` and ``adaptive`` on seeds 1..K
(none searched on) in one run with RESCO's delay (mean of time loss plus departure delay per
vehicle), and checks the issue's targets against figures measured in that same run:

- ``adaptive`` at or below RESCO's best published figure, and below our untuned ``max-pressure``;
- ``coordinated`` at most 0.8 × ``fixed``.

RESCO's figures are from Ault & Sharon, "Reinforcement Learning Benchmarks for Traffic Signal
Control" (NeurIPS 2021 Datasets and Benchmarks), the best of fixed time, max-pressure, greedy,
IDQN, IPPO, MPLight and FMA2C for each scenario, on SUMO 1.9; ours run on the installed SUMO.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.settings import Settings
from optimizer.search.optimize import optimize, store
from sim.evaluate import evaluate
from sim.executor import open_executor
from sim.scenarios import RESCO_WINDOWS, Scenario, resco

#: Average delay (s) of the best controller RESCO published for each scenario.
RESCO_BEST = {
    "grid4x4": 32.95,
    "arterial4x4": 654.1,
    "cologne1": 26.05,
    "cologne3": 23.99,
    "cologne8": 21.87,
    "ingolstadt1": 20.90,
    "ingolstadt7": 31.19,
    "ingolstadt21": 59.64,
}
CONTROLLERS = ("fixed", "max-pressure", "actuated", "webster", "coordinated", "adaptive")
#: The tuned methods searched first, whose controllers (of the same names) run what they found.
SEARCHED = ("coordinated", "adaptive")
COORDINATED_TARGET = 0.8  # coordinated ≤ this × fixed


def _rounded(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "mean": round(summary["mean"], 2),
        "std": round(summary["std"], 2),
        "ci95": [round(x, 2) for x in summary["ci95"]],
    }


def scenario_result(evaluation: dict[str, Any], name: str, searches: dict[str, Any]) -> dict[str, Any]:
    """One scenario's figures and targets from its evaluation document."""
    controllers = {}
    for controller, entry in evaluation["controllers"].items():
        row: dict[str, Any] = {"resco_delay": _rounded(entry["kpis"]["resco_delay"])}
        difference = entry.get("difference", {}).get("resco_delay")
        if difference is not None:
            row["vs_fixed"] = {"mean": round(difference["mean"], 2), "p_value": difference["p_value"]}
        controllers[controller] = row
    delay = {controller: row["resco_delay"]["mean"] for controller, row in controllers.items()}
    best = RESCO_BEST[name]
    return {
        "resco_best": best,
        "controllers": controllers,
        "adaptive_vs_resco_best": round(delay["adaptive"] / best, 3),
        "coordinated_vs_fixed": round(delay["coordinated"] / delay["fixed"], 3),
        "targets": {
            "adaptive_at_or_below_resco_best": delay["adaptive"] <= best,
            "adaptive_below_max_pressure": delay["adaptive"] < delay["max-pressure"],
            "coordinated_at_most_0.8_fixed": delay["coordinated"] <= COORDINATED_TARGET * delay["fixed"],
        },
        "searches": searches,
    }


def run_resco_benchmark(
    settings: Settings,
    *,
    scenarios: Sequence[str] = tuple(RESCO_WINDOWS),
    seeds: int = 10,
    budget_minutes: float = 3.0,
    workers: int | None = None,
    shorten: Callable[[Scenario], Scenario] = lambda scenario: scenario,
    log: Callable[[str], None] = lambda _line: None,
    on_scenario: Callable[[dict[str, Any]], None] = lambda _partial: None,
) -> dict[str, Any]:
    """Search, then evaluate, each scenario in turn; one JSON-able document of the figures.

    ``on_scenario`` gets the document so far after each scenario, so a run stopped part way
    (it takes over an hour on two cores) keeps what it measured.
    """
    results: dict[str, Any] = {}
    seed_list = list(range(1, seeds + 1))
    started = time.perf_counter()
    for name in scenarios:
        scenario = shorten(resco(name))
        searches: dict[str, Any] = {}
        with open_executor(settings, workers) as executor:
            pool = executor.workers
            for method in SEARCHED:
                began = time.perf_counter()
                found = optimize(
                    scenario,
                    method,
                    executor,
                    budget_s=budget_minutes * 60,
                    demand_dir=settings.sim_dir / "demand",
                )
                store(settings, scenario, found)
                searches[method] = {
                    "wall_s": round(time.perf_counter() - began, 1),
                    "evaluations": found.evaluations,
                    "generations": found.generations,
                    "train_delay_start": round(found.start_delay, 2),
                    "train_delay_best": round(found.best_delay, 2),
                }
                if found.family:
                    searches[method]["family"] = found.family
                if found.holdout:
                    searches[method]["holdout"] = found.holdout
                log(
                    f"{name}: {method}{f' ({found.family})' if found.family else ''} searched "
                    f"{found.evaluations} candidates in "
                    f"{searches[method]['wall_s']:.0f} s, training delay {found.start_delay:.2f} → "
                    f"{found.best_delay:.2f} s"
                )
            evaluation = evaluate(
                scenario, CONTROLLERS, seed_list, settings.sim_dir / "runs", executor=executor
            )
        results[name] = scenario_result(evaluation, name, searches)
        delays = {c: row["resco_delay"]["mean"] for c, row in results[name]["controllers"].items()}
        log(
            f"{name}: "
            + " · ".join(f"{c} {d:.2f}" for c, d in delays.items())
            + f" · RESCO best {RESCO_BEST[name]}"
        )
        on_scenario(_document(results, seed_list, budget_minutes, pool, started))
    return _document(results, seed_list, budget_minutes, pool, started)


def _document(
    results: dict[str, Any], seed_list: list[int], budget_minutes: float, pool: int, started: float
) -> dict[str, Any]:
    met = {
        target: sum(result["targets"][target] for result in results.values())
        for target in next(iter(results.values()))["targets"]
    }
    return {
        "benchmark": "resco",
        "seeds": seed_list,
        "budget_minutes": budget_minutes,
        "workers": pool,
        "controllers": list(CONTROLLERS),
        "scenarios": results,
        "targets_met": {target: f"{count}/{len(results)}" for target, count in met.items()},
        "complete": set(results) == set(RESCO_WINDOWS),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def plot_resco(result: dict[str, Any], path: Path) -> Path:
    """Each scenario's delays as bars relative to RESCO's best published figure (the line at 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    names = list(result["scenarios"])
    controllers = result["controllers"]
    width = 0.8 / len(controllers)
    figure, axes = plt.subplots(figsize=(max(8.0, 1.5 * len(names)), 4.8))
    for k, controller in enumerate(controllers):
        ratios = [
            result["scenarios"][n]["controllers"][controller]["resco_delay"]["mean"]
            / result["scenarios"][n]["resco_best"]
            for n in names
        ]
        axes.bar(
            np.arange(len(names)) + (k - (len(controllers) - 1) / 2) * width, ratios, width, label=controller
        )
    axes.axhline(1.0, color="black", linewidth=1, linestyle="--", label="RESCO best published")
    axes.set_yscale("log")
    # plain ratios (0.5, 1, 2, 4) rather than powers of ten: the range is a decade at most
    axes.yaxis.set_major_locator(FixedLocator([0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8]))
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_locator(NullLocator())
    axes.set_xticks(np.arange(len(names)), names)
    axes.set_ylabel("RESCO delay ÷ RESCO's best published (log)")
    axes.set_title(
        f"RESCO scenarios · seeds {result['seeds'][0]}–{result['seeds'][-1]} · below the line beats it"
    )
    axes.legend(fontsize=8, ncols=4)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
