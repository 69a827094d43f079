"""Running the DAGs for real: Airflow (one place: :mod:`tests.unit.dags.airflow_env`), a way to
hand a test's settings to the tasks, and the sensor twin's lake for the fuse DAG."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from core.settings import Settings
from tests.unit.dags.airflow_env import airflow_db, airflow_environment, airflow_home, dagbag

__all__ = ["airflow_db", "airflow_environment", "airflow_home", "dagbag", "citybrain_env", "twin_lake"]


@pytest.fixture
def citybrain_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make ``Settings()`` inside a task equal the given settings (with changes), via CITYBRAIN_*.

    Tasks build their settings from the environment when they run, as in production, so a test
    passes its settings the same way; dag.test() runs the tasks in this process.
    """

    def apply(settings: Settings, **changes: object) -> Settings:
        wanted = settings.model_copy(update=changes)
        for name, value in wanted.model_dump().items():
            variable = f"CITYBRAIN_{name.upper()}"
            if value is None:
                monkeypatch.delenv(variable, raising=False)
            else:
                monkeypatch.setenv(variable, str(value))
        assert Settings() == wanted
        return wanted

    return apply


@pytest.fixture
def twin_lake(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> tuple[Settings, datetime, datetime]:
    """Settings of a fresh copy of the lake holding the sensor twin's bronze, and the window
    [start, end) it covers."""
    from tests.integration.conftest import twin_lake_cache
    from tests.integration.twin_lake import make_twin_lake

    return make_twin_lake(twin_lake_cache(tmp_path_factory), tmp_path)
