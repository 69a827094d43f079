"""``citybrain_ingest_health``: every 5 minutes, fail loudly if the ingest lags or dead-letters.

The check is :func:`streaming.health.check`, plain Python that the tests also call; it is imported
inside the task so that parsing this file imports no Kafka client.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

log = logging.getLogger(__name__)

DOC_MD = """
### citybrain_ingest_health

One task, **check**, asks the broker for

- the lag of the ingest consumer group (`CITYBRAIN_INGEST_GROUP`) on each input topic, and
- how many records each `<topic>.dlq` dead-letter topic gained since the previous check
  (the previous end offsets are kept in `<CITYBRAIN_VAR_DIR>/run/ingest_health.json`),

and **fails** when a topic lags more than `CITYBRAIN_INGEST_HEALTH_MAX_LAG` records, when a
dead-letter topic grew by more than `CITYBRAIN_INGEST_HEALTH_MAX_DEAD_LETTERS`, or when no
broker answers. The failure message names the topic, the figure and the limit; a failed run is
the alert (wire `on_failure_callback` or Airflow's notifiers to a pager in production).

**No retries**: the check records what it saw each time, so a retry would compare with the
failed check and pass. The next scheduled run, five minutes later, is the retry. No catchup: a
health check of the past measures the present.

**Code:** `streaming/health.py` (`check`, `assess`); lag from `streaming/status.py`.
"""


@dag(
    dag_id="citybrain_ingest_health",
    schedule="*/5 * * * *",
    start_date=datetime(2026, 11, 1, tzinfo=UTC),
    catchup=False,
    # Two checks at once would race on the state file and split the dead-letter growth between them.
    max_active_runs=1,
    default_args={"owner": "citybrain", "retries": 0, "execution_timeout": timedelta(minutes=3)},
    tags=["citybrain", "ingest"],
    doc_md=DOC_MD,
)
def citybrain_ingest_health() -> None:
    @task
    def check() -> dict[str, Any]:
        """Measure lag and dead-letter growth; raise `IngestUnhealthy` naming each problem."""
        from core.settings import Settings
        from streaming.health import check, require_healthy

        report = check(Settings())
        log.info("ingest health: %s", report.to_dict())
        return require_healthy(report).to_dict()

    check()


citybrain_ingest_health()
