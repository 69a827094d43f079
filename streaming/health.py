"""Is the ingest keeping up? Consumer lag and dead-letter growth, checked against limits.

The ``citybrain_ingest_health`` DAG runs :func:`check` every few minutes and fails when it
reports problems, so a stalled ingest (lag grows) or a producer sending garbage (the dead-letter
topics grow) pages someone instead of being found in the lake days later.

Lag is a level and is read as it is; dead letters are a count that only grows, so what matters is
how many arrived since the previous check. The end offsets seen by each check are kept in a small
JSON file under the run folder for the next one. A partition whose end went backwards was
recreated (the embedded broker keeps records in memory and loses them on restart), so all of its
records count as new. The first check has nothing to compare with: it records where the
dead-letter topics stand and reports no growth.

The measuring (:func:`measure_broker`, Kafka) and the judging (:func:`assess`, plain numbers) are
separate functions so the judging, the state file and the messages can be tested without a broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from core.errors import CitybrainError
from core.files import write_atomic
from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming.admin import dlq_topic, end_offsets
from streaming.connection import connect
from streaming.status import group_lag

STATE_FILE = "ingest_health.json"

#: End offset per partition, per dead-letter topic: ``{"traffic.detector.v1.dlq": {0: 12, 1: 3}}``.
DeadLetterEnds = dict[str, dict[int, int]]


class IngestUnhealthy(CitybrainError):
    """The ingest lags or dead-letters more than its limits allow; the message lists each problem."""


@dataclass(frozen=True)
class Measurement:
    """What the broker says now: the group's lag per input topic and the dead-letter topics' ends."""

    lag: dict[str, int]
    dead_letter_ends: DeadLetterEnds


@dataclass(frozen=True)
class TopicHealth:
    """One input topic: its lag and its dead-letter topic's size and growth since the last check."""

    topic: str
    lag: int
    dead_letter_topic: str
    dead_letters: int
    new_dead_letters: int


@dataclass(frozen=True)
class IngestHealth:
    """The outcome of one check; ``problems`` is empty when the ingest is healthy."""

    group: str
    checked_at: datetime
    #: When the check compared with ran; None on a first check (no growth is reported then).
    previous_check: datetime | None
    max_lag: int
    max_dead_letters: int
    topics: list[TopicHealth]
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, for the task's return value and logs."""
        result = asdict(self)
        result["checked_at"] = self.checked_at.isoformat()
        result["previous_check"] = self.previous_check.isoformat() if self.previous_check else None
        result["healthy"] = self.healthy
        return result


def state_file(settings: Settings) -> Path:
    return settings.run_dir / STATE_FILE


def measure_broker(settings: Settings) -> Measurement:
    """Ask the broker; raises :class:`~streaming.connection.BrokerUnreachable` when none answers."""
    lag = group_lag(settings, settings.ingest_group)
    reader = connect(settings, KafkaConsumer, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(dlq_topic(topic), p)
            for topic in INPUT_TOPICS
            for p in sorted(reader.partitions_for_topic(dlq_topic(topic)) or ())
        ]
        ends = end_offsets(reader, partitions) if partitions else {}
    finally:
        reader.close()
    dead_letter_ends: DeadLetterEnds = {dlq_topic(topic): {} for topic in INPUT_TOPICS}
    for tp, end in ends.items():
        dead_letter_ends[tp.topic][tp.partition] = end
    return Measurement(lag=lag, dead_letter_ends=dead_letter_ends)


def new_records(now: dict[int, int], before: dict[int, int]) -> int:
    """Records added to a topic between two readings of its partitions' end offsets.

    A partition that is new, or whose end went backwards (the topic was recreated), counts
    from zero.
    """
    total = 0
    for partition, end in now.items():
        previous = before.get(partition, 0)
        total += end - previous if end >= previous else end
    return total


def assess(
    measurement: Measurement,
    previous: DeadLetterEnds | None,
    *,
    group: str,
    max_lag: int,
    max_dead_letters: int,
    checked_at: datetime,
    previous_check: datetime | None,
) -> IngestHealth:
    """Judge a measurement against the limits; ``previous`` None means a first check."""
    topics: list[TopicHealth] = []
    problems: list[str] = []
    for topic in INPUT_TOPICS:
        dlq = dlq_topic(topic)
        ends = measurement.dead_letter_ends.get(dlq, {})
        lag = measurement.lag.get(topic, 0)
        grown = 0 if previous is None else new_records(ends, previous.get(dlq, {}))
        topics.append(TopicHealth(topic, lag, dlq, sum(ends.values()), grown))
        if lag > max_lag:
            problems.append(
                f"consumer group {group!r} lags {lag:,} records behind on {topic}, "
                f"more than the limit of {max_lag:,} (CITYBRAIN_INGEST_HEALTH_MAX_LAG)"
            )
        if grown > max_dead_letters:
            since = previous_check.isoformat(timespec="seconds") if previous_check else "the last check"
            problems.append(
                f"{grown:,} new dead letters in {dlq} since {since}, more than the limit of "
                f"{max_dead_letters:,} (CITYBRAIN_INGEST_HEALTH_MAX_DEAD_LETTERS)"
            )
    return IngestHealth(
        group=group,
        checked_at=checked_at,
        previous_check=previous_check if previous is not None else None,
        max_lag=max_lag,
        max_dead_letters=max_dead_letters,
        topics=topics,
        problems=problems,
    )


def read_state(path: Path) -> tuple[DeadLetterEnds, datetime] | None:
    """The previous check's dead-letter ends and time; None when there is no usable file.

    A damaged file is treated like a missing one: the check after it is a first check again,
    which is better than failing the health check forever on its own bookkeeping.
    """
    try:
        state = json.loads(path.read_text())
        ends = {
            topic: {int(p): int(end) for p, end in partitions.items()}
            for topic, partitions in state["dead_letter_ends"].items()
        }
        return ends, datetime.fromisoformat(state["checked_at"])
    except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_state(path: Path, ends: DeadLetterEnds, checked_at: datetime) -> None:
    """Replace the state file atomically: a crash leaves the old file or the new one, never half."""
    state = {
        "checked_at": checked_at.isoformat(),
        "dead_letter_ends": {
            topic: {str(p): end for p, end in partitions.items()} for topic, partitions in ends.items()
        },
    }
    write_atomic(path, json.dumps(state, indent=1, sort_keys=True))


def check(
    settings: Settings,
    *,
    measure: Callable[[Settings], Measurement] = measure_broker,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> IngestHealth:
    """Measure, judge against the settings' limits, and record the dead-letter ends for next time.

    The state is written whether or not the check finds problems, so a burst of dead letters
    fails one check rather than every check after it.
    """
    measurement = measure(settings)
    checked_at = now()
    path = state_file(settings)
    previous = read_state(path)
    report = assess(
        measurement,
        previous[0] if previous else None,
        group=settings.ingest_group,
        max_lag=settings.ingest_health_max_lag,
        max_dead_letters=settings.ingest_health_max_dead_letters,
        checked_at=checked_at,
        previous_check=previous[1] if previous else None,
    )
    write_state(path, measurement.dead_letter_ends, checked_at)
    return report


def require_healthy(report: IngestHealth) -> IngestHealth:
    """Raise :class:`IngestUnhealthy` naming every problem, or hand the report back."""
    if report.problems:
        raise IngestUnhealthy("ingest unhealthy: " + "; ".join(report.problems))
    return report
