"""Plans and applications as JSON, for the controllers of adapter_controllers and their test."""

from __future__ import annotations

from datetime import date
from typing import Any

from field.adapter import Application
from optimizer.plans.model import Phase, SignalPlan

DAY = date(2026, 11, 28)
#: How often the adapter is asked for confirmations, in simulated seconds.
POLL_EVERY_S = 10


def plan_record(plan: SignalPlan) -> dict[str, Any]:
    return {
        "tls_id": plan.tls_id,
        "program_id": plan.program_id,
        "offset_s": plan.offset_s,
        "cycle_s": plan.cycle_s,
        "phases": [p.to_record() for p in plan.phases],
    }


def record_plan(record: dict[str, Any]) -> SignalPlan:
    return SignalPlan(
        tls_id=record["tls_id"],
        phases=tuple(Phase.from_record(p) for p in record["phases"]),
        offset_s=record["offset_s"],
        cycle_s=record["cycle_s"],
        program_id=record["program_id"],
    )


def application_record(application: Application) -> dict[str, Any]:
    return {
        "tls_id": application.tls_id,
        "plan_id": application.plan_id,
        "outcome": application.outcome,
        "detail": application.detail,
        "effective_at": None if application.effective_at is None else application.effective_at.isoformat(),
        "running": None if application.running is None else plan_record(application.running),
    }
