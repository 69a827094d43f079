"""Re-planning for an incident, and standing down when it is over.

:func:`replan` answers an open incident (``confirmed`` or ``active``, located on an edge):

1. the **incident scenario**: the city's scenario (the lake's latest counts, or a named one)
   with the reported lanes — or the whole edge — closed and every driver rerouting
   (:func:`sim.closures.incident_scenario`);
2. the **signals near it** (:func:`optimizer.incidents.nearby.nearby_signals`); the others keep
   their programs;
3. a **short search**: the ``coordinated`` search over those signals alone, on the training
   seeds, within the settings' incident budget; it answers the current programs when nothing
   it finds beats them on the training and held-out seeds, and then nothing is proposed;
4. an **evaluation** of the plan against the current programs under the same closure on seeds
   1..K that the search never saw;
5. a **proposal** through :func:`optimizer.proposing.propose.propose` — the same safety rules,
   significance test, plan store and approval as every plan — with method ``incident``, valid
   from now until the incident's expected end, its evaluation naming the incident.

:func:`stand_down` answers the end of one: an incident plan still waiting for approval is
withdrawn (``superseded``, the note says why); one that was approved or applied gets the return
to the normal plan proposed (method ``incident-return``: the signals' normal programs,
evaluated against the incident plan on the scenario without the closure). The return needs the
operator's approval like any plan, but not to beat the incident plan: the incident plan was
only ever meant for the incident.

Both are idempotent through the plan store: an incident with a stored incident plan is not
re-planned, a withdrawn plan is not withdrawn twice, a return is proposed once.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.settings import Settings
from optimizer.incidents.model import Incident, IncidentError
from optimizer.incidents.nearby import nearby_signals
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.model import Evaluation, NetworkPlan
from optimizer.plans.safety import scenario_signals
from optimizer.plans.sumo_programs import render_tls
from optimizer.proposing import store
from optimizer.proposing.pipeline import BASELINE, METHOD, evaluated_plan, kpi_summaries
from optimizer.proposing.propose import DEFAULT_KPI, REFUSED_NOT_BETTER, Proposal, propose
from optimizer.search.optimize import Optimized, optimize
from sim.closures import Closure, incident_scenario, sumo_lane_ids
from sim.evaluate import evaluate
from sim.executor import Executor, open_executor
from sim.network import for_scenario, read_sumolib
from sim.scenarios import Scenario

#: The method of a plan made for an incident, and of the return to the normal plan after one.
INCIDENT_METHOD = "incident"
RETURN_METHOD = "incident-return"
#: Who the audit trail names for withdrawals.
ACTOR = "optimizer"
#: Where incident scenarios and their runs are written, under the settings' ``sim_dir``.
INCIDENTS_DIR = "incidents"
#: How long a return to the normal plan is proposed for: from now on, renewed by the daily plans.
RETURN_VALIDITY = timedelta(days=1)

#: replan's outcome for an incident that has its plan already (the propose outcomes otherwise),
#: and the plan id of an outcome that made no plan.
ALREADY_ANSWERED = "already-answered"
NO_PLAN = "-"
# What stand_down did, per plan.
WITHDRAWN = "withdrawn"
RETURN_PROPOSED = "return-proposed"


@dataclass
class IncidentPlan:
    """What :func:`replan` did for one incident."""

    incident_id: str
    scenario: str
    signals: tuple[str, ...]
    proposal: Proposal
    search: Optimized | None = None
    evaluation: dict[str, Any] | None = None
    plan: NetworkPlan | None = None
    seconds: float = 0.0
    #: The scenario under the incident that the plan was searched and evaluated on.
    closed: Scenario | None = None

    def summary(self) -> dict[str, Any]:
        delays = {}
        if self.evaluation is not None:
            delays = {
                name: round(entry["kpis"][DEFAULT_KPI]["mean"], 2)
                for name, entry in self.evaluation["controllers"].items()
            }
        return {
            "incident_id": self.incident_id,
            "scenario": self.scenario,
            "signals": list(self.signals),
            "plan_id": None if self.plan is None else self.plan.plan_id,
            "valid_from": None
            if self.plan is None or self.plan.valid_from is None
            else self.plan.valid_from.isoformat(),
            "valid_to": None
            if self.plan is None or self.plan.valid_to is None
            else self.plan.valid_to.isoformat(),
            "delay": delays,
            "outcome": self.proposal.outcome,
            "reason": self.proposal.reason,
            "seconds": round(self.seconds, 1),
        }


@dataclass(frozen=True)
class StandDown:
    """What :func:`stand_down` did with one incident's plan: ``withdrawn``, ``return-proposed``
    (``proposal`` says how that went) or nothing (``action`` None, ``reason`` why)."""

    incident_id: str
    plan_id: str
    action: str | None
    reason: str
    proposal: Proposal | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "plan_id": self.plan_id,
            "action": self.action,
            "reason": self.reason,
            "proposal": None if self.proposal is None else self.proposal.to_dict(),
        }


def answers(engine: Engine, incident_id: str) -> list[store.StoredPlan]:
    """The stored plans made for ``incident_id`` (incident plans and returns), newest first."""
    return [p for p in store.list_plans(engine) if p.evaluation.get("incident_id") == incident_id]


def _slug(incident_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", incident_id)


def _folder(settings: Settings, incident_id: str) -> Path:
    return settings.sim_dir / INCIDENTS_DIR / _slug(incident_id)


def closure_of(scenario: Scenario, incident: Incident) -> Closure:
    """The incident's closure over the whole of ``scenario``'s window."""
    if incident.edge_id is None:
        raise IncidentError(f"incident {incident.incident_id} is not located on the network (no edge_id)")
    net = read_sumolib(scenario.net_file)
    if not net.hasEdge(incident.edge_id):
        raise IncidentError(
            f"incident {incident.incident_id}: {scenario.net_file} has no edge {incident.edge_id!r}"
        )
    lanes = sumo_lane_ids(net, incident.edge_id, incident.lane_ids)
    return Closure(incident.edge_id, lanes, scenario.begin, scenario.end)


def replan(
    settings: Settings,
    scenario: Scenario,
    incident: Incident,
    *,
    now: datetime,
    budget_s: float | None = None,
    seeds: int | None = None,
    executor: Executor | None = None,
    engine: Engine | None = None,
    on_step: Callable[[str], None] = lambda _step: None,
) -> IncidentPlan:
    """Search, evaluate and propose a plan for ``incident`` on ``scenario`` (see the module).

    ``budget_s`` and ``seeds`` default to the settings' incident budget and seeds. Raises
    :class:`IncidentError` for an incident that is not located on ``scenario``'s network.
    """
    began = time.perf_counter()
    budget_s = settings.incident_budget_minutes * 60 if budget_s is None else budget_s
    seeds = settings.incident_seeds if seeds is None else seeds
    engine = engine if engine is not None else store.open_store(settings)
    closure = closure_of(scenario, incident)
    signals = nearby_signals(
        for_scenario(scenario),
        incident.edge_id or "",
        settings.incident_radius_m,
        settings.incident_max_signals,
    )
    # a name SUMO can take as part of an output file name (a ':' would read as host:port)
    name = f"{scenario.name}+incident-{_slug(incident.incident_id)}"

    def done(proposal: Proposal, **found: Any) -> IncidentPlan:
        seconds = time.perf_counter() - began
        return IncidentPlan(incident.incident_id, name, signals, proposal, seconds=seconds, **found)

    stored = [p for p in answers(engine, incident.incident_id) if p.method == INCIDENT_METHOD]
    if stored:
        reason = f"incident {incident.incident_id} has plan {stored[0].plan_id} already ({stored[0].status})"
        return done(Proposal(stored[0].plan_id, ALREADY_ANSWERED, reason, stored=True))
    if not signals:
        reason = f"no signal within {settings.incident_radius_m:g} m of edge {incident.edge_id}"
        return done(Proposal(NO_PLAN, REFUSED_NOT_BETTER, reason))
    folder = _folder(settings, incident.incident_id)
    closed = incident_scenario(scenario, closure, folder / "scenario", name)
    with _executor(settings, executor) as running:
        on_step(
            f"searching a plan for {len(signals)} signal(s) near {closure.label()} ({budget_s:.0f} s budget)"
        )
        found = optimize(
            closed,
            METHOD,
            running,
            budget_s=budget_s,
            demand_dir=settings.sim_dir / "demand",
            signals=frozenset(signals),
        )
        assert found.plan is not None
        if found.plan.method == BASELINE:
            reason = (
                "the search found no plan better than the current programs under the incident "
                f"(training delay {found.best_delay:.2f} s)"
            )
            return done(Proposal(NO_PLAN, REFUSED_NOT_BETTER, reason), search=found, closed=closed)
        on_step(f"evaluating it against the current programs under the incident on seeds 1–{seeds}")
        evaluation = evaluate(
            closed,
            [BASELINE, METHOD],
            list(range(1, seeds + 1)),
            folder / "runs",
            executor=running,
            controller_options={METHOD: {"tls_xml": render_tls(found.plan)}},
        )
    valid_to = incident.expected_end(now, timedelta(minutes=settings.incident_default_minutes))
    plan = evaluated_plan(found.plan, evaluation, now, valid_to)
    assert plan.evaluation is not None
    plan = replace(
        plan,
        method=INCIDENT_METHOD,
        evaluation=replace(plan.evaluation, incident_id=incident.incident_id),
        plan_id=None,  # the id is the digest of the content, method and window included
    )
    network = scenario_signals(scenario)
    difference = evaluation["controllers"][METHOD]["difference"][DEFAULT_KPI]
    on_step("proposing it")
    proposal = propose(
        settings, plan, network, rules=inherited_waivers(network), difference=difference, engine=engine
    )
    return done(proposal, search=found, evaluation=evaluation, plan=plan, closed=closed)


def stand_down(
    settings: Settings,
    scenario: Scenario,
    incident: Incident,
    *,
    now: datetime,
    seeds: int | None = None,
    executor: Executor | None = None,
    engine: Engine | None = None,
    on_step: Callable[[str], None] = lambda _step: None,
) -> list[StandDown]:
    """Withdraw ``incident``'s plan if it waits for approval, or propose the return to the normal
    plan if it was approved or applied (see the module); one entry per incident plan."""
    seeds = settings.incident_seeds if seeds is None else seeds
    engine = engine if engine is not None else store.open_store(settings)
    stored = answers(engine, incident.incident_id)
    returned = [p.plan_id for p in stored if p.method == RETURN_METHOD]
    why = f"incident {incident.incident_id} is over ({incident.status})"
    done = []
    for plan in (p for p in stored if p.method == INCIDENT_METHOD):
        if plan.status == store.PROPOSED:
            store.set_status(engine, plan.plan_id, store.SUPERSEDED, ACTOR, f"withdrawn: {why}")
            done.append(StandDown(incident.incident_id, plan.plan_id, WITHDRAWN, why))
        elif plan.status in (store.APPROVED, store.APPLIED) and not returned:
            on_step(f"proposing the return to the normal plan after {plan.plan_id}")
            proposal = _propose_return(settings, scenario, incident, plan, now, seeds, executor, engine)
            done.append(StandDown(incident.incident_id, plan.plan_id, RETURN_PROPOSED, why, proposal))
        else:
            state = f"the return {returned[0]} is proposed already" if returned else f"it is {plan.status}"
            done.append(StandDown(incident.incident_id, plan.plan_id, None, f"nothing to do: {state}"))
    return done


def _propose_return(
    settings: Settings,
    scenario: Scenario,
    incident: Incident,
    incident_plan: store.StoredPlan,
    now: datetime,
    seeds: int,
    executor: Executor | None,
    engine: Engine,
) -> Proposal:
    """The signals' normal programs, evaluated against the incident plan without the closure,
    proposed as the return."""
    network = scenario_signals(scenario)
    ids = list(network)
    applied = incident_plan.network_plan(ids)
    normal = NetworkPlan(
        signals=tuple(network[s.tls_id].program for s in applied.signals), method=RETURN_METHOD
    )
    folder = _folder(settings, incident.incident_id) / "return"
    with _executor(settings, executor) as running:
        evaluation = evaluate(
            scenario,
            [METHOD, BASELINE],
            list(range(1, seeds + 1)),
            folder,
            executor=running,
            controller_options={METHOD: {"tls_xml": render_tls(applied)}},
        )
    kpis = kpi_summaries(evaluation)
    plan = replace(
        normal,
        valid_from=now,
        valid_to=now + RETURN_VALIDITY,
        evaluation=Evaluation(
            scenario=evaluation["scenario"],
            seeds=tuple(evaluation["seeds"]),
            baseline=kpis[METHOD],
            plan=kpis[BASELINE],
            baseline_method=INCIDENT_METHOD,
            incident_id=incident.incident_id,
        ),
        plan_id=None,
    )
    return propose(
        settings,
        plan,
        network,
        rules=inherited_waivers(network),
        difference=evaluation["controllers"][BASELINE]["difference"][DEFAULT_KPI],
        engine=engine,
        returning=f"the return to the normal programs after incident {incident.incident_id} "
        f"({incident.status}), replacing {incident_plan.plan_id}",
    )


def _executor(settings: Settings, given: Executor | None) -> contextlib.AbstractContextManager[Executor]:
    """The given executor (left open), or one opened from the settings for the duration."""
    return contextlib.nullcontext(given) if given is not None else open_executor(settings)
