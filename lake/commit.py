"""Writing a job's output: exactly the partitions of its interval, replaced whole, same bytes each run.

Spark writes the output under ``<lake>/_staging/<table>/<run>/``, one file per partition (the data
is repartitioned by the partition columns and sorted by the table's key, so the file's contents do
not depend on how the input was split). Each partition of the interval is then swapped in:
the staged folder, its file renamed ``part-00000.snappy.parquet``, replaces the live one; a
partition of the interval with no rows this time is removed. The result is Spark's dynamic
partition overwrite with names and bytes that repeat from run to run.

A job killed while staging has touched nothing live; one killed while swapping has replaced some
partitions of its interval, and running it again replaces them all. Readers skip the ``_`` and
``.`` names used on the way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from core.spark import spark_path
from lake.tables import Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Where a test may have the job SIGKILL itself (``CITYBRAIN_LAKE_CRASH_AT``).
CRASH_POINTS = ("staged", "swapping")


@dataclass(frozen=True)
class Written:
    """What one table's write did: rows and files now live, partitions replaced and removed."""

    table: str
    rows: int
    partitions: int
    removed: int


def staging_root(lake: Path) -> Path:
    return lake / "_staging"


def overwrite_partitions(
    df: DataFrame, table: Table, lake: Path, start: datetime, end: datetime, *, crash_at: str | None = None
) -> Written:
    """Replace ``table``'s partitions for [start, end) with ``df`` (already in the table's schema)."""
    # One staging folder per table and interval: a killed run's leftovers are cleared by its rerun,
    # and runs over other intervals (Airflow runs several at once) are left alone.
    staging = staging_root(lake) / table.name / f"{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}"
    shutil.rmtree(staging, ignore_errors=True)
    (
        df.repartition(*table.partition_by)
        .sortWithinPartitions(*table.partition_by, *table.key)
        .write.partitionBy(*table.partition_by)
        .parquet(spark_path(staging))
    )
    if crash_at == "staged":
        os.kill(os.getpid(), signal.SIGKILL)
    rows = replaced = removed = 0
    for number, values in enumerate(table.partition_values(start, end)):
        staged = _relocate(table.partition_path(lake, values), table.path(lake), staging)
        live = table.partition_path(lake, values)
        files = sorted(staged.glob("*.parquet")) if staged.is_dir() else []
        if files:
            rows += _swap_in(staged, files, live)
            replaced += 1
        elif live.exists():
            _remove(live)
            removed += 1
        if crash_at == "swapping" and number == 0:
            os.kill(os.getpid(), signal.SIGKILL)
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):  # other intervals of the table may be staging beside it
        staging.parent.rmdir()
    return Written(table.name, rows, replaced, removed)


def _relocate(path: Path, root: Path, new_root: Path) -> Path:
    return new_root / path.relative_to(root)


def _swap_in(staged: Path, files: list[Path], live: Path) -> int:
    """Rename the staged files ``part-NNNNN``, then put the staged folder where ``live`` was."""
    rows = 0
    for number, path in enumerate(files):
        rows += pq.read_metadata(path).num_rows
        path.rename(staged / f"part-{number:05d}.snappy.parquet")
    for stray in staged.iterdir():  # Spark's .crc side files
        if not stray.name.startswith("part-"):
            stray.unlink()
    live.parent.mkdir(parents=True, exist_ok=True)
    old = live.with_name(f".{live.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if live.exists():
        live.rename(old)
    staged.rename(live)
    shutil.rmtree(old, ignore_errors=True)
    return rows


def _remove(live: Path) -> None:
    old = live.with_name(f".{live.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    live.rename(old)
    shutil.rmtree(old)
