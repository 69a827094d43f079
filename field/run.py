"""``citybrain field run`` and ``citybrain field follow``: the field service and the plan store's
follower as long-running Kafka consumers.

Both read their topic through :mod:`streaming.follower` (partitions assigned by hand, offsets
committed under a group only after their records were handled); a record handled twice after a
crash is harmless — the field service's claim and the store's transitions are
idempotent.

``--adapter twin`` runs the scenario's SUMO twin (streaming its sensors, as ``citybrain twin``
does) and applies approvals to its signals between simulation steps; ``--adapter ntcip`` drives
controllers over NTCIP 1202 (:mod:`field.ntcip`) and runs no simulation of its own.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from core.settings import Settings
from field.lifecycle import follow_record
from field.service import APPLIED_TOPIC, DEAD_LETTERED, ROLLBACK_TOPIC, FieldService, Handled
from field.twin_adapter import TwinAdapter
from field.watch import approaches_of
from lake.location import tables_location
from optimizer.plans.safety import scenario_signals
from optimizer.proposing.store import APPROVED_TOPIC
from sim.network import for_scenario
from sim.twin import TwinSummary, parse_day, run_twin, sim_time_to_utc
from streaming.admin import dlq_topic
from streaming.follower import assigned_consumer, polled
from streaming.producer import RecordProducer

log = logging.getLogger(__name__)

FIELD_GROUP = "citybrain-field"
FOLLOW_GROUP = "citybrain-plan-store"
#: How often the twin's loop looks for approvals, in simulated seconds.
POLL_EVERY_S = 1.0
#: How often it asks the watcher about applied plans (gold moves in quarter hours).
WATCH_EVERY_S = 60.0
#: The day the twin's simulated time stands for (as ``citybrain twin``'s default).
DAY = "2026-11-28"


@dataclass
class FieldCounts:
    """What a field run did, by outcome (``submitted`` counts hand-overs; their answers count
    as ``applied`` or ``failed`` when confirmed)."""

    outcomes: dict[str, int] = field(default_factory=dict)
    answers: list[Handled] = field(default_factory=list)

    def add(self, handled: Handled) -> None:
        self.outcomes[handled.outcome] = self.outcomes.get(handled.outcome, 0) + 1
        if handled.outcome not in ("submitted", "duplicate", DEAD_LETTERED):
            self.answers.append(handled)


class ApprovalFeed:
    """The field service fed from ``control.plan.approved.v1`` and ``control.plan.rollback.v1``:
    :meth:`poll` hands new approvals and rollback requests to the service, dead-letters broken
    ones, answers confirmations, commits what it handled."""

    def __init__(self, settings: Settings, service: FieldService, producer: RecordProducer) -> None:
        self.service = service
        self.producer = producer
        self.consumer = assigned_consumer(settings, (APPROVED_TOPIC, ROLLBACK_TOPIC), FIELD_GROUP)
        self.counts = FieldCounts()
        for handled in service.recover():
            self.counts.add(handled)

    def poll(self, timeout_ms: int = 0) -> None:
        handled_any = False
        for message in polled(self.consumer, timeout_ms):
            if message.topic == ROLLBACK_TOPIC:
                for handled in self.service.roll_back(message.value):
                    self._dead_letter_if_broken(message, handled)
                    self.counts.add(handled)
            else:
                handled = self.service.receive(message.value)
                self._dead_letter_if_broken(message, handled)
                self.counts.add(handled)
            handled_any = True
        for handled in self.service.pump():
            self.counts.add(handled)
        if handled_any:
            self.consumer.commit()

    def _dead_letter_if_broken(self, message: Any, handled: Handled) -> None:
        if handled.outcome != DEAD_LETTERED:
            return
        headers = [
            *(message.headers or []),
            ("dlq.error", handled.detail.encode()),
            ("dlq.stage", b"validate"),
            ("dlq.topic", message.topic.encode()),
            ("dlq.partition", str(message.partition).encode()),
            ("dlq.offset", str(message.offset).encode()),
        ]
        self.producer.send_raw(dlq_topic(message.topic), message.key, message.value, headers)
        self.producer.flush()

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def follow(
    settings: Settings,
    engine: Engine,
    *,
    stop_when: Callable[[], bool],
    on_record: Callable[..., None] | None = None,
) -> int:
    """Record every applied record's outcome in the plan store until ``stop_when()``; returns
    how many records were read."""
    consumer = assigned_consumer(settings, (APPLIED_TOPIC,), FOLLOW_GROUP)
    read = 0
    try:
        while not stop_when():
            messages = list(polled(consumer, 500))
            for message in messages:
                followed = follow_record(engine, message.value)
                if followed.skipped:
                    log.warning(
                        "applied record at %s/%d skipped: %s",
                        message.partition,
                        message.offset,
                        followed.skipped,
                    )
                if on_record is not None:
                    on_record(followed)
            if messages:
                consumer.commit()
                read += len(messages)
    finally:
        consumer.close(autocommit=False)
    return read


def sender(producer: RecordProducer) -> Callable[[str, dict[str, Any]], None]:
    """The field service's ``send``: one record, validated, acknowledged before it returns."""

    def send(topic: str, record: dict[str, Any]) -> None:
        producer.send(topic, record)
        producer.flush()

    return send


