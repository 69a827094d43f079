"""``citybrain_fuse``: every 15 minutes, that quarter hour's bronze data → silver → gold.

This file only schedules. The work is :func:`lake.jobs.fuse`, which the ``citybrain`` CLI and the
tests call the same way; it is imported inside the tasks, so parsing this file (which the DAG
processor does every few seconds) starts no Spark and imports no Kafka client.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from dags import assets

DOC_MD = """
### citybrain_fuse

Fuses one 15-minute window of the lake per run, in two tasks:

1. **silver**: bronze (raw Kafka records) → clean detector readings, map-matched probe points,
   weather, incidents and signal controllers' events (`silver.*` tables);
2. **gold**: silver → fused link state, turning movements, signal cycles and approach measures
   (ATSPM) per 15 minutes, and the day's detector health (`gold.*` tables).

Each task updates its tables' assets (`x-citybrain-lake://<layer>/<table>`, defined in
`dags/assets.py`), so DAGs that need fresh gold data can schedule on them.

**Window.** A run's data interval is its window: the run with logical date 07:00 UTC starts
at 07:15 and fuses [07:00, 07:15). Reruns rewrite the same partitions, so clearing a run or
backfilling is safe.

**Backfill** (Airflow 3). The dates are logical dates, i.e. window starts, both included; this
fuses the 96 windows of 1 November:

    airflow backfill create --dag-id citybrain_fuse \\
        --from-date 2026-11-01T00:00:00+00:00 --to-date 2026-11-01T23:45:00+00:00 \\
        --max-active-runs 1 --reprocess-behavior completed

`--dry-run` lists the windows without creating runs. `--reprocess-behavior completed` reruns
windows that already succeeded (after a fix in the lake code); the default, `none`, only fills
windows without a run. Keep `--max-active-runs 1` on a local Spark: windows of one day rewrite
the same daily detector-health partition. Without Airflow, the same job:
`citybrain lake fuse --start 2026-11-01T00:00Z --end 2026-11-01T01:00Z`.

**Retries.** Two, a few minutes apart, for a busy Spark or a slow file system; bad input
(a `CitybrainError`) fails the same way on every try and ends in a failed run with its message
in the task log.

**Code:** `lake/jobs.py` (`fuse`), `lake/silver.py`, `lake/gold.py`, `lake/signal_gold.py`
(measures in `lake/signal_measures.py`); tables in `lake/tables.py`;
configuration from `CITYBRAIN_*` variables (`core/settings.py`), read when a task runs.
"""


def _utc(moment: datetime) -> datetime:
    """A plain ``datetime`` in UTC: Airflow hands out pendulum datetimes, the lake wants the stdlib."""
    return datetime.fromisoformat(moment.isoformat()).astimezone(UTC)


def fuse_window(layer: str) -> dict[str, Any]:
    """Run the lake's fuse for one layer over this run's data interval; its report as JSON."""
    from core.settings import Settings
    from lake.jobs import fuse

    context = get_current_context()
    start, end = _utc(context["data_interval_start"]), _utc(context["data_interval_end"])
    return fuse(Settings(), start, end, layers=(layer,)).to_dict()


@dag(
    dag_id="citybrain_fuse",
    # Data-interval cron: each run covers the quarter hour before it, aligned to :00/:15/:30/:45,
    # as the lake's 15-minute partitions are (a plain cron schedule would give empty intervals).
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=True,
    # One window at a time: windows of one day share the daily detector-health partition, and a
    # local Spark session has room for one job.
    max_active_runs=1,
    default_args={
        "owner": "citybrain",
        "retries": 2,
        "retry_delay": timedelta(minutes=3),
        "execution_timeout": timedelta(minutes=30),
    },
    tags=["citybrain", "lake"],
    doc_md=DOC_MD,
)
def citybrain_fuse() -> None:
    @task(outlets=list(assets.SILVER))
    def silver() -> dict[str, Any]:
        """Bronze → the `silver.*` tables for this run's 15-minute window (`lake.jobs.fuse`)."""
        return fuse_window("silver")

    # Also across runs (a backfill beside the schedule): see max_active_runs above.
    @task(outlets=list(assets.GOLD), max_active_tis_per_dag=1)
    def gold() -> dict[str, Any]:
        """Silver → the `gold.*` tables for this run's 15-minute window (`lake.jobs.fuse`)."""
        return fuse_window("gold")

    silver() >> gold()


citybrain_fuse()
