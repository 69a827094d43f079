"""Apache Kafka's own broker on loopback: KRaft, one process that is broker and controller.

The embedded Tansu keeps records in memory; a city's brokers are Apache Kafka, and the code is
proven against the same server here. Its jars come from Maven Central through ``pom.xml``'s
``kafka`` profile, resolved by ``make setup`` into ``<jvm_dir>/kafka``, and it runs from that
classpath with the machine's Java 17. Its data folder is formatted once (a cluster id and, when a
secured listener is wanted, its SCRAM users) and reused, so records survive a restart.

Besides the plain listener the broker can open a second one with SASL_SSL (SCRAM-SHA-512 over
TLS with a PEM certificate), which is how a city's cluster is secured: the clients reach it only
through the ``CITYBRAIN_KAFKA_SECURITY_PROTOCOL``/``SASL``/``SSL`` settings.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import CitybrainError
from core.files import write_atomic
from core.loopback import free_loopback_port
from core.settings import Settings

#: Marks a formatted KRaft log folder (written by the storage tool).
FORMATTED_MARKER = "meta.properties"
PROFILE = "kafka"


class KafkaJarsMissing(CitybrainError, RuntimeError):
    """Apache Kafka's jars are not resolved; ``make setup`` resolves them from ``pom.xml``."""


class KafkaFormatFailed(CitybrainError, RuntimeError):
    """Kafka's storage tool refused to format the data folder; the message quotes it."""


@dataclass(frozen=True)
class ScramUser:
    name: str
    password: str


@dataclass(frozen=True)
class SecuredListener:
    """A SASL_SSL listener: the broker's certificate chain and unencrypted private key (PEM files,
    the certificate valid for 127.0.0.1 and localhost), and the SCRAM-SHA-512 users it knows.
    Users are written when the data folder is formatted, so a folder keeps its first users."""

    certificate: Path
    key: Path
    users: tuple[ScramUser, ...]


@dataclass(frozen=True)
class Listeners:
    """The loopback ports of a broker; ``secured`` is 0 when it has no SASL_SSL listener."""

    plain: int
    controller: int
    secured: int = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.plain}"

    @property
    def secured_bootstrap(self) -> str | None:
        return f"localhost:{self.secured}" if self.secured else None


def classpath(settings: Settings) -> str:
    """The broker's classpath, or :class:`KafkaJarsMissing` saying how to get it."""
    folder = settings.jvm_dir / PROFILE
    if not any(folder.glob("kafka_2.13-*.jar")):
        raise KafkaJarsMissing(
            f"Apache Kafka's jars are not in {folder}: run `make setup`, which resolves pom.xml's "
            f"'{PROFILE}' profile from Maven Central (or set CITYBRAIN_JVM_DIR to where they are)"
        )
    return f"{folder}/*"


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")  # the JVM's own convention, as Spark reads it
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    found = str(candidate) if candidate and candidate.exists() else shutil.which("java")
    if found is None:
        raise KafkaJarsMissing("Apache Kafka needs Java 17+: run `make setup` (scripts/ensure-java)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_listeners(directory: Path, secured: bool) -> Listeners:
    """The ports the broker in ``directory`` used last, while they are free (clients keep their
    address across a restart), else fresh free ones."""
    try:
        last = Listeners(**json.loads((directory / "listeners.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        last = None
    wanted = ("plain", "controller", "secured") if secured else ("plain", "controller")
    if last is not None and all(getattr(last, name) and _port_free(getattr(last, name)) for name in wanted):
        return last if secured else Listeners(last.plain, last.controller)
    ports = {name: free_loopback_port() for name in wanted}
    return Listeners(**ports)


def server_properties(
    data_dir: Path, listeners: Listeners, secured: SecuredListener | None, group_join_delay_ms: int = 0
) -> str:
    """The broker's configuration: single node, replication factors of one, loopback only."""
    names = {"PLAINTEXT": listeners.plain, "CONTROLLER": listeners.controller}
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    advertised = [f"PLAINTEXT://127.0.0.1:{listeners.plain}"]
    if secured is not None:
        names["SECURED"] = listeners.secured
        protocols.append("SECURED:SASL_SSL")
        advertised.append(f"SECURED://localhost:{listeners.secured}")
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{listeners.controller}",
        "listeners": ",".join(f"{name}://127.0.0.1:{port}" for name, port in names.items()),
        "advertised.listeners": ",".join(advertised),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": ",".join(protocols),
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": str(group_join_delay_ms),
        # Small segments and a short check interval: a test's data folder stays small.
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.check.interval.ms": "60000",
    }
    if secured is not None:
        prefix = "listener.name.secured"
        lines.update(
            {
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                f"{prefix}.sasl.enabled.mechanisms": "SCRAM-SHA-512",
                f"{prefix}.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                f"{prefix}.ssl.keystore.type": "PEM",
                f"{prefix}.ssl.keystore.certificate.chain": _pem_value(secured.certificate),
                f"{prefix}.ssl.keystore.key": _pem_value(secured.key),
            }
        )
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def _pem_value(path: Path) -> str:
    """A PEM file as a one-line properties value (Kafka reads PEM keystores inline)."""
    return "\\n".join(path.read_text().strip().splitlines())


def new_cluster_id() -> str:
    """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes), never starting
    with '-', which the storage tool's argument parser would take for an option (Kafka's own
    ``Uuid.randomUuid`` draws again for the same reason)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def format_storage(
    settings: Settings, directory: Path, config: Path, secured: SecuredListener | None
) -> None:
    """Format the KRaft data folder once: a new cluster id and, for a secured listener, its users."""
    if (directory / "data" / FORMATTED_MARKER).exists():
        return
    cluster_id = new_cluster_id()
    command = [java_binary(), "-cp", classpath(settings), "kafka.tools.StorageTool", "format"]
    command += ["--cluster-id", cluster_id, "--config", str(config)]
    for user in secured.users if secured else ():
        command += ["--add-scram", f"SCRAM-SHA-512=[name={user.name},password={user.password}]"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise KafkaFormatFailed(
            f"Kafka's storage tool could not format {directory / 'data'}: "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )


def launch(
    settings: Settings,
    directory: Path,
    log_path: Path,
    secured: SecuredListener | None = None,
    group_join_delay_ms: int = 0,
) -> tuple[subprocess.Popen, Listeners]:
    """Start the broker whose data lives in ``directory``; return its process and listeners
    without waiting for it to answer (the caller waits, as for Tansu)."""
    directory.mkdir(parents=True, exist_ok=True)
    listeners = choose_listeners(directory, secured is not None)
    config = directory / "server.properties"
    write_atomic(
        config, server_properties(directory / "data", listeners, secured, group_join_delay_ms), durable=False
    )
    format_storage(settings, directory, config, secured)
    write_atomic(directory / "listeners.json", json.dumps(asdict(listeners)), durable=False)
    command = [
        java_binary(),
        f"-Xmx{settings.kafka_broker_heap}",
        "-Xms64m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        # log4j2's default configuration, warnings and errors only: the broker's INFO is chatty.
        "-Dorg.apache.logging.log4j.level=WARN",
        "-cp",
        classpath(settings),
        "kafka.Kafka",
        str(config),
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the CLI call that started it
        )
    return process, listeners
