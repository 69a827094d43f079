"""citybrain_fuse run by Airflow (``dag.test()``) on bad input. Its runs over the sensor twin's bronze
go through Airflow's own scheduler: ``test_scheduler.py``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.dags.airflow_env import run_dag

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]


def test_bad_input_fails_the_run_with_the_lakes_message(citybrain_env, dagbag, tmp_path, capfd):
    from core.settings import Settings

    # A setting the lake refuses before it starts Spark: the task fails as any CitybrainError does.
    citybrain_env(Settings(var_dir=tmp_path / "var"), lake_crash_at="nowhere")

    result = run_dag(dagbag.dags["citybrain_fuse"], logical_date=datetime(2026, 11, 28, 7, 15, tzinfo=UTC))

    assert result.state == "failed"
    assert result.tasks == {"silver": "failed", "gold": "upstream_failed"}
    assert "CitybrainError: CITYBRAIN_LAKE_CRASH_AT must be one of" in capfd.readouterr().out
