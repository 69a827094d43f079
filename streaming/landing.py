"""Landing one batch of one partition: parse, validate, bronze, dead-letter — crash-safe.

Each batch goes through four steps, and an intent manifest makes every crash recoverable:

1. the manifest (batch range, the bronze files it will write, the rejected records and the
   dead-letter partition's end offset before sending) is written durably;
2. the bronze files are written durably (temporary name, fsync, rename) — the commit point;
3. the rejected records are sent to ``<topic>.dlq`` and flushed;
4. (in the consumer) the source offset is committed, then the manifest deleted.

On partition assignment :meth:`Lander.recover` reads the manifests left behind: a batch
whose bronze files are not all in place is rolled back (files and manifest removed, the
records will be read again); one whose files are in place is rolled forward (dead-letter
records missing from the dead-letter partition since the recorded offset are sent) and its
last offset is returned so the consumer skips it and commits past it. Either way each valid
record lands in bronze once and each invalid one reaches the dead-letter topic once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition

from core.files import staging_name, write_atomic
from core.settings import Settings
from schemas import RecordInvalid, contract
from streaming.admin import dlq_topic
from streaming.bronze import Row, plan_files, to_table, unstorable_timestamps, write_durably
from streaming.connection import connect
from streaming.deadletter import Rejected, sources_since
from streaming.producer import RecordProducer

WRITER_NICENESS = 10

#: The points at which ``CITYBRAIN_INGEST_CRASH_AT`` can kill the ingest, in batch order.
CRASH_POINTS = ("after_manifest", "after_bronze", "after_dlq", "after_commit")


def crash_point(settings: Settings, step: str) -> None:
    """Fault injection for the crash tests: SIGKILL the whole ingest at ``step`` if asked."""
    if settings.ingest_crash_at == step:
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getppid() if _in_worker else os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


_in_worker = False


@dataclass
class Batch:
    """Consecutive records of one partition, as columns.

    It crosses to a writer process packed (see ``__reduce__``): each column of bytes becomes
    one blob plus an array of lengths, so pickling costs a few copies instead of one opcode
    per record in the consumer process, which is the ingest's bottleneck.
    """

    topic: str
    partition: int
    offsets: list[int]
    timestamps: list[int]
    keys: list[bytes | None]
    values: list[bytes | None]
    headers: list[list[tuple[str, bytes]]]

    def __reduce__(self):  # noqa: ANN204
        has_headers = any(self.headers)
        return (
            _unpack_batch,
            (
                self.topic,
                self.partition,
                array("q", self.offsets),
                array("q", self.timestamps),
                *_pack(self.keys),
                *_pack(self.values),
                self.headers if has_headers else len(self.headers),
            ),
        )

    @property
    def first(self) -> int:
        return self.offsets[0]

    @property
    def last(self) -> int:
        return self.offsets[-1]


def _pack(items: list[bytes | None]) -> tuple[bytes, array]:
    try:
        return b"".join(items), array("i", map(len, items))  # type: ignore[arg-type]
    except TypeError:  # a null key or value: length -1 marks it
        lengths = array("i", [-1 if item is None else len(item) for item in items])
        return b"".join(item for item in items if item is not None), lengths


def _unpack(blob: bytes, lengths: array) -> list[bytes | None]:
    items: list[bytes | None] = []
    position = 0
    for length in lengths:
        if length < 0:
            items.append(None)
        else:
            items.append(blob[position : position + length])
            position += length
    return items


def _unpack_batch(
    topic, partition, offsets, timestamps, key_blob, key_lengths, value_blob, value_lengths, headers
):  # noqa: ANN001, ANN202, E501
    return Batch(
        topic=topic,
        partition=partition,
        offsets=offsets.tolist(),
        timestamps=timestamps.tolist(),
        keys=_unpack(key_blob, key_lengths),
        values=_unpack(value_blob, value_lengths),
        headers=headers if isinstance(headers, list) else [[] for _ in range(headers)],
    )


@dataclass
class Landed:
    """What a batch left behind once durable: counts, and the manifest to delete after commit."""

    topic: str
    partition: int
    first: int
    last: int
    landed: int
    dead_lettered: int
    files: int
    manifest: str


@dataclass
class Manifest:
    topic: str
    partition: int
    first: int
    last: int
    files: list[str]
    dlq_partition: int
    dlq_start: int
    rejected: list[dict] = field(default_factory=list)

    @staticmethod
    def path_for(lake: Path, topic: str, partition: int, first: int, last: int) -> Path:
        return lake / "_ingest" / topic / f"{partition}-{first}-{last}.json"

    def write(self, path: Path) -> None:
        write_atomic(path, orjson.dumps(asdict(self)))

    @classmethod
    def read(cls, path: Path) -> Manifest:
        return cls(**json.loads(path.read_bytes()))

    def rejected_records(self) -> list[Rejected]:
        return [
            Rejected(
                offset=r["offset"],
                key=_unb64(r["key"]),
                value=_unb64(r["value"]),
                headers=[(k, base64.b64decode(v)) for k, v in r["headers"]],
                stage=r["stage"],
                error=r["error"],
            )
            for r in self.rejected
        ]


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _serialise(rejected: Rejected) -> dict:
    return {
        "offset": rejected.offset,
        "key": _b64(rejected.key),
        "value": _b64(rejected.value),
        "headers": [(k, base64.b64encode(v).decode()) for k, v in rejected.headers],
        "stage": rejected.stage,
        "error": rejected.error,
    }


def parse_and_validate(batch: Batch) -> tuple[list[Row], list[Rejected]]:
    """Split a batch into valid rows and rejected records, each rejection with its reason."""
    validate = contract(batch.topic).validate_parsed
    rows: list[Row] = []
    rejected: list[Rejected] = []
    for offset, timestamp, key, value, headers in zip(
        batch.offsets, batch.timestamps, batch.keys, batch.values, batch.headers, strict=True
    ):
        stage = "parse"
        try:
            if value is None:
                raise ValueError("empty record (null value)")
            record = orjson.loads(value)
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            stage = "validate"
            validate(record)
        except (ValueError, RecordInvalid) as exc:  # orjson.JSONDecodeError is a ValueError
            reason = f"{batch.topic}: {exc}" if stage == "validate" else f"not a JSON object: {exc}"
            rejected.append(Rejected(offset, key, value, list(headers), stage, reason))
            continue
        rows.append(Row(record, offset, timestamp, key))
    unstorable = unstorable_timestamps(batch.topic, rows)
    if unstorable:
        for index, reason in unstorable.items():
            row = rows[index]
            position = batch.offsets.index(row.offset)
            rejected.append(
                Rejected(
                    row.offset,
                    row.key,
                    batch.values[position],
                    list(batch.headers[position]),
                    "validate",
                    f"{batch.topic}: {reason}",
                )
            )
        rows = [row for index, row in enumerate(rows) if index not in unstorable]
        rejected.sort(key=lambda r: r.offset)
    return rows, rejected


class Lander:
    """Lands batches (in a worker process) and recovers what a crash left behind."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake = settings.lake_path
        self.producer = RecordProducer(settings, validate=False)
        self._reader: KafkaConsumer | None = None
        # A lower bound of each dead-letter partition's end: one past the last offset we
        # wrote there. Recovery scans from the bound, so a low one only costs a longer scan,
        # and it spares a ListOffsets round trip per batch.
        self._dlq_floor: dict[TopicPartition, int] = {}

    @property
    def reader(self) -> KafkaConsumer:
        """A group-less consumer for dead-letter end offsets and recovery scans."""
        if self._reader is None:
            self._reader = connect(self.settings, KafkaConsumer, enable_auto_commit=False)
        return self._reader

    def _dlq_partition(self, topic: str, partition: int) -> TopicPartition:
        dlq = dlq_topic(topic)
        count = len(self.producer.partitions_for(dlq)) or 1
        return TopicPartition(dlq, partition % count)

    def land(self, batch: Batch) -> Landed:
        rows, rejected = parse_and_validate(batch)
        files = plan_files(self.lake, batch.topic, batch.partition, rows)
        dlq = self._dlq_partition(batch.topic, batch.partition)
        dlq_start = self._dlq_end_floor(dlq) if rejected else -1
        manifest_path = Manifest.path_for(self.lake, batch.topic, batch.partition, batch.first, batch.last)
        Manifest(
            topic=batch.topic,
            partition=batch.partition,
            first=batch.first,
            last=batch.last,
            files=[str(p.relative_to(self.lake)) for p in files],
            dlq_partition=dlq.partition,
            dlq_start=dlq_start,
            rejected=[_serialise(r) for r in rejected],
        ).write(manifest_path)
        crash_point(self.settings, "after_manifest")
        for path, group in files.items():
            write_durably(to_table(batch.topic, batch.partition, group), path)
        crash_point(self.settings, "after_bronze")
        self._dead_letter(batch.topic, batch.partition, dlq, rejected)
        crash_point(self.settings, "after_dlq")
        return Landed(
            batch.topic,
            batch.partition,
            batch.first,
            batch.last,
            landed=len(rows),
            dead_lettered=len(rejected),
            files=len(files),
            manifest=str(manifest_path),
        )

    def _dlq_end_floor(self, dlq: TopicPartition) -> int:
        if dlq not in self._dlq_floor:
            self._dlq_floor[dlq] = self.reader.end_offsets([dlq])[dlq]
        return self._dlq_floor[dlq]

    def _dead_letter(self, topic: str, partition: int, dlq: TopicPartition, rejected: list[Rejected]) -> None:
        futures = [
            self.producer.send_raw(
                dlq.topic,
                record.key,
                record.value or b"",
                record.dlq_headers(topic, partition),
                dlq.partition,
            )
            for record in rejected
        ]
        self.producer.flush()
        if futures:
            last = max(future.value.offset for future in futures)
            self._dlq_floor[dlq] = max(self._dlq_floor.get(dlq, 0), last + 1)

    def recover(self, topic: str, partition: int) -> list[Landed]:
        """Resolve the manifests a crash left for this partition; return the batches kept."""
        folder = self.lake / "_ingest" / topic
        manifests = sorted(
            folder.glob(f"{partition}-*-*.json") if folder.exists() else [],
            key=lambda p: int(p.stem.split("-")[1]),
        )
        kept = []
        for path in manifests:
            manifest = Manifest.read(path)
            files = [self.lake / f for f in manifest.files]
            if all(f.exists() for f in files):
                kept.append(self._roll_forward(manifest, path))
            else:
                for f in files:
                    f.unlink(missing_ok=True)
                    staging_name(f).unlink(missing_ok=True)
                path.unlink()
        for leftover in folder.glob(f".{partition}-*.tmp") if folder.exists() else []:
            leftover.unlink()
        return kept

    def _roll_forward(self, manifest: Manifest, path: Path) -> Landed:
        rejected = manifest.rejected_records()
        if rejected:
            dlq = TopicPartition(dlq_topic(manifest.topic), manifest.dlq_partition)
            present = sources_since(self.reader, dlq, manifest.dlq_start)
            missing = [r for r in rejected if (manifest.topic, manifest.partition, r.offset) not in present]
            self._dead_letter(manifest.topic, manifest.partition, dlq, missing)
        return Landed(
            manifest.topic,
            manifest.partition,
            manifest.first,
            manifest.last,
            landed=0,
            dead_lettered=0,
            files=0,
            manifest=str(path),
        )

    def close(self) -> None:
        self.producer.close()
        if self._reader is not None:
            self._reader.close()


def worker_main(settings: Settings, conn) -> None:  # noqa: ANN001 - a multiprocessing Connection
    """A writer process: land batches and recover partitions as the consumer asks."""
    global _in_worker
    _in_worker = True
    _die_with_parent()
    # The consumer process is the ingest's bottleneck; the writer is buffered and can wait.
    # On a small machine this keeps it from taking CPU the consumer could use.
    os.nice(WRITER_NICENESS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the consumer decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        lander = Lander(settings)
    except Exception as exc:  # noqa: BLE001 - e.g. the broker went away: the consumer reports it
        conn.send(("error", f"{exc.__class__.__name__}: {exc}"))
        return
    try:
        while True:
            try:
                command, payload = conn.recv()
            except EOFError:
                return
            if command == "stop":
                return
            try:
                if command == "land":
                    conn.send(("landed", lander.land(payload)))
                elif command == "recover":
                    conn.send(("recovered", [lander.recover(t, p) for t, p in payload]))
            except Exception as exc:  # noqa: BLE001 - reported to the consumer, which stops
                conn.send(("error", f"{exc.__class__.__name__}: {exc}"))
                return
    finally:
        lander.close()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the consumer process dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
