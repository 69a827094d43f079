"""Optimizing a scenario: search by simulation, keep the result, and hand it to the controllers.

:func:`optimize` runs one method's search (:mod:`optimizer.search`) with every candidate
simulated through one executor (:mod:`optimizer.executor`):

- ``coordinated``: a fixed-time coordinated plan, searched over :class:`optimizer.coordinated.PlanSpace`
  from our Webster plan;
- ``adaptive``: the parameters of the pressure policy (:mod:`optimizer.adaptive`), searched
  from its plain max-pressure setting.

Candidates are scored by RESCO's delay, averaged over the training seeds
(:data:`TRAIN_SEEDS`, all candidates the same: common random numbers). Evaluations count seeds
from 1, so a result is never judged on the seeds it was tuned on.

The result is stored per scenario (its files, window and demand, through
:func:`optimizer.demand.cache_key`) and method under ``sim_dir/optimized``; the ``coordinated``
and ``adaptive`` controllers read it there, and optimize first — with the settings' budget —
when nothing is stored, so every command that takes a controller name can use them.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from citybrain.errors import CitybrainError
from citybrain.settings import Settings
from optimizer.adaptive import PressureParams, PressurePolicy
from optimizer.coordinated import PlanSpace
from optimizer.demand import cache_key, locked, movement_flows
from optimizer.executor import Executor, Trial, open_executor
from optimizer.green_wave import green_wave_plan
from optimizer.plan import NetworkPlan
from optimizer.safety import enforce, read_network
from optimizer.search import Point, SearchResult, Space, cma_search
from optimizer.sumo_tls import parse_tls, render_tls
from optimizer.webster_plan import inherited_waivers, webster_plan
from sim.scenarios import Scenario

METHODS = ("coordinated", "adaptive")
#: Seeds the search simulates; evaluations use 1, 2, … so a method is never judged on its own.
TRAIN_SEEDS = (1001, 1002)
OBJECTIVE = "resco_delay"
#: Bumped when a stored result's meaning changes, so an old one is searched again.
STORE_FORMAT = 1
#: The controller that runs a fixed-time plan handed to it as tlLogic text.
PLAN_CONTROLLER = "signal-plan"


#: Where the adaptive search starts: the textbook and the field's plain max-pressure variants.
POLICY_STARTS = (
    # max-pressure as RESCO's calibration runs it: 10 s decisions on halting queues, per link
    PressureParams(),
    # the same without the downstream term, which spills back less on dense grids
    PressureParams(decision_s=10, min_green_s=10, link_weight=1, out_weight=0),
    # our untuned max-pressure: every second on all vehicles, 5 s minimum green
    PressureParams(decision_s=1, min_green_s=5, moving_weight=1, link_weight=1, out_weight=1),
)


class OptimizeError(CitybrainError, ValueError):
    """An unknown method, or a stored result that cannot be read; the message says which."""


@dataclass
class Optimized:
    """One method's search result for one scenario."""

    scenario: str
    method: str
    train_seeds: list[int]
    start_delay: float  # the best starting point's training delay
    best_delay: float
    evaluations: int
    generations: int
    seconds: float
    history: list[tuple[float, float]] = field(default_factory=list)
    policy: dict[str, float] | None = None  # adaptive: the tuned parameters
    plan: NetworkPlan | None = None  # coordinated: the plan

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STORE_FORMAT,
            "scenario": self.scenario,
            "method": self.method,
            "train_seeds": self.train_seeds,
            "start_delay": round(self.start_delay, 3),
            "best_delay": round(self.best_delay, 3),
            "evaluations": self.evaluations,
            "generations": self.generations,
            "seconds": round(self.seconds, 1),
            "history": [list(point) for point in self.history],
            "policy": self.policy,
            "tls": None if self.plan is None else render_tls(self.plan),
        }

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Optimized:
        if record.get("format") != STORE_FORMAT:
            raise OptimizeError(f"stored result has format {record.get('format')!r}, expected {STORE_FORMAT}")
        plan = None
        if record.get("tls"):
            plan = NetworkPlan(signals=parse_tls(record["tls"], "stored plan"), method=record["method"])
        return cls(
            scenario=record["scenario"],
            method=record["method"],
            train_seeds=list(record["train_seeds"]),
            start_delay=record["start_delay"],
            best_delay=record["best_delay"],
            evaluations=record["evaluations"],
            generations=record["generations"],
            seconds=record["seconds"],
            history=[(a, b) for a, b in record["history"]],
            policy=record.get("policy"),
            plan=plan,
        )


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise OptimizeError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def _mean_delays(executor: Executor, trials: list[Trial], per_point: int) -> list[float]:
    results = executor.map(trials)
    delays = [result[OBJECTIVE] for result in results]
    return [statistics.fmean(delays[i : i + per_point]) for i in range(0, len(delays), per_point)]


