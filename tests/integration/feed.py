"""Test helpers: send a feed and remember where each record went; check where it landed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kafka import KafkaConsumer

from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming.bronze import read_topic
from streaming.deadletter import read_dead_letters
from streaming.producer import RecordProducer
from streaming.sample_feed import generate


@dataclass(frozen=True)
class Sent:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    valid: bool


def send_feed(settings: Settings, records: int, invalid_fraction: float, seed: int = 7) -> list[Sent]:
    """Produce the sample feed; return each record with the partition and offset it got."""
    pending = []
    with RecordProducer(settings, validate=False) as producer:
        for record in generate(records, invalid_fraction, seed):
            future = producer.send_raw(record.topic, record.key, record.value)
            pending.append((record, future))
        producer.flush()
    return [Sent(r.topic, f.value.partition, f.value.offset, r.key, r.value, r.valid) for r, f in pending]


def bronze_coordinates(settings: Settings) -> Counter:
    """How often each (topic, partition, offset) appears in bronze."""
    seen: Counter = Counter()
    for topic in INPUT_TOPICS:
        table = read_topic(settings.lake_path, topic)
        for partition, offset in zip(
            table.column("_partition").to_pylist(), table.column("_offset").to_pylist(), strict=True
        ):
            seen[(topic, partition, offset)] += 1
    return seen


def dead_letter_coordinates(reader: KafkaConsumer) -> Counter:
    """How often each source (topic, partition, offset) appears in the dead-letter topics."""
    seen: Counter = Counter()
    for topic in INPUT_TOPICS:
        for source, _reason, _value in read_dead_letters(reader, topic):
            seen[source] += 1
    return seen


def assert_exactly_once(settings: Settings, reader: KafkaConsumer, sent: list[Sent]) -> None:
    """Each valid record is in bronze once, each invalid one in its dead-letter topic once."""
    valid = {(s.topic, s.partition, s.offset) for s in sent if s.valid}
    invalid = {(s.topic, s.partition, s.offset) for s in sent if not s.valid}
    landed = bronze_coordinates(settings)
    dead = dead_letter_coordinates(reader)
    assert set(landed) == valid, f"missing {len(valid - set(landed))}, unexpected {len(set(landed) - valid)}"
    assert {k: n for k, n in landed.items() if n > 1} == {}, "records duplicated in bronze"
    assert set(dead) == invalid, f"missing {len(invalid - set(dead))}, unexpected {len(set(dead) - invalid)}"
    assert {k: n for k, n in dead.items() if n > 1} == {}, "records duplicated in the dead-letter topics"
