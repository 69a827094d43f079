"""The plan page's signal performance (``GET /api/plans/{id}/signal-measures``): for each signal
the plan was applied to, the measures of its controller's high-resolution event log in the hour
before the plan took effect and in the hour after its timing settled (its offset transition
over), side by side with the change; and any signal's Purdue Coordination Diagram as data for a
chart (``GET /api/signals/{id}/pcd``).

The measures are those of ``citybrain measures compare`` (:func:`lake.measure_plots.compare`:
arrivals on green and on red, split failures, occupancy ratios, delay per vehicle, volume,
cycle and green per phase), read from ``silver.signal_events`` with pyarrow (no Spark session
for a web request). The window is the field watcher's (``CITYBRAIN_FIELD_WATCH_WINDOW_S``),
widened to whole quarter hours; an "after" hour the lake has only begun to hold is measured on
what it holds.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from core.settings import Settings
from field import applications
from lake.delta import Lake
from lake.location import tables_location
from lake.measure_plots import MeasureError, chosen_phases, compare, find_signal, pcd_panels, read_events
from lake.tables import SLOT, ceil_to, floor_to
from optimizer.proposing.store import StoredPlan
from sim.scenarios import network_of
from sim.signal_config import SignalConfiguration, of_scenario


class Period(BaseModel):
    start: datetime
    end: datetime


class SignalMeasuresOut(BaseModel):
    """One signal's before and after, or why there is none."""

    tls_id: str
    controller_id: str | None = None
    before: Period | None = None
    after: Period | None = None
    phases: dict[str, dict[str, dict[str, float | None]]] | None = Field(
        None, description="Per phase, per measure: before, after and change (after − before)."
    )
    reason: str | None = Field(None, description="Why the signal has no comparison.")


class PcdOut(BaseModel):
    """The answer of ``GET /api/signals/{id}/pcd``: per phase its PCD cycles (start, and green,
    yellow and end in seconds from it) and arrivals (time, seconds into the cycle, indication)."""

    signal_id: str
    tls_id: str
    start: datetime
    end: datetime
    phases: list[dict[str, Any]]


class PlanMeasuresOut(BaseModel):
    """The answer of ``GET /api/plans/{id}/signal-measures``."""

    plan_id: str
    signals: list[SignalMeasuresOut]
    reason: str | None = Field(None, description="Why the plan has no comparison at all.")


@functools.lru_cache(maxsize=8)
def _configuration(scenario: str, build_dir: Path, signal_config: Path | None) -> SignalConfiguration:
    """The configuration of a plan's network, derived once per process (a third of a second on the
    corridor, more on a city)."""
    return of_scenario(network_of(scenario, build_dir), signal_config)


def periods(effective_at: datetime, settled_at: datetime, window: timedelta) -> tuple[Period, Period]:
    """The whole quarter hours of ``window`` before the plan took effect, and as many from the
    first whole quarter hour after its transition ended."""
    before_end = floor_to(effective_at, SLOT)
    after_start = ceil_to(settled_at, SLOT)
    return Period(start=before_end - window, end=before_end), Period(
        start=after_start, end=after_start + window
    )


def for_plan(settings: Settings, engine: Engine, plan: StoredPlan) -> PlanMeasuresOut:
    """Each applied signal's measures before and after (see the module)."""
    if plan.scenario is None:
        return PlanMeasuresOut(plan_id=plan.plan_id, signals=[], reason="the plan names no scenario")
    applied = applications.of_plan(engine, plan.plan_id)
    if not any(a.effective_at is not None for a in applied):
        return PlanMeasuresOut(
            plan_id=plan.plan_id, signals=[], reason="the plan has not taken effect at any signal"
        )
    configuration = _configuration(plan.scenario, settings.sim_dir / "build", settings.signal_config)
    window = SLOT * math.ceil(settings.field_watch_window_s / SLOT.total_seconds())
    return PlanMeasuresOut(
        plan_id=plan.plan_id,
        signals=[_signal(tables_location(settings), configuration, a, window) for a in applied],
    )


def _signal(
    lake: Lake,
    configuration: SignalConfiguration,
    application: applications.FieldApplication,
    window: timedelta,
) -> SignalMeasuresOut:
    signal = configuration.signals.get(application.tls_id)
    if signal is None:
        return SignalMeasuresOut(
            tls_id=application.tls_id, reason="the signal configuration has no such signal"
        )
    found: dict[str, Any] = {"tls_id": application.tls_id, "controller_id": signal.controller_id}
    if application.effective_at is None or application.settled_at is None:
        return SignalMeasuresOut(**found, reason=f"not in effect (the field answered {application.outcome})")
    before, after = periods(application.effective_at, application.settled_at, window)
    try:
        before_events = read_events(lake, signal, before.start, before.end)
        after_events = read_events(lake, signal, after.start, after.end)
    except MeasureError as exc:
        return SignalMeasuresOut(**found, before=before, after=after, reason=str(exc))
    comparison = compare(
        before_events, after_events, signal, (before.start, before.end), (after.start, after.end)
    )
    return SignalMeasuresOut(**found, before=before, after=after, phases=comparison.to_dict()["phases"])


def pcd(settings: Settings, name: str, start: datetime, end: datetime, phase: int | None) -> PcdOut:
    """The coordination diagram of the signal ``name`` (controller or tls id) on the lake's network
    over [start, end): ``phase``, or its main street's through phases. Raises :class:`MeasureError`
    for an unknown signal or phase, or no events in the period."""
    configuration = _configuration(settings.lake_network, settings.sim_dir / "build", settings.signal_config)
    signal = find_signal(configuration, name)
    phases = chosen_phases(signal, phase)
    events = read_events(tables_location(settings), signal, start, end)
    panels = pcd_panels(events, signal, start, end, phases)
    return PcdOut(
        signal_id=signal.controller_id,
        tls_id=signal.signal_id,
        start=start,
        end=end,
        phases=[panel.to_dict() for panel in panels],
    )
