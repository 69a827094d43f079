"""A consumer for a service that follows a few topics alone: every partition assigned by hand,
offsets committed under a group.

No group join: on the embedded broker a join takes 5-23 s, and one process per topic needs no
rebalancing. The caller commits only after it handled what it read, so a crash re-reads; the
services built on it (the field service, the plan store's follower, the incident watch) are
idempotent for a record read twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from core.settings import Settings
from streaming.connection import connect, topic_partitions
from streaming.ingest import consumer_options


def assigned_consumer(settings: Settings, topics: tuple[str, ...], group: str) -> KafkaConsumer:
    """A consumer of every partition of ``topics``, from the group's committed offsets (the
    beginning for a new group)."""
    options = {**consumer_options(settings), "max_poll_records": 500}
    consumer = connect(settings, KafkaConsumer, group_id=group, **options)
    found = topic_partitions(settings, consumer, topics)
    consumer.assign([TopicPartition(t, p) for t in topics for p in sorted(found[t])])
    return consumer


def polled(consumer: KafkaConsumer, timeout_ms: int) -> Iterator[Any]:
    """The messages of one poll, partition after partition."""
    for batch in consumer.poll(timeout_ms=timeout_ms).values():
        yield from batch
