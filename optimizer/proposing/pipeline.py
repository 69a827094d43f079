"""The optimizer's pipeline for a period of the city: demand → optimize → evaluate → propose.

One function, :func:`optimize_and_propose`, that the ``citybrain_optimize`` DAG and ``make
demo`` both run, so the scheduled path and the shown one are the same code:

1. demand: the scenario to optimize — for the city, :func:`optimizer.demand.lake_counts.lake_scenario`
   builds it from the gold tables of the period;
2. optimize: the ``coordinated`` search within the budget, on the training seeds; a
   fixed-time plan is what the field's controllers run, so it is what gets proposed;
3. evaluate: the plan against ``fixed`` (the signals' current programs) on seeds 1..K that
   the search never used;
4. propose: :func:`optimizer.proposing.propose.propose` — safety, significance, store, publish.

The plan is proposed for the same time of day of the next day (``valid_from`` = the period's
start + 1 day): it was sized from this period's demand, and a day's demand recurs daily. Its
evaluation records the versions of the gold tables the demand was read from, so an operator can
read the exact counts behind it again (``citybrain lake show TABLE --version N``).

A network with more signals than ``settings.optimizer_region_signals`` is searched region by
region (:mod:`optimizer.search.regions`): each region's own network, with routes sampled from the
lake's counts on it (its boundary flows), searched concurrently with the others, every
candidate of every region going through the one executor — Spark tasks across a cluster when
one is configured. The regions' plans are merged and evaluated together on the whole network.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from core.settings import Settings
from optimizer.demand.lake_counts import lake_demand
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.model import Evaluation, NetworkPlan
from optimizer.plans.safety import scenario_signals
from optimizer.plans.sumo_programs import render_tls
from optimizer.proposing.propose import DEFAULT_KPI, Proposal, propose
from optimizer.search.optimize import Optimized, optimize, store
from optimizer.search.regions import Region, cut, partition
from sim.evaluate import evaluate
from sim.executor import Executor, open_executor
from sim.scenarios import Scenario

METHOD = "coordinated"
BASELINE = "fixed"
#: How far ahead the plan applies: the same time of day, the next day.
VALID_AFTER = timedelta(days=1)
#: Where regions' networks and demand are kept, under the settings' ``sim_dir``.
REGIONS_DIR = "regions"


@dataclass
class PipelineResult:
    scenario: str
    search: Optimized
    evaluation: dict[str, Any]
    plan: NetworkPlan
    proposal: Proposal
    #: Each region's search, when the network was searched region by region.
    regions: list[tuple[Region, Optimized]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        delays = {
            name: entry["kpis"][DEFAULT_KPI]["mean"] for name, entry in self.evaluation["controllers"].items()
        }
        return {
            "scenario": self.scenario,
            "plan_id": self.plan.plan_id,
            "signals": len(self.plan.signals),
            "search": {
                "evaluations": self.search.evaluations,
                "seconds": round(self.search.seconds, 1),
                "train_delay": [round(self.search.start_delay, 2), round(self.search.best_delay, 2)],
            },
            "delay": {name: round(value, 2) for name, value in delays.items()},
            "outcome": self.proposal.outcome,
            "reason": self.proposal.reason,
            "regions": [
                {
                    "name": region.name,
                    "signals": list(region.signals),
                    "evaluations": search.evaluations,
                    "train_delay": [round(search.start_delay, 2), round(search.best_delay, 2)],
                }
                for region, search in self.regions
            ],
        }


def kpi_summaries(evaluation: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each controller's KPIs of an evaluation as a plan's evaluation carries them: mean, std, CI."""
    return {
        name: {
            kpi: {k: summary[k] for k in ("mean", "std", "ci95")} for kpi, summary in entry["kpis"].items()
        }
        for name, entry in evaluation["controllers"].items()
    }


def evaluated_plan(
    plan: NetworkPlan,
    evaluation: dict[str, Any],
    valid_from: datetime,
    valid_to: datetime,
    lake_versions: dict[str, int] | None = None,
) -> NetworkPlan:
    """The plan with its validity window, the evaluation's KPIs of baseline and plan, and the gold
    versions its demand came from."""
    kpis = kpi_summaries(evaluation)
    return replace(
        plan,
        valid_from=valid_from,
        valid_to=valid_to,
        evaluation=Evaluation(
            scenario=evaluation["scenario"],
            seeds=tuple(evaluation["seeds"]),
            baseline=kpis[BASELINE],
            plan=kpis[METHOD],
            baseline_method=BASELINE,
            lake_versions=lake_versions,
        ),
        plan_id=None,
    )


