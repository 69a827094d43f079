"""Kafka client options from the settings, and the reasons behind 'Unable to bootstrap'."""

from __future__ import annotations

import logging
from pathlib import Path

from core.settings import Settings
from streaming.connection import KAFKA_CONNECTION_LOGGER, bootstrap_failures, security_options


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
