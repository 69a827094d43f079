"""Silver signal events → ``gold.signal_cycles`` and ``gold.approach_measures_15min``.

The measures are :mod:`lake.signal_measures`' pure functions: Spark groups the events by signal
and runs them on each signal's events with its configuration (:mod:`sim.signal_config`, looked up
by the id the controller logs under; a signal the configuration lacks is skipped), so the lake and
the CLI's plots compute the same numbers.

A cycle that ends in the interval began before it, so the events are read from :data:`LOOKBACK`
before the interval (enough for any cycle the measures keep,
:data:`lake.signal_measures.MAX_CYCLE_S`), and the
coordination pattern in force from up to :data:`PATTERN_LOOKBACK` before (controllers log 131 when
the pattern changes, which may be hours ago). Cycles land in the quarter hour of their end (phase
cycles) or of their ROR5 window's end (PCD cycles), so each is written by exactly one run and a
rerun writes the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from lake import signal_measures as measures
from lake.signal_measures import PATTERN
from lake.silver import conform, in_interval, with_window
from lake.tables import TABLES, Table, read_table
from sim.signal_config import SignalConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from lake.delta import Lake

#: How far before an interval the events of its cycles are read: more than a cycle kept, its ROR5
#: window and an advance detector's travel time to the stop bar.
LOOKBACK = timedelta(minutes=15)
#: How far back the coordination pattern in force is looked up.
PATTERN_LOOKBACK = timedelta(hours=24)
EVENT_COLUMNS = ("signal_id", "ts", "event_code", "event_param")


def read_events(spark: SparkSession, lake: Lake, start: datetime, end: datetime) -> DataFrame:
    """The events the measures of [start, end) need: all of [start − LOOKBACK, end), and the
    pattern changes of the day before that."""
    from pyspark.sql import functions as F

    table = TABLES["silver.signal_events"]
    recent = read_table(spark, table, lake, start - LOOKBACK, end)
    patterns = read_table(spark, table, lake, start - PATTERN_LOOKBACK, start - LOOKBACK).where(
        F.col("event_code") == PATTERN
    )
    return recent.unionByName(patterns).select(*EVENT_COLUMNS)


def _result_schema(table: Table, without: tuple[str, ...] = ()) -> StructType:
    """The table's columns (less ``without``) as the schema of a pandas function's output; all
    nullable, since the table's own constraints are applied by :func:`lake.silver.conform`."""
    from pyspark.sql.types import StructField, StructType

    fields = StructType.fromDDL(table.columns).fields
    return StructType([StructField(f.name, f.dataType, True) for f in fields if f.name not in without])


def _per_signal(
    events: DataFrame,
    signals: Mapping[str, SignalConfig],
    compute: Callable[[pd.DataFrame, SignalConfig], pd.DataFrame],
    schema: StructType,
) -> DataFrame:
    """``compute`` run on each configured signal's events."""
    from pyspark.sql import functions as F

    known = dict(signals)

    def apply(frame: pd.DataFrame) -> pd.DataFrame:
        return compute(frame, known[frame["signal_id"].iloc[0]])

    configured = events.where(F.col("signal_id").isin(sorted(known)))
    return configured.groupBy("signal_id").applyInPandas(apply, schema)


def signal_cycles(
    spark: SparkSession, lake: Lake, signals: Mapping[str, SignalConfig], start: datetime, end: datetime
) -> DataFrame:
    """``gold.signal_cycles`` for the phase cycles ending in [start, end); ``signals`` by controller id."""
    table = TABLES["gold.signal_cycles"]
    events = read_events(spark, lake, start, end)
    cycles = _per_signal(events, signals, measures.signal_cycles, _result_schema(table, ("window_start",)))
    return conform(with_window(in_interval(cycles, start, end, "cycle_end"), "cycle_end"), table)


def approach_measures(
    spark: SparkSession, lake: Lake, signals: Mapping[str, SignalConfig], start: datetime, end: datetime
) -> DataFrame:
    """``gold.approach_measures_15min`` for the quarter hours of [start, end); ``signals`` by
    controller id."""
    table = TABLES["gold.approach_measures_15min"]
    events = read_events(spark, lake, start, end)

    def compute(frame: pd.DataFrame, signal: SignalConfig) -> pd.DataFrame:
        return measures.approach_measures(frame, signal, start, end)

    rows = _per_signal(events, signals, compute, _result_schema(table))
    return conform(with_window(rows, "window_start"), table)
