"""Loopback ports for the services citybrain starts on one machine: the brokers, a Spark
standalone cluster, the test run's Airflow."""

from __future__ import annotations

import socket


def free_loopback_port() -> int:
    """A loopback port free now (a server started on it may still lose the race for it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
