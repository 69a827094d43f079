"""The bronze landing zone: file layout, rows → Arrow, durable writes and reading back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.files import staging_name
from schemas import INPUT_TOPICS, RecordInvalid, contract
from schemas.arrow import record_schema
from streaming.bronze import (
    PROVENANCE_FIELDS,
    Row,
    bronze_file,
    bronze_root,
    bronze_schema,
    plan_files,
    read_topic,
    to_table,
    unstorable_timestamps,
    write_durably,
)
from tests.unit.contract_examples import detector, valid_record

TOPIC = "traffic.detector.v1"


BROKER_TIME = datetime(2026, 11, 28, 7, 0, 1, 500_000, tzinfo=UTC)


def row(ts: str, offset: int, *, key: bytes | None = b"J0_e0") -> Row:
    return Row({**detector(), "ts": ts}, offset, int(BROKER_TIME.timestamp() * 1000), key)


# --------------------------------------------------------------------------- layout


def test_a_bronze_file_is_named_by_topic_event_hour_partition_and_offsets():
    path = bronze_file(Path("/lake"), TOPIC, "2026-11-28", "07", 2, 100, 199)

    assert path == Path("/lake/bronze/traffic.detector.v1/date=2026-11-28/hour=07/2-100-199.parquet")
    assert path.is_relative_to(bronze_root(Path("/lake"), TOPIC))


def test_a_file_is_written_under_a_dot_name_beside_it():
    path = Path("/lake/bronze/t/date=2026-11-28/hour=07/0-1-2.parquet")

    assert staging_name(path) == path.with_name(".0-1-2.parquet.tmp")


def test_a_batch_spanning_two_hours_lands_as_one_file_per_hour(tmp_path):
    rows = [
        row("2026-11-28T07:59:58Z", 10),
        row("2026-11-28T08:00:00Z", 11),
        row("2026-11-28T07:59:59.999+00:00", 12),
        row("2026-11-28T08:30:00+00:00", 13),
        row("2026-11-28T07:00:00Z", 14),
    ]

    files = plan_files(tmp_path, TOPIC, 1, rows)

    hour = tmp_path / "bronze" / TOPIC / "date=2026-11-28"
    assert files == {
        hour / "hour=07" / "1-10-14.parquet": [rows[0], rows[2], rows[4]],
        hour / "hour=08" / "1-11-13.parquet": [rows[1], rows[3]],
    }
    assert list(files) == sorted(files)  # earlier hours first


def test_a_batch_across_midnight_lands_under_two_dates(tmp_path):
    rows = [row("2026-12-31T23:59:59Z", 5), row("2027-01-01T00:00:00Z", 6)]

    files = plan_files(tmp_path, TOPIC, 0, rows)

    root = tmp_path / "bronze" / TOPIC
    assert list(files) == [
        root / "date=2026-12-31" / "hour=23" / "0-5-5.parquet",
        root / "date=2027-01-01" / "hour=00" / "0-6-6.parquet",
    ]


def test_a_file_is_named_by_the_smallest_and_largest_offset_not_the_first_and_last_row(tmp_path):
    rows = [row("2026-11-28T07:00:00Z", offset) for offset in (42, 7, 99, 13)]

    (path,) = plan_files(tmp_path, TOPIC, 0, rows)

    assert path.name == "0-7-99.parquet"


def test_a_batch_without_valid_rows_plans_no_file(tmp_path):
    assert plan_files(tmp_path, TOPIC, 0, []) == {}


# --------------------------------------------------------------------------- rows → Arrow


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_the_bronze_schema_is_the_contract_then_provenance(topic):
    schema = bronze_schema(topic)

    assert schema.names == [*record_schema(topic).names, "_partition", "_offset", "_kafka_timestamp", "_key"]
    assert schema.metadata == {b"citybrain.topic": topic.encode()}
    assert list(schema)[-4:] == list(PROVENANCE_FIELDS)


def test_provenance_types():
    schema = bronze_schema(TOPIC)

    assert schema.field("_partition").type == pa.int32()
    assert schema.field("_offset").type == pa.int64()
    assert schema.field("_kafka_timestamp").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("_key").type == pa.binary()
    assert schema.field("_key").nullable
    assert not schema.field("_offset").nullable


def test_to_table_produces_the_bronze_schema_with_provenance():
    rows = [row("2026-11-28T07:00:00Z", 10, key=b"J0_e0"), row("2026-11-28T07:01:00Z", 11, key=None)]

    table = to_table(TOPIC, 2, rows)

    assert table.schema.equals(bronze_schema(TOPIC), check_metadata=True)
    assert table.num_rows == 2
    assert table.column("_partition").to_pylist() == [2, 2]
    assert table.column("_offset").to_pylist() == [10, 11]
    assert table.column("_key").to_pylist() == [b"J0_e0", None]
    assert table.column("_kafka_timestamp").to_pylist() == [BROKER_TIME, BROKER_TIME]


def test_a_utc_timestamp_with_z_or_plus_zero_is_the_same_instant():
    rows = [
        row("2026-11-28T07:00:00Z", 1),
        row("2026-11-28T07:00:00+00:00", 2),
        row("2026-11-28T07:00:00.250Z", 3),
        row("2026-11-28T07:00:00.250000+00:00", 4),
    ]

    ts = to_table(TOPIC, 0, rows).column("ts").to_pylist()

    assert ts[0] == ts[1] == datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
    assert ts[2] == ts[3] == datetime(2026, 11, 28, 7, 0, 0, 250_000, tzinfo=UTC)


@pytest.mark.parametrize("topic", INPUT_TOPICS)
def test_every_field_of_a_valid_record_lands_as_it_was(topic):
    record = valid_record(topic)

    table = to_table(topic, 0, [Row(record, 0, 0, contract(topic).key_of(record))])

    for name, value in record.items():
        landed = table.column(name).to_pylist()[0]
        if bronze_schema(topic).field(name).type == pa.timestamp("us", tz="UTC") and value is not None:
            assert landed == datetime.fromisoformat(value), name
        else:
            assert landed == value, name


def test_nulls_land_as_nulls():
    record = {**valid_record("public.incident.v1"), "edge_id": None, "end": None, "lane_ids": []}

    table = to_table("public.incident.v1", 0, [Row(record, 0, 0, None)])

    assert table.column("edge_id").to_pylist() == [None]
    assert table.column("end").to_pylist() == [None]
    assert table.column("lane_ids").to_pylist() == [[]]


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-28T07:00:00Z",
        "2026-11-28T07:00:00+00:00",
        "2026-11-28T07:00:00.1Z",
        "2026-11-28T07:00:00.123456Z",
        "2024-02-29T12:00:00Z",
    ],
)
def test_every_timestamp_the_contract_accepts_lands_in_bronze(ts):
    record = {**detector(), "ts": ts}
    contract(TOPIC).validate(record)

    table = to_table(TOPIC, 0, [Row(record, 0, 0, None)])

    assert table.column("ts").to_pylist()[0] == datetime.fromisoformat(ts)


@pytest.mark.parametrize(
    "ts", ["2026-11-28T07:00:00.1234567Z", "2026-11-28T07:00:00.123456789Z", "٢٠٢٦-11-28T07:00:00Z"]
)
def test_the_contract_refuses_timestamps_bronze_could_not_hold(ts):
    with pytest.raises(RecordInvalid, match="ts"):
        contract(TOPIC).validate({**detector(), "ts": ts})


@pytest.mark.parametrize("ts", ["2026-02-31T07:00:00Z", "2026-04-31T07:00:00Z", "2025-02-29T07:00:00Z"])
def test_impossible_dates_are_found_before_writing(ts):
    rows = [row("2026-11-28T07:00:00Z", 0), Row({**detector(), "ts": ts}, 1, 0, None)]

    assert unstorable_timestamps(TOPIC, rows) == {1: f"data.ts {ts!r} is not a real date and time"}


# --------------------------------------------------------------------------- files


def test_write_durably_leaves_the_file_and_no_temporary_one(tmp_path):
    table = to_table(TOPIC, 0, [row("2026-11-28T07:00:00Z", 0), row("2026-11-28T07:00:30Z", 1)])
    path = bronze_file(tmp_path, TOPIC, "2026-11-28", "07", 0, 0, 1)

    write_durably(table, path)

    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert not staging_name(path).exists()


def test_a_written_file_reads_back_equal(tmp_path):
    table = to_table(TOPIC, 3, [row("2026-11-28T07:00:00Z", 8, key=None), row("2026-11-28T07:00:30Z", 9)])
    path = tmp_path / "out" / "3-8-9.parquet"

    write_durably(table, path)

    assert pq.read_table(path).equals(table)
    assert pq.read_table(path, schema=bronze_schema(TOPIC)).equals(table, check_metadata=True)


def test_rewriting_a_file_replaces_it(tmp_path):
    path = tmp_path / "0-0-0.parquet"
    write_durably(to_table(TOPIC, 0, [row("2026-11-28T07:00:00Z", 0)]), path)
    second = to_table(TOPIC, 0, [row("2026-11-28T07:00:00Z", 0, key=b"other")])

    write_durably(second, path)

    assert pq.read_table(path).equals(second)


def test_read_topic_reads_every_file_and_ignores_dot_files(tmp_path):
    first = to_table(TOPIC, 0, [row("2026-11-28T07:00:00Z", 0)])
    second = to_table(TOPIC, 1, [row("2026-11-28T08:00:00Z", 0), row("2026-11-28T08:00:01Z", 1)])
    write_durably(first, bronze_file(tmp_path, TOPIC, "2026-11-28", "07", 0, 0, 0))
    write_durably(second, bronze_file(tmp_path, TOPIC, "2026-11-28", "08", 1, 0, 1))
    hour = bronze_file(tmp_path, TOPIC, "2026-11-28", "07", 0, 0, 0).parent
    # A half-written file and a hidden Parquet file that would add rows if read:
    (hour / ".2-0-0.parquet.tmp").write_bytes(b"not parquet")
    pq.write_table(first, hour / ".hidden.parquet")

    table = read_topic(tmp_path, TOPIC)

    assert table.num_rows == 3
    assert sorted(table.column("_partition").to_pylist()) == [0, 1, 1]
    assert table.schema.equals(bronze_schema(TOPIC))


def test_reading_a_topic_with_nothing_landed_gives_an_empty_table(tmp_path):
    table = read_topic(tmp_path, "public.weather.v1")

    assert table.num_rows == 0
    assert table.schema.equals(bronze_schema("public.weather.v1"))
