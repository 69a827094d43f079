"""Applications as JSON, for the controllers of adapter_controllers and their test."""

from __future__ import annotations

from datetime import date
from typing import Any

from field.adapter import Application
from field.service import timing_record

DAY = date(2026, 11, 28)
#: How often the adapter is asked for confirmations, in simulated seconds.
POLL_EVERY_S = 10


def application_record(application: Application) -> dict[str, Any]:
    return {
        "tls_id": application.tls_id,
        "plan_id": application.plan_id,
        "outcome": application.outcome,
        "detail": application.detail,
        "effective_at": None if application.effective_at is None else application.effective_at.isoformat(),
        "running": None if application.running is None else timing_record(application.running),
    }
