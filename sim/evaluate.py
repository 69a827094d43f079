"""Compare controllers on one scenario over the same seeds, with paired statistics.

Every controller runs on the same seeds (common random numbers): seed *k* gives each
controller the same demand realisation, so the per-seed difference between a controller and
the baseline (the first controller named) removes most of the seed-to-seed noise. That is
why the comparison is a *paired* one — mean difference, its 95% CI and a paired t-test —
rather than two independent confidence intervals, which would overlap long after a paired
test sees a clear difference.

The result is one JSON-ready dict::

    {"scenario": …, "window": [begin, end], "seeds": [...], "baseline": NAME,
     "controllers": {NAME: {"kpis": {"resco_delay": {"mean", "std", "ci95"}, …},
                            "difference": {"resco_delay": {"mean", "std", "ci95",
                                                           "p_value", "significant"}, …},
                            "intersections": {…}, "runs": [{…per seed…}], "wall_s": …}}}

``difference`` is absent for the baseline. Differences are *controller − baseline*, so a
negative delay difference is an improvement.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scipy import stats

from core.errors import CitybrainError
from core.settings import Settings
from sim import kpis
from sim.controllers import UnknownController, controller_class, registry
from sim.executor import Executor, open_executor
from sim.runner import run_seeds
from sim.scenarios import Scenario

#: Significance level of the paired t-test; the CIs are 95% to match.
ALPHA = 0.05
#: A standard deviation this small relative to the mean is rounding noise, not variance.
_ZERO_SPREAD = 1e-12


class EvaluationError(CitybrainError, ValueError):
    """Arguments an evaluation cannot run with; the message says what was expected."""


def check_controllers(names: Sequence[str]) -> list[str]:
    """The controller names, checked before any simulation starts (a typo should not cost
    the runs of the controllers named before it)."""
    names = list(names)
    if not names:
        raise EvaluationError(f"no controllers given; known: {', '.join(sorted(registry()))}")
    for name in names:
        if name not in registry():
            raise UnknownController(name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise EvaluationError(f"controllers named twice: {', '.join(duplicates)}")
    return names


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Seeds must be distinct: a repeated seed repeats a run exactly and would shrink the CIs
    without adding information."""
    seeds = list(seeds)
    if not seeds:
        raise EvaluationError("no seeds given; expected at least one")
    if len(set(seeds)) != len(seeds):
        raise EvaluationError(f"seeds must be distinct, got {seeds}")
    return seeds


def shorten(scenario: Scenario, minutes: float | None) -> Scenario:
    """The scenario with its window cut to ``minutes`` from its begin (for quick runs);
    never longer than the scenario's own window."""
    if minutes is None:
        return scenario
    if minutes <= 0:
        raise EvaluationError(f"minutes must be positive, got {minutes}")
    end = min(scenario.end, scenario.begin + math.ceil(minutes * 60))
    return dataclasses.replace(scenario, end=end)


def paired_difference(
    candidate: Sequence[float], baseline: Sequence[float], alpha: float = ALPHA
) -> dict[str, Any]:
    """Mean of ``candidate[i] − baseline[i]`` over seeds, its 95% CI (Student's t), the
    two-sided paired t-test p-value and whether it is below ``alpha``.

    Degenerate samples are answered without pretending: with one seed there is no spread to
    test against, so ``std``, ``ci95`` and ``p_value`` are ``None`` and nothing is
    significant. With zero spread (the same difference on every seed — it happens with
    integer KPIs such as throughput) the t statistic is infinite: the CI collapses to the
    difference, ``p_value`` is 0 (or 1 when the difference is 0) — the limit of the test.
    """
    if len(candidate) != len(baseline):
        raise EvaluationError(f"paired samples differ in length: {len(candidate)} vs {len(baseline)}")
    if not candidate:
        raise EvaluationError("paired difference of empty samples")
    diffs = [c - b for c, b in zip(candidate, baseline, strict=True)]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return {"mean": mean, "std": None, "ci95": None, "p_value": None, "significant": False}
    std = statistics.stdev(diffs)
    if std <= _ZERO_SPREAD * max(1.0, abs(mean)):
        p_value = 1.0 if mean == 0 else 0.0
        return {"mean": mean, "std": 0.0, "ci95": [mean, mean], "p_value": p_value, "significant": mean != 0}
    p_value = float(stats.ttest_rel(candidate, baseline).pvalue)
    return {
        "mean": mean,
        "std": std,
        "ci95": kpis.t_interval95(mean, std, n),
        "p_value": p_value,
        "significant": p_value < alpha,
    }


