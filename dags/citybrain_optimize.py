"""``citybrain_optimize``: when gold has new counts, a coordinated signal plan for them, proposed.

This file only schedules and reads the period's end from the run. The period is
:func:`lake.tables.latest_period` of the lake's :func:`lake.delta.filled_slots`; the work is
:func:`optimizer.demand.lake_counts.lake_demand` (demand) and
:func:`optimizer.proposing.pipeline.optimize_and_propose` (search, evaluation, proposal), which
``citybrain demo`` runs the same way; both are imported inside the tasks, so parsing this file
starts no simulation and imports no Kafka client, pyarrow or settings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from dags import assets
from lake.delta import filled_slots
from lake.location import tables_location
from lake.tables import DEMAND_TABLES, SLOT, latest_period

log = logging.getLogger(__name__)

#: Where the sampled scenarios are cached, under the settings' ``sim_dir``.
DEMAND_DIR = "lake_demand"

DOC_MD = """
### citybrain_optimize

Runs when `citybrain_fuse` has updated the gold tables the demand comes from
(`gold.turning_movements_15min` and `gold.link_state_15min`, assets from `dags/assets.py`),
in three tasks:

1. **demand**: the period's gold counts → SUMO routes by routeSampler, a scenario on the lake's
   network (`CITYBRAIN_LAKE_NETWORK`); returns its `.sumocfg`, the period and the fit of the
   routes to the counts;
2. **optimize_evaluate_propose**: a coordinated fixed-time plan searched within the budget on
   training seeds, evaluated against the signals' current programs (`fixed`) on seeds 1..K the
   search never used, then proposed: safety rules, significance, the plan store, and
   `control.plan.proposed.v1`. Returns the summary (delays of both, outcome, plan id). A
   network with more signals than `CITYBRAIN_OPTIMIZER_REGION_SIGNALS` (12) is searched region
   by region, concurrently (as many at once as the executor has workers), each region on its
   own cut of the network with routes sampled from the lake's counts on it; the summary lists
   the regions, and the merged plan is evaluated and proposed for the whole network.

**Period.** The quarter hours of the triggering data, reaching back at most an hour:

