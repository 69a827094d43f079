"""Optimizing a scenario: search by simulation, keep the result, and hand it to the controllers.

:func:`optimize` runs one method's search (:mod:`optimizer.search`) with every candidate
simulated through one executor (:mod:`optimizer.executor`):

- ``coordinated``: a fixed-time coordinated plan, searched over :class:`optimizer.coordinated.PlanSpace`
  from our Webster plan, the green wave and the current programs; when no searched plan beats
  the current programs exactly as they are — on the training seeds, and then on three
  held-out seeds (:data:`HOLDOUT_SEEDS`, after the budget) — the answer is the current
  programs (nothing to propose) rather than a worse plan. The held-out check is there because
  a plan can beat the current programs on three seeds and gridlock on others: on
  ingolstadt21 the best plan a 3-minute search found scored below them in training and
  locked on seeds 1, 6 and 7 of 1–10 (252–420 s against 137 s);
- ``adaptive``: a policy family (:data:`optimizer.adaptive.FAMILIES`: the pressure policy or
  SUMO's actuation) and its parameters: every family's starting settings are scored, and the
  budget goes to tuning the family whose start scored best.

Candidates are scored by RESCO's delay, averaged over the training seeds
(:data:`TRAIN_SEEDS`, all candidates the same: common random numbers). Three seeds, not two:
with teleporting off a policy can gridlock on an unlucky seed (about one in ten on cologne3),
and a search that never sees one tunes for a network that never jams; more seeds make it
likelier to see one, at the cost of fewer candidates per budget. Evaluations count seeds
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import CitybrainError
from core.settings import Settings
from optimizer.adaptive import FAMILIES, ActuatedParams, PressureParams
from optimizer.coordinated import PlanSpace
from optimizer.demand import cache_key, locked, movement_flows
from optimizer.executor import Executor, Trial, open_executor
from optimizer.green_wave import green_wave_plan
from optimizer.plan import NetworkPlan
from optimizer.safety import enforce, read_network
from optimizer.search import SearchResult, Space, cma_search
from optimizer.sumo_tls import parse_tls, render_tls
from optimizer.webster_plan import inherited_waivers, webster_plan
from sim.scenarios import Scenario

METHODS = ("coordinated", "adaptive")
#: Seeds the search simulates; evaluations use 1, 2, … so a method is never judged on its own.
TRAIN_SEEDS = (1001, 1002, 1003)
#: Seeds a searched plan must also beat the current programs on before it replaces them.
HOLDOUT_SEEDS = (1004, 1005, 1006)
OBJECTIVE = "resco_delay"
#: Bumped when a stored result's meaning changes, so an old one is searched again.
STORE_FORMAT = 2
#: CMA-ES's initial step for plans (in the unit cube; ``cma_search``'s default 0.2 is for the
#: policies). A plan has dozens of dimensions (cologne8: 35) and a few-minute budget gives a
#: handful of generations, so the search refines around its good starts rather than explores:
#: on cologne8, 2.5 minutes, training delay 40.03 → 35.48 s at 0.08, no gain at all at 0.2.
PLAN_SIGMA = 0.08
#: The controller that runs a fixed-time plan handed to it as tlLogic text.
PLAN_CONTROLLER = "signal-plan"


#: Where the adaptive search starts, per family: the plain max-pressure variants, and SUMO's
#: actuation with its defaults.
POLICY_STARTS: dict[str, tuple[PressureParams | ActuatedParams, ...]] = {
    "pressure": (
        # max-pressure as RESCO's calibration runs it: 10 s decisions on halting queues, per link
        # (with every policy's junction-clearing hold)
        PressureParams(),
        # the same without the downstream term, which spills back less on dense grids
        PressureParams(decision_s=10, min_green_s=10, link_weight=1, out_weight=0),
        # our untuned max-pressure: every second on all vehicles, 5 s minimum green
        PressureParams(decision_s=1, min_green_s=5, moving_weight=1, link_weight=1, out_weight=1),
    ),
    "actuated": (ActuatedParams(),),
}


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
    family: str | None = None  # adaptive: the policy family (a key of FAMILIES)
    policy: dict[str, float] | None = None  # adaptive: the tuned parameters
    plan: NetworkPlan | None = None  # coordinated: the plan
    #: coordinated: the searched plan and the current programs on HOLDOUT_SEEDS, when checked there
    holdout: dict[str, float] | None = None

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
            "family": self.family,
            "policy": self.policy,
            "tls": None if self.plan is None else render_tls(self.plan),
            "holdout": self.holdout,
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
            family=record.get("family"),
            policy=record.get("policy"),
            plan=plan,
            holdout=record.get("holdout"),
        )


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise OptimizeError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def mean_delays(executor: Executor, trials: list[Trial], per_point: int) -> list[float]:
    """The objective of each run of ``per_point`` consecutive trials, averaged: one per candidate."""
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
    began = time.perf_counter()

    def score(candidates: list[tuple[str, dict[str, Any]]], on: Sequence[int] = seeds) -> list[float]:
        """Each (controller, options) candidate's mean delay on the seeds, all in one batch."""
        trials = [
            Trial(scenario, controller, seed, options) for controller, options in candidates for seed in on
        ]
        return mean_delays(executor, trials, len(on))

    if method == "adaptive":
        candidates = [
            (family, params.to_dict()) for family, starts in POLICY_STARTS.items() for params in starts
        ]
        values = score([(FAMILIES[family][1].name, {"params": params}) for family, params in candidates])
        family = candidates[values.index(min(values))][0]
        params_class, controller = FAMILIES[family]
        space = Space(params_class.search_bounds())
        starts = [params for f, params in candidates if f == family]
        start_values = [value for (f, _), value in zip(candidates, values, strict=True) if f == family]
        result = cma_search(
            space,
            starts,
            lambda points: score([(controller.name, {"params": point}) for point in points]),
            budget_s=budget_s,
            popsize=_popsize(executor, len(space.names)),
            on_generation=on_generation,
            start_values=start_values,
            began=began,
            evaluated=len(candidates),
        )
        return _optimized(
            scenario,
            method,
            seeds,
            result,
            family=family,
            policy=params_class.from_dict(result.best).to_dict(),
        )

    plan_space = coordinated_space(scenario, demand_dir)
    space = plan_space.space()
    wave = green_wave_plan(scenario, movement_flows(scenario, demand_dir), plan_space.rules)
    programs = tuple(plan_space.network[signal.tls_id].program for signal in plan_space.base.signals)
    own = NetworkPlan(signals=programs, method="fixed")
    (own_value,) = score([(PLAN_CONTROLLER, {"tls_xml": render_tls(own)})])
    result = cma_search(
        space,
        # Webster, the green wave, and the current programs as near as one common cycle allows
        [plan_space.point(plan) for plan in (plan_space.base, wave, own)],
        lambda points: score(
            [(PLAN_CONTROLLER, {"tls_xml": render_tls(plan_space.plan(p))}) for p in points]
        ),
        budget_s=budget_s,
        popsize=_popsize(executor, len(space.names)),
        on_generation=on_generation,
        began=began,
        evaluated=1,
        sigma0=PLAN_SIGMA,
    )
    plan = plan_space.plan(result.best)
    holdout = None
    if result.best_value < own_value:
        searched_value, current_value = score(
            [(PLAN_CONTROLLER, {"tls_xml": render_tls(p)}) for p in (plan, own)], on=HOLDOUT_SEEDS
        )
        holdout = {"plan": round(searched_value, 3), "current": round(current_value, 3)}
    if own_value <= result.best_value or (holdout and holdout["plan"] >= holdout["current"]):
        plan, result.best_value = own, own_value  # nothing searched beats the programs as they run
    enforce(plan, plan_space.network, plan_space.rules)
    return _optimized(scenario, method, seeds, result, plan=plan, holdout=holdout)


def _optimized(
    scenario: Scenario, method: str, seeds: list[int], result: SearchResult, **found: Any
) -> Optimized:
    return Optimized(
        scenario=scenario.name,
        method=method,
        train_seeds=seeds,
        start_delay=result.start_value,
        best_delay=result.best_value,
        evaluations=result.evaluations,
        generations=result.generations,
        seconds=result.seconds,
        history=result.history,
        **found,
    )


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
        record = json.loads(path.read_text())
        if record.get("format") != STORE_FORMAT:
            return None  # stored by an older search whose meaning has changed: search again
        return Optimized.from_dict(record)
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
