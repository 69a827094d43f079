"""Dead-letter records: the original bytes, key and headers, plus headers that say why.

Headers added: ``dlq.error`` (the reason), ``dlq.stage`` (``parse`` or ``validate``),
``dlq.topic``, ``dlq.partition``, ``dlq.offset`` (where the record was read). The source
coordinates also make dead-lettering idempotent: recovery scans a dead-letter partition for
them before sending again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from streaming.admin import dlq_topic, end_offsets

Headers = list[tuple[str, bytes]]


@dataclass
class Rejected:
    """One record that failed parsing or validation, with everything needed to dead-letter it."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    stage: str
    error: str

    def dlq_headers(self, topic: str, partition: int) -> Headers:
        return [
            *self.headers,
            ("dlq.error", self.error.encode()),
            ("dlq.stage", self.stage.encode()),
            ("dlq.topic", topic.encode()),
            ("dlq.partition", str(partition).encode()),
            ("dlq.offset", str(self.offset).encode()),
        ]


def source_of(headers: Iterable[tuple[str, bytes]]) -> tuple[str, int, int] | None:
    """The (topic, partition, offset) a dead-letter record came from, from its headers."""
    found = {k: v for k, v in headers if k in ("dlq.topic", "dlq.partition", "dlq.offset")}
    if len(found) != 3:
        return None
    return found["dlq.topic"].decode(), int(found["dlq.partition"]), int(found["dlq.offset"])


def _read_to_end(reader: KafkaConsumer, starts: dict[TopicPartition, int]) -> Iterator[ConsumerRecord]:
    """Every record of the given partitions from its start offset to the partition's end."""
    ends = end_offsets(reader, list(starts))
    pending = [tp for tp, start in starts.items() if ends[tp] > start]
    if not pending:
        return
    reader.assign(pending)
    for tp in pending:
        reader.seek(tp, starts[tp])
    while any(reader.position(tp) < ends[tp] for tp in pending):
        for records in reader.poll(timeout_ms=1000).values():
            yield from records
    reader.assign([])


def sources_since(reader: KafkaConsumer, dlq: TopicPartition, start: int) -> set[tuple[str, int, int]]:
    """Source coordinates of every dead-letter record in ``dlq`` from offset ``start`` on."""
    sources = (source_of(record.headers) for record in _read_to_end(reader, {dlq: start}))
    return {source for source in sources if source is not None}


def read_dead_letters(
    reader: KafkaConsumer, topic: str
) -> list[tuple[tuple[str, int, int] | None, str, bytes]]:
    """Every record now in ``topic``'s dead-letter topic: (source, reason, original value).

    ``reader`` is a group-less consumer; this is for inspection (the demo, tests, operators
    looking at what was refused), not for reprocessing.
    """
    dlq_name = dlq_topic(topic)
    partitions = [TopicPartition(dlq_name, p) for p in sorted(reader.partitions_for_topic(dlq_name) or ())]
    starts = reader.beginning_offsets(partitions) if partitions else {}
    return [
        (source_of(record.headers), dict(record.headers).get("dlq.error", b"").decode(), record.value)
        for record in _read_to_end(reader, starts)
    ]
