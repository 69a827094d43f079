"""Proposing: a plan goes to the operator only if it is safe and measurably better.

:func:`propose` takes a :class:`~optimizer.plans.model.NetworkPlan` with its evaluation and

1. refuses it if it breaks a safety rule (:func:`optimizer.plans.safety.enforce`), listing every
   violation — before anything is stored or sent;
2. refuses it unless :func:`decide` finds it beats the baseline (the current plan) on the KPI
   by a margin that is both large enough to matter and statistically significant;
3. refuses it if a record breaks the ``control.plan.proposed.v1`` contract;
4. stores it in the plan store as ``proposed`` and unpublished, then
5. publishes one record per signal to ``control.plan.proposed.v1`` (keyed by tls id, the
   contract's ``x-key``), and marks the stored plan published once the broker acknowledged
   every record.

**Why store first, then publish** (the transactional-outbox order). The store is the system
of record: the console approves what is stored, and the audit trail lives there. Publishing
first would let a crash between the two leave a proposal on Kafka that the store does not
know, which an operator could see but never approve or trace. Storing first, a failure
after the store leaves a row with ``published_at`` empty (and ``publish_error`` saying why):
nothing is lost, :func:`publish_pending` (or proposing the same plan again, whose content
id is the same) sends it. A retry may send a record the broker already has; it is the same
record (same ``plan_id``, ``tls_id`` and ``ts``), so consumers treat ``(plan_id, tls_id)`` as
idempotent. A plan the broker never acknowledged cannot be approved (:func:`store.set_status`).

**Approvals go the same way** (:func:`approve`). The transaction that makes a plan
``approved`` also stores its ``control.plan.approved.v1`` records (validated against the
contract, keyed by tls id); then they are sent and the plan marked. A broker that is down
leaves the approval standing and queued (``approval_publish_error`` says why), and
:func:`publish_pending` — run by the next approval, the console at startup and the optimize
DAG — sends the queue in approval order, stopping at the first failure, so an older approval
never overtakes a newer one for the same signals. Delivery is at least once: a consumer
treats ``(plan_id, tls_id)`` of an approval as idempotent too.

**The significance criterion** (:func:`decide`). ``lower is better`` for every KPI except
those in :data:`HIGHER_IS_BETTER` (throughput). A plan is better when both hold:

- *practical*: its mean improves on the baseline's by at least ``min_improvement`` of the
  baseline mean (default 5%): a significant 0.5% would not be worth an operator's review
  and a field change;
- *statistical*, with two or more seeds:

  - given the paired difference over the evaluation's seeds (``difference``, as
    :func:`sim.evaluate.paired_difference` computes it: plan − baseline per seed), its
    two-sided paired t-test p-value is below ``alpha`` (0.05) and its whole 95% CI lies on
    the improving side. This is the primary test: both ran on the same seeds (common random
    numbers), so pairing removes the seed-to-seed demand noise;
  - without it, the two 95% confidence intervals must not overlap. That is stricter than a
    test at 5% (non-overlapping 95% CIs imply p < 0.01 or so), which is right when the
    pairing cannot be checked.

  One seed gives no spread to test against, so it never passes.

The contract's evaluation carries only the KPI summaries, so the paired difference goes into
the store's ``evaluation`` JSON beside them (``significance``) rather than into the records.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kafka.errors import KafkaError
from sqlalchemy import Engine

from core.errors import CitybrainError
from core.settings import Settings
from optimizer.plans.model import PROPOSED_TOPIC, Evaluation, NetworkPlan, PlanError
from optimizer.plans.safety import SafetyRules, SignalNetwork, UnsafePlan, Violation, enforce
from optimizer.proposing import store
from optimizer.proposing.store import APPROVED_TOPIC
from schemas import RecordInvalid, contract
from streaming.producer import RecordProducer

#: The KPI a plan must improve unless told otherwise: RESCO's delay, comparable with the benchmark.
DEFAULT_KPI = "resco_delay"
#: Least relative improvement of the KPI's mean worth proposing.
DEFAULT_MIN_IMPROVEMENT = 0.05
#: Significance level of the paired test (the CIs are 95% to match).
ALPHA = 0.05
#: KPIs where more is better; every other KPI (delays, times, stops, teleports, co2) is a cost.
HIGHER_IS_BETTER = frozenset({"throughput"})
#: The safety rules with their default parameters: what a plan for the field must pass.
DEFAULT_RULES = SafetyRules()
#: Who the audit trail names for what the proposer does.
ACTOR = "optimizer"

# Outcomes of :func:`propose`.
PUBLISHED = "published"
ALREADY_PUBLISHED = "already-published"
PUBLISH_FAILED = "publish-failed"
REFUSED_UNSAFE = "refused-unsafe"
REFUSED_NOT_BETTER = "refused-not-better"
REFUSED_INVALID = "refused-invalid"
REFUSED_STORED = "refused-already-decided"


@dataclass(frozen=True)
class Decision:
    """Whether a plan beats its baseline on one KPI, with the figures and the reason.

    ``improvement`` is relative to the baseline mean, positive when the plan is better;
    ``test`` names the significance test used (``paired-t`` or ``ci-overlap``), ``p_value``
    is the paired test's.
    """

    kpi: str
    better: bool
    reason: str
    baseline_mean: float | None = None
    plan_mean: float | None = None
    improvement: float | None = None
    test: str | None = None
    p_value: float | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "better": self.better,
            "reason": self.reason,
            "baseline_mean": self.baseline_mean,
            "plan_mean": self.plan_mean,
            "improvement": self.improvement,
            "test": self.test,
            "p_value": self.p_value,
        }


@dataclass(frozen=True)
class Proposal:
    """What :func:`propose` did. ``outcome`` is one of the module's outcome names;
    ``published`` counts records the broker acknowledged in this call."""

    plan_id: str
    outcome: str
    reason: str
    decision: Decision | None = None
    violations: tuple[Violation, ...] = ()
    stored: bool = False
    published: int = 0
    records: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def refused(self) -> bool:
        return self.outcome.startswith("refused")

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "decision": None if self.decision is None else self.decision.to_record(),
            "violations": [v.to_dict() for v in self.violations],
            "stored": self.stored,
            "published": self.published,
        }


def _improvement(kpi: str, baseline: float, plan: float) -> float:
    gain = plan - baseline if kpi in HIGHER_IS_BETTER else baseline - plan
    return gain / abs(baseline)


def decide(
    evaluation: Evaluation | None,
    kpi: str = DEFAULT_KPI,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
    difference: Mapping[str, Any] | None = None,
    alpha: float = ALPHA,
) -> Decision:
    """Whether the evaluated plan beats its baseline on ``kpi`` (see the module docstring).

    ``difference`` is the paired difference of ``kpi`` (plan − baseline over the evaluation's
    seeds) with ``mean``, ``ci95`` and ``p_value``, e.g. ``evaluate(...)["controllers"][name]
    ["difference"][kpi]``. Its mean must equal the difference of the two means (the mean of
    per-seed differences is the difference of means over the same seeds), which catches a
    difference taken from another evaluation.
    """
    if not 0 <= min_improvement < 1:
        raise ValueError(f"min_improvement is a fraction of the baseline in [0, 1), got {min_improvement}")
    if evaluation is None:
        return Decision(kpi, False, "the plan has no evaluation against a baseline")
    if kpi not in evaluation.baseline or kpi not in evaluation.plan:
        return Decision(kpi, False, f"the evaluation has no {kpi} for both the baseline and the plan")
    base, ours = evaluation.baseline[kpi], evaluation.plan[kpi]
    figures: dict[str, Any] = {"baseline_mean": base.mean, "plan_mean": ours.mean}
    what = f"{kpi} {ours.mean:.4g} against the baseline's {base.mean:.4g}"
    if base.mean == 0:
        return Decision(kpi, False, f"{what}: a zero baseline leaves no relative improvement", **figures)
    gain = _improvement(kpi, base.mean, ours.mean)
    figures["improvement"] = gain
    what += f" ({gain:+.1%})"
    if len(evaluation.seeds) < 2:
        return Decision(kpi, False, f"{what}: one seed gives no spread to test significance", **figures)
    if gain < min_improvement:
        reason = f"{what}: below the required {min_improvement:.0%} improvement"
        return Decision(kpi, False, reason, **figures)
    higher = kpi in HIGHER_IS_BETTER
    if difference is not None:
        figures["test"] = "paired-t"
        mean, p_value, ci = difference.get("mean"), difference.get("p_value"), difference.get("ci95")
        figures["p_value"] = p_value
        expected = ours.mean - base.mean
        if mean is None or not math.isclose(mean, expected, rel_tol=1e-6, abs_tol=1e-9 * abs(base.mean)):
            reason = f"{what}: the paired difference ({mean}) does not match this evaluation"
            return Decision(kpi, False, reason, **figures)
        if p_value is None or ci is None:
            return Decision(kpi, False, f"{what}: the paired difference has no test", **figures)
        improving_side = ci[0] > 0 if higher else ci[1] < 0
        if not (p_value < alpha and improving_side):
            return Decision(
                kpi,
                False,
                f"{what}: not significant (paired t-test p = {p_value:.3g}, difference CI "
                f"[{ci[0]:.4g}, {ci[1]:.4g}])",
                **figures,
            )
        return Decision(kpi, True, f"{what}: significant (paired t-test p = {p_value:.3g})", **figures)
    figures["test"] = "ci-overlap"
    separated = ours.ci95[0] > base.ci95[1] if higher else ours.ci95[1] < base.ci95[0]
    if not separated:
        return Decision(
            kpi,
            False,
            f"{what}: not significant (95% CIs overlap: plan [{ours.ci95[0]:.4g}, {ours.ci95[1]:.4g}], "
            f"baseline [{base.ci95[0]:.4g}, {base.ci95[1]:.4g}])",
            **figures,
        )
    return Decision(kpi, True, f"{what}: significant (95% CIs do not overlap)", **figures)


class PublishError(CitybrainError, RuntimeError):
    """The broker did not acknowledge every record of a plan."""


def publish(settings: Settings, records: Sequence[Mapping[str, Any]], topic: str = PROPOSED_TOPIC) -> int:
    """Send the records to ``topic`` (validated against its contract, keyed by its ``x-key``:
    the tls id) and wait until the broker acknowledged all of them; :class:`PublishError`
    otherwise."""
    try:
        producer = RecordProducer(settings, validate=True)
    except (CitybrainError, KafkaError, OSError) as exc:
        raise PublishError(f"cannot reach Kafka: {exc}") from exc
    try:
        for record in records:
            producer.send(topic, dict(record))
        producer.flush()
    except (CitybrainError, KafkaError, OSError) as exc:
        raise PublishError(str(exc)) from exc
    finally:
        # After a failed flush, close repeats the same failure: the first one is the one to report.
        with contextlib.suppress(CitybrainError, KafkaError, OSError):
            producer.close()
    return len(records)


def _publish_stored(settings: Settings, engine: Engine, stored: store.StoredPlan) -> tuple[int, str | None]:
    try:
        count = publish(settings, stored.records)
    except PublishError as exc:
        store.mark_publish_failed(engine, stored.plan_id, str(exc), actor=ACTOR)
        return 0, str(exc)
    store.mark_published(engine, stored.plan_id, actor=ACTOR, note=f"{count} record(s) to {PROPOSED_TOPIC}")
    return count, None


def propose(
    settings: Settings,
    plan: NetworkPlan,
    networks: Mapping[str, SignalNetwork],
    *,
    rules: SafetyRules = DEFAULT_RULES,
    kpi: str = DEFAULT_KPI,
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT,
    difference: Mapping[str, Any] | None = None,
    engine: Engine | None = None,
    returning: str | None = None,
) -> Proposal:
    """Check, store and publish ``plan`` (see the module docstring); return what was done.

    ``returning`` says why ``plan`` is proposed without having to beat its baseline: it is the
    return to a plan that ran before (the normal plan after an incident plan), which the
    operator approves like any other, its evaluation still measured and shown.

    ``networks`` is :func:`optimizer.plans.safety.read_network` of the scenario's net;
    ``difference`` the paired difference of ``kpi`` when the evaluation computed one;
    ``engine`` the plan store (default: ``settings.sqlalchemy_url``). Refusals are outcomes,
    not exceptions, so a scheduled run that finds nothing better to propose succeeds; a
    storage failure raises (nothing was published). Proposing a stored plan again publishes
    it if it never was, and otherwise does nothing.
    """
    assert plan.plan_id is not None
    try:
        enforce(plan, networks, rules)
    except UnsafePlan as exc:
        return Proposal(plan.plan_id, REFUSED_UNSAFE, str(exc), violations=exc.violations)
    decision = decide(plan.evaluation, kpi, min_improvement, difference)
    if returning is not None:
        decision = replace(decision, better=True, reason=f"{returning} (measured: {decision.reason})")
    if not decision.better:
        return Proposal(plan.plan_id, REFUSED_NOT_BETTER, decision.reason, decision)
    try:
        records = plan.to_records()
        topic_contract = contract(PROPOSED_TOPIC)
        for record in records:
            topic_contract.validate(record)
    except (PlanError, RecordInvalid) as exc:
        return Proposal(plan.plan_id, REFUSED_INVALID, f"plan {plan.plan_id}: {exc}", decision)

    engine = engine if engine is not None else store.open_store(settings)
    assert plan.evaluation is not None
    evaluation = {**plan.evaluation.to_record(), "significance": decision.to_record()}
    if difference is not None:
        evaluation["difference"] = {kpi: dict(difference)}
    try:
        stored = store.save_proposal(
            engine, plan, records, evaluation=evaluation, actor=ACTOR, note=decision.reason
        )
    except store.PlanExists:
        stored = store.get(engine, plan.plan_id)
        if stored.status != store.PROPOSED:
            reason = f"plan {plan.plan_id} is stored as {stored.status}"
            return Proposal(plan.plan_id, REFUSED_STORED, reason, decision, stored=True)
        if stored.published:
            reason = f"plan {plan.plan_id} was proposed already"
            return Proposal(
                plan.plan_id, ALREADY_PUBLISHED, reason, decision, stored=True, records=tuple(stored.records)
            )
    count, error = _publish_stored(settings, engine, stored)
    if error is not None:
        reason = f"stored, but publishing failed (publish_pending retries it): {error}"
        return Proposal(
            plan.plan_id, PUBLISH_FAILED, reason, decision, stored=True, records=tuple(stored.records)
        )
    reason = f"{decision.reason}; {count} record(s) published to {PROPOSED_TOPIC}"
    return Proposal(
        plan.plan_id, PUBLISHED, reason, decision, stored=True, published=count, records=tuple(stored.records)
    )


@dataclass(frozen=True)
class Approval:
    """What :func:`approve` did: the plan as stored after the attempt, and whether its records
    reached ``control.plan.approved.v1`` (``outcome`` :data:`PUBLISHED`) or wait in the queue
    (:data:`PUBLISH_FAILED`, ``reason`` says why)."""

    plan: store.StoredPlan
    outcome: str
    reason: str

    @property
    def pending(self) -> bool:
        return self.outcome != PUBLISHED


def _publish_approvals(settings: Settings, engine: Engine, actor: str) -> list[Proposal]:
    """Send queued approvals oldest first, stopping at the first failure (keeps their order)."""
    done = []
    for stored in store.unpublished_approvals(engine):
        assert stored.approval_records is not None
        try:
            count = publish(settings, stored.approval_records, topic=APPROVED_TOPIC)
        except PublishError as exc:
            store.mark_approval_publish_failed(engine, stored.plan_id, str(exc), actor=actor)
            done.append(Proposal(stored.plan_id, PUBLISH_FAILED, f"approval: {exc}", stored=True))
            break
        note = f"{count} record(s) to {APPROVED_TOPIC}"
        store.mark_approval_published(engine, stored.plan_id, actor=actor, note=note)
        done.append(Proposal(stored.plan_id, PUBLISHED, f"approval: {note}", stored=True, published=count))
    return done


def approve(
    settings: Settings, plan_id: str, actor: str, comment: str = "", *, engine: Engine | None = None
) -> Approval:
    """Approve a proposed plan as ``actor`` and publish the approval (see the module docstring).

    The approval is stored, with its records, before anything is sent; a broker that cannot be
    reached leaves it queued and the outcome says so. Raises what :func:`store.set_status`
    raises (:class:`store.PlanNotFound`, :class:`store.TransitionRefused`, :class:`store.StoreError`);
    the safety re-check is the caller's (the console's), before this.
    """
    engine = engine if engine is not None else store.open_store(settings)
    store.set_status(engine, plan_id, store.APPROVED, actor, comment)
    sent = {done.plan_id: done for done in _publish_approvals(settings, engine, actor)}
    stored = store.get(engine, plan_id)
    if plan_id in sent:
        return Approval(stored, sent[plan_id].outcome, sent[plan_id].reason)
    if not stored.approval_pending:  # sent by someone else's drain meanwhile
        return Approval(stored, PUBLISHED, f"approval: sent to {APPROVED_TOPIC}")
    failed = [done.reason for done in sent.values() if done.outcome == PUBLISH_FAILED]
    why = failed[0] if failed else "another drain is sending the queue"
    return Approval(stored, PUBLISH_FAILED, f"queued behind an earlier approval not yet sent ({why})")


def publish_pending(settings: Settings, engine: Engine | None = None, actor: str = ACTOR) -> list[Proposal]:
    """Publish every stored proposal and approval the broker has not acknowledged (the outbox
    drain): run it after a broker outage, before each scheduled propose, at console start.
    An approval's entry has the same outcomes, its ``reason`` starting ``approval:``."""
    engine = engine if engine is not None else store.open_store(settings)
    done = []
    for stored in store.unpublished(engine):
        count, error = _publish_stored(settings, engine, stored)
        if error is None:
            done.append(
                Proposal(
                    stored.plan_id, PUBLISHED, f"{count} record(s) published", stored=True, published=count
                )
            )
        else:
            done.append(Proposal(stored.plan_id, PUBLISH_FAILED, error, stored=True))
    return done + _publish_approvals(settings, engine, actor)
