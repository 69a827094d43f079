"""Replacing exactly an interval's partitions in one Delta commit: the same rows on a rerun, an
emptied partition emptied, old versions readable, rows outside the interval refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyspark.errors import AnalysisException

from lake.commit import overwrite_partitions
from lake.delta import filled_partitions, read_partitions, table_version
from lake.silver import conform, with_window
from lake.tables import TABLES
from tests.unit.lake.frames import T0, at

WEATHER = TABLES["silver.weather"]
DAY = "2026-11-28"


def frame(spark, minutes: list[int]):
    rows = [("w", at(m), 0.0, 0.0, 5.0, 0.0, None, 1.0, "dry", "clear") for m in minutes]
    ddl = (
        "station_id STRING, ts TIMESTAMP, lat DOUBLE, lon DOUBLE, air_temp_c DOUBLE, "
        "precipitation_mm_h DOUBLE, visibility_m DOUBLE, wind_speed_mps DOUBLE, road_surface STRING, "
        "condition STRING"
    )
    return conform(with_window(spark.createDataFrame(rows, ddl)), WEATHER)


def rows(lake, version=None):
    return sorted(read_partitions(lake, WEATHER, version=version).to_pylist(), key=lambda r: r["ts"])


def test_a_rerun_commits_the_same_rows_and_an_emptied_partition_empties(spark, tmp_path):
    lake, end = tmp_path / "lake", T0 + timedelta(minutes=45)
    first = overwrite_partitions(frame(spark, [0, 5, 20, 44]), WEATHER, lake, T0, end)
    assert (first.rows, first.partitions, first.removed, first.version) == (4, 3, 0, 0)
    assert filled_partitions(lake, WEATHER) == {(DAY, "0700"), (DAY, "0715"), (DAY, "0730")}
    written = rows(lake)
    assert [r["slot"] for r in written] == ["0700", "0700", "0715", "0730"]

    again = overwrite_partitions(frame(spark, [44, 20, 5, 0]).repartition(3), WEATHER, lake, T0, end)
    assert (again.rows, again.partitions, again.removed, again.version) == (4, 3, 0, 1)
    assert rows(lake) == written

    # Only 07:00-07:15 again, now without rows: that partition empties, the others stay as they were.
    emptied = overwrite_partitions(
        frame(spark, [20]).where("slot = '0700'"), WEATHER, lake, T0, T0 + timedelta(minutes=15)
    )
    assert (emptied.rows, emptied.partitions, emptied.removed, emptied.version) == (0, 0, 1, 2)
    assert filled_partitions(lake, WEATHER) == {(DAY, "0715"), (DAY, "0730")}
    assert rows(lake) == [r for r in written if r["slot"] != "0700"]
    # Every version stays readable: the first run's rows are still there to read.
    assert rows(lake, version=0) == written


def test_rows_outside_the_interval_are_refused_and_nothing_is_committed(spark, tmp_path):
    lake = tmp_path / "lake"
    overwrite_partitions(frame(spark, [0]), WEATHER, lake, T0, T0 + timedelta(minutes=15))
    with pytest.raises(AnalysisException, match="DELTA_REPLACE_WHERE_MISMATCH"):
        overwrite_partitions(frame(spark, [1, 16]), WEATHER, lake, T0, T0 + timedelta(minutes=15))
    assert table_version(lake, WEATHER) == 0
    assert [r["ts"] for r in rows(lake)] == [at(0)]
