"""Topic administration: every contract topic, and a ``.dlq`` twin for each input topic."""

from __future__ import annotations

import contextlib
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from core.settings import Settings
from schemas import INPUT_TOPICS, TOPICS
from streaming.connection import connect

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of an input topic."""
    return topic + DLQ_SUFFIX


#: Plan topics whose consumer (the field service) dead-letters what breaks their contract.
DEAD_LETTERED_PLAN_TOPICS = ("control.plan.approved.v1", "control.plan.rollback.v1")


def all_topics() -> list[str]:
    return [*TOPICS, *(dlq_topic(t) for t in (*INPUT_TOPICS, *DEAD_LETTERED_PLAN_TOPICS))]


def ensure_topics(settings: Settings, partitions: int | None = None) -> dict[str, int]:
    """Create the missing topics; return every topic with its partition count."""
    partitions = partitions or settings.topic_partitions
    admin = connect(settings, KafkaAdminClient)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(t, partitions, 1) for t in all_topics() if t not in existing]
        for topic in wanted:  # one by one: a concurrent creator makes only its topic fail
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([topic])
        # Apache Kafka describes a topic it has just created with no partitions until its
        # metadata has spread to the broker that answers: ask again until every topic has them.
        deadline = time.monotonic() + settings.kafka_connect_timeout_s
        while True:
            counts = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(all_topics())}
            if all(counts.values()) or time.monotonic() > deadline:
                return counts
            time.sleep(0.1)
    finally:
        admin.close()


def end_offsets(reader: KafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end offset (the next offset to be written), checked by a fetch.

    Tansu answers ListOffsets(latest) with the last record batch's base offset + 1, not the
    high watermark, so a plain ``end_offsets`` undercounts when batches hold several records.
    Fetching from one before the listed end returns the high watermark, which is right on
    both Tansu and Apache Kafka. ``reader`` must be group-less; its assignment is cleared.
    """
    listed = reader.end_offsets(partitions)
    ends = dict(listed)
    pending = {tp for tp in partitions if listed[tp] > 0}
    if pending:
        reader.assign(list(pending))
        for tp in pending:
            reader.seek(tp, listed[tp] - 1)
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            reader.poll(timeout_ms=200, max_records=1)
            for tp in list(pending):
                highwater = reader.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(listed[tp], highwater)
                    pending.discard(tp)
        reader.assign([])
    return ends
