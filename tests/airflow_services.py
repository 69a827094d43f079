"""Airflow as production runs it: the API server, the scheduler and the DAG processor, each its own
process, on a PostgreSQL metadata database, with the LocalExecutor.

:func:`start` migrates the database (``airflow db migrate``, as the compose file's ``airflow-init``
does) and starts the three on loopback with the settings ``docker/compose.yaml`` gives them (one
JWT secret, the execution API on the API server's port); :meth:`Airflow.wait_for_dag` waits until
the DAG processor has stored a DAG and the API serves it. The scheduler runs with
``use_job_schedule`` off: it creates no runs on its own (``citybrain_fuse`` catches up from
November, which a test does not want), but runs every manual run and backfill it is given —
through the REST API, as an operator or a script would. Every request is an admin's
(``simple_auth_manager_all_admins``): nothing but the test can reach the loopback port.

Tasks inherit the scheduler's environment, so the ``CITYBRAIN_*`` settings a test passes reach
them as they reach tasks in a deployment. Each process logs to a file in the home; a failure to
start names the process and shows the end of its log.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.loopback import free_loopback_port

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
COMPONENTS = {
    "api-server": ("api-server", "--host", "127.0.0.1"),
    "scheduler": ("scheduler",),
    "dag-processor": ("dag-processor",),
}
FINISHED = {"success", "failed"}


class AirflowFailed(RuntimeError):
    """A component did not start, or a run did not end in time; the message shows the logs."""


@dataclass
class Airflow:
    """The running components, their home (logs) and the API server's address."""

    home: Path
    api: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log_tail(name)}" for name in self.processes)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One REST call (``/api/v2`` + ``path``); an error status raises with the answer's body."""
        response = httpx.request(method, f"{self.api}/api/v2{path}", timeout=30, **kwargs)
        if response.is_error:
            raise AirflowFailed(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowFailed(f"airflow {name} exited ({process.returncode}):\n{self.log_tail(name)}")

    def wait_for_dag(self, dag_id: str, timeout_s: float = 120) -> dict[str, Any]:
        """The DAG as the API shows it, once the DAG processor has stored it."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            try:
                return self.request("GET", f"/dags/{dag_id}")
            except (AirflowFailed, httpx.TransportError):
                if time.monotonic() > deadline:
                    raise AirflowFailed(
                        f"{dag_id} did not appear in {timeout_s:.0f} s\n{self.logs()}"
                    ) from None
                time.sleep(1)

    def wait_for_runs(self, dag_id: str, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """The DAG's runs once ``count`` of them have finished (success or failed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            runs = self.request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]
            if sum(run["state"] in FINISHED for run in runs) >= count:
                return runs
            if time.monotonic() > deadline:
                states = [(run["dag_run_id"], run["state"]) for run in runs]
                raise AirflowFailed(
                    f"{dag_id}: {count} runs did not finish in {timeout_s:.0f} s: {states}\n{self.logs()}"
                )
            time.sleep(1)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def environment(home: Path, database_url: str, port: int, extra: Mapping[str, str]) -> dict[str, str]:
    """The processes' environment: this one without its Airflow and citybrain variables, then
    Airflow's settings (as ``docker/compose.yaml`` sets them) and ``extra`` (the tasks'
    ``CITYBRAIN_*`` settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CITYBRAIN_"))}
    secret = secrets.token_urlsafe(32)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            # psycopg 3 is async as well; Airflow's own derivation of this URL asks for asyncpg.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__API__SECRET_KEY": secret,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
    )
    env.update(extra)
    return env


def start(home: Path, database_url: str, extra: Mapping[str, str]) -> Airflow:
    """Migrate the metadata database in ``database_url`` and start the three components."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    airflow = Airflow(home, f"http://127.0.0.1:{port}", environment(home, database_url, port, extra))
    migrated = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=airflow.env, capture_output=True, text=True, timeout=300
    )
    if migrated.returncode != 0:
        raise AirflowFailed(f"airflow db migrate failed:\n{migrated.stdout[-2000:]}{migrated.stderr[-3000:]}")
    try:
        for name, args in COMPONENTS.items():
            with (home / f"{name}.log").open("wb") as log:
                airflow.processes[name] = subprocess.Popen(
                    [AIRFLOW, *args],
                    env=airflow.env,
                    cwd=home,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
    except BaseException:
        airflow.stop()
        raise
    return airflow