- its **end** is the newest data-interval end of the fuse runs whose gold updates triggered this
  run (a catch-up over past days optimizes each day's hour as it is fused). A run without
  triggering events (manual, `dag.test()`) takes the `end` param if given, else the end of the
  lake's newest fused quarter hour (a gold partition holding a Parquet file: the fuse removes a
  quarter hour's partition when it has no rows);
- its **start** goes back over *consecutive* fused quarter hours, at most `period_minutes`
  (default 60): a lake with 45 minutes of gold optimizes those 45, and a gap ends the period,
  because routes sampled across a quarter hour without counts would be a period without traffic.

An hour is the span of one time-of-day plan in the field, four quarter hours of counts to fit
the routes to, and short enough to simulate many candidates within the budget. The plan is
proposed for the same hours of the next day (`optimizer/proposing/pipeline.py`). If the quarter hour
before the end has no gold at all, both tasks are **skipped** (nothing to optimize).

3. **incident_plans** (beside the second, on the same demand): the newest report of each
   incident in `silver.incidents` over the day before the period's end. An open one
   (`confirmed`/`active`, before its end) without an incident plan gets one: the scenario with
   its lanes closed and drivers rerouting, the signals near it searched under the incident
   budget (`CITYBRAIN_INCIDENT_BUDGET_MINUTES`, 2), evaluated against the current programs
   under the incident, proposed (method `incident`, valid until the incident's expected end).
   One that is over has its plan withdrawn if not yet approved, else the return to the normal
   programs proposed (`incident-return`). Returns what it did. `citybrain incidents watch`
   does the same from the topic within seconds of a report.

**Params** (trigger with config to change them): `budget_minutes` (2) of search wall time,
`seeds` (3, at least 2) for the evaluation, `period_minutes` (60), `end` (ISO 8601, UTC
quarter hour; manual runs only).

**Outcomes.** A plan that is not significantly better than the current programs
(`refused-not-better`), or breaks a safety rule (`refused-unsafe`), is a *successful* run: the
refusal and its reason are in the log and the returned summary. The task fails on real errors:
no lake data where gold claims some, a simulation that fails, a plan store that cannot be
written, or a broker that did not acknowledge the proposal (`publish-failed`: the plan is
stored; the next run, or the retry, publishes it before searching again).

**Retries.** One, five minutes later; a retry searches again. Runs one at a time: a search uses
every core (`CITYBRAIN_OPTIMIZER_WORKERS`).

**Code:** `lake/delta.py` (`filled_slots`), `lake/tables.py` (`latest_period`),
`optimizer/demand/lake_counts.py` (`lake_demand`), `optimizer/proposing/pipeline.py`
(`optimize_and_propose`), `optimizer/proposing/propose.py`, `optimizer/incidents/`;
configuration from `CITYBRAIN_*` variables (`core/settings.py`), read when a task runs.
"""


def _utc(moment: datetime) -> datetime:
    """A plain ``datetime`` in UTC: Airflow hands out pendulum datetimes, the lake wants the stdlib."""
    return datetime.fromisoformat(moment.isoformat()).astimezone(UTC)


def requested_end(value: str | None, triggering_events: Iterable[Any]) -> datetime | None:
    """The period's end: the ``end`` param, else the newest data-interval end of the fuse runs
    behind the triggering asset events, else None (the lake's newest quarter hour decides)."""
    if value:
        end = datetime.fromisoformat(value)
        if end.tzinfo is None:
            raise ValueError(f"param end={value!r} has no time zone; the lake's time is UTC")
        end = end.astimezone(UTC)
        if end.timestamp() % SLOT.total_seconds():
            raise ValueError(f"param end={value!r} is not on a quarter hour, as the lake's windows are")
        return end
    # One fuse run updates both tables: ask for each run once (each ask is a call to the API server).
    # An event posted through the API, not by a DAG run, has no source run and no window.
    runs = {(e.source_dag_id, e.source_run_id): e for e in triggering_events if e.source_run_id}
    ends = [run.data_interval_end for run in (e.source_dag_run for e in runs.values()) if run is not None]
    return max((_utc(end) for end in ends if end is not None), default=None)


def _triggering_events(context: Mapping[str, Any]) -> list[Any]:
    events = context.get("triggering_asset_events") or {}
    return [event for asset in events for event in events[asset] if asset.name in DEMAND_TABLES]


@dag(
    dag_id="citybrain_optimize",
    # Both tables: the gold task of citybrain_fuse updates them together, so each fuse run triggers
    # one run here; events that arrive while a run is busy are consumed together by the next one.
    schedule=[assets.lake_asset(name) for name in DEMAND_TABLES],
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    # A search uses every core, and two runs would propose for overlapping periods.
    max_active_runs=1,
    default_args={
        "owner": "citybrain",
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
        # The search keeps to its budget; evaluation and demand take the rest of the hour on large ones.
        "execution_timeout": timedelta(hours=1),
    },
    params={
        "budget_minutes": Param(
            2.0, type="number", exclusiveMinimum=0, description="Wall time of the plan search."
        ),
        "seeds": Param(
            3, type="integer", minimum=2, description="Evaluation seeds 1..K (unseen by the search)."
        ),
        "period_minutes": Param(
            60, type="integer", minimum=15, multipleOf=15, description="Longest period optimized."
        ),
        "end": Param(
            None,
            type=["null", "string"],
            description="End of the period (ISO 8601, a UTC quarter hour) for a manual run; "
            "default: the triggering data's, else the lake's newest.",
        ),
    },
    tags=["citybrain", "optimizer"],
    doc_md=DOC_MD,
)
def citybrain_optimize() -> None:
    @task
    def demand() -> dict[str, Any]:
        """The period's gold counts → a SUMO scenario by routeSampler (`optimizer.demand.lake_counts`)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from core.settings import Settings
        from optimizer.demand.lake_counts import lake_demand

        context = get_current_context()
        params = context["params"]
        settings = Settings()
        end = requested_end(params["end"], _triggering_events(context))
        fused = filled_slots(tables_location(settings), DEMAND_TABLES)
        period = latest_period(fused, end, timedelta(minutes=params["period_minutes"]))
        if period is None:
            where = f"before {end.isoformat()}" if end else "at all"
            raise AirflowSkipException(
                f"the lake at {tables_location(settings).root} has no fused gold counts {where}"
            )
        start, end = period
        log.info("optimizing the period %s – %s", start.isoformat(), end.isoformat())
        found = lake_demand(settings, start, end, settings.sim_dir / DEMAND_DIR)
        fit = found.fit
        return {
            "scenario": found.scenario.name,
            "sumocfg": str(found.scenario.sumocfg),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "lake_versions": found.versions,
            "fit": {
                "locations": fit.locations,
                "measured": fit.measured,
                "deviation_share": round(fit.deviation_share, 4),
                "geh_ok_share": round(fit.geh_ok_share, 4),
            },
        }

    @task
    def optimize_evaluate_propose(scenario: dict[str, Any]) -> dict[str, Any]:
        """Search, evaluate against `fixed` and propose (`optimizer.proposing.pipeline.optimize_and_propose`);
        a refusal succeeds and is logged, a proposal the broker did not take fails."""
        from core.settings import Settings
        from optimizer.proposing.pipeline import optimize_and_propose
        from optimizer.proposing.propose import PUBLISH_FAILED, PublishError, publish_pending
        from sim.scenarios import from_sumocfg

        params = get_current_context()["params"]
        settings = Settings()
        for pending in publish_pending(settings):  # what an earlier run stored but could not send
            log.info("earlier proposal %s: %s (%s)", pending.plan_id, pending.outcome, pending.reason)
        period = (datetime.fromisoformat(scenario["start"]), datetime.fromisoformat(scenario["end"]))
        result = optimize_and_propose(
            settings,
            from_sumocfg(Path(scenario["sumocfg"]), scenario["scenario"], "lake"),
            period,
            budget_s=params["budget_minutes"] * 60,
            seeds=params["seeds"],
            lake_versions=scenario["lake_versions"],
            on_step=log.info,
        )
        proposal = result.proposal
        summary = {
            **result.summary(),
            "published": proposal.published,
            "start": scenario["start"],
            "end": scenario["end"],
        }
        log.info("optimized %s: %s", scenario["scenario"], summary)
        if proposal.outcome == PUBLISH_FAILED:
            raise PublishError(f"plan {proposal.plan_id}: {proposal.reason}")
        if proposal.refused:
            log.warning("no plan proposed (%s): %s", proposal.outcome, proposal.reason)
        return summary

    @task
    def incident_plans(scenario: dict[str, Any]) -> dict[str, Any]:
        """The lake's open incidents re-planned on the period's demand, the ones that are over
        stood down (`optimizer.incidents.lake_reports.respond`)."""
        from core.settings import Settings
        from optimizer.incidents.lake_reports import incident_reports, respond
        from sim.scenarios import from_sumocfg

        settings = Settings()
        end = datetime.fromisoformat(scenario["end"])
        incidents = incident_reports(settings, end)
        log.info("%d incident(s) in the lake up to %s", len(incidents), end.isoformat())
        done = respond(
            settings,
            from_sumocfg(Path(scenario["sumocfg"]), scenario["scenario"], "lake"),
            incidents,
            now=end,
            on_step=log.info,
        )
        log.info("incidents: %s", done)
        return done

    found = demand()
    optimize_evaluate_propose(found)
    incident_plans(found)


citybrain_optimize()
