"""The ingest benchmark: our whole path against a plain kafka-python poll loop, same records, same run,
and how the ingest scales with processes in one consumer group.

Both read the same records from the same broker with the same consumer options; the plain
loop only counts them, the ingest parses, validates, writes bronze Parquet, dead-letters and
commits. Rates are from the first record received to the last one done (counted, or durable
and committed). With several rounds the two alternate (plain first, then ingest first) and
``ratio`` is the median of each round's ingest/plain ratio, so drift on a shared machine
falls on both sides of every ratio; the rates are the medians of their runs.

The scaling part runs 1, 2, … ingest processes as members of one new group over the same
records (the order alternating by round), from the first record any member read to the last
one durable and committed, and checks bronze for lost and duplicated records. Against Apache
Kafka the broker waits a few seconds for members before the group's first assignment, as
Kafka's default does, so every member starts with its share.
"""

from __future__ import annotations

import multiprocessing
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
from streaming.connection import connect, topic_partitions
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
    topic_partitions(settings, consumer, INPUT_TOPICS)  # before the first join, as the ingest does
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


#: Apache Kafka's own default wait for more members before a new group's first assignment.
GROUP_JOIN_DELAY_MS = 3_000


def _group_member(settings: Settings, group: str, records: int, handled: Any, results: Any) -> None:
    """One ingest process of a group run: stop once the members together have read ``records``."""
    ingest = Ingest(settings, group=group)
    seen = 0

    def all_read(counters: Any) -> bool:
        nonlocal seen
        with handled.get_lock():
            handled.value += counters.consumed - seen
            total = handled.value
        seen = counters.consumed
        return total >= records

    counters = ingest.run(stop_when=all_read, handle_signals=False)
    results.put((ingest.first_record_at, ingest.drained_at, counters.landed, counters.dead_lettered))


def group_rate(settings: Settings, records: int, group: str, processes: int) -> tuple[float, int]:
    """Records/s of ``processes`` ingest processes in one group; and the dead letters they wrote."""
    context = multiprocessing.get_context("spawn")
    handled, results = context.Value("q", 0), context.Queue()
    members = [
        context.Process(target=_group_member, args=(settings, group, records, handled, results))
        for _ in range(processes)
    ]
    for member in members:
        member.start()
    done = [results.get(timeout=600) for _ in members]
    for member in members:
        member.join()
    firsts = [first for first, *_ in done if first is not None]
    elapsed = max(drained for _, drained, *_ in done) - min(firsts)
    return sum(landed + dead for *_, landed, dead in done) / elapsed, sum(dead for *_, dead in done)


def bronze_files(lake: Path) -> list[Path]:
    """A run's bronze files, without the temporary ones a writer has not renamed yet."""
    return [p for p in (lake / "bronze").rglob("*.parquet") if not p.name.startswith(".")]


def bronze_lost_and_duplicated(lake: Path, valid: int) -> tuple[int, int]:
    """(lost, duplicated) valid records in a run's bronze, by topic, partition and offset."""
    files = bronze_files(lake)
    coordinates = [
        (path.parts[-4], partition, offset)
        for path in files
        for partition, offset in zip(
            *pq.read_table(path, columns=["_partition", "_offset"]).to_pydict().values(), strict=True
        )
    ]
    unique = len(set(coordinates))
    return valid - unique, len(coordinates) - unique


def bronze_counts(lake: Path) -> tuple[int, int]:
    files = bronze_files(lake)
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
    broker_kind: str = "tansu",
    processes: tuple[int, ...] = (),
    progress: Console | None = None,
) -> dict[str, Any]:
    say = progress.log if progress else (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="citybrain-bench-") as tmp:
        base = Settings(var_dir=Path(tmp), kafka_bootstrap=None, lake_uri=None)
        broker.start(base, broker_kind, group_join_delay_ms=GROUP_JOIN_DELAY_MS)
        try:
            admin.ensure_topics(base)
            say(f"producing {records:,} records ({invalid_fraction:.1%} broken) to {broker_kind}")
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
            scaling = group_scaling(base, Path(tmp), records, valid, invalid, processes, rounds, say)
        finally:
            broker.stop(base)
    raw_rate, our_rate = statistics.median(plain), statistics.median(ours)
    # Each round pairs a plain run with an ingest run next to it in time; the median of the
    # paired ratios is steadier on a shared machine than a ratio of medians.
    ratio = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
    return {
        "broker": broker_kind,
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
        **scaling,
        "kafka_python_native_crc32c": native_crc32c(),
        "cpus": os.cpu_count(),
    }


def group_scaling(
    base: Settings,
    folder: Path,
    records: int,
    valid: int,
    invalid: int,
    processes: tuple[int, ...],
    rounds: int,
    say: Any,
) -> dict[str, Any]:
    """Each process count's median rate over ``rounds`` (alternating order), the ratio of the
    largest count's rate to one process's (median of the rounds' ratios), lost and duplicated."""
    if not processes:
        return {}
    rates: dict[int, list[float]] = {count: [] for count in processes}
    lost = duplicated = wrong_dead_letters = 0
    for r in range(rounds):
        for count in processes if r % 2 == 0 else processes[::-1]:
            lake = folder / f"group-{count}-{r}"
            run = base.model_copy(update={"lake_uri": str(lake)})
            rate, dead = group_rate(run, records, f"bench-group-{count}-{r}", count)
            rates[count].append(rate)
            missing, twice = bronze_lost_and_duplicated(lake, valid)
            lost, duplicated = lost + missing, duplicated + twice
            wrong_dead_letters += dead != invalid
            say(f"round {r + 1}: {count} ingest process(es) in one group {rate:,.0f} records/s")
    low, high = min(processes), max(processes)
    return {
        "group_processes": list(processes),
        "group_rates": {str(count): round(statistics.median(rates[count]), 1) for count in processes},
        "group_scaling": round(
            statistics.median(h / lo for h, lo in zip(rates[high], rates[low], strict=True)), 3
        ),
        "group_lost": lost,
        "group_duplicated": duplicated,
        "group_runs_with_wrong_dead_letters": wrong_dead_letters,
    }
