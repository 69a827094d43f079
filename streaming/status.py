"""``citybrain ingest status``: the last counters an ingest wrote, and live lag from the broker."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError

from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming.admin import end_offsets
from streaming.broker import pid_alive
from streaming.connection import connect
from streaming.ingest import status_file


def committed_offsets(
    admin: KafkaAdminClient, group: str, partitions: list[TopicPartition], timeout_s: float
) -> dict[TopicPartition, Any]:
    """The group's committed offsets. Apache Kafka answers the first group request of a new
    cluster with COORDINATOR_NOT_AVAILABLE while it creates its offsets topic, COORDINATOR_LOAD_IN_PROGRESS
    while it loads it, and NOT_COORDINATOR from the broker it named a moment before while the
    topic's leadership settles: all pass, so ask again (finding the coordinator anew) until
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin.list_group_offsets({group: partitions}).get(group, {})
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def group_lag(settings: Settings, group: str) -> dict[str, int]:
    """Records past the group's committed offsets, per input topic (all of it when none)."""
    admin = connect(settings, KafkaAdminClient)
    reader = connect(settings, KafkaConsumer, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in INPUT_TOPICS
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        committed = committed_offsets(admin, group, partitions, settings.kafka_connect_timeout_s)
        ends = end_offsets(reader, partitions)
        starts = reader.beginning_offsets(partitions)
        lag = dict.fromkeys(INPUT_TOPICS, 0)
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            lag[tp.topic] += max(0, ends[tp] - done)
        return lag
    finally:
        admin.close()
        reader.close()


def ingest_status(settings: Settings, group: str) -> dict[str, Any]:
    path = status_file(settings, group)
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        status = {"group": group, "running": False, "counters": {}}
    status["running"] = bool(status.get("running")) and pid_alive(int(status.get("pid", 0)))
    status["lag"] = group_lag(settings, group)
    status["lag_total"] = sum(status["lag"].values())
    return status