def compare(
    scenario: Scenario, seeds: Sequence[int], runs: dict[str, list[dict[str, Any]]], alpha: float = ALPHA
) -> dict[str, Any]:
    """The evaluation document from finished runs (``runs[controller][i]`` is seed ``seeds[i]``);
    the first controller is the baseline. Separate from :func:`evaluate` so the statistics can
    be tested without SUMO."""
    names = list(runs)
    baseline = runs[names[0]]
    controllers: dict[str, Any] = {}
    for name in names:
        trips = [{k: v for k, v in run.items() if k != "intersections"} for run in runs[name]]
        entry: dict[str, Any] = {"kpis": kpis.summarise_runs(trips)}
        if name != names[0]:
            entry["difference"] = {
                kpi: paired_difference(
                    [run[kpi] for run in runs[name]], [run[kpi] for run in baseline], alpha
                )
                for kpi in entry["kpis"]
                if all(kpi in run for run in baseline)
            }
        if all("intersections" in run for run in runs[name]):
            entry["intersections"] = kpis.summarise_intersections(run["intersections"] for run in runs[name])
        entry["runs"] = [{"seed": seed, **trip} for seed, trip in zip(seeds, trips, strict=True)]
        controllers[name] = entry
    return {
        "scenario": scenario.name,
        "window": [scenario.begin, scenario.end],
        "seeds": list(seeds),
        "baseline": names[0],
        "alpha": alpha,
        "controllers": controllers,
    }


def evaluate(
    scenario: Scenario,
    controllers: Sequence[str],
    seeds: Sequence[int],
    out_dir: Path,
    *,
    minutes: float | None = None,
    workers: int | None = None,
    backend: str = "libsumo",
    alpha: float = ALPHA,
    on_done: Callable[[str, int], None] | None = None,
    controller_options: Mapping[str, dict[str, Any]] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run every controller over the same seeds and compare each with the first.

    The runs go through ``executor`` — else one opened from the settings with ``workers`` — as
    a search's do, so on a Spark cluster an evaluation fans out too; each is a fresh process
    (:func:`sim.runner.run_seeds`), so a controller's result does not depend on which ran
    before it. ``on_done(controller, seed)`` reports progress. ``controller_options`` gives
    some controllers their options instead of their ``prepare``.
    """
    names = check_controllers(controllers)
    seeds = check_seeds(seeds)
    scenario = shorten(scenario, minutes)
    runs: dict[str, list[dict[str, Any]]] = {}
    wall: dict[str, float] = {}
    options: dict[str, dict[str, Any]] = {}
    # Prepared before the executor opens: a controller's preparation may be a search that runs
    # on an executor of its own, which should not start beside an idle one.
    for name in names:
        started = time.perf_counter()
        given = (controller_options or {}).get(name)
        options[name] = controller_class(name).prepare(scenario) if given is None else given
        wall[name] = time.perf_counter() - started
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(open_executor(Settings(), workers))
        for name in names:
            started = time.perf_counter()
            runs[name] = run_seeds(
                scenario,
                name,
                seeds,
                out_dir,
                executor=executor,
                backend=backend,
                on_done=None if on_done is None else (lambda seed, name=name: on_done(name, seed)),
                options=options[name],
            )
            wall[name] += time.perf_counter() - started
    result = compare(scenario, seeds, runs, alpha)
    for name, seconds in wall.items():
        result["controllers"][name]["wall_s"] = round(seconds, 2)
    return result
