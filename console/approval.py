"""An operator's decision on a proposed plan: re-checked for safety, recorded, audited.

The plan was checked when it was proposed, but the network may have changed since (a rebuilt
scenario, a new program), so an approval re-runs the safety rules against the network of the
scenario the plan names, with the rules the proposing pipeline used (the defaults, waiving only
what the network's own programs already break). A plan that names no scenario, or whose network
cannot be loaded, cannot be re-checked and is not approved.

Approval moves the stored plan to ``approved`` and publishes it to ``control.plan.approved.v1``
through the plan store's outbox (:func:`optimizer.proposing.propose.approve`): stored first,
then sent; with no broker the approval stands, queued, and the plan's
``approval_publish_error`` says why until a later drain sends it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from console import audit
from console.users import User
from core.errors import CitybrainError
from core.settings import Settings
from field.service import ROLLBACK_TOPIC
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.model import format_utc
from optimizer.plans.safety import enforce, scenario_signals
from optimizer.proposing import propose, store
from sim.detectors import contract_id
from sim.scenarios import network_of

log = logging.getLogger(__name__)


class CannotRecheck(CitybrainError):
    """The plan's safety cannot be re-checked, so it cannot be approved; the message says why."""


def recheck(settings: Settings, stored: store.StoredPlan) -> None:
    """Raise :class:`~optimizer.plans.safety.UnsafePlan` or :class:`CannotRecheck` unless the
    plan passes the safety rules on its scenario's network as it is now."""
    if not stored.scenario:
        raise CannotRecheck(f"plan {stored.plan_id} names no scenario: its network is unknown")
    try:
        network = scenario_signals(network_of(stored.scenario, settings.sim_dir / "build"))
        plan = stored.network_plan(network.keys())
    except (CitybrainError, OSError) as exc:
        raise CannotRecheck(f"plan {stored.plan_id} on {stored.scenario}: {exc}") from exc
    enforce(plan, network, inherited_waivers(network))


@dataclass(frozen=True)
class CurrentPrograms:
    """The programs a plan's signals run now, by the contract tls id its records use (None: the
    network has no such signal or no program for it); ``error`` says why none could be read."""

    programs: dict[str, dict[str, Any] | None]
    error: str | None = None


def current_programs(settings: Settings, stored: store.StoredPlan) -> CurrentPrograms:
    """The "before" of a plan: each of its signals' program on its scenario's network as it is now
    (the program the safety re-check compares with), as ``cycle_s``, ``offset_s`` and phases."""
    wanted = [record["tls_id"] for record in stored.records]
    if not stored.scenario:
        return CurrentPrograms(dict.fromkeys(wanted), f"plan {stored.plan_id} names no scenario")
    try:
        network = scenario_signals(network_of(stored.scenario, settings.sim_dir / "build"))
    except (CitybrainError, OSError) as exc:
        return CurrentPrograms(dict.fromkeys(wanted), f"the network of {stored.scenario}: {exc}")
    by_contract = {contract_id(tls_id): signal for tls_id, signal in network.items()}
    programs: dict[str, dict[str, Any] | None] = {}
    for tls_id in wanted:
        signal = by_contract.get(tls_id)
        program = signal.program if signal is not None else None
        programs[tls_id] = (
            None
            if program is None
            else {
                "cycle_s": program.cycle_s,
                "offset_s": program.offset_s,
                "phases": [phase.to_record() for phase in program.phases],
            }
        )
    return CurrentPrograms(programs)


def _proposed(engine: Engine, plan_id: str, status: str) -> store.StoredPlan:
    stored = store.get(engine, plan_id)
    if stored.status != store.PROPOSED:
        raise store.TransitionRefused(
            f"plan {plan_id} is {stored.status}; only a proposed plan can be {status}"
        )
    return stored


def approve(
    settings: Settings, engine: Engine, plan_id: str, user: User, comment: str, address: str | None
) -> store.StoredPlan:
    """Approve a proposed plan that passes the safety rules and publish the approval (queued when
    the broker cannot take it: the returned plan's ``approval_pending``); a refusal for safety
    is audited too."""
    stored = _proposed(engine, plan_id, store.APPROVED)
    try:
        recheck(settings, stored)
    except CitybrainError as exc:
        audit.write(
            engine, user.name, audit.PLAN_APPROVE_REFUSED, plan_id, {"reason": str(exc)}, address=address
        )
        raise
    approved = propose.approve(settings, plan_id, user.name, comment, engine=engine)
    detail = {"comment": comment, "scenario": stored.scenario}
    audit.write(engine, user.name, audit.PLAN_APPROVE, plan_id, detail, address=address)
    return approved.plan


def reject(engine: Engine, plan_id: str, user: User, reason: str, address: str | None) -> store.StoredPlan:
    """Reject a proposed plan, with the operator's reason."""
    _proposed(engine, plan_id, store.REJECTED)
    rejected = store.set_status(engine, plan_id, store.REJECTED, user.name, reason)
    audit.write(engine, user.name, audit.PLAN_REJECT, plan_id, {"reason": reason}, address=address)
    return rejected


class NotSent(CitybrainError):
    """A request the broker did not take; nothing happened in the field, the operator may retry."""


def roll_back(
    settings: Settings, engine: Engine, plan_id: str, user: User, reason: str, address: str | None
) -> dict[str, Any]:
    """Ask the field to restore, on every signal of an applied plan, the timing it replaced
    (``control.plan.rollback.v1``); the plan becomes ``rolled_back`` when the field answers.
    Audited whether or not the broker took it: the log shows the request and its fate."""
    stored = store.get(engine, plan_id)
    if stored.status != store.APPLIED:
        raise store.TransitionRefused(
            f"plan {plan_id} is {stored.status}; only an applied plan can be rolled back"
        )
    request = {
        "schema_version": 1,
        "ts": format_utc(datetime.now(UTC)),
        "plan_id": plan_id,
        "requested_by": user.name,
        "reason": reason,
    }
    try:
        propose.publish(settings, [request], topic=ROLLBACK_TOPIC)
    except propose.PublishError as exc:
        audit.write(
            engine,
            user.name,
            audit.PLAN_ROLLBACK,
            plan_id,
            {"reason": reason, "sent": False, "error": str(exc)},
            address=address,
        )
        raise NotSent(f"the rollback request did not reach {ROLLBACK_TOPIC}: {exc}") from None
    audit.write(
        engine, user.name, audit.PLAN_ROLLBACK, plan_id, {"reason": reason, "sent": True}, address=address
    )
    return request


def publish_pending_soon(settings: Settings, engine: Engine) -> threading.Thread:
    """Send, in a background thread, what a broker outage left queued (approvals and proposals),
    so the console starts at once even when the broker is down; each outcome is logged."""

    def drain() -> None:
        try:
            for done in propose.publish_pending(settings, engine, actor="console"):
                log.info("queued plan %s: %s (%s)", done.plan_id, done.outcome, done.reason)
        except Exception:  # a background thread has nobody else to tell
            log.exception("sending the queued plans failed")

    thread = threading.Thread(target=drain, name="citybrain-outbox", daemon=True)
    thread.start()
    return thread