def _popsize(executor: Executor, dimensions: int) -> int:
    """CMA-ES's default population, rounded up to fill every worker with every seed's run."""
    default = 4 + int(3 * math.log(dimensions))
    return max(executor.workers, -(-default // executor.workers) * executor.workers)


def coordinated_space(scenario: Scenario, demand_dir: Path) -> PlanSpace:
    """The search space around the Webster plan of the scenario's own demand."""
    network = read_network(scenario.net_file)
    rules = inherited_waivers(network)
    base = webster_plan(scenario, movement_flows(scenario, demand_dir))
    enforce(base, network, rules)
    return PlanSpace(base, network, rules)


def optimize(
    scenario: Scenario,
    method: str,
    executor: Executor,
    *,
    budget_s: float,
    demand_dir: Path,
    train_seeds: Sequence[int] = TRAIN_SEEDS,
    on_generation: Callable[[SearchResult], None] | None = None,
) -> Optimized:
    """Search ``method``'s best setting for ``scenario`` within ``budget_s`` seconds of wall time."""
    _check_method(method)
    seeds = list(train_seeds)
    space: Space
    if method == "adaptive":
        space = Space(PressureParams.BOUNDS)
        starts = [p.to_dict() for p in POLICY_STARTS]

        def trials(points: list[Point]) -> list[Trial]:
            return [
                Trial(scenario, PressurePolicy.name, seed, {"params": point})
                for point in points
                for seed in seeds
            ]

    else:
        plan_space = coordinated_space(scenario, demand_dir)
        space = plan_space.space()
        wave = green_wave_plan(scenario, movement_flows(scenario, demand_dir), plan_space.rules)
        programs = tuple(plan_space.network[signal.tls_id].program for signal in plan_space.base.signals)
        own = NetworkPlan(signals=programs, method="fixed")
        # Webster, the green wave, and the current programs as near as one common cycle allows
        starts = [plan_space.point(plan) for plan in (plan_space.base, wave, own)]

        def trials(points: list[Point]) -> list[Trial]:
            return [
                Trial(scenario, PLAN_CONTROLLER, seed, {"tls_xml": render_tls(plan_space.plan(point))})
                for point in points
                for seed in seeds
            ]

    result = cma_search(
        space,
        starts,
        lambda points: _mean_delays(executor, trials(points), len(seeds)),
        budget_s=budget_s,
        popsize=_popsize(executor, len(space.names)),
        on_generation=on_generation,
    )
    optimized = Optimized(
        scenario=scenario.name,
        method=method,
        train_seeds=seeds,
        start_delay=result.start_value,
        best_delay=result.best_value,
        evaluations=result.evaluations,
        generations=result.generations,
        seconds=result.seconds,
        history=result.history,
    )
    if method == "adaptive":
        optimized.policy = PressureParams.from_dict(result.best).to_dict()
    else:
        plan = plan_space.plan(result.best)
        enforce(plan, plan_space.network, plan_space.rules)
        optimized.plan = plan
    return optimized


def stored_path(settings: Settings, scenario: Scenario, method: str) -> Path:
    return settings.sim_dir / "optimized" / cache_key(scenario) / f"{method}.json"


def store(settings: Settings, scenario: Scenario, optimized: Optimized) -> Path:
    path = stored_path(settings, scenario, optimized.method)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(optimized.to_dict(), indent=1) + "\n")
    staging.replace(path)
    return path


def load(settings: Settings, scenario: Scenario, method: str) -> Optimized | None:
    path = stored_path(settings, scenario, method)
    if not path.is_file():
        return None
    try:
        return Optimized.from_dict(json.loads(path.read_text()))
    except (OptimizeError, KeyError, TypeError, ValueError) as exc:
        problem = f"{path}: cannot read the stored {method} result ({exc}); delete it to search again"
        raise OptimizeError(problem) from None


def stored_or_optimized(scenario: Scenario, method: str, settings: Settings | None = None) -> Optimized:
    """The stored result, or a search with the settings' budget and executor when there is none."""
    _check_method(method)
    settings = settings or Settings()
    path = stored_path(settings, scenario, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_suffix(".lock")):
        found = load(settings, scenario, method)
        if found is not None:
            return found
        with open_executor(settings) as executor:
            optimized = optimize(
                scenario,
                method,
                executor,
                budget_s=settings.optimizer_budget_minutes * 60,
                demand_dir=settings.sim_dir / "demand",
            )
        store(settings, scenario, optimized)
        return optimized