def run_twin_field(
    settings: Settings,
    engine: Engine,
    scenario: str,
    *,
    out_dir: Path,
    seed: int = 1,
    speed: float | None = None,
    until: float | None = None,
    progress: Any = None,
    on_handled: Callable[[Handled], None] | None = None,
    pause_at: Sequence[float] = (),
    paused: Callable[[float, dict[str, int]], None] | None = None,
) -> tuple[TwinSummary, FieldCounts]:
    """The scenario's sensor twin streaming to Kafka, with approvals applied to its signals as it
    runs: every :data:`POLL_EVERY_S` simulated seconds the approvals that arrived are handed to
    the field service, after every step the twin adapter carries out what is due, and every
    :data:`WATCH_EVERY_S` the watcher judges applied plans from the lake's gold (rolling back
    those that made delay worse). The twin's own time is the service's clock.

    At each of ``pause_at`` (simulation seconds) the simulated city holds: the records sent so far
    are flushed to Kafka, ``paused(t, counts per topic so far)`` is called, and the twin goes on
    when it returns — how a demo or an experiment lets the lake catch up and an operator decide at
    fixed moments, whatever the machine's speed."""
    from sim.scenarios import resolve

    resolved = resolve(scenario, settings.sim_dir / "build")
    network = scenario_signals(resolved)
    approaches = approaches_of(for_scenario(resolved))
    producer = RecordProducer(settings, validate=True)
    state: dict[str, Any] = {"sent": Counter(), "pauses": sorted(pause_at)}

    def send(topic: str, record: dict[str, Any]) -> None:
        producer.send(topic, record)
        state["sent"][topic] += 1

    def on_step(sim: Any, t: float) -> None:
        if state["pauses"] and t >= state["pauses"][0]:
            state["pauses"].pop(0)
            producer.flush()
            if paused is not None:
                paused(t, dict(state["sent"]))
        if "feed" not in state:  # the simulation has started: its signals can be reached now
            clock = functools.partial(sim_time_to_utc, parse_day(DAY))
            adapter = TwinAdapter(sim, clock=clock)
            service = FieldService(
                adapter, engine, network, sender(producer), clock=lambda: clock(state["t"]), settings=settings
            )
            state.update(adapter=adapter, service=service, clock=clock, next_poll=t, next_watch=t)
            state["feed"] = ApprovalFeed(settings, service, producer)
        state["t"] = t
        state["adapter"].step(t)
        if t >= state["next_poll"]:
            state["next_poll"] = t + POLL_EVERY_S
            feed: ApprovalFeed = state["feed"]
            before = len(feed.counts.answers)
            feed.poll()
            if on_handled is not None:
                for handled in feed.counts.answers[before:]:
                    on_handled(handled)
        if t >= state["next_watch"]:
            state["next_watch"] = t + WATCH_EVERY_S
            state["service"].watch(state["clock"](t), tables_location(settings), approaches)

    try:
        summary = run_twin(
            settings, resolved, out_dir=out_dir, seed=seed, speed=speed, until=until, day=DAY,
            progress=progress, on_step=on_step, sink=send,
        )  # fmt: skip
    finally:
        if "feed" in state:
            state["feed"].close()
        producer.close()
    return summary, state["feed"].counts if "feed" in state else FieldCounts()


def run_ntcip_field(
    settings: Settings,
    engine: Engine,
    scenario: str,
    *,
    stop_when: Callable[[], bool],
    poll_s: float = 1.0,
    on_handled: Callable[[Handled], None] | None = None,
) -> FieldCounts:
    """The field service on NTCIP 1202 controllers (``CITYBRAIN_NTCIP_CONTROLLERS``) until
    ``stop_when()``: the scenario's network gives the safety rules and each controller's phase
    configuration (its signal's program there); watching reads the lake at the wall clock."""
    from field.ntcip import NtcipAdapter
    from field.ntcip_objects import configuration
    from optimizer.plans.sumo_programs import read_net_programs
    from sim.scenarios import resolve

    resolved = resolve(scenario, settings.sim_dir / "build")
    network = scenario_signals(resolved)
    approaches = approaches_of(for_scenario(resolved))
    programs = read_net_programs(resolved.net_file, resolved.additional_files)
    producer = RecordProducer(settings, validate=True)
    adapter = NtcipAdapter([configuration(p) for p in programs], settings)
    try:
        service = FieldService(adapter, engine, network, sender(producer), settings=settings)
        feed = ApprovalFeed(settings, service, producer)
        next_watch = 0.0
        try:
            while not stop_when():
                before = len(feed.counts.answers)
                feed.poll(timeout_ms=int(poll_s * 1000))
                if on_handled is not None:
                    for handled in feed.counts.answers[before:]:
                        on_handled(handled)
                if time.monotonic() >= next_watch:
                    next_watch = time.monotonic() + WATCH_EVERY_S
                    service.watch(datetime.now(UTC), tables_location(settings), approaches)
        finally:
            feed.close()
    finally:
        adapter.close()
        producer.close()
    return feed.counts
