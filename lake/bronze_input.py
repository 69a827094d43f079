"""Reading bronze into a lake job: the files of an interval, each checked before Spark reads it.

Bronze is partitioned by event hour (:mod:`streaming.bronze`), so the files for [start, end) are
those of the hours it touches. Every file's footer is read and its columns compared with the
topic's bronze schema before any job writes anything: a corrupt file or a schema drift stops the
job with an error naming the file, and no silver or gold partition is touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import CitybrainError
from core.spark import spark_path
from streaming.bronze import bronze_root, bronze_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class BadBronzeFile(CitybrainError):
    """A bronze file that cannot be read, or whose columns are not the topic's; names the file."""


def bronze_files(lake: Path, topic: str, start: datetime, end: datetime) -> list[Path]:
    """The bronze files whose event hour overlaps [start, end), sorted; dot-named files skipped."""
    root = bronze_root(lake, topic)
    files: list[Path] = []
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        folder = root / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"
        if folder.is_dir():
            files.extend(sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".")))
        hour += timedelta(hours=1)
    return files


def check_file(path: Path, expected: pa.Schema) -> None:
    """Raise :class:`BadBronzeFile` unless ``path`` is readable Parquet with ``expected``'s columns."""
    try:
        found = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise BadBronzeFile(f"bronze file {path} is not readable Parquet: {exc}") from None
    drift = []
    for field in expected:
        if field.name not in found.names:
            drift.append(f"missing column {field.name!r}")
        elif not found.field(field.name).type.equals(field.type):
            drift.append(f"column {field.name!r} is {found.field(field.name).type}, expected {field.type}")
    drift.extend(f"unexpected column {name!r}" for name in found.names if name not in expected.names)
    if drift:
        raise BadBronzeFile(
            f"bronze file {path} does not match the {_topic(expected)} schema: " + "; ".join(drift)
        )


def _topic(schema: pa.Schema) -> str:
    return (schema.metadata or {}).get(b"citybrain.topic", b"topic").decode()


def read_bronze(spark: SparkSession, lake: Path, topic: str, start: datetime, end: datetime) -> DataFrame:
    """The topic's bronze rows of the hours overlapping [start, end), every file checked first."""
    from pyspark.sql.pandas.types import from_arrow_schema

    expected = bronze_schema(topic)
    files = bronze_files(lake, topic, start, end)
    for path in files:
        check_file(path, expected)
    schema = from_arrow_schema(expected)
    if not files:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*(spark_path(path) for path in files))
