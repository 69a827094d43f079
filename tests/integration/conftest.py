"""Fixtures for tests against the real embedded Kafka-protocol broker (Tansu)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from citybrain.settings import Settings
from streaming import admin, broker
from streaming.connection import connect

pytestmark = pytest.mark.integration

# Tansu completes a group join only after the rebalance timeout: keep it short in tests.
TEST_POLL_INTERVAL_MS = 3_000


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[Settings]:
    """A fresh embedded broker with every topic created, and settings pointing at it."""
    settings = Settings(
        var_dir=tmp_path / "var",
        kafka_bootstrap=None,
        lake_uri=None,
        kafka_max_poll_interval_ms=TEST_POLL_INTERVAL_MS,
        ingest_linger_ms=200,
        ingest_status_interval_s=1,
    )
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
    env.update(
        CITYBRAIN_VAR_DIR=str(settings.var_dir),
        CITYBRAIN_KAFKA_MAX_POLL_INTERVAL_MS=str(TEST_POLL_INTERVAL_MS),
        CITYBRAIN_INGEST_LINGER_MS="200",
        CITYBRAIN_INGEST_STATUS_INTERVAL_S="1",
    )
    env.update(extra)
    return env


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
