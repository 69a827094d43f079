"""silver.signal_events and the signal gold tables in Spark: the same rows as the pure measures."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from lake import signal_gold, silver
from lake.commit import overwrite_partitions
from lake.delta import delta_table
from lake.signal_measures import DETECTOR_OFF, DETECTOR_ON, MAX_CYCLE_S, PATTERN, ROR_WINDOW_S
from lake.signal_measures import approach_measures as pure_measures
from lake.signal_measures import signal_cycles as pure_cycles
from lake.tables import TABLES, read_table
from tests.unit.lake.frames import bronze
from tests.unit.lake.test_signal_measures import QUARTER, SIGNAL, T0, Q, at, fixed_time, frame

pytestmark = pytest.mark.usefixtures("spark")

TOPIC = "traffic.signal_event.v1"
SILVER = TABLES["silver.signal_events"]


def record(ts: datetime, code: int, param: int, *, signal_id: str = SIGNAL.controller_id, **extra) -> dict:
    return {
        "schema_version": 1,
        "ts": ts,
        "signal_id": signal_id,
        "event_code": code,
        "event_param": param,
        "source": "controller",
        **extra,
    }


def test_the_lookback_holds_every_cycle_the_measures_keep():
    assert signal_gold.LOOKBACK.total_seconds() > MAX_CYCLE_S + ROR_WINDOW_S


def test_silver_events_are_deduplicated_and_late_ones_flagged_but_kept(spark):
    ts = T0 + timedelta(seconds=1)
    records = [
        record(ts, 1, 2, _kafka_timestamp=ts + timedelta(seconds=40)),
        record(ts, 1, 2, _kafka_timestamp=ts + timedelta(seconds=2)),  # the same event, sent twice
        record(ts, 1, 4, _kafka_timestamp=ts + timedelta(minutes=20)),  # an upload 20 min later
        record(Q + timedelta(minutes=20), 1, 2),  # after the interval
    ]
    df = silver.signal_events(
        bronze(spark, TOPIC, records), start=Q - QUARTER, end=Q + QUARTER, watermark_s=900
    )
    rows = {r["event_param"]: r.asDict() for r in df.collect()}
    assert set(rows) == {2, 4}
    assert rows[2]["copies"] == 2 and rows[2]["arrived"].second == 32
    assert not rows[2]["late"] and rows[4]["late"] and rows[4]["copies"] == 1
    assert (rows[2]["date"], rows[2]["slot"], rows[2]["event_code"]) == ("2026-11-28", "0645", 1)
    assert df.schema.simpleString() == spark.createDataFrame([], SILVER.ddl).schema.simpleString()


def events() -> list[tuple]:
    """40 cycles from 06:59:29 with arrivals, a split failure, and the pattern set at 05:00."""
    log = [e for e in fixed_time(40) if e[1] != PATTERN] + [(T0 - timedelta(hours=2), PATTERN, 5)]
    for k in range(40):
        log += [(at(k, -10), DETECTOR_ON, 2), (at(k, 6), DETECTOR_ON, 2)]
        log += [(at(k, 2), DETECTOR_ON, 3), (at(k, 2.5), DETECTOR_OFF, 3)]
    log += [(at(20, -2), DETECTOR_ON, 1), (at(20, 34), DETECTOR_OFF, 1)]
    return log


def fill_silver(spark, lake: Path, log: list[tuple]) -> None:
    records = [record(ts, code, param) for ts, code, param in log]
    records.append(record(at(20, 0), 1, 2, signal_id="not-configured"))
    start, end = datetime(2026, 11, 28, 4, 45, tzinfo=UTC), Q + 3 * QUARTER
    df = silver.signal_events(bronze(spark, TOPIC, records), start=start, end=end, watermark_s=900)
    overwrite_partitions(df, SILVER, lake, start, end)


def gold_rows(spark, lake: Path, name: str, start: datetime, end: datetime) -> pd.DataFrame:
    table = TABLES[name]
    columns = [c.split(" ")[0] for c in table.columns.split(", ")]
    rows = read_table(spark, table, lake, start, end).toPandas()[columns]
    for column in rows.columns:
        if pd.api.types.is_datetime64_any_dtype(rows[column]):
            rows[column] = rows[column].dt.tz_localize("UTC")
    return rows


def checksums(lake: Path, names: list[str]) -> dict[str, list[str]]:
    """Per table and partition, the hashes of the live files (those the table's log names: a
    rerun's commit leaves the files it replaced on disk, under other names)."""
    found: dict[str, list[str]] = {}
    for name in names:
        table = TABLES[name]
        for uri in delta_table(lake, table).file_uris():
            partition = str(Path(uri).parent.relative_to(table.path(lake)))
            found.setdefault(f"{name}/{partition}", []).append(
                hashlib.sha256(Path(uri).read_bytes()).hexdigest()
            )
    return {key: sorted(hashes) for key, hashes in found.items()}


def test_gold_signal_tables_are_the_pure_measures_and_a_rerun_commits_the_same_files(spark, tmp_path):
    log = events()
    fill_silver(spark, tmp_path, log)
    signals = {SIGNAL.controller_id: SIGNAL}
    start, end = Q + QUARTER, Q + 2 * QUARTER
    jobs = {
        "gold.signal_cycles": signal_gold.signal_cycles,
        "gold.approach_measures_15min": signal_gold.approach_measures,
    }
    for name, job in jobs.items():
        overwrite_partitions(job(spark, tmp_path, signals, start, end), TABLES[name], tmp_path, start, end)
    first = checksums(tmp_path, list(jobs))
    for name, job in jobs.items():
        written = overwrite_partitions(
            job(spark, tmp_path, signals, start, end), TABLES[name], tmp_path, start, end
        )
        assert written.version == 1  # a new commit, of the same bytes
    assert checksums(tmp_path, list(jobs)) == first and len(first) == 2

    cycles = gold_rows(spark, tmp_path, "gold.signal_cycles", start, end)
    expected = pure_cycles(frame(log), SIGNAL)
    expected = expected[(expected["cycle_end"] >= start) & (expected["cycle_end"] < end)]
    expected = expected.assign(window_start=expected["cycle_end"].dt.floor("15min"))
    assert len(cycles) == 30 and set(cycles["pattern"]) == {5}  # 15 a phase; the pattern of 05:00
    pd.testing.assert_frame_equal(
        cycles.sort_values(["phase", "cycle_start"], ignore_index=True),
        expected.reset_index(drop=True),
        check_dtype=False,
    )

    measures = gold_rows(spark, tmp_path, "gold.approach_measures_15min", start, end)
    expected = pure_measures(frame(log), SIGNAL, start, end)
    assert measures["cycles"].tolist() == [15, 15] and measures["split_failures"].tolist() == [1, 0]
    pd.testing.assert_frame_equal(
        measures.sort_values("phase", ignore_index=True), expected, check_dtype=False
    )
    assert signal_gold.approach_measures(spark, tmp_path, {}, start, end).count() == 0  # none configured
