"""citybrain_fuse run by Airflow (``dag.test()``) over the sensor twin's bronze: silver then gold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lake.tables import GOLD, SILVER, SLOT, partition_of, table
from tests.unit.dags.airflow_env import run_dag

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]


def test_one_run_fuses_its_quarter_hour_into_silver_and_gold(twin_lake, citybrain_env, dagbag, spark):
    """The tasks get the test run's shared Spark session (``spark``), as they would any running one."""
    settings, window_start, _window_end = twin_lake
    settings = citybrain_env(settings)

    # A manual run covers the whole quarter hour before its logical date: this one [start, start+15).
    result = run_dag(dagbag.dags["citybrain_fuse"], logical_date=window_start + SLOT)

    assert result.state == "success", result
    assert result.tasks == {"silver": "success", "gold": "success"}
    assert result.data_interval == (window_start, window_start + SLOT)
    silver, gold = result.returned["silver"], result.returned["gold"]
    assert (silver["layers"], gold["layers"]) == (["silver"], ["gold"])
    assert datetime.fromisoformat(gold["start"]) == window_start
    assert set(silver["tables"]) == set(SILVER) and set(gold["tables"]) == set(GOLD)
    assert gold["tables"]["gold.link_state_15min"]["rows"] > 0
    partition = table("gold.link_state_15min").partition_path(settings.lake_path, partition_of(window_start))
    assert partition.is_dir() and list(partition.glob("*.parquet"))


def test_bad_input_fails_the_run_with_the_lakes_message(citybrain_env, dagbag, tmp_path, capfd):
    from core.settings import Settings

    # A setting the lake refuses before it starts Spark: the task fails as any CitybrainError does.
    citybrain_env(Settings(var_dir=tmp_path / "var"), lake_crash_at="nowhere")

    result = run_dag(dagbag.dags["citybrain_fuse"], logical_date=datetime(2026, 11, 28, 7, 15, tzinfo=UTC))

    assert result.state == "failed"
    assert result.tasks == {"silver": "failed", "gold": "upstream_failed"}
    assert "CitybrainError: CITYBRAIN_LAKE_CRASH_AT must be one of" in capfd.readouterr().out