def optimize_and_propose(
    settings: Settings,
    scenario: Scenario,
    period: tuple[datetime, datetime],
    *,
    budget_s: float,
    seeds: int = 5,
    workers: int | None = None,
    lake_versions: dict[str, int] | None = None,
    on_step: Callable[[str], None] = lambda _step: None,
) -> PipelineResult:
    """Optimize ``scenario`` (the city over ``period``, its demand read from ``lake_versions`` of
    the gold tables), evaluate and propose the plan."""
    start, end = period
    regions = partition(scenario.net_file, settings.optimizer_region_signals)
    searched: list[tuple[Region, Optimized]] = []
    with open_executor(settings, workers) as executor:
        if len(regions) == 1:
            on_step(f"searching a coordinated plan for {scenario.name} ({budget_s:.0f} s budget)")
            found = optimize(
                scenario, METHOD, executor, budget_s=budget_s, demand_dir=settings.sim_dir / "demand"
            )
        else:
            on_step(
                f"searching coordinated plans for the {len(regions)} regions of {scenario.name}, "
                f"{min(len(regions), executor.workers)} at a time ({budget_s:.0f} s budget each)"
            )
            found, searched = optimize_by_region(
                settings, scenario, period, regions, executor, budget_s, lake_versions
            )
        assert found.plan is not None
        store(settings, scenario, found)
        on_step(f"evaluating it against the current programs on seeds 1–{seeds}")
        evaluation = evaluate(
            scenario,
            [BASELINE, METHOD],
            list(range(1, seeds + 1)),
            settings.sim_dir / "runs",
            executor=executor,
            # the plan just searched, handed over: not what the environment's settings may store
            controller_options={METHOD: {"tls_xml": render_tls(found.plan)}},
        )
    plan = evaluated_plan(found.plan, evaluation, start + VALID_AFTER, end + VALID_AFTER, lake_versions)
    network = scenario_signals(scenario)
    difference = evaluation["controllers"][METHOD]["difference"][DEFAULT_KPI]
    on_step("proposing it")
    proposal = propose(settings, plan, network, rules=inherited_waivers(network), difference=difference)
    return PipelineResult(scenario.name, found, evaluation, plan, proposal, searched)


def optimize_by_region(
    settings: Settings,
    scenario: Scenario,
    period: tuple[datetime, datetime],
    regions: list[Region],
    executor: Executor,
    budget_s: float,
    lake_versions: dict[str, int] | None = None,
) -> tuple[Optimized, list[tuple[Region, Optimized]]]:
    """Each region cut out, its demand sampled from the lake (the gold versions the whole network
    read, when given) and its plan searched, as many
    regions at once as the executor has workers (a thread each, their candidates sharing
    ``executor``); their plans merged into one for ``scenario``, with the searches' totals
    (delays: the regions' mean). More regions than workers take more than one budget."""
    began = time.perf_counter()
    start, end = period
    folder = settings.sim_dir / REGIONS_DIR

    def search(region: Region) -> Optimized:
        net_file = cut(scenario.net_file, region, folder / "networks")
        demand = lake_demand(
            settings, start, end, folder / "demand", region=(region.name, net_file), versions=lake_versions
        )
        return optimize(
            demand.scenario, METHOD, executor, budget_s=budget_s, demand_dir=settings.sim_dir / "demand"
        )

    at_once = min(len(regions), executor.workers)
    with ThreadPoolExecutor(at_once, thread_name_prefix="citybrain-region") as threads:
        found = list(threads.map(search, regions))
    signals = tuple(
        signal
        for region, search_result in zip(regions, found, strict=True)
        for signal in search_result.plan.signals  # type: ignore[union-attr]
        if signal.tls_id in region.signals
    )
    merged = Optimized(
        scenario=scenario.name,
        method=METHOD,
        train_seeds=found[0].train_seeds,
        start_delay=statistics.fmean(f.start_delay for f in found),
        best_delay=statistics.fmean(f.best_delay for f in found),
        evaluations=sum(f.evaluations for f in found),
        generations=max(f.generations for f in found),
        seconds=time.perf_counter() - began,
        plan=NetworkPlan(signals=signals, method=METHOD),
    )
    return merged, list(zip(regions, found, strict=True))
