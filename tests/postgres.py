"""One throwaway PostgreSQL cluster for the whole test run, as production's database is PostgreSQL.

Debian's server binaries (``scripts/ensure-postgresql`` installs them) ``initdb`` a cluster into
a temporary folder and ``pg_ctl`` starts it on a free loopback port, its Unix socket in that
folder too, so it touches no system cluster; it is stopped and deleted when the session ends.
Each test that asks for :func:`postgres_url` gets a fresh database of its own in it (``CREATE
DATABASE`` takes milliseconds; a cluster takes about a second). Missing binaries fail the tests
that use it with :class:`PostgresMissing`: integration tests run on the real thing or not at all.

PostgreSQL refuses to run as root, so under uid 0 the cluster belongs to the ``postgres`` system
user (Debian's package makes it): the folder is handed to it and ``initdb``/``pg_ctl`` run as it.
Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the cluster
dies with the session.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
#: The cluster's superuser, trusted on loopback and the socket (nobody else can reach either).
SUPERUSER = "citybrain"
#: ``max_connections``: the tests' engines keep their pools (one engine per URL and process), so
#: there is room for many databases. ``timezone``: far from UTC, with a quarter-hour offset, as a
#: city's server may run on local time; code that reads a timestamp back in the server's zone
#: instead of UTC fails here.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "300",
    "timezone": "'Pacific/Chatham'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
START_ATTEMPTS = 3


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed; the message says how to install them."""


def server_binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres: Debian's newest, else the one on PATH."""

    def major(folder: Path) -> int:
        name = folder.parent.name
        return int(name) if name.isdigit() else -1

    candidates = sorted(DEBIAN_BINARIES.glob("*/bin"), key=major, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in SERVER_BINARIES):
            return folder
    raise PostgresMissing(
        "the PostgreSQL tests start their own server and need its binaries (initdb, pg_ctl, postgres), "
        f"found neither under {DEBIAN_BINARIES}/*/bin nor on PATH; install them with "
        "scripts/ensure-postgresql (part of make setup) or: sudo apt-get install postgresql"
    )


def _owner() -> pwd.struct_passwd | None:
    """Who runs the server: ``None`` for the current user, the ``postgres`` user under root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(
            "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as; "
            "Debian's postgresql package creates one: sudo apt-get install postgresql"
        ) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    """A running cluster: its binaries, folder and port; :meth:`database` makes a database in it."""

    bin: Path
    root: Path
    port: int = 0
    owner: pwd.struct_passwd | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` over loopback TCP, as a deployment would connect."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """A server binary run as the cluster's owner; a failure raises with its output."""
        as_owner: dict[str, Any] = {}
        if self.owner is not None:
            as_owner = {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.bin / args[0]), *map(str, args[1:])],
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=120,
            **as_owner,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr}{result.stdout}\n{log}"
            )
        return result

    def init(self) -> None:
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        self.run(
            "initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{self.root}'\n")
            conf.writelines(f"{name} = {value}\n" for name, value in SERVER_SETTINGS.items())

    def start(self) -> None:
        """Start on a free port; another is tried if the port was taken between probe and bind."""
        for attempt in range(START_ATTEMPTS):
            self.port = _free_port()
            try:
                options = f"-p {self.port}"
                self.run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options, "start")
                return
            except RuntimeError as exc:
                if attempt + 1 == START_ATTEMPTS or "could not bind" not in str(exc):
                    raise

    def stop(self) -> None:
        self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg
        from psycopg import sql

        name = f"test_{next(self._names)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Cluster]:
    """The session's PostgreSQL cluster, started on first use and stopped and deleted at the end."""
    cluster = Cluster(server_binaries(), Path(tempfile.mkdtemp(prefix="citybrain-pg-")), owner=_owner())
    try:
        cluster.init()
        cluster.start()
        yield cluster
        cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgresql: Cluster) -> str:
    """The SQLAlchemy URL of a fresh database for this test alone."""
    return postgresql.database()
