"""Produce → ingest → bronze and dead-letter topics, against the real embedded broker."""

from __future__ import annotations

import re
from datetime import datetime

import orjson
import pyarrow.parquet as pq
import pytest
from kafka import TopicPartition

from schemas import INPUT_TOPICS
from streaming.bronze import read_topic
from streaming.deadletter import read_dead_letters
from streaming.ingest import Ingest
from streaming.producer import RecordProducer
from tests.unit.contract_examples import emergency

from .conftest import both_brokers
from .feed import Sent, assert_exactly_once, send_feed

pytestmark = both_brokers

EMERGENCY = "operator.emergency.v1"
FILE_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.parquet$")


def ingest_all(settings, records: int, **kwargs):
    ingest = Ingest(settings, group="test-ingest", **kwargs)
    return ingest.run(stop_when=lambda c: c.consumed >= records, handle_signals=False)


def test_bronze_rows_equal_what_was_sent_by_key_and_offset(kafka, reader):
    sent = send_feed(kafka, 3_000, invalid_fraction=0.0)

    counters = ingest_all(kafka, len(sent))

    assert counters.landed == 3_000 and counters.dead_lettered == 0
    by_coordinates = {(s.topic, s.partition, s.offset): s for s in sent}
    for topic in INPUT_TOPICS:
        for row in read_topic(kafka.lake_path, topic).to_pylist():
            original = by_coordinates[(topic, row["_partition"], row["_offset"])]
            assert row["_key"] == original.key
            record = orjson.loads(original.value)
            for field, value in record.items():
                if isinstance(row[field], datetime):
                    assert row[field] == datetime.fromisoformat(value)
                else:
                    assert row[field] == value, field
    assert_exactly_once(kafka, reader, sent)


def test_bronze_files_are_named_by_partition_and_offsets_under_event_hour(kafka):
    sent = send_feed(kafka, 1_500, invalid_fraction=0.0)
    ingest_all(kafka, len(sent))

    files = sorted((kafka.lake_path / "bronze").rglob("*.parquet"))
    assert files
    for path in files:
        partition, first, last = map(int, FILE_NAME.match(path.name).groups())
        table = pq.read_table(path)
        offsets = table.column("_offset").to_pylist()
        assert (min(offsets), max(offsets)) == (first, last)
        assert set(table.column("_partition").to_pylist()) == {partition}
        hours = {ts.strftime("date=%Y-%m-%d/hour=%H") for ts in table.column("ts").to_pylist()}
        assert hours == {f"{path.parent.parent.name}/{path.parent.name}"}
        assert path.parent.parent.parent.name in INPUT_TOPICS
    assert not [p for p in (kafka.lake_path / "bronze").rglob(".*")], "temporary files left behind"
    assert not list((kafka.lake_path / "_ingest").rglob("*.json")), "manifests left after commit"


def test_every_invalid_record_reaches_its_dead_letter_topic_with_its_reason(kafka, reader):
    sent = send_feed(kafka, 2_000, invalid_fraction=0.1)
    with RecordProducer(kafka, validate=False) as producer:
        future = producer.send_raw(
            "public.weather.v1", b"ws9", b'{"schema_version": 1}', headers=[("trace-id", b"abc123")]
        )
        producer.flush()
    extra = (future.value.topic, future.value.partition, future.value.offset)

    counters = ingest_all(kafka, len(sent) + 1)

    assert counters.dead_lettered == sum(not s.valid for s in sent) + 1
    dead = {
        source: (reason, value)
        for topic in INPUT_TOPICS
        for source, reason, value in read_dead_letters(reader, topic)
    }
    for s in sent:
        if not s.valid:
            reason, value = dead[(s.topic, s.partition, s.offset)]
            assert value == s.value, "the original bytes are kept"
            assert reason.startswith(s.topic) or reason.startswith("not a JSON object")
    reason, _ = dead[extra]
    assert "must contain" in reason and "ts" in reason
    extra_sent = Sent(*extra, key=b"ws9", value=b'{"schema_version": 1}', valid=False)
    assert_exactly_once(kafka, reader, [*sent, extra_sent])


def test_bad_emergency_dispatches_are_dead_lettered_naming_the_field(kafka, reader):
    """A dispatch must never be lost: a broken one goes to the dead-letter topic with its reason,
    and the good one beside it lands."""
    good = emergency()
    broken = {
        "destination_edge": {**good, "destination_edge": None},
        "speed_mps": {**good, "speed_mps": 140.0},
        "kind": {**good, "kind": "teleport"},
        "vehicle_class": {k: v for k, v in good.items() if k != "vehicle_class"},
    }
    with RecordProducer(kafka, validate=False) as producer:
        futures = {
            field: producer.send_raw(EMERGENCY, b"d1", orjson.dumps(record))
            for field, record in broken.items()
        }
        producer.send_raw(EMERGENCY, b"d1", orjson.dumps(good))
        producer.flush()

    counters = ingest_all(kafka, len(broken) + 1)

    assert (counters.landed, counters.dead_lettered) == (1, len(broken))
    dead = {source: reason for source, reason, _ in read_dead_letters(reader, EMERGENCY)}
    for field, future in futures.items():
        reason = dead[(future.value.topic, future.value.partition, future.value.offset)]
        assert reason.startswith(EMERGENCY) and field in reason, reason
    assert read_topic(kafka.lake_path, EMERGENCY).column("dispatch_id").to_pylist() == [good["dispatch_id"]]


def test_dead_letter_keeps_original_headers_and_names_the_source(kafka, reader):
    with RecordProducer(kafka, validate=False) as producer:
        future = producer.send_raw("public.incident.v1", b"inc1", b"not json", headers=[("trace-id", b"t-1")])
        producer.flush()
    ingest_all(kafka, 1)

    tp = TopicPartition("public.incident.v1.dlq", future.value.partition % 3)
    reader.assign([tp])
    reader.seek_to_beginning(tp)
    records = [r for batch in reader.poll(timeout_ms=5000).values() for r in batch]
    assert len(records) == 1
    headers = dict(records[0].headers)
    assert headers["trace-id"] == b"t-1"
    assert headers["dlq.topic"] == b"public.incident.v1"
    assert headers["dlq.partition"] == str(future.value.partition).encode()
    assert headers["dlq.offset"] == str(future.value.offset).encode()
    assert headers["dlq.stage"] == b"parse"
    assert records[0].value == b"not json" and records[0].key == b"inc1"


@pytest.mark.parametrize("workers", [2])
def test_several_writers_keep_each_partition_in_order(kafka, reader, workers):
    sent = send_feed(kafka, 4_000, invalid_fraction=0.02, seed=11)
    counters = ingest_all(kafka.model_copy(update={"ingest_batch_records": 300}), len(sent), workers=workers)
    assert counters.handled == len(sent)
    assert_exactly_once(kafka, reader, sent)
