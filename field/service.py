"""The field service: approved timings in from ``control.plan.approved.v1``, carried to the signals
through an :class:`~field.adapter.Adapter`, and answered on ``control.plan.applied.v1``.

For each approved record (one signal of a network plan):

1. A record that breaks the approved contract is dead-lettered with the reason; nothing else.
2. ``(plan_id, tls_id)`` is claimed in the project database (:mod:`field.applications`): a
   redelivered approval finds its claim and is not applied again.
3. It is refused — answered, never sent — when the signal is not on the network, the adapter
   cannot reach it, or its timing breaks a safety rule on the network as it is now (the rules the
   console re-checks with, waiving only what the network's own program already breaks; the
   answer names the rule).
4. Otherwise it is submitted; the adapter switches at the signal's next cycle boundary and moves
   the offset over a few cycles, and :meth:`FieldService.pump` answers once the signal confirms
   it (``applied``, with the moment it took over and the program read back) or it failed.

Every answer is stored with the outcome before it is published (an outbox, as proposals and
approvals are), so a broker outage delays answers and loses none: :meth:`publish_pending`
resends them. The plan store learns the outcomes from the published records
(:mod:`field.lifecycle`), so the console, the adapter and the store agree after restarts.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine

from core.settings import Settings
from field import applications
from field.adapter import Adapter, Application, FieldError
from field.watch import Approach, Verdict, judge
from lake.delta import Lake
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.model import NetworkPlan, Phase, PlanError, SignalPlan, format_utc
from optimizer.plans.safety import SignalNetwork, check_signal
from optimizer.proposing.store import APPROVED_TOPIC
from schemas import RecordInvalid, contract
from sim.detectors import contract_id

log = logging.getLogger(__name__)

APPLIED_TOPIC = "control.plan.applied.v1"
ROLLBACK_TOPIC = "control.plan.rollback.v1"
#: What :meth:`FieldService.receive` can make of a record besides an adapter's outcome.
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

#: Sends one record to a topic (validated, keyed, acknowledged); raises when the broker cannot.
Send = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Handled:
    """What became of one approved record: an adapter outcome (``submitted`` until confirmed,
    ``refused``, ``failed``), a ``duplicate`` or ``dead_lettered``; ``detail`` says why."""

    plan_id: str | None
    tls_id: str | None
    outcome: str
    detail: str


class FieldService:
    """See the module. ``network`` is the signals of the network the adapter drives (as the
    safety rules read it, by SUMO id); ``send`` publishes a record (``None``: answers wait in
    the outbox until :meth:`publish_pending` is given a sender)."""

    def __init__(
        self,
        adapter: Adapter,
        engine: Engine,
        network: Mapping[str, SignalNetwork],
        send: Send | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.window = timedelta(seconds=self.settings.field_watch_window_s)
        self.adapter = adapter
        self.engine = engine
        self.network = network
        self.send = send
        self.clock = clock
        self.rules = inherited_waivers(network)
        self._sumo_ids = {contract_id(tls_id): tls_id for tls_id in network}

    # -- approvals in ----------------------------------------------------------------------------

    def receive(self, value: bytes | Mapping[str, Any]) -> Handled:
        """Handle one approved record (its bytes as read from Kafka, or parsed)."""
        try:
            record = orjson.loads(value) if isinstance(value, bytes | bytearray) else dict(value)
            contract(APPROVED_TOPIC).validate(record)
        except (orjson.JSONDecodeError, RecordInvalid, TypeError, ValueError) as exc:
            return Handled(None, None, DEAD_LETTERED, f"not a {APPROVED_TOPIC} record: {exc}")
        plan_id, tls_id = record["plan_id"], self._sumo_ids.get(record["tls_id"], record["tls_id"])
        if not applications.claim(self.engine, plan_id, tls_id, self.adapter.name, record):
            return Handled(plan_id, tls_id, DUPLICATE, "received before; not applied again")
        if tls_id not in self.network:
            return self._answer(
                record, tls_id, "refused", f"unknown signal {tls_id}: not on the network this adapter drives"
            )
        try:
            (signal,) = NetworkPlan.from_records([record], list(self.network)).signals
        except PlanError as exc:
            return self._answer(record, tls_id, "refused", f"malformed plan: {exc}")
        refusal = self._refusal(signal)
        if refusal:
            return self._answer(record, tls_id, "refused", refusal)
        try:
            previous = self.adapter.running(tls_id)
        except FieldError as exc:
            log.warning("signal %s: what it runs now cannot be read (%s); no rollback to it", tls_id, exc)
        else:
            applications.remember_previous(self.engine, plan_id, tls_id, timing_record(previous))
        try:
            self.adapter.submit(plan_id, signal)
        except FieldError as exc:
            return self._answer(record, tls_id, "failed", f"the signal did not take it: {exc}")
        return Handled(plan_id, tls_id, applications.SUBMITTED, f"handed to {self.adapter.name}")

    def _refusal(self, signal: SignalPlan) -> str | None:
        """Why ``signal`` must not reach its signal, or None."""
        if signal.tls_id not in self.adapter.signals():
            return f"signal {signal.tls_id} is not reachable through {self.adapter.name}"
        violations = check_signal(signal, self.network[signal.tls_id], self.rules)
        if violations:
            return "unsafe: " + "; ".join(str(v) for v in violations)
        return None

    # -- answers out -----------------------------------------------------------------------------

    def pump(self) -> list[Handled]:
        """Answer every application the adapter confirmed (or that failed) since the last call."""
        done = []
        for application in self.adapter.confirmed():
            stored = applications.get(self.engine, application.plan_id, application.tls_id)
            if (
                stored is not None
                and stored.outcome == applications.ROLLING_BACK
                and stored.record is not None
            ):
                done.append(self._rolled_back(stored, application))
                continue
            if stored is None or stored.outcome != applications.SUBMITTED or stored.record is None:
                log.warning(
                    "ignoring a confirmation of %s/%s: not waiting for one",
                    application.plan_id,
                    application.tls_id,
                )
                continue
            outcome, detail = application.outcome, application.detail
            done.append(self._answer(stored.record, application.tls_id, outcome, detail, application))
        return done

    def watch(
        self, now: datetime, lake: Lake, approaches: Mapping[str, tuple[Approach, ...]]
    ) -> list[Verdict]:
        """Judge every applied timing whose watching window has passed by ``now`` (see
        :mod:`field.watch`), and hand the previous timing back to each signal judged worse; the
        rollback is answered (``rolled_back``) once the signal confirms it. One gold cannot yet
        judge is asked again at the next call, until a second window has passed; then its
        "too few quarter hours" stands and it is left alone."""
        verdicts = []
        for stored in applications.due_for_watching(self.engine, now - self.window):
            assert stored.effective_at is not None
            verdict = judge(
                lake, approaches.get(stored.tls_id, ()), stored.effective_at, self.window,
                self.settings.field_rollback_worse_share, self.settings.field_rollback_p_value,
            )  # fmt: skip
            if not verdict.compared and now < stored.effective_at + 2 * self.window:
                continue
            rolling_back = verdict.worse and stored.previous is not None
            if rolling_back:
                try:
                    self.adapter.submit(stored.plan_id, signal_from_record(stored.previous))
                except FieldError as exc:
                    rolling_back = False
                    verdict = dataclasses.replace(
                        verdict, reason=f"{verdict.reason}; the rollback failed: {exc}"
                    )
            applications.judged(self.engine, stored.plan_id, stored.tls_id, verdict.to_dict(), rolling_back)
            log.info("plan %s signal %s watched: %s", stored.plan_id, stored.tls_id, verdict.reason)
            verdicts.append(verdict)
        return verdicts

    def roll_back(self, value: bytes | Mapping[str, Any]) -> list[Handled]:
        """An operator's rollback request (``control.plan.rollback.v1``): every signal of the plan
        that runs it gets back the timing it replaced, answered ``rolled_back`` once confirmed.
        A signal not running the plan (refused, failed, rolled back already) is left as it is."""
        try:
            request = orjson.loads(value) if isinstance(value, bytes | bytearray) else dict(value)
            contract(ROLLBACK_TOPIC).validate(request)
        except (orjson.JSONDecodeError, RecordInvalid, TypeError, ValueError) as exc:
            return [Handled(None, None, DEAD_LETTERED, f"not a {ROLLBACK_TOPIC} record: {exc}")]
        why = f"rolled back by hand by {request['requested_by']}: {request['reason']}"
        done = []
        for stored in applications.of_plan(self.engine, request["plan_id"]):
            if stored.outcome != "applied" or stored.previous is None:
                done.append(
                    Handled(
                        stored.plan_id, stored.tls_id, "ignored", f"not running the plan ({stored.outcome})"
                    )
                )
                continue
            try:
                self.adapter.submit(stored.plan_id, signal_from_record(stored.previous))
            except FieldError as exc:
                done.append(
                    Handled(
                        stored.plan_id, stored.tls_id, "failed", f"{why}; the signal did not take it: {exc}"
                    )
                )
                continue
            verdict = {"worse": True, "reason": why, "compared": False}
            applications.judged(self.engine, stored.plan_id, stored.tls_id, verdict, rolling_back=True)
            done.append(Handled(stored.plan_id, stored.tls_id, applications.ROLLING_BACK, why))
        return done

    def _rolled_back(self, stored: applications.FieldApplication, application: Application) -> Handled:
        assert stored.record is not None
        why = (stored.verdict or {}).get("reason", "judged worse")
        if application.outcome != "applied":
            detail = f"rolling back ({why}) failed: {application.detail}"
            log.error("plan %s signal %s: %s", stored.plan_id, stored.tls_id, detail)
            return self._answer(stored.record, stored.tls_id, "failed", detail, application)
        detail = f"previous timing restored: {why}"
        return self._answer(stored.record, stored.tls_id, "rolled_back", detail, application)

    def recover(self) -> list[Handled]:
        """Answer what an earlier run handed to a signal and never saw confirmed: ``failed``,
        since the adapter that would have confirmed it is gone (the signal may or may not run
        it; the operator re-approves or the watcher compares). Run at start."""
        return [
            self._answer(
                stored.record,
                stored.tls_id,
                "failed",
                "the field service restarted before the signal confirmed it",
            )
            for stored in applications.submitted(self.engine)
            if stored.record is not None
        ]

    def _answer(
        self,
        approved: Mapping[str, Any],
        tls_id: str,
        outcome: str,
        detail: str,
        application: Application | None = None,
    ) -> Handled:
        """Store the answer with the outcome, then publish it (a failed publish stays queued)."""
        answer: dict[str, Any] = {
            "adapter": self.adapter.name,
            "applied_at": format_utc(self.clock()),
            "status": outcome,
            "detail": detail[:1000],
        }
        effective_at = (
            application.effective_at if application and outcome in ("applied", "rolled_back") else None
        )
        if effective_at is not None:
            answer["effective_at"] = format_utc(effective_at)
        if application is not None and application.running is not None:
            answer["program_id"] = application.running.program_id
        if application is not None:
            answer["transition_cycles"] = application.transition_cycles
        record = {
            **{k: v for k, v in approved.items() if k != "application"},
            "ts": answer["applied_at"],
            "application": answer,
        }
        contract(APPLIED_TOPIC).validate(record)
        applications.settle(self.engine, record["plan_id"], tls_id, outcome, detail, record, effective_at)
        self.publish_pending()
        log.info("plan %s signal %s: %s (%s)", record["plan_id"], tls_id, outcome, detail)
        return Handled(record["plan_id"], tls_id, outcome, detail)

    def publish_pending(self) -> int:
        """Send every stored answer the broker has not acknowledged, oldest first; stops at the
        first failure (keeps their order). Returns how many were sent."""
        if self.send is None:
            return 0
        sent = 0
        for stored in applications.unpublished(self.engine):
            assert stored.record is not None
            try:
                self.send(APPLIED_TOPIC, stored.record)
            except Exception as exc:  # noqa: BLE001 - any send failure leaves the answer queued
                applications.mark_published(self.engine, stored.plan_id, stored.tls_id, error=str(exc))
                log.warning("answer for %s/%s queued: %s", stored.plan_id, stored.tls_id, exc)
                break
            applications.mark_published(self.engine, stored.plan_id, stored.tls_id)
            sent += 1
        return sent


def timing_record(plan: SignalPlan) -> dict[str, Any]:
    """A signal's timing as JSON, to restore later (:func:`signal_from_record`)."""
    return {
        "tls_id": plan.tls_id,
        "program_id": plan.program_id,
        "offset_s": plan.offset_s,
        "cycle_s": plan.cycle_s,
        "kind": plan.kind,
        "phases": [phase.to_record() for phase in plan.phases],
    }


def signal_from_record(record: Mapping[str, Any]) -> SignalPlan:
    return SignalPlan(
        record["tls_id"],
        tuple(Phase.from_record(p) for p in record["phases"]),
        offset_s=record["offset_s"],
        cycle_s=record["cycle_s"],
        program_id=record["program_id"],
        kind=record["kind"],
    )
