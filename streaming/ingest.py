"""The ingest: one consumer group over the input topics, landing them in bronze.

The consumer process only polls and cuts batches; writer processes (see
:mod:`streaming.landing`) parse, validate, write Parquet and dead-letter, so consuming
overlaps with landing. Partition p always goes to writer p mod W, so each partition's
batches land in order, and offsets are committed only for batches reported durable.
SIGTERM or SIGINT stops polling, lands what was read, commits and leaves the group.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError

from core.errors import CitybrainError
from core.files import write_atomic
from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming.connection import connect, topic_partitions
from streaming.landing import Batch, Landed, crash_point, worker_main

log = logging.getLogger("citybrain.ingest")


class IngestFailed(CitybrainError, RuntimeError):
    """A writer process failed; nothing after the failed batch was committed."""


@dataclass
class Counters:
    """What this ingest run has done so far."""

    consumed: int = 0
    landed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    files: int = 0
    lag: dict[str, int] = field(default_factory=dict)

    @property
    def handled(self) -> int:
        return self.landed + self.dead_lettered


def consumer_options(settings: Settings) -> dict[str, Any]:
    """Consumer options shared by the ingest and the benchmark's plain poll loop."""
    return {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        # A dead member's partitions wait this long for a new owner: seconds, not the poll interval.
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": 1_000,
        "max_poll_records": 5_000,
        "max_partition_fetch_bytes": 4 << 20,
        "metrics_enabled": False,
    }


def status_file(settings: Settings, group: str) -> Path:
    return settings.run_dir / f"ingest-{group}.json"


