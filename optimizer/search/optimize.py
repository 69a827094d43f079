"""Optimizing a scenario: search by simulation, keep the result, and hand it to the controllers.

:func:`optimize` runs one method's search (:mod:`optimizer.search.cmaes`) with every candidate
simulated through one executor (:mod:`sim.executor`). A method is a registered :class:`Method`,
chosen by name; a researcher adds one with :func:`register` in a module named in
``CITYBRAIN_CONTROLLER_MODULES`` or declared under the ``citybrain.methods`` entry-point group.
Ours:

- ``coordinated``: a fixed-time coordinated plan, searched over
  :class:`optimizer.methods.coordinated.PlanSpace` from our Webster plan, the green wave and the
  current programs; when no searched plan beats the current programs exactly as they are — on
  the training seeds, and then on three held-out seeds (:data:`HOLDOUT_SEEDS`, after the
  budget) — the answer is the current programs (nothing to propose) rather than a worse plan.
  The held-out check is there because a plan can beat the current programs on three seeds and
  gridlock on others: on ingolstadt21 the best plan a 3-minute search found scored below them in
  training and locked on seeds 1, 6 and 7 of 1–10 (252–420 s against 137 s);
- ``adaptive``: a policy family (:data:`optimizer.methods.adaptive.FAMILIES`: the pressure policy or
  SUMO's actuation) and its parameters: every family's starting settings are scored, and the
  budget goes to tuning the family whose start scored best.

Candidates are scored by RESCO's delay, averaged over the training seeds
(:data:`TRAIN_SEEDS`, all candidates the same: common random numbers). Three seeds, not two:
with teleporting off a policy can gridlock on an unlucky seed (about one in ten on cologne3),
and a search that never sees one tunes for a network that never jams; more seeds make it
likelier to see one, at the cost of fewer candidates per budget. Evaluations count seeds
from 1, so a result is never judged on the seeds it was tuned on.

The result is stored per scenario (its files, window and demand, through
:func:`optimizer.demand.own_routes.cache_key`) and method under ``sim_dir/optimized``; the ``coordinated``
and ``adaptive`` controllers read it there, and optimize first — with the settings' budget —
when nothing is stored, so every command that takes a controller name can use them.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.errors import CitybrainError
from core.files import file_lock, write_atomic
from core.settings import Settings
from optimizer.demand.own_routes import cache_key, movement_flows
from optimizer.methods.adaptive import FAMILIES, ActuatedParams, PressureParams
from optimizer.methods.coordinated import PlanSpace
from optimizer.methods.green_wave import green_wave_plan
from optimizer.methods.webster import inherited_waivers, webster_plan
from optimizer.plans.model import NetworkPlan
from optimizer.plans.safety import enforce, scenario_signals
from optimizer.plans.sumo_programs import parse_tls, render_tls
from optimizer.search.cmaes import SearchResult, Space, cma_search
from sim.executor import Executor, Trial, open_executor
from sim.plugins import Registry
from sim.scenarios import Scenario

#: The entry-point group through which installed packages add optimisation methods.
ENTRY_POINT_GROUP = "citybrain.methods"
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


#: A batch of (controller, options) candidates scored on seeds (the training seeds by default):
#: each candidate's mean objective, all simulated at once.
Score = Callable[..., list[float]]


@dataclass(frozen=True)
class SearchJob:
    """What a method's search is given: the scenario, the executor its candidates run on, the
    budget and the clock it counts from, and :data:`Score` for its candidates."""

    scenario: Scenario
    executor: Executor
    budget_s: float
    demand_dir: Path
    score: Score
    began: float
    on_generation: Callable[[SearchResult], None] | None = None
    #: The signals a plan search may change (all when None); the others keep their programs.
    signals: frozenset[str] | None = None

    def popsize(self, dimensions: int) -> int:
        """CMA-ES's default population, rounded up to fill every worker with every seed's run."""
        default = 4 + int(3 * math.log(dimensions))
        workers = self.executor.workers
        return max(workers, -(-default // workers) * workers)


class Method(ABC):
    """An optimisation method: searches a scenario's best setting by simulation."""

    name: ClassVar[str]

    @abstractmethod
    def search(self, job: SearchJob) -> tuple[SearchResult, dict[str, Any]]:
        """The search's result and what it found, as :class:`Optimized`'s fields (``plan`` and
        ``holdout``, or ``family`` and ``policy``)."""


class UnknownMethod(OptimizeError, KeyError):
    def __str__(self) -> str:
        return f"no optimisation method {self.args[0]!r}; known: {', '.join(registry())}"


METHODS: Registry[Method] = Registry(ENTRY_POINT_GROUP, UnknownMethod)


def register(cls: type[Method]) -> type[Method]:
    """Class decorator adding a method to the registry under its ``name``."""
    METHODS[cls.name] = cls()
    return cls


