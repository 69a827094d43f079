"""The ingest benchmark: our whole path against a plain kafka-python poll loop, same records, same run.

Both read the same records from the same broker with the same consumer options; the plain
loop only counts them, the ingest parses, validates, writes bronze Parquet, dead-letters and
commits. Rates are from the first record received to the last one done (counted, or durable
and committed). With several rounds the two alternate (plain first, then ingest first) and
``ratio`` is the median of each round's ingest/plain ratio, so drift on a shared machine
falls on both sides of every ratio; the rates are the medians of their runs.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from kafka import KafkaConsumer
from rich.console import Console

from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming import admin, broker
from streaming.connection import connect
from streaming.ingest import Ingest, consumer_options
from streaming.producer import RecordProducer
from streaming.sample_feed import generate


def produce_feed(settings: Settings, records: int, invalid_fraction: float) -> tuple[int, int]:
    """Send the sample feed; return (valid, invalid) counts."""
    valid = invalid = 0
    with RecordProducer(settings, validate=False) as producer:
        for record in generate(records, invalid_fraction):
            producer.send_raw(record.topic, record.key, record.value)
            valid += record.valid
            invalid += not record.valid
    return valid, invalid


def plain_poll_rate(settings: Settings, records: int, group: str) -> float:
    """Records/s of a kafka-python poll loop that does nothing with what it reads."""
    consumer = connect(settings, KafkaConsumer, *INPUT_TOPICS, group_id=group, **consumer_options(settings))
    seen = 0
    started = None
    try:
        while seen < records:
            polled = consumer.poll(timeout_ms=100)
            if polled and started is None:
                started = time.perf_counter()
            for batch in polled.values():
                seen += len(batch)
        return seen / (time.perf_counter() - started)
    finally:
        consumer.close(autocommit=False)


def ingest_rate(settings: Settings, records: int, group: str, workers: int) -> tuple[float, Any]:
    ingest = Ingest(settings, group=group, workers=workers)
    # Stop polling once every record is read; run() then lands and commits the rest at once
    # instead of waiting out linger_ms, a latency policy rather than a cost of the path.
    counters = ingest.run(stop_when=lambda c: c.consumed >= records, handle_signals=False)
    # First record read to the last one durable in bronze or the dead-letter topic and its
    # offset committed; leaving the group and stopping the writers afterwards is not counted.
    elapsed = ingest.drained_at - ingest.first_record_at
    return counters.handled / elapsed, counters


def bronze_counts(lake: Path) -> tuple[int, int]:
    files = [p for p in (lake / "bronze").rglob("*.parquet") if not p.name.startswith(".")]
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files), len(files)


def native_crc32c() -> bool:
    """Whether kafka-python checks record CRCs in C (the ``crc32c`` package) or in Python."""
    from kafka.record import util

    return getattr(util, "crc32c_c", None) is not None


def run_ingest_benchmark(
    records: int,
    invalid_fraction: float,
    *,
    rounds: int = 1,
    workers: int = 1,
    progress: Console | None = None,
) -> dict[str, Any]:
    say = progress.log if progress else (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="citybrain-bench-") as tmp:
        base = Settings(var_dir=Path(tmp), kafka_bootstrap=None, lake_uri=None)
        broker.start(base)
        try:
            admin.ensure_topics(base)
            say(f"producing {records:,} records ({invalid_fraction:.1%} broken)")
            valid, invalid = produce_feed(base, records, invalid_fraction)
            plain, ours, last = [], [], None
            for r in range(rounds):
                lake = Path(tmp) / f"lake-{r}"
                run = base.model_copy(update={"lake_uri": str(lake)})
                steps = ["plain", "ingest"] if r % 2 == 0 else ["ingest", "plain"]
                for step in steps:
                    if step == "plain":
                        plain.append(plain_poll_rate(run, records, f"bench-plain-{r}"))
                        say(f"round {r + 1}: plain poll loop {plain[-1]:,.0f} records/s")
                    else:
                        rate, last = ingest_rate(run, records, f"bench-ingest-{r}", workers)
                        ours.append(rate)
                        say(f"round {r + 1}: ingest {rate:,.0f} records/s")
            rows, files = bronze_counts(lake)
        finally:
            broker.stop(base)
    raw_rate, our_rate = statistics.median(plain), statistics.median(ours)
    # Each round pairs a plain run with an ingest run next to it in time; the median of the
    # paired ratios is steadier on a shared machine than a ratio of medians.
    ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
    return {
        "records": records,
        "invalid_fraction": invalid_fraction,
        "raw_consume_rate": round(raw_rate, 1),
        "ingest_rate": round(our_rate, 1),
        "ratio": round(ratio, 3),
        "round_ratios": [round(o / p, 3) for o, p in zip(ours, plain, strict=True)],
        "landed": last.landed,
        "dead_lettered": last.dead_lettered,
        "sent_valid": valid,
        "sent_invalid": invalid,
        "bronze_rows": rows,
        "bronze_files": files,
        "rounds": rounds,
        "workers": workers,
        "kafka_python_native_crc32c": native_crc32c(),
        "cpus": os.cpu_count(),
    }
