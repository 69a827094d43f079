"""A Spark standalone cluster on loopback for the test run: a master and two workers.

Started with ``spark-class`` from the installed PySpark, as a city starts one on its own machines
(and as ``docker/compose.yaml`` does): the jobs under test reach it through
``CITYBRAIN_SPARK_MASTER=spark://…`` like any other cluster. Each worker offers one core and
runs the venv's Python (``PYSPARK_PYTHON``), so the lake's Python UDFs and the optimizer's
SUMO runs import citybrain there. Stopped when the session ends.
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
from dataclasses import dataclass
from pathlib import Path

import pytest

from streaming.connection import free_loopback_port

WORKERS = 2
MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"
WORKER_MEMORY = "2g"


@dataclass(frozen=True)
class SparkCluster:
    master: str
    web_ui: str

    def alive_workers(self) -> int:
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=5) as answer:
            state = json.load(answer)
        return sum(worker["state"] == "ALIVE" for worker in state["workers"])


def spark_class() -> str:
    found = Path(sys.executable).with_name("spark-class")
    return str(found) if found.exists() else shutil.which("spark-class") or "spark-class"


def cluster_env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOG_DIR": str(folder / "logs"),
        "SPARK_WORKER_DIR": str(folder / "work"),
    }


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    folder = tmp_path_factory.mktemp("spark_cluster")
    env = cluster_env(folder)
    port, ui = free_loopback_port(), free_loopback_port()
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}")
    processes = []

    def launch(name: str, *args: str) -> None:
        log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process below
        process = subprocess.Popen(
            [spark_class(), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        processes.append((process, log))

    loopback = ("--host", "127.0.0.1")
    launch("master", MASTER, *loopback, "--port", str(port), "--webui-port", str(ui))
    for n in range(WORKERS):
        launch(
            f"worker-{n}",
            WORKER,
            *loopback,
            *("--cores", "1", "--memory", WORKER_MEMORY),
            *("--webui-port", str(free_loopback_port()), cluster.master),
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if cluster.alive_workers() == WORKERS:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Spark cluster did not come up: see " + str(folder)
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
