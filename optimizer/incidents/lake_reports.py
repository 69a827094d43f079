"""The optimize DAG's incident task: the incidents the lake knows of, answered on the period's
demand.

``silver.incidents`` holds every report, located on an edge (the reported one, or the nearest
to its position). :func:`incident_reports` reads the reports of the day before the period's
end; :func:`respond` takes the newest of each incident, as of the period's end, and

- re-plans each open one that has no incident plan stored yet (a refusal is not stored, so
  the next period, with new counts, asks again);
- stands down each one that is over and has a plan (withdrawal or return, once: the store
  knows what was done).

The watch (:mod:`optimizer.incidents.watch`) does the same from the topic within seconds; this
task is for a deployment that runs the DAGs without the watch, and for backfills.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from core.settings import Settings
from lake.delta import read_partitions
from lake.location import tables_location
from lake.tables import TABLES
from optimizer.incidents.model import Incident, IncidentError, latest
from optimizer.incidents.replan import INCIDENT_METHOD, answers, replan, stand_down
from optimizer.proposing import store
from sim.scenarios import Scenario

TABLE = "silver.incidents"
#: How far back reports are read: an incident reported yesterday may still be open.
LOOKBACK = timedelta(days=1)


def incident_reports(settings: Settings, end: datetime) -> dict[str, Incident]:
    """The newest report of each incident in the lake from ``LOOKBACK`` before ``end`` up to it."""
    table = TABLES[TABLE]
    partitions = table.partition_values(end - LOOKBACK, end)
    rows = read_partitions(tables_location(settings), table, partitions).to_pylist()
    return latest(row for row in rows if Incident.from_record(row).ts <= end)


def respond(
    settings: Settings,
    scenario: Scenario,
    incidents: dict[str, Incident],
    *,
    now: datetime,
    budget_s: float | None = None,
    on_step: Callable[[str], None] = lambda _step: None,
) -> dict[str, Any]:
    """Re-plan the open incidents without a plan, stand down the ones that are over (see the
    module); a summary of each action."""
    engine = store.open_store(settings)
    done: dict[str, Any] = {"replanned": [], "stood_down": [], "refused": []}
    for incident in incidents.values():
        planned = [p for p in answers(engine, incident.incident_id) if p.method == INCIDENT_METHOD]
        if incident.is_open(now) and not planned:
            on_step(f"incident {incident.incident_id} is {incident.status}: re-planning")
            try:
                found = replan(
                    settings, scenario, incident, now=now, budget_s=budget_s, engine=engine, on_step=on_step
                )
            except IncidentError as exc:
                done["refused"].append({"incident_id": incident.incident_id, "reason": str(exc)})
                continue
            done["replanned"].append(found.summary())
        elif incident.is_over(now) and planned:
            actions = stand_down(settings, scenario, incident, now=now, engine=engine, on_step=on_step)
            done["stood_down"].extend(a.to_dict() for a in actions if a.action is not None)
    return done
