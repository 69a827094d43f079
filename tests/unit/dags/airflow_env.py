"""The one place where tests set Airflow up: a throwaway AIRFLOW_HOME with a SQLite metadata DB.

Airflow reads its configuration (home, metadata DB, DAG folder) when it is first imported and
keeps it for the life of the process, so the variables must be set before that import and must
name the same home every time a test module asks. Hence:

- one home per test process (:func:`airflow_home` hands out the same folder to every caller);
- the variables are set per test module (:func:`airflow_environment`, autouse in the DAG test
  folders) and removed again afterwards, so tests elsewhere do not see them;
- test modules import Airflow inside fixtures and tests, never at the top, so that the first
  import happens with the variables in place (:func:`airflow_environment` checks it did);
- Airflow's process-wide hooks (its root log handler, bound to the output pytest captured when it
  was installed, and its ``warnings.showwarning``) are swapped in for the DAG test modules and
  out again after each, so other tests' logging and warnings, and the interpreter's exit, do not
  go through them;
- the metadata DB is created from Airflow's models once per process (about 3 s), only for tests
  that run DAGs (:func:`airflow_db`); parsing DAGs needs no DB.

The DAG-folder conftests import these fixtures, which is how pytest shares them across folders;
:func:`run_dag` runs a DAG once and says how it ended.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
DAGS_FOLDER = REPO / "dags"

_state: dict[str, Any] = {}


def variables(home: Path) -> dict[str, str]:
    """The environment of an Airflow that lives in ``home`` and reads this repository's DAGs."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This process's AIRFLOW_HOME; the same folder for every test folder that asks."""
    if "home" not in _state:
        _state["home"] = tmp_path_factory.mktemp("airflow_home")
    return _state["home"]


@pytest.fixture(scope="module", autouse=True)
def airflow_environment(airflow_home: Path) -> Iterator[dict[str, str]]:
    """Airflow's variables and hooks for the duration of one test module, then gone again."""
    env = variables(airflow_home)
    with pytest.MonkeyPatch.context() as patch, _airflow_hooks():
        for name, value in env.items():
            patch.setenv(name, value)
        from airflow import configuration

        if Path(configuration.AIRFLOW_HOME) != airflow_home:
            raise RuntimeError(
                f"Airflow was imported before the test environment was set (its home is "
                f"{configuration.AIRFLOW_HOME}); import it inside fixtures and tests only"
            )
        yield env


@contextmanager
def _airflow_hooks() -> Iterator[None]:
    """Airflow's log handlers, root log level and warning hook while a DAG test module runs; what
    was there before afterwards.

    Airflow installs them when first imported (and may again when it runs a task): the handlers
    that appear on the root logger during a module, other than pytest's own, are Airflow's.
    """
    root = logging.getLogger()
    outside_level, outside_showwarning = root.level, warnings.showwarning
    present = set(root.handlers)
    if "hooks" in _state:
        handlers, level, showwarning = _state["hooks"]
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        warnings.showwarning = showwarning
    try:
        yield
    finally:
        ours = [h for h in root.handlers if h not in present]
        added = [h for h in ours if not type(h).__module__.startswith("_pytest")]
        _state["hooks"] = (added, root.level, warnings.showwarning)
        for handler in added:
            root.removeHandler(handler)
        root.setLevel(outside_level)
        warnings.showwarning = outside_showwarning


@pytest.fixture(scope="module")
def airflow_db(airflow_environment: dict[str, str]) -> None:
    """A metadata DB in the test home, created from Airflow's models (no migrations) once."""
    if not _state.get("db"):
        from airflow.utils.db import initdb

        initdb()
        _state["db"] = True


@pytest.fixture(scope="module")
def dagbag(airflow_environment: dict[str, str]) -> Any:
    """The repository's DAG folder, parsed as Airflow's DAG processor parses it."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER)


@dataclass(frozen=True)
class RunResult:
    """How a ``dag.test()`` run ended. ``dag.test()`` does not raise when a task fails: it logs the
    error and the run ends in state ``failed``, so tests look at the states."""

    state: str
    tasks: dict[str, str]
    data_interval: tuple[datetime, datetime]
    #: What each task returned (its ``return_value`` XCom).
    returned: dict[str, Any]


def run_dag(dag: Any, logical_date: datetime | None = None, *, retries: int = 0) -> RunResult:
    """Run ``dag`` once, in this process, with ``dag.test()``; needs :func:`airflow_db`.

    A copy of the DAG runs, with ``retries`` per task: ``dag.test()`` waits out each retry delay,
    and a test wants the first failure now, not after the production retries.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dag = copy.deepcopy(dag)
    for task in dag.tasks:
        task.retries = retries
    run = dag.test(logical_date=logical_date) if logical_date else dag.test()
    with create_session() as session:
        tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        query = XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, key="return_value")
        returned = {xcom.task_id: XComModel.deserialize_value(xcom) for xcom in session.scalars(query)}
    return RunResult(str(run.state), tasks, (run.data_interval_start, run.data_interval_end), returned)
