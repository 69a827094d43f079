"""Where the broker is and how every Kafka client here connects to it.

One place turns the settings into client options, so a wrong address fails the same way
everywhere: :class:`BrokerUnreachable`, naming the address and where it came from, within
the connect timeout instead of hanging.
"""

from __future__ import annotations

from typing import Any

from kafka.errors import KafkaTimeoutError

from core.errors import CitybrainError
from core.settings import Settings


class BrokerUnreachable(CitybrainError, RuntimeError):
    """No Kafka broker answered at the configured address."""


class BrokerNotRunning(CitybrainError, RuntimeError):
    """The embedded broker is not started and no external Kafka is configured."""


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
    }


def unreachable(settings: Settings, bootstrap: str, exc: Exception) -> BrokerUnreachable:
    """The error to raise when a client could not reach ``bootstrap``."""
    return BrokerUnreachable(
        f"cannot reach Kafka at {bootstrap} (from {describe_source(settings)}) within "
        f"{settings.kafka_connect_timeout_s:g} s: {exc.__class__.__name__}: {exc}"
    )


def connect(settings: Settings, factory: Any, *args: Any, **options: Any) -> Any:
    """Build a kafka-python client, turning 'no broker' into :class:`BrokerUnreachable`."""
    merged = {**client_options(settings), **options}
    try:
        return factory(*args, **merged)
    except KafkaTimeoutError as exc:  # kafka-python's "Unable to bootstrap from ..."
        raise unreachable(settings, merged["bootstrap_servers"], exc) from None
