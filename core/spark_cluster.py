"""A Spark standalone cluster on this machine's loopback: a master and workers started with
``spark-class`` from the installed PySpark, as a city starts one on its own machines (and as
``docker/compose.yaml`` does).

The tests run the lake jobs and the optimizer on one, and ``citybrain bench lake --cluster
loopback`` compares it with ``local[*]``; jobs reach it through ``CITYBRAIN_SPARK_MASTER=spark://…``
like any other cluster. Each worker runs this venv's Python (``PYSPARK_PYTHON``), so the lake's
Python UDFs and the optimizer's SUMO runs import citybrain there. Each process logs to a file in
the cluster's folder; a cluster that does not come up says where to look.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.errors import CitybrainError
from core.loopback import free_loopback_port

MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class SparkCluster:
    """A running cluster: the master's URL for ``CITYBRAIN_SPARK_MASTER`` and its web UI."""

    master: str
    web_ui: str
    folder: Path

    def alive_workers(self) -> int:
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=5) as answer:
            state = json.load(answer)
        return sum(worker["state"] == "ALIVE" for worker in state["workers"])


def spark_class() -> str:
    """The venv's ``spark-class`` (PySpark installs it beside the interpreter), else PATH's."""
    found = Path(sys.executable).with_name("spark-class")
    return str(found) if found.exists() else shutil.which("spark-class") or "spark-class"


@contextmanager
def loopback_cluster(
    folder: Path, *, workers: int = 2, cores: int = 1, memory: str = "2g", timeout_s: float = 120
) -> Iterator[SparkCluster]:
    """Start a master and ``workers`` workers (``cores`` and ``memory`` each) with their logs and
    scratch space in ``folder``; stop them all when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(folder / "logs"),
        "SPARK_WORKER_DIR": str(folder / "work"),
    }
    port, ui = free_loopback_port(), free_loopback_port()
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}", folder)
    processes: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []

    def launch(name: str, *args: str) -> None:
        log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process below
        process = subprocess.Popen(
            [spark_class(), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append((process, log))

    loopback = ("--host", "127.0.0.1")
    try:
        launch("master", MASTER, *loopback, "--port", str(port), "--webui-port", str(ui))
        for n in range(workers):
            launch(
                f"worker-{n}",
                WORKER,
                *loopback,
                *("--cores", str(cores), "--memory", memory),
                *("--webui-port", str(free_loopback_port()), cluster.master),
            )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if cluster.alive_workers() == workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise CitybrainError(
                    f"the Spark cluster did not come up in {timeout_s:.0f} s: see the logs in {folder}"
                )
            time.sleep(0.5)
        yield cluster
    finally:
        for process, log in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()
