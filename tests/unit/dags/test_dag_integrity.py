"""The DAG folder parses cleanly, each DAG is scheduled and documented as designed, and parsing
stays cheap: the DAG processor imports these files every few seconds, so a DAG file that started
Spark or a Kafka client at import would cost that on every parse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from lake.tables import GOLD, SILVER
from tests.unit.dags.airflow_env import DAGS_FOLDER, REPO

FUSE = "citybrain_fuse"
HEALTH = "citybrain_ingest_health"
OPTIMIZE = "citybrain_optimize"

#: What a DAG file must not import at parse time: the work belongs in the tasks.
HEAVY_MODULES = (
    "pyspark",
    "pandas",
    "pyarrow",
    "kafka",
    "lake.jobs",
    "lake.silver",
    "lake.gold",
    "streaming.health",
    "streaming.status",
    # the optimizer and SUMO: libsumo, scipy, the plan store and the Kafka producer come with them
    "optimizer",
    "sim",
    # Settings are read when a task runs, from that run's environment, not at parse time.
    "core.settings",
)
#: Seconds a DAG file may take to import beyond Airflow's own SDK: about 0.05 s, slack for a busy machine.
IMPORT_BUDGET_S = 1.0


@pytest.fixture(scope="module")
def fuse(dagbag):
    return dagbag.dags[FUSE]


@pytest.fixture(scope="module")
def health(dagbag):
    return dagbag.dags[HEALTH]


@pytest.fixture(scope="module")
def optimize(dagbag):
    return dagbag.dags[OPTIMIZE]


def runs(dag, count: int) -> list[tuple[datetime, datetime]]:
    """The data intervals of the first ``count`` scheduled runs, from Airflow's own scheduling."""
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    intervals, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        last = info.data_interval
        intervals.append((last.start, last.end))
    return intervals


def test_the_dag_folder_parses_without_errors_or_warnings(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.captured_warnings == {}
    assert {FUSE, HEALTH, OPTIMIZE} <= set(dagbag.dag_ids)


@pytest.mark.parametrize(("dag_id", "tag"), [(FUSE, "lake"), (HEALTH, "ingest"), (OPTIMIZE, "optimizer")])
def test_dags_are_tagged_and_documented(dagbag, dag_id, tag):
    dag = dagbag.dags[dag_id]

    assert {"citybrain", tag} <= set(dag.tags)
    assert dag.doc_md and dag_id in dag.doc_md
    for task in dag.tasks:
        assert task.doc_md, f"{dag_id}.{task.task_id} has no docstring"


def test_fuse_runs_every_quarter_hour_over_its_data_interval(fuse):
    first, second = runs(fuse, 2)

    assert fuse.start_date == datetime(2026, 11, 1, tzinfo=UTC)
    assert first == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 0, 15, tzinfo=UTC))
    assert second[0] == first[1] and second[1] - second[0] == timedelta(minutes=15)


def test_fuse_catches_up_one_window_at_a_time_with_retries(fuse):
    assert fuse.catchup is True
    assert fuse.max_active_runs == 1
    for task in fuse.tasks:
        assert task.retries >= 2 and task.retry_delay > timedelta(0)
        assert task.execution_timeout is not None


def test_fuse_runs_silver_then_gold_and_names_every_table_as_an_asset(fuse):
    silver, gold = fuse.task_dict["silver"], fuse.task_dict["gold"]

    assert gold.upstream_task_ids == {"silver"} and silver.upstream_task_ids == set()
    assert [asset.name for asset in silver.outlets] == list(SILVER)
    assert [asset.name for asset in gold.outlets] == list(GOLD)
    assert gold.outlets[0].uri == "x-citybrain-lake://gold/link_state_15min"
    assert all(asset.uri.startswith("x-citybrain-lake://") for asset in [*silver.outlets, *gold.outlets])


def test_ingest_health_checks_every_five_minutes_without_catchup_or_retries(health):
    (first_start, _), (second_start, _) = runs(health, 2)

    assert second_start - first_start == timedelta(minutes=5)
    assert health.catchup is False
    assert health.max_active_runs == 1
    assert [task.retries for task in health.tasks] == [0]


def test_optimize_runs_when_fuse_updates_the_gold_counts_it_samples_demand_from(fuse, optimize):
    from airflow.sdk import AssetAll

    from optimizer.demand.lake_counts import LINKS_TABLE, TURNS_TABLE

    condition = optimize.timetable.asset_condition
    scheduled_on = {asset.name for asset in condition.objects}
    produced = {asset.name for asset in fuse.task_dict["gold"].outlets}

    assert isinstance(condition, AssetAll)  # both tables: one gold task run updates them together
    assert scheduled_on == {TURNS_TABLE.name, LINKS_TABLE.name} and scheduled_on <= produced
    assert optimize.catchup is False and optimize.max_active_runs == 1
    for task in optimize.tasks:
        assert task.retries >= 1 and task.execution_timeout is not None
    assert optimize.task_dict["optimize_evaluate_propose"].upstream_task_ids == {"demand"}
    # incidents are answered on the same demand, beside the daily plan, not after it
    assert optimize.task_dict["incident_plans"].upstream_task_ids == {"demand"}
    assert {name: optimize.params[name] for name in ("budget_minutes", "seeds", "period_minutes", "end")} == {
        "budget_minutes": 2.0,
        "seeds": 3,
        "period_minutes": 60,
        "end": None,
    }


@pytest.mark.parametrize(
    "dag_file", ["citybrain_fuse.py", "citybrain_ingest_health.py", "citybrain_optimize.py"]
)
def test_importing_a_dag_file_is_cheap_and_imports_no_engine(dag_file, airflow_environment):
    probe = (
        "import importlib.util, json, sys, time\n"
        "import airflow.sdk\n"  # the cost every DAG file pays; not ours to measure
        "start = time.perf_counter()\n"
        "spec = importlib.util.spec_from_file_location('probe', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps({'seconds': time.perf_counter() - start, 'modules': sorted(sys.modules)}))\n"
    )
    # The repository root on the path, as an installed citybrain would be: DAG files import ``dags``.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }

    done = subprocess.run(
        [sys.executable, "-c", probe, str(DAGS_FOLDER / dag_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = [m for m in result["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES)]
    assert loaded == []
    assert result["seconds"] < IMPORT_BUDGET_S
