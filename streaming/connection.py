"""Where the broker is and how every Kafka client here connects to it.

One place turns the settings into client options, so a wrong address fails the same way
everywhere: :class:`BrokerUnreachable`, naming the address and where it came from, within
the connect timeout instead of hanging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from kafka.errors import KafkaTimeoutError

from core.errors import CitybrainError
from core.settings import Settings

#: The kafka-python logger that says why a bootstrap connection failed.
KAFKA_CONNECTION_LOGGER = "kafka.net.manager"


class BrokerUnreachable(CitybrainError, RuntimeError):
    """No Kafka broker answered at the configured address."""


class BrokerNotRunning(CitybrainError, RuntimeError):
    """The embedded broker is not started and no external Kafka is configured."""


class TopicsMissing(CitybrainError, RuntimeError):
    """Topics a client reads are not on the brokers."""


def bootstrap_servers(settings: Settings) -> str:
    """The bootstrap address: ``CITYBRAIN_KAFKA_BOOTSTRAP``, else the running embedded broker's."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from streaming.broker import read_state  # the embedded broker records where it listens

    state = read_state(settings)
    if state is None:
        raise BrokerNotRunning(
            "no Kafka broker: run `citybrain broker start` for the embedded one, "
            "or set CITYBRAIN_KAFKA_BOOTSTRAP=host:port for an external Kafka"
        )
    return state.bootstrap


def describe_source(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return "CITYBRAIN_KAFKA_BOOTSTRAP"
    return f"the embedded broker's state file in {settings.run_dir}"


def client_options(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """Options shared by every kafka-python client: address, identity and bounded waits."""
    timeout_ms = int(settings.kafka_connect_timeout_s * 1000)
    return {
        "bootstrap_servers": bootstrap or bootstrap_servers(settings),
        "client_id": "citybrain",
        "request_timeout_ms": max(timeout_ms, 30_000),
        "bootstrap_timeout_ms": timeout_ms,
        "reconnect_backoff_max_ms": 1_000,
        **security_options(settings),
    }


def security_options(settings: Settings) -> dict[str, Any]:
    """kafka-python's options for the configured security protocol: TLS against the given CA
    (hostname checked), SASL with the configured mechanism and user. Empty for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol} if protocol != "PLAINTEXT" else {}
    if protocol.endswith("SSL"):
        options["ssl_check_hostname"] = True
        if settings.kafka_ssl_cafile is not None:
            options["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password  # the settings refuse SASL without one
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
        )
    return options


def unreachable(
    settings: Settings, bootstrap: str, exc: Exception, reason: str | None = None
) -> BrokerUnreachable:
    """The error to raise when a client could not reach ``bootstrap``; ``reason`` is why its
    connections failed, when the client said (see :func:`bootstrap_failures`)."""
    why = f" (failures seen: {reason})" if reason else ""
    return BrokerUnreachable(
        f"cannot reach Kafka at {bootstrap} (from {describe_source(settings)}) within "
        f"{settings.kafka_connect_timeout_s:g} s: {exc.__class__.__name__}: {exc}{why}"
    )


class BootstrapFailures(logging.Handler):
    """kafka-python logs why each bootstrap connection failed (a refused password, a certificate
    no trusted CA signed, a refused connection) but raises only 'Unable to bootstrap'; this keeps
    the distinct reasons so the error can name them (a retry that timed out hides none)."""

    PREFIX = "Bootstrap connection to "

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(self.PREFIX) and " failed: " in message:
            reason = message.split(" failed: ", 1)[1].rsplit(" (backoff", 1)[0]
            if reason not in self.reasons:
                self.reasons.append(reason)

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


@contextmanager
def bootstrap_failures() -> Iterator[BootstrapFailures]:
    """Collect kafka-python's bootstrap failures while the block runs."""
    handler = BootstrapFailures()
    logger = logging.getLogger(KAFKA_CONNECTION_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def connect(settings: Settings, factory: Any, *args: Any, **options: Any) -> Any:
    """Build a kafka-python client, turning 'no broker' into :class:`BrokerUnreachable`."""
    merged = {**client_options(settings), **options}
    with bootstrap_failures() as failures:
        try:
            return factory(*args, **merged)
        except KafkaTimeoutError as exc:  # kafka-python's "Unable to bootstrap from ..."
            raise unreachable(settings, merged["bootstrap_servers"], exc, failures.reason) from None


def topic_partitions(settings: Settings, consumer: Any, topics: Iterable[str]) -> dict[str, set[int]]:
    """Each of ``topics``' partitions, fetched afresh until the consumer's metadata has every topic
    with some; :class:`TopicsMissing` names those still without after the connect timeout.

    A consumer that assigns itself partitions reads the list from here: right after the topics are
    created the metadata can name a topic with no partitions yet.

    A group member calls it after ``subscribe`` and before its first poll, so that the group's
    first assignment already covers every partition. If the group forms before the metadata has
    them, the leader assigns nothing, and kafka-python 3.0 repairs that with a second rebalance
    that the metadata triggers; when that rebalance outlasts the poll that started it, its
    assignment is never applied and the member reads nothing until the group changes again.
    Apache Kafka under load showed it in a CI run and about once in eight joins right after the
    topics were created; with this wait, none in forty.
    """
    wanted = list(topics)
    deadline = time.monotonic() + settings.kafka_connect_timeout_s
    while True:
        consumer.topics()  # always a metadata request; a subscribed consumer's group sees it too
        found = {topic: set(consumer.partitions_for_topic(topic) or ()) for topic in wanted}
        missing = [topic for topic, partitions in found.items() if not partitions]
        if not missing:
            return found
        if time.monotonic() > deadline:
            raise TopicsMissing(
                f"{', '.join(missing)}: not on the brokers at {bootstrap_servers(settings)} after "
                f"{settings.kafka_connect_timeout_s:g} s; `citybrain topics` creates the contract topics"
            )
        time.sleep(0.2)
