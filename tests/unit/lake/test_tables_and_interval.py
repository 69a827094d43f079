"""The lake's tables, partition values and the fuse interval rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lake.delta import empty, filled_slots, write_partitions
from lake.jobs import BadInterval, check_interval
from lake.tables import GOLD, SILVER, UnknownTable, latest_period, partition_of, table
from tests.lake_rows import write_rows


def test_partitions_of_an_interval_are_every_quarter_hour_or_day_it_touches():
    link = table("gold.link_state_15min")
    start, end = datetime(2026, 11, 28, 23, 30, tzinfo=UTC), datetime(2026, 11, 29, 0, 15, tzinfo=UTC)
    assert link.partition_values(start, end) == [
        ("2026-11-28", "2330"),
        ("2026-11-28", "2345"),
        ("2026-11-29", "0000"),
    ]
    assert table("detector_health_daily").partition_values(start, end) == [("2026-11-28",), ("2026-11-29",)]
    assert link.partition_path(Path("/lake"), ("2026-11-28", "2330")) == Path(
        "/lake/gold/link_state_15min/date=2026-11-28/slot=2330"
    )
    assert partition_of(datetime(2026, 11, 28, 7, 14, 59, tzinfo=UTC)) == ("2026-11-28", "0700")


def test_every_table_is_in_a_layer_with_keys_among_its_columns():
    assert SILVER and GOLD
    for name in (*SILVER, *GOLD):
        t = table(name)
        for column in (*t.key, t.time_column):
            assert f"{column} " in t.columns, (name, column)


def test_an_unknown_table_names_the_ones_there_are():
    with pytest.raises(UnknownTable, match="gold.link_state_15min"):
        table("gold.nope")


def test_an_interval_must_be_whole_quarter_hours_forward():
    start = datetime(2026, 11, 28, 7, 0)
    assert check_interval(start, datetime(2026, 11, 28, 7, 15))[0].tzinfo == UTC
    with pytest.raises(BadInterval, match="07:05:00.*quarter hour"):
        check_interval(datetime(2026, 11, 28, 7, 5), datetime(2026, 11, 28, 7, 15))
    with pytest.raises(BadInterval, match="must be after"):
        check_interval(start, start)


def at(hhmm: str) -> datetime:
    return datetime(2026, 11, 28, int(hhmm[:2]), int(hhmm[2:]), tzinfo=UTC)


@pytest.mark.parametrize(
    ("filled", "end", "period"),
    [
        # the newest filled quarter hour ends the period; an hour back at most
        (["0600", "0615", "0630", "0645", "0700", "0715"], None, ("0630", "0730")),
        # less than an hour filled: all of it
        (["0630", "0645", "0700"], None, ("0630", "0715")),
        # a gap ends the period: routes across it would be a quarter hour without traffic
        (["0600", "0630", "0645"], None, ("0630", "0700")),
        # a given end, though newer data exists
        (["0600", "0615", "0630", "0645", "0700"], "0645", ("0600", "0645")),
        # nothing filled before the end, or nothing at all
        (["0600"], "0700", None),
        ([], None, None),
    ],
)
def test_the_latest_period_is_consecutive_filled_quarter_hours_ending_at_the_end(filled, end, period):
    chosen = latest_period({at(s) for s in filled}, end and at(end), timedelta(hours=1))

    assert chosen == (period and (at(period[0]), at(period[1])))


def test_filled_slots_are_the_partitions_with_live_files_in_the_tables_logs(tmp_path):
    link = table("gold.link_state_15min")
    write_rows(tmp_path, link.name, [{"edge_id": "A", "window_start": at(s)} for s in ("0700", "0730")])
    write_rows(tmp_path, "gold.turning_movements_15min", [{"window_start": at("0715")}])
    write_partitions(tmp_path, link, empty(link), [("2026-11-28", "0730")])  # emptied by a later run
    torn = link.partition_path(tmp_path, ("2026-11-28", "0745"))
    torn.mkdir(parents=True)
    (torn / "part-00000-torn.c000.snappy.parquet").write_bytes(b"PAR1")  # a killed job's, no commit

    names = ("gold.link_state_15min", "gold.turning_movements_15min")
    emptied = link.partition_path(tmp_path, ("2026-11-28", "0730"))
    assert any(emptied.glob("*.parquet"))  # the replaced file, kept for time travel
    assert filled_slots(tmp_path, names) == {at("0700"), at("0715")}
    assert filled_slots(tmp_path, names[:1]) == {at("0700")}
    assert filled_slots(tmp_path / "empty", names) == set()
    with pytest.raises(ValueError, match="gold.detector_health_daily: a daily table has no quarter hours"):
        filled_slots(tmp_path, (*names, "gold.detector_health_daily"))