class _Writer:
    """A writer process and the thread that feeds it.

    Sending through a pipe blocks until the writer has read the previous batch; a feeder
    thread takes that wait (and the pickling) off the poll loop, so the consumer keeps
    fetching while the writer lands.
    """

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited client threads or sockets
        self.conn, theirs = context.Pipe()
        self.process = context.Process(
            target=worker_main, args=(settings, theirs), name="citybrain-ingest-writer", daemon=True
        )
        self.process.start()
        theirs.close()
        self._outbox: queue.Queue = queue.Queue()
        self._feeder = threading.Thread(target=self._feed, name="citybrain-writer-feed", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        while True:
            message = self._outbox.get()
            try:
                self.conn.send(message)
            except (BrokenPipeError, OSError):
                return  # the writer died; the consumer notices on its next receive
            if message[0] == "stop":
                return

    def submit(self, command: str, payload: Any) -> None:
        self._outbox.put((command, payload))

    def stop(self) -> None:
        self.submit("stop", None)
        self._feeder.join(timeout=30)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()


def _manifest_of(manifest: str, tp: TopicPartition) -> bool:
    path = Path(manifest)
    return path.parent.name == tp.topic and path.name.startswith(f"{tp.partition}-")


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self.ingest._on_revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.ingest._on_assigned(set(assigned))


class Ingest:
    """One member of the ingest consumer group."""

    def __init__(
        self,
        settings: Settings,
        *,
        group: str | None = None,
        topics: Iterable[str] = INPUT_TOPICS,
        workers: int = 1,
    ) -> None:
        self.settings = settings
        self.group = group or settings.ingest_group
        self.topics = list(topics)
        self.counters = Counters()
        self.first_record_at: float | None = None
        self.drained_at: float | None = None  # everything read is durable and committed
        self._stopping = False
        self._workers: list[_Writer] = []
        self._worker_count = workers
        self._buffers: dict[TopicPartition, list] = defaultdict(list)
        self._buffer_since: dict[TopicPartition, float] = {}
        self._inflight = 0
        self._skip_through: dict[TopicPartition, int] = {}
        self._to_commit: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._manifests_to_delete: list[str] = []
        self._consumer: KafkaConsumer | None = None
        self._assigned_at: float | None = None
        self._to_recover: set[TopicPartition] = set()

    # -- lifecycle -----------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        """Stop after landing and committing what was read (the SIGTERM handler)."""
        self._stopping = True

    def run(
        self,
        *,
        stop_when: Callable[[Counters], bool] | None = None,
        idle_exit_s: float | None = None,
        handle_signals: bool = True,
    ) -> Counters:
        """Consume until asked to stop, ``stop_when`` holds, or nothing came for ``idle_exit_s``."""
        if handle_signals:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        self._consumer = connect(  # first: an unreachable broker fails here, before any writer
            self.settings,
            KafkaConsumer,
            group_id=self.group,
            **consumer_options(self.settings),
        )
        self._start_workers()
        try:
            self._consumer.subscribe(self.topics, listener=_Rebalance(self))
            topic_partitions(self.settings, self._consumer, self.topics)  # before the first join
            self._loop(stop_when, idle_exit_s)
            self._drain()
            self.drained_at = time.perf_counter()
            self._consumer.close(autocommit=False)
        finally:
            self._stop_workers()
            self._write_status(running=False)
        return self.counters

    def _loop(self, stop_when: Callable[[Counters], bool] | None, idle_exit_s: float | None) -> None:
        consumer = self._consumer
        assert consumer is not None
        last_record = time.monotonic()
        next_status = time.monotonic() + self.settings.ingest_status_interval_s
        next_commit = time.monotonic()
        while not self._stopping:
            polled = consumer.poll(timeout_ms=100)
            if self._to_recover:  # before using what was polled: it may overlap landed batches
                self._recover_assigned()
            now = time.monotonic()
            if now >= next_commit:  # a commit is a round trip: batch them, recovery covers the gap
                self._commit_pending()
                next_commit = now + self.settings.ingest_commit_interval_ms / 1000
            for tp, records in polled.items():
                skip = self._skip_through.get(tp)
                if skip is not None:
                    records = [r for r in records if r.offset > skip]
                if not records:
                    continue
                if self.first_record_at is None:
                    self.first_record_at = time.perf_counter()
                self._committed.setdefault(tp, records[0].offset)
                self.counters.consumed += len(records)
                last_record = now
                self._buffer_since.setdefault(tp, now)
                self._buffers[tp].extend(records)
            self._dispatch(force=False)
            self._collect(block=False)
            if now >= next_status:
                self._report()
                next_status = now + self.settings.ingest_status_interval_s
            if stop_when is not None and stop_when(self.counters):
                break
            idle = not self._inflight and not any(self._buffers.values())
            # Idle time counts from the group join at the earliest: joins take seconds.
            quiet_since = max(last_record, self._assigned_at or now)
            if idle_exit_s is not None and idle and now - quiet_since >= idle_exit_s:
                break

    def _drain(self) -> None:
        """Land everything read, wait until durable, commit."""
        self._dispatch(force=True)
        while self._inflight:
            self._collect(block=True)
        self._commit_pending()

    # -- writers -------------------------------------------------------------------------

    def _start_workers(self) -> None:
        self._workers = [_Writer(self.settings) for _ in range(self._worker_count)]

    def _stop_workers(self) -> None:
        for writer in self._workers:
            writer.stop()
        self._workers.clear()

    def _writer_for(self, tp: TopicPartition) -> _Writer:
        return self._workers[tp.partition % len(self._workers)]

    def _dispatch(self, force: bool) -> None:
        """Hand full batches to the writers, and partial ones that waited ``linger_ms``."""
        now = time.monotonic()
        linger_s = self.settings.ingest_linger_ms / 1000
        size = self.settings.ingest_batch_records
        for tp, records in self._buffers.items():
            if not records:
                continue
            due = force or now - self._buffer_since[tp] >= linger_s
            sent = False
            while len(records) >= size or (records and due):
                chunk = records[:size]
                del records[:size]
                self._send(tp, chunk)
                sent = True
            if not records:
                self._buffer_since.pop(tp, None)
            elif sent:
                self._buffer_since[tp] = now

    def _send(self, tp: TopicPartition, chunk: list) -> None:
        while self._inflight >= self.settings.ingest_max_inflight_batches:
            self._collect(block=True)
        batch = Batch(
            topic=tp.topic,
            partition=tp.partition,
            offsets=[r.offset for r in chunk],
            timestamps=[r.timestamp for r in chunk],
            keys=[r.key for r in chunk],
            values=[r.value for r in chunk],
            headers=[r.headers for r in chunk],
        )
        self._writer_for(tp).submit("land", batch)
        self._inflight += 1

    def _collect(self, block: bool) -> None:
        """Take writer reports (waiting for one if ``block``): landed batches become commits."""
        conns = [writer.conn for writer in self._workers]
        ready = wait(conns) if block and self._inflight else [c for c in conns if c.poll(0)]
        for conn in ready:
            while conn.poll(0):
                kind, payload = self._receive(conn)
                if kind != "landed":
                    raise IngestFailed(f"unexpected writer reply {kind!r}")
                self._record(payload)
                self._inflight -= 1

    def _receive(self, conn):  # noqa: ANN001, ANN202
        try:
            kind, payload = conn.recv()
        except EOFError:
            raise IngestFailed("a writer process died; uncommitted batches will be re-read") from None
        if kind == "error":
            raise IngestFailed(f"a writer failed: {payload}")
        return kind, payload

    def _record(self, landed: Landed) -> None:
        self.counters.landed += landed.landed
        self.counters.dead_lettered += landed.dead_lettered
        self.counters.files += landed.files
        self.counters.batches += 1
        tp = TopicPartition(landed.topic, landed.partition)
        self._to_commit[tp] = max(self._to_commit.get(tp, 0), landed.last + 1)
        self._manifests_to_delete.append(landed.manifest)

    def _commit_pending(self) -> None:
        """Commit landed offsets, then delete the manifests they make unnecessary."""
        if self._to_commit and self._consumer is not None:
            offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._to_commit.items()}
            try:
                self._consumer.commit(offsets)
            except CommitFailedError as exc:
                # The partitions moved to another member; it recovers our manifests on assignment.
                log.warning("commit failed after a rebalance, the new owner recovers: %s", exc)
                self._to_commit.clear()
                self._manifests_to_delete.clear()
                return
            self._committed.update(self._to_commit)
            crash_point(self.settings, "after_commit")
        for manifest in self._manifests_to_delete:
            Path(manifest).unlink(missing_ok=True)
        self._to_commit.clear()
        self._manifests_to_delete.clear()

    # -- rebalancing ---------------------------------------------------------------------

    def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Runs on kafka-python's IO thread, where no blocking Kafka call is allowed.

        Batches in flight are waited for, so the next owner finds each one complete or not
        started; their offsets are not committed here but left to the next owner, which
        rolls their manifests forward (committing later, under a new generation, could
        overwrite that owner's progress).
        """
        for tp in revoked:  # not handed to a writer yet: the next owner reads them again
            self._buffers.pop(tp, None)
            self._buffer_since.pop(tp, None)
            self._skip_through.pop(tp, None)
        while self._inflight:
            self._collect(block=True)
        for tp in revoked:
            self._to_commit.pop(tp, None)
        self._manifests_to_delete = [
            m for m in self._manifests_to_delete if not any(_manifest_of(m, tp) for tp in revoked)
        ]

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Runs on the IO thread: note the partitions; the poll loop recovers them next."""
        self._assigned_at = time.monotonic()
        self._to_recover |= assigned

    def _recover_assigned(self) -> None:
        """Resolve the manifests left for newly assigned partitions (see :mod:`streaming.landing`)
        and move the fetch position past every batch already in bronze."""
        consumer = self._consumer
        assert consumer is not None
        assigned, self._to_recover = self._to_recover, set()
        by_worker: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for tp in assigned:
            by_worker[tp.partition % len(self._workers)].append((tp.topic, tp.partition))
        for index, partitions in by_worker.items():
            writer = self._workers[index]
            writer.submit("recover", partitions)
            _kind, results = self._receive(writer.conn)
            for landed in (item for per_partition in results for item in per_partition):
                tp = TopicPartition(landed.topic, landed.partition)
                committed = consumer.committed(tp)
                if committed is not None and landed.last < committed:
                    # Committed before a crash that left its manifest: only the file remains to go.
                    # Committing landed.last + 1 again would move the group's offset backwards.
                    self._manifests_to_delete.append(landed.manifest)
                    continue
                self._skip_through[tp] = max(self._skip_through.get(tp, -1), landed.last)
                self._record(landed)
        for tp in assigned:
            # The poll that brought the assignment may already have fetched past the landed
            # batches (those records are filtered by _skip_through); seek only if it did not.
            if tp in self._skip_through and consumer.position(tp) <= self._skip_through[tp]:
                consumer.seek(tp, self._skip_through[tp] + 1)
        names = sorted(f"{t.topic}[{t.partition}]" for t in assigned)
        log.info("assigned %d partitions: %s", len(assigned), names)

    # -- reporting -----------------------------------------------------------------------

    def _report(self) -> None:
        self._refresh_lag()
        c = self.counters
        log.info(
            "ingest %s: in=%d landed=%d dead_lettered=%d batches=%d lag=%d",
            self.group,
            c.consumed,
            c.landed,
            c.dead_lettered,
            c.batches,
            sum(c.lag.values()),
        )
        self._write_status(running=True)

    def _refresh_lag(self) -> None:
        """Lag per topic: records past our committed offsets, from the last fetch's high
        watermarks (no extra request: a ListOffsets call in the poll loop stalled on Tansu)."""
        consumer = self._consumer
        if consumer is None:
            return
        lag: dict[str, int] = defaultdict(int)
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            done = self._committed.get(tp)
            if highwater is not None and done is not None:
                lag[tp.topic] += max(0, highwater - done)
        self.counters.lag = dict(lag)

    def _write_status(self, running: bool) -> None:
        path = status_file(self.settings, self.group)
        status = {
            "group": self.group,
            "pid": os.getpid(),
            "running": running,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "counters": {**asdict(self.counters)},
        }
        try:  # rewritten every batch; losing one is harmless
            write_atomic(path, json.dumps(status), durable=False)
        except FileNotFoundError:  # another member of the group on this host renamed the staging file first
            log.debug("status file %s: another member wrote it at the same moment", path)
