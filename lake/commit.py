"""Writing a job's output: the partitions of its interval replaced in one Delta commit.

Each silver and gold table is a Delta table. A job's output for [start, end) replaces exactly the
table's partitions of that interval (``replaceWhere``): rows written, the interval's old files
marked removed and the new ones added by one entry in the table's log, so a reader sees the whole
interval before or the whole interval after, never half of it. A partition of the interval with
no rows this time ends up empty. The data is repartitioned by the partition columns and sorted by
the table's key, so the rows of a rerun are the rows of the first run.

Old versions stay readable (time travel) until a VACUUM removes their files. A job killed while it
writes leaves files that no log entry names: no reader sees them, and running it again commits
what one clean run commits.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError
from lake.delta import Lake, delta_table, filled_partitions, sql_predicate
from lake.location import table_location
from lake.tables import Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Where a test may have the job SIGKILL itself (``CITYBRAIN_LAKE_CRASH_AT``): ``writing`` kills
#: the driver and its JVM once the first table's first data file is on disk, before its commit.
CRASH_POINTS = ("writing",)


@dataclass(frozen=True)
class Written:
    """What one table's write did: rows now in the interval, partitions filled and emptied, and the
    table version it committed."""

    table: str
    rows: int
    partitions: int
    removed: int
    version: int | None = None


def overwrite_partitions(
    df: DataFrame, table: Table, lake: Lake, start: datetime, end: datetime, *, crash_at: str | None = None
) -> Written:
    """Replace ``table``'s partitions for [start, end) with ``df`` (already in the table's schema)
    in the tables at ``lake`` (a lake folder, or a :class:`~lake.location.TableLocation`)."""
    interval = table.partition_values(start, end)
    before = filled_partitions(lake, table) & set(interval)
    writer = (
        df.repartition(*table.partition_by)
        .sortWithinPartitions(*table.partition_by, *table.key)
        .write.format("delta")
        .mode("overwrite")
    )
    if delta_table(lake, table) is None:
        writer = writer.partitionBy(*table.partition_by)
    else:
        writer = writer.option("replaceWhere", sql_predicate(table, interval))
    where = table_location(lake)
    if crash_at == "writing":
        folder = where.local_path(table)
        if folder is None:
            raise CitybrainError(
                "CITYBRAIN_LAKE_CRASH_AT watches a local folder; the tables are on object storage"
            )
        _kill_when_data_appears(_jvm_pid(df), folder)
    writer.save(where.spark_uri(table))
    after = delta_table(lake, table)
    filled = {tuple(p[c] for c in table.partition_by) for p in after.partitions()} & set(interval)
    metrics = after.history(1)[0].get("operationMetrics", {})
    return Written(
        table.name,
        rows=int(metrics.get("numOutputRows", 0)),
        partitions=len(filled),
        removed=len(before - filled),
        version=after.version(),
    )


def _jvm_pid(df: DataFrame) -> int:
    return int(df.sparkSession.sparkContext._jvm.java.lang.ProcessHandle.current().pid())


def _kill(jvm_pid: int) -> None:
    """SIGKILL the Spark driver's JVM, then this process: nothing gets to finish or clean up."""
    os.kill(jvm_pid, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_when_data_appears(jvm_pid: int, folder: Path) -> None:
    """Watch ``folder`` from a thread and :func:`_kill` at the first data file written after now."""
    began = time.time()

    def watch() -> None:
        while True:
            if any(p.stat().st_mtime >= began for p in folder.rglob("part-*.parquet")):
                _kill(jvm_pid)
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
