"""``citybrain_fuse`` run by Airflow's own scheduler, as in production: the API server, scheduler
and DAG processor in processes of their own, the LocalExecutor, PostgreSQL for the metadata
(:mod:`tests.airflow_services`). A backfill covers the first quarter hour of the sensor twin's lake
and a run triggered through the REST API the second; both runs succeed and each quarter hour's
silver and gold are in the lake. (The twin's third quarter hour is left out: each run is two cold
Spark processes, about two minutes on two cores, and a longer backfill proves nothing more.)"""

from __future__ import annotations

import pytest

from core.settings import Settings
from lake.delta import filled_slots
from lake.tables import GOLD, SILVER, SLOT, TABLES
from tests.airflow_services import start

pytestmark = pytest.mark.integration

DAG = "citybrain_fuse"


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``CITYBRAIN_*`` variables from which a task builds the same settings."""
    changed = settings.model_dump(exclude_defaults=True)
    return {f"CITYBRAIN_{name.upper()}": str(value) for name, value in changed.items()}


# Four Spark tasks, each a new process with a cold JVM and its Delta commits (60-120 s each on two
# cores), one at a time: the DAG runs one run at a time.
@pytest.mark.timeout(900)
def test_the_scheduler_runs_a_backfill_and_a_triggered_run_on_postgresql(twin_lake, postgres_url, tmp_path):
    settings, window_start, window_end = twin_lake
    windows = [window_start, window_start + SLOT]
    assert window_end - window_start == 3 * SLOT

    airflow = start(tmp_path / "airflow", postgres_url, settings_env(settings))
    try:
        dag = airflow.wait_for_dag(DAG)
        assert dag["is_paused"] and dag["max_active_runs"] == 1
        airflow.request("PATCH", f"/dags/{DAG}", json={"is_paused": False})
        # A backfill takes window starts, both ends included: the first quarter hour.
        airflow.request(
            "POST",
            "/backfills",
            json={
                "dag_id": DAG,
                "from_date": windows[0].isoformat(),
                "to_date": windows[0].isoformat(),
                "max_active_runs": 1,
            },
        )
        # A manual run fuses the quarter hour before its logical date, as the schedule's would.
        airflow.request(
            "POST",
            f"/dags/{DAG}/dagRuns",
            json={"logical_date": (windows[1] + SLOT).isoformat(), "dag_run_id": "last"},
        )
        runs = airflow.wait_for_runs(DAG, 2, timeout_s=720)
        last = f"/dags/{DAG}/dagRuns/last/taskInstances"
        gold = airflow.request("GET", f"{last}/gold/xcomEntries/return_value", params={"deserialize": True})
        tasks = airflow.request("GET", last)["task_instances"]
    finally:
        airflow.stop()

    assert [run["state"] for run in runs] == ["success"] * 2, (runs, airflow.logs())
    assert sorted(run["run_type"] for run in runs) == ["backfill", "manual"]
    intervals = sorted(run["data_interval_start"].replace("Z", "+00:00") for run in runs)
    assert intervals == [w.isoformat() for w in windows]
    assert {t["task_id"]: t["state"] for t in tasks} == {"silver": "success", "gold": "success"}
    fused = gold["value"]
    assert fused["layers"] == ["gold"] and fused["start"] == windows[1].isoformat()
    assert fused["tables"]["gold.link_state_15min"]["rows"] > 0
    quarter_hourly = [name for name in GOLD if TABLES[name].grain == SLOT]
    assert filled_slots(settings.lake_path, SILVER) == filled_slots(settings.lake_path, quarter_hourly)
    assert filled_slots(settings.lake_path, SILVER) == set(windows)
