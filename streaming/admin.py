"""Topic administration: every contract topic, and a ``.dlq`` twin for each input topic."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from citybrain.settings import Settings
from schemas import INPUT_TOPICS, TOPICS
from streaming.connection import connect

DLQ_SUFFIX = ".dlq"


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of an input topic."""
    return topic + DLQ_SUFFIX


def all_topics() -> list[str]:
    return [*TOPICS, *(dlq_topic(t) for t in INPUT_TOPICS)]


def ensure_topics(settings: Settings, partitions: int | None = None) -> dict[str, int]:
    """Create the missing topics; return every topic with its partition count."""
    partitions = partitions or settings.topic_partitions
    admin = connect(settings, KafkaAdminClient)
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(t, partitions, 1) for t in all_topics() if t not in existing]
        for topic in wanted:  # one by one: a concurrent creator makes only its topic fail
            try:
                admin.create_topics([topic])
            except TopicAlreadyExistsError:
                pass
        described = admin.describe_topics(all_topics())
        return {d["name"]: len(d["partitions"]) for d in described}
    finally:
        admin.close()
