"""The lake's tables, partition values and the fuse interval rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lake.jobs import BadInterval, check_interval
from lake.tables import GOLD, SILVER, UnknownTable, partition_of, table


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
