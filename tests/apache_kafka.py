"""One Apache Kafka broker for the whole test run, as production's brokers are Apache Kafka.

``streaming.broker.start(kind="kafka")`` starts it (the jars ``make setup`` resolved from
``pom.xml``) with a plain listener and a second, SASL_SSL one: the test makes a throwaway CA, the
broker's certificate for ``localhost`` signed by it, and a SCRAM-SHA-512 user, so the client
settings of a secured cluster are proven against the real server. Tests share the broker; each
test that takes the ``kafka`` fixture on it gets the topics deleted and created afresh (about a
second), as it gets a fresh Tansu. The broker is stopped when the session ends.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kafka import KafkaAdminClient

from core.settings import Settings
from streaming import admin, broker
from streaming.connection import connect
from streaming.kafka_server import ScramUser, SecuredListener

USER = ScramUser("citybrain-test", "secret-for-the-test-only")


@dataclass(frozen=True)
class ApacheKafka:
    """The session's broker: its plain address, its SASL_SSL address, the CA that signed its
    certificate, and the SCRAM user it knows."""

    settings: Settings
    bootstrap: str
    secured_bootstrap: str
    ca_file: Path
    user: ScramUser

    def fresh_topics(self, settings: Settings) -> None:
        """Delete every topic and consumer group the last test left, then create the topics."""
        client = connect(settings, KafkaAdminClient)
        try:
            topics = [t for t in client.list_topics() if not t.startswith("__")]
            if topics:
                client.delete_topics(topics)
            groups = [group["group_id"] for group in client.list_groups()]
            if groups:  # a group with live members stays; its offsets went with the topics
                client.delete_groups(groups)
            deadline = time.monotonic() + 30
            while any(not t.startswith("__") for t in client.list_topics()):
                assert time.monotonic() < deadline, "Apache Kafka did not delete the last test's topics"
                time.sleep(0.05)
        finally:
            client.close()
        admin.ensure_topics(settings)


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a broker certificate for localhost/127.0.0.1 signed by it: (ca, cert, key) PEMs."""
    now = datetime.now(UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("citybrain test CA"))
        .issuer_name(name("citybrain test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "broker.pem", folder / "broker.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    folder = tmp_path_factory.mktemp("apache_kafka")
    ca, cert, key = make_certificates(folder)
    settings = Settings(var_dir=folder / "var", kafka_bootstrap=None, lake_uri=None)
    state = broker.start(settings, kind="kafka", secured=SecuredListener(cert, key, (USER,)))
    assert state.secured_bootstrap, "the broker was asked for a SASL_SSL listener"
    try:
        yield ApacheKafka(settings, state.bootstrap, state.secured_bootstrap, ca, USER)
    finally:
        broker.stop(settings)
