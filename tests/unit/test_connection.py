"""Kafka client options from the settings, the reasons behind 'Unable to bootstrap', and the
wait for topics' metadata before a consumer joins."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.settings import Settings
from streaming.connection import (
    KAFKA_CONNECTION_LOGGER,
    TopicsMissing,
    bootstrap_failures,
    security_options,
    topic_partitions,
)


def test_plaintext_adds_no_option():
    assert security_options(Settings(kafka_bootstrap="k:9092")) == {}


def test_sasl_ssl_checks_the_host_against_the_given_ca_and_logs_in():
    settings = Settings(
        kafka_bootstrap="k:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="citybrain",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=Path("/etc/city/ca.pem"),
    )

    assert security_options(settings) == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": "/etc/city/ca.pem",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "citybrain",
        "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(settings), "the password never shows in a settings dump"


def test_the_distinct_reasons_a_bootstrap_failed_are_kept():
    logger = logging.getLogger(KAFKA_CONNECTION_LOGGER)
    with bootstrap_failures() as failures:
        for reason in (
            "SaslAuthenticationFailedError: bad password",
            "RequestTimedOutError",
            "RequestTimedOutError",
        ):
            logger.warning("Bootstrap connection to bootstrap-0 failed: %s (backoff 0.44 secs)", reason)
        logger.warning("Bootstrap bootstrap-0 not ready; waiting 0.44 secs")

    assert failures.reason == "SaslAuthenticationFailedError: bad password; RequestTimedOutError"
    assert failures not in logger.handlers


class SlowMetadata:
    """A consumer whose metadata learns the topics' partitions only at its ``late``-th fetch, as
    kafka-python's does for topics just created."""

    def __init__(self, partitions: dict[str, set[int]], late: int) -> None:
        self.partitions, self.late, self.fetches = partitions, late, 0

    def topics(self) -> set[str]:
        self.fetches += 1
        return set(self.partitions) if self.fetches >= self.late else set()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic) if self.fetches >= self.late else None


def test_topic_partitions_fetches_until_the_metadata_has_every_topic():
    consumer = SlowMetadata({"a.v1": {0, 1, 2}, "b.v1": {0}}, late=3)
    found = topic_partitions(Settings(kafka_bootstrap="k:9092"), consumer, ["a.v1", "b.v1"])
    assert found == {"a.v1": {0, 1, 2}, "b.v1": {0}}
    assert consumer.fetches == 3


def test_a_topic_the_brokers_never_show_is_named_with_the_fix():
    settings = Settings(kafka_bootstrap="k:9092", kafka_connect_timeout_s=0.3)
    consumer = SlowMetadata({"a.v1": {0}}, late=0)
    with pytest.raises(
        TopicsMissing, match=r"^b\.v1: not on the brokers at k:9092 after 0\.3 s; `citybrain topics`"
    ):
        topic_partitions(settings, consumer, ["a.v1", "b.v1"])
