"""Simulation-based search: CMA-ES over a box of named parameters, within a time budget.

Both tuned methods search this way — ``coordinated`` over cycle, splits and offsets,
``adaptive`` over the pressure policy's parameters. CMA-ES (the ``cma`` package) suits them:
the objective is a noisy simulation with no gradient, a few to a hundred dimensions, and it
evaluates a whole generation at once, which the executor spreads over processes or a cluster.

Parameters are searched in the unit cube (each mapped linearly onto its range), so one step
size fits all of them. The starting points (the known good settings: a Webster plan, a
green wave and the current programs, plain max-pressure variants) are evaluated first, the
best of them is where CMA-ES starts, and it is the answer unless a candidate beats it: a
search never returns something worse, on its own seeds, than the best place it began. The
objective is given whole generations and must use the same seeds for every candidate (common
random numbers), so candidates differ by their parameters, not their luck.

The budget is kept, not merely checked: a generation starts only when its expected time (the
mean time per candidate so far × the population) still fits, because on a slow network
(ingolstadt21's runs take half a minute) one generation can take longer than the whole
budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import cma
import numpy as np

from core.errors import CitybrainError

Point = dict[str, float]


class SearchError(CitybrainError, ValueError):
    """A malformed search space or starting point; the message names the parameter."""


@dataclass(frozen=True)
class Space:
    """Named parameters, each with its (low, high) range."""

    bounds: Mapping[str, tuple[float, float]]

    def __post_init__(self) -> None:
        if not self.bounds:
            raise SearchError("a search space needs at least one parameter")
        for name, (low, high) in self.bounds.items():
            if not high > low:
                raise SearchError(f"parameter {name}: range [{low}, {high}] is empty")

    @property
    def names(self) -> list[str]:
        return list(self.bounds)

    def to_unit(self, point: Mapping[str, float]) -> np.ndarray:
        missing = set(self.bounds) - set(point)
        if missing:
            raise SearchError(f"starting point lacks {sorted(missing)}")
        return np.array(
            [np.clip((point[n] - low) / (high - low), 0.0, 1.0) for n, (low, high) in self.bounds.items()]
        )

    def from_unit(self, unit: Sequence[float]) -> Point:
        return {
            name: float(low + (high - low) * min(max(u, 0.0), 1.0))
            for (name, (low, high)), u in zip(self.bounds.items(), unit, strict=True)
        }


@dataclass
class SearchResult:
    best: Point
    best_value: float
    start_value: float  # the best starting point's value
    evaluations: int
    generations: int
    seconds: float
    #: (seconds since the start, best value so far) after each generation: the convergence curve.
    history: list[tuple[float, float]] = field(default_factory=list)


def cma_search(
    space: Space,
    starts: Sequence[Mapping[str, float]],
    objective: Callable[[list[Point]], list[float]],
    *,
    budget_s: float,
    popsize: int | None = None,
    sigma0: float = 0.2,
    seed: int = 1,
    on_generation: Callable[[SearchResult], None] | None = None,
    start_values: Sequence[float] | None = None,
    began: float | None = None,
    evaluated: int = 0,
) -> SearchResult:
    """Minimise ``objective`` from the best of ``starts`` until ``budget_s`` runs out or CMA-ES converges.

    A caller that has already scored the starts (choosing among several spaces by them, as
    the adaptive method does) passes their ``start_values``, the ``began`` time
    (``time.perf_counter()``) and the number of candidates it ``evaluated`` since, so the budget
    and the time per candidate count that work. Callers size ``popsize`` to their executor (a
    multiple of its workers wastes nothing).
    """
    if not starts:
        raise SearchError("a search needs at least one starting point")
    began = time.perf_counter() if began is None else began
    units = [space.to_unit(start) for start in starts]
    if start_values is None:
        values = [float(v) for v in objective([space.from_unit(u) for u in units])]
        evaluated += len(units)
    elif len(start_values) == len(units):
        values = [float(v) for v in start_values]
    else:
        raise SearchError(f"{len(start_values)} start values for {len(units)} starting points")
    first = int(np.argmin(values))
    x0 = units[first]
    result = SearchResult(space.from_unit(x0), values[first], values[first], evaluated, 0, 0.0)
    options = {"bounds": [0.0, 1.0], "seed": seed, "verbose": -9}
    if popsize:
        options["popsize"] = popsize
    strategy = cma.CMAEvolutionStrategy(x0, sigma0, options)
    while not strategy.stop():
        elapsed = time.perf_counter() - began
        per_candidate = elapsed / max(result.evaluations, 1)
        if elapsed + per_candidate * strategy.popsize > budget_s:
            break
        candidates = strategy.ask()
        points = [space.from_unit(x) for x in candidates]
        values = [float(v) for v in objective(points)]
        strategy.tell(candidates, values)
        result.evaluations += len(points)
        result.generations += 1
        best = int(np.argmin(values))
        if values[best] < result.best_value:
            result.best, result.best_value = points[best], values[best]
        result.seconds = time.perf_counter() - began
        result.history.append((round(result.seconds, 2), result.best_value))
        if on_generation:
            on_generation(result)
    result.seconds = time.perf_counter() - began
    return result
