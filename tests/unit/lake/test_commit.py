"""Replacing exactly an interval's partitions: same bytes on a rerun, emptied partitions removed."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from lake.commit import overwrite_partitions, staging_root
from lake.silver import conform, with_window
from lake.tables import TABLES
from tests.unit.lake.frames import T0, at

WEATHER = TABLES["silver.weather"]


def frame(spark, minutes: list[int]):
    rows = [("w", at(m), 0.0, 0.0, 5.0, 0.0, None, 1.0, "dry", "clear") for m in minutes]
    ddl = (
        "station_id STRING, ts TIMESTAMP, lat DOUBLE, lon DOUBLE, air_temp_c DOUBLE, "
        "precipitation_mm_h DOUBLE, visibility_m DOUBLE, wind_speed_mps DOUBLE, road_surface STRING, "
        "condition STRING"
    )
    return conform(with_window(spark.createDataFrame(rows, ddl)), WEATHER)


def files(lake):
    root = WEATHER.path(lake)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_rerun_writes_the_same_files_and_an_emptied_partition_goes(spark, tmp_path):
    lake, end = tmp_path / "lake", T0 + timedelta(minutes=45)
    first = overwrite_partitions(frame(spark, [0, 5, 20, 44]), WEATHER, lake, T0, end)
    assert (first.rows, first.partitions, first.removed) == (4, 3, 0)
    written = files(lake)
    assert sorted(written) == [
        f"date=2026-11-28/slot={s}/part-00000.snappy.parquet" for s in ("0700", "0715", "0730")
    ]
    overwrite_partitions(frame(spark, [44, 20, 5, 0]).repartition(3), WEATHER, lake, T0, end)
    assert files(lake) == written

    # Only 07:00-07:15 again, now without rows: that partition goes, the others stay as they were.
    again = overwrite_partitions(
        frame(spark, [20]).where("slot = '0700'"), WEATHER, lake, T0, T0 + timedelta(minutes=15)
    )
    assert (again.rows, again.partitions, again.removed) == (0, 0, 1)
    assert sorted(files(lake)) == sorted(k for k in written if "slot=0700" not in k)
    assert not staging_root(lake).exists() or not any(staging_root(lake).rglob("*.parquet"))