def registry() -> dict[str, Method]:
    """Every method by name, in the order registered: ours, the installed packages' and the
    configured modules'."""
    return METHODS.loaded()


def method_named(name: str) -> Method:
    return METHODS.named(name)


def mean_delays(executor: Executor, trials: list[Trial], per_point: int) -> list[float]:
    """The objective of each run of ``per_point`` consecutive trials, averaged: one per candidate."""
    results = executor.map(trials)
    delays = [result[OBJECTIVE] for result in results]
    return [statistics.fmean(delays[i : i + per_point]) for i in range(0, len(delays), per_point)]


def only(plan: NetworkPlan, signals: frozenset[str] | None) -> NetworkPlan:
    """``plan`` for ``signals`` alone (all of it when None)."""
    if signals is None:
        return plan
    return NetworkPlan(signals=tuple(s for s in plan.signals if s.tls_id in signals), method=plan.method)


def coordinated_space(
    scenario: Scenario, demand_dir: Path, signals: frozenset[str] | None = None
) -> PlanSpace:
    """The search space around the Webster plan of the scenario's own demand, for ``signals``
    (every signal when None)."""
    network = scenario_signals(scenario)
    rules = inherited_waivers(network)
    base = only(webster_plan(scenario, movement_flows(scenario, demand_dir)), signals)
    if not base.signals:
        raise OptimizeError(f"{scenario.name} has none of the signals {sorted(signals or ())} to plan")
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
    signals: frozenset[str] | None = None,
) -> Optimized:
    """Search ``method``'s best setting for ``scenario`` within ``budget_s`` seconds of wall time;
    a plan search (``coordinated``) changes only ``signals`` when given, the others running
    their current programs."""
    if signals is not None and method != Coordinated.name:
        raise OptimizeError(f"only the {Coordinated.name} search plans a subset of the signals, not {method}")
    chosen = method_named(method)
    seeds = list(train_seeds)

    def score(candidates: list[tuple[str, dict[str, Any]]], on: Sequence[int] = seeds) -> list[float]:
        """Each (controller, options) candidate's mean delay on the seeds, all in one batch."""
        trials = [
            Trial(scenario, controller, seed, options) for controller, options in candidates for seed in on
        ]
        return mean_delays(executor, trials, len(on))

    job = SearchJob(
        scenario, executor, budget_s, demand_dir, score, time.perf_counter(), on_generation, signals
    )
    result, found = chosen.search(job)
    return _optimized(scenario, method, seeds, result, **found)


@register
class Coordinated(Method):
    """A fixed-time coordinated plan, searched from our Webster plan, the green wave and the
    current programs; the current programs unless a searched plan beats them on the training
    and the held-out seeds (see the module's docstring)."""

    name = "coordinated"

    def search(self, job: SearchJob) -> tuple[SearchResult, dict[str, Any]]:
        scenario, demand_dir, score = job.scenario, job.demand_dir, job.score
        plan_space = coordinated_space(scenario, demand_dir, job.signals)
        space = plan_space.space()
        wave = only(
            green_wave_plan(scenario, movement_flows(scenario, demand_dir), plan_space.rules), job.signals
        )
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
            budget_s=job.budget_s,
            popsize=job.popsize(len(space.names)),
            on_generation=job.on_generation,
            began=job.began,
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
        return result, {"plan": plan, "holdout": holdout}


@register
class Adaptive(Method):
    """A policy family (:data:`optimizer.methods.adaptive.FAMILIES`: the pressure policy or SUMO's
    actuation) and its parameters: every family's starting settings are scored, and the budget
    goes to tuning the family whose start scored best."""

    name = "adaptive"

    def search(self, job: SearchJob) -> tuple[SearchResult, dict[str, Any]]:
        candidates = [
            (family, params.to_dict()) for family, starts in POLICY_STARTS.items() for params in starts
        ]
        values = job.score([(FAMILIES[family][1].name, {"params": params}) for family, params in candidates])
        family = candidates[values.index(min(values))][0]
        params_class, controller = FAMILIES[family]
        space = Space(params_class.search_bounds())
        starts = [params for f, params in candidates if f == family]
        start_values = [value for (f, _), value in zip(candidates, values, strict=True) if f == family]
        result = cma_search(
            space,
            starts,
            lambda points: job.score([(controller.name, {"params": point}) for point in points]),
            budget_s=job.budget_s,
            popsize=job.popsize(len(space.names)),
            on_generation=job.on_generation,
            start_values=start_values,
            began=job.began,
            evaluated=len(candidates),
        )
        return result, {"family": family, "policy": params_class.from_dict(result.best).to_dict()}


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
    return write_atomic(
        stored_path(settings, scenario, optimized.method), json.dumps(optimized.to_dict(), indent=1) + "\n"
    )


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
    method_named(method)
    settings = settings or Settings()
    path = stored_path(settings, scenario, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
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
