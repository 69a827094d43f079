"""The plan store follows the field: each ``control.plan.applied.v1`` record is one signal's
outcome, and the plan moves when its signals decide it (:func:`store.record_signal_outcome`).

The store learns outcomes from the topic rather than from the field service's own tables, so a
field service on another machine (or another vendor's central system answering on the same
contract) keeps the console true, and replaying the topic after a restart gives the same states:
an outcome recorded twice moves nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from field.service import APPLIED_TOPIC
from optimizer.proposing import store
from schemas import RecordInvalid, contract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Followed:
    """One applied record as the store took it: the plan's status after it, or why it was skipped."""

    plan_id: str | None
    tls_id: str | None
    outcome: str | None
    status: str | None
    skipped: str | None = None


def follow_record(engine: Engine, value: bytes | Mapping[str, Any]) -> Followed:
    """Record one applied record's outcome on its plan. A record that breaks the contract, or
    names a plan this store does not hold (another city's, or one deleted), is skipped and said."""
    try:
        record = orjson.loads(value) if isinstance(value, bytes | bytearray) else dict(value)
        contract(APPLIED_TOPIC).validate(record)
    except (orjson.JSONDecodeError, RecordInvalid, TypeError, ValueError) as exc:
        return Followed(None, None, None, None, skipped=f"not a {APPLIED_TOPIC} record: {exc}")
    application = record["application"]
    plan_id, tls_id, outcome = record["plan_id"], record["tls_id"], application["status"]
    try:
        stored = store.record_signal_outcome(
            engine,
            plan_id,
            tls_id,
            outcome,
            actor=f"field:{application['adapter']}",
            note=application.get("detail", ""),
        )
    except store.PlanNotFound:
        return Followed(plan_id, tls_id, outcome, None, skipped=f"no stored plan {plan_id}")
    return Followed(plan_id, tls_id, outcome, stored.status)
