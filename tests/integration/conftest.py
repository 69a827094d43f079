"""Fixtures of the integration tests: the real embedded Kafka-protocol broker (Tansu), and the
sensor twin's lake fused once per session for every folder that reads gold (lake, optimizer, DAGs)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from core.settings import Settings
from streaming import admin, broker
from streaming.connection import connect
from tests.integration.twin_lake import make_twin_lake

pytestmark = pytest.mark.integration

# Tansu completes a group join only after the rebalance timeout: keep it short in tests.
TEST_POLL_INTERVAL_MS = 3_000


#: Runs a test against both brokers: the embedded Tansu and the session's Apache Kafka.
both_brokers = pytest.mark.parametrize("broker_kind", ["tansu", "kafka"], indirect=True)


@pytest.fixture
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Which broker ``kafka`` gives: Tansu unless the test is marked ``both_brokers``."""
    return getattr(request, "param", "tansu")


@pytest.fixture
def kafka(tmp_path: Path, broker_kind: str, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Fresh topics on a broker, and settings pointing at it: a Tansu started for the test, or
    the session's Apache Kafka (an external Kafka to the code under test, as in production)."""
    settings = Settings(
        var_dir=tmp_path / "var",
        kafka_bootstrap=None,
        lake_uri=None,
        kafka_max_poll_interval_ms=TEST_POLL_INTERVAL_MS,
        ingest_linger_ms=200,
        ingest_status_interval_s=1,
    )
    if broker_kind == "kafka":
        server = request.getfixturevalue("apache_kafka")
        # Apache Kafka needs no short rebalance timeout: its default, as in production; a killed
        # ingest's partitions pass on after the broker's least session timeout.
        update = {
            "kafka_bootstrap": server.bootstrap,
            "kafka_max_poll_interval_ms": None,
            "kafka_session_timeout_ms": 6_000,
        }
        settings = settings.model_copy(update=update)
        server.fresh_topics(settings)
        yield settings
        return
    broker.start(settings)
    admin.ensure_topics(settings)
    yield settings
    broker.stop(settings)


@pytest.fixture
def reader(kafka: Settings) -> Iterator[KafkaConsumer]:
    """A group-less consumer for reading topics back."""
    consumer = connect(kafka, KafkaConsumer, enable_auto_commit=False)
    yield consumer
    consumer.close()


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a ``citybrain`` subprocess needs to find this test's broker and lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_")}
    if settings.kafka_bootstrap:
        env["CITYBRAIN_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    for name in ("kafka_max_poll_interval_ms", "kafka_session_timeout_ms"):
        if getattr(settings, name) is not None:
            env[f"CITYBRAIN_{name.upper()}"] = str(getattr(settings, name))
    env.update(
        CITYBRAIN_VAR_DIR=str(settings.var_dir),
        CITYBRAIN_INGEST_LINGER_MS="200",
        CITYBRAIN_INGEST_STATUS_INTERVAL_S="1",
    )
    env.update(extra)
    return env


def read_records(reader: KafkaConsumer, topic: str, wait_s: float = 10.0) -> list:
    """Every record on ``topic``, from the start of each partition, waiting up to ``wait_s`` for
    the ends seen when asked."""
    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic))]
    reader.assign(partitions)
    reader.seek_to_beginning(*partitions)
    ends = reader.end_offsets(partitions)
    records, deadline = [], time.monotonic() + wait_s
    while any(reader.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
        records += [r for batch in reader.poll(timeout_ms=500).values() for r in batch]
    return records


def citybrain(
    settings: Settings, *args: str, timeout: float = 120, input_bytes: bytes | None = None, **env: str
) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess; stdout and stderr come back as text."""
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", *args],
        env=cli_env(settings, **env),
        input=input_bytes,
        capture_output=True,
        timeout=timeout,
    )
    result.stdout = result.stdout.decode(errors="replace")
    result.stderr = result.stderr.decode(errors="replace")
    return result


@dataclass(frozen=True)
class TwinLake:
    """A copy of the sensor twin's lake: its settings, the window [start, end) it covers, and the
    twin's ground truth."""

    settings: Settings
    start: datetime
    end: datetime
    truth: Path

    def reading(self, var_dir: Path) -> Settings:
        """Settings that read this lake but keep everything else (built networks, simulation runs,
        plan store, broker state) under ``var_dir``: how a test uses a lake it must not change."""
        return self.settings.model_copy(update={"var_dir": var_dir, "lake_uri": str(self.settings.lake_path)})


def twin_lake_cache(factory: pytest.TempPathFactory) -> Path:
    """Where the twin's bronze is built once per session; the DAG tests' ``twin_lake`` uses it too."""
    cache = Path(factory.getbasetemp()) / "twin_lake_cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def fused(tmp_path_factory: pytest.TempPathFactory, spark) -> TwinLake:
    """The twin's lake after one clean fuse of its whole window, shared by the session's lake,
    optimizer and DAG tests (read only: copy it, or write beside it with :meth:`TwinLake.reading`)."""
    from lake.jobs import fuse

    cache = twin_lake_cache(tmp_path_factory)
    settings, start, end = make_twin_lake(cache, tmp_path_factory.mktemp("fused"))
    fuse(settings, start, end, spark=spark)
    return TwinLake(settings, start, end, cache / "truth")
