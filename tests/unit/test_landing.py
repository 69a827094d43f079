"""The pure parts of landing a batch: parse and validate, the packed Batch, the manifest, DLQ headers."""

from __future__ import annotations

import pickle

import orjson
import pytest

from streaming.deadletter import Rejected, source_of
from streaming.landing import Batch, Manifest, _serialise, parse_and_validate
from tests.unit.contract_examples import detector

TOPIC = "traffic.detector.v1"


def make_batch(
    values: list[bytes | None],
    *,
    keys: list[bytes | None] | None = None,
    headers: list[list[tuple[str, bytes]]] | None = None,
    first: int = 100,
    partition: int = 2,
) -> Batch:
    n = len(values)
    return Batch(
        topic=TOPIC,
        partition=partition,
        offsets=list(range(first, first + n)),
        timestamps=[1_764_313_200_000 + i for i in range(n)],
        keys=keys if keys is not None else [f"k{i}".encode() for i in range(n)],
        values=values,
        headers=headers if headers is not None else [[] for _ in range(n)],
    )


def valid_value(**changes) -> bytes:
    return orjson.dumps({**detector(), **changes})


# --------------------------------------------------------------------------- parse and validate


def test_a_batch_of_valid_records_becomes_rows_with_their_coordinates():
    batch = make_batch([valid_value(count=1), valid_value(count=2)], keys=[b"J0_e0", None])

    rows, rejected = parse_and_validate(batch)

    assert rejected == []
    assert [r.record for r in rows] == [{**detector(), "count": 1}, {**detector(), "count": 2}]
    assert [r.offset for r in rows] == [100, 101]
    assert [r.timestamp_ms for r in rows] == batch.timestamps
    assert [r.key for r in rows] == [b"J0_e0", None]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"schema_version": 1, "ts": ', "not a JSON object"),
        (b"not json at all", "not a JSON object"),
        (b"", "not a JSON object"),
        (b"\xff\xfe", "not a JSON object"),
        (None, "null value"),
        (b"null", "got NoneType"),
        (b"[1, 2]", "got list"),
        (b'"a string"', "got str"),
        (b"42", "got int"),
        (b"true", "got bool"),
    ],
    ids=repr,
)
def test_a_value_that_is_not_a_json_object_is_rejected_at_the_parse_stage(value, reason):
    rows, rejected = parse_and_validate(make_batch([value], keys=[b"key"], headers=[[("h", b"1")]]))

    assert rows == []
    (refused,) = rejected
    assert refused.stage == "parse"
    assert reason in refused.error
    assert (refused.offset, refused.key, refused.value, refused.headers) == (
        100,
        b"key",
        value,
        [("h", b"1")],
    )


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"count": 10_001}, "data.count must be smaller than or equal to 10000"),
        ({"ts": "2026-11-28T15:00:00+08:00"}, "data.ts must match pattern"),
        ({"source": "laser"}, "data.source must be one of"),
        ({"unexpected": True}, "data must not contain {'unexpected'} properties"),
        ({"speed_mps": -1}, "data.speed_mps cannot be validated by any definition"),
    ],
    ids=repr,
)
def test_a_record_breaking_its_contract_is_rejected_at_the_validate_stage(changes, rule):
    value = valid_value(**changes)

    rows, rejected = parse_and_validate(make_batch([value]))

    assert rows == []
    (refused,) = rejected
    assert refused.stage == "validate"
    assert refused.error.startswith(f"{TOPIC}: ")
    assert rule in refused.error
    assert refused.value == value


def test_a_missing_field_is_rejected_naming_it():
    record = detector()
    del record["occupancy"]

    _, (refused,) = parse_and_validate(make_batch([orjson.dumps(record)]))

    assert refused.stage == "validate"
    assert TOPIC in refused.error
    assert "occupancy" in refused.error


def test_a_mixed_batch_keeps_every_record_in_order_on_one_side_or_the_other():
    values = [valid_value(), b"{", valid_value(count=-1), None, valid_value(count=3), b"[]"]
    headers = [[("trace", str(i).encode())] for i in range(len(values))]

    rows, rejected = parse_and_validate(make_batch(values, headers=headers, first=7))

    assert [r.offset for r in rows] == [7, 11]
    assert [(r.offset, r.stage) for r in rejected] == [
        (8, "parse"),
        (9, "validate"),
        (10, "parse"),
        (12, "parse"),
    ]
    assert [r.headers for r in rejected] == [headers[1], headers[2], headers[3], headers[5]]


def test_a_date_that_does_not_exist_is_rejected_with_its_original_bytes_and_headers():
    values = [valid_value(), valid_value(ts="2026-02-30T07:00:00Z"), valid_value(count=4)]
    headers = [[], [("trace", b"t-2")], []]

    rows, rejected = parse_and_validate(make_batch(values, headers=headers, first=50))

    assert [r.offset for r in rows] == [50, 52]
    assert len(rejected) == 1
    assert (rejected[0].offset, rejected[0].stage) == (51, "validate")
    assert rejected[0].value == values[1] and rejected[0].headers == headers[1]
    assert "data.ts '2026-02-30T07:00:00Z' is not a real date and time" in rejected[0].error


def test_an_empty_batch_gives_nothing():
    assert parse_and_validate(make_batch([])) == ([], [])


# --------------------------------------------------------------------------- Batch crosses processes


BATCHES = {
    "plain": make_batch([valid_value(), b"{}"]),
    "null keys": make_batch([b"a", b"b", b"c"], keys=[None, b"k", None]),
    "null values": make_batch([None, b"x", None], keys=[b"1", b"2", b"3"]),
    "all null": make_batch([None, None], keys=[None, None]),
    "empty bytes": make_batch([b"", b"", b"v"], keys=[b"", None, b""]),
    "headers": make_batch(
        [b"a", b"b", b"c"],
        headers=[[("trace", b"1"), ("origin", b"")], [], [("bin", bytes(range(256)))]],
    ),
    "binary": make_batch([bytes(range(256)), b"\x00" * 10], keys=[b"\x00", b"\xff\xfe"]),
    "empty": make_batch([]),
    "large offsets": make_batch([b"x"], first=2**40),
}


@pytest.mark.parametrize("name", BATCHES)
def test_a_batch_survives_pickling_unchanged(name):
    batch = BATCHES[name]

    back = pickle.loads(pickle.dumps(batch))

    assert type(back) is Batch
    assert back == batch


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_a_batch_survives_every_pickle_protocol(protocol):
    batch = BATCHES["headers"]

    assert pickle.loads(pickle.dumps(batch, protocol=protocol)) == batch


def test_a_batch_knows_its_first_and_last_offset():
    batch = make_batch([b"a", b"b", b"c"], first=40)

    assert (batch.first, batch.last) == (40, 42)


# --------------------------------------------------------------------------- the intent manifest


REJECTED = [
    Rejected(5, b"k5", b"{", [("trace", b"t5")], "parse", "not a JSON object: unexpected end of data"),
    Rejected(6, None, None, [], "parse", "not a JSON object: empty record (null value)"),
    Rejected(7, b"", b"", [("empty", b"")], "parse", "not a JSON object: empty input"),
    Rejected(8, b"\x00\xff", bytes(range(256)), [("bin", b"\xff\x00")], "validate", f"{TOPIC}: data.ts ..."),
    Rejected(9, b"k9", '{"q": "ü"}'.encode(), [], "validate", f"{TOPIC}: Unicode in the reason: ü"),
]


def make_manifest(rejected: list[Rejected]) -> Manifest:
    return Manifest(
        topic=TOPIC,
        partition=2,
        first=5,
        last=12,
        files=[f"bronze/{TOPIC}/date=2026-11-28/hour=07/2-10-12.parquet"],
        dlq_partition=0,
        dlq_start=31 if rejected else -1,
        rejected=[_serialise(r) for r in rejected],
    )


def test_a_manifest_lives_under_ingest_by_topic_partition_and_range(tmp_path):
    assert Manifest.path_for(tmp_path, TOPIC, 2, 5, 12) == tmp_path / "_ingest" / TOPIC / "2-5-12.json"


@pytest.mark.parametrize("rejected", [REJECTED, []], ids=["with rejected", "without"])
def test_a_manifest_reads_back_as_written(tmp_path, rejected):
    manifest = make_manifest(rejected)
    path = Manifest.path_for(tmp_path, TOPIC, 2, 5, 12)

    manifest.write(path)
    back = Manifest.read(path)

    for name in ("topic", "partition", "first", "last", "files", "dlq_partition", "dlq_start"):
        assert getattr(back, name) == getattr(manifest, name), name
    assert back.rejected_records() == rejected
    assert manifest.rejected_records() == rejected


def test_the_rejected_records_of_a_manifest_keep_their_bytes_exactly(tmp_path):
    path = tmp_path / "m.json"
    make_manifest(REJECTED).write(path)

    back = Manifest.read(path).rejected_records()

    assert [(r.key, r.value) for r in back] == [(r.key, r.value) for r in REJECTED]
    assert [r.headers for r in back] == [r.headers for r in REJECTED]
    assert all(isinstance(value, bytes) for r in back for _, value in r.headers)


def test_writing_a_manifest_leaves_no_temporary_file(tmp_path):
    path = Manifest.path_for(tmp_path, TOPIC, 2, 5, 12)

    make_manifest(REJECTED).write(path)
    make_manifest([]).write(path)  # and writing again replaces it

    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert Manifest.read(path).rejected == []


# --------------------------------------------------------------------------- dead-letter headers


def test_dead_letter_headers_keep_the_original_ones_and_say_why_and_where():
    rejected = Rejected(17, b"k", b"{", [("trace", b"abc"), ("origin", b"\x00")], "parse", "not JSON: ü")

    headers = rejected.dlq_headers("public.weather.v1", 3)

    assert headers == [
        ("trace", b"abc"),
        ("origin", b"\x00"),
        ("dlq.error", "not JSON: ü".encode()),
        ("dlq.stage", b"parse"),
        ("dlq.topic", b"public.weather.v1"),
        ("dlq.partition", b"3"),
        ("dlq.offset", b"17"),
    ]
    assert rejected.headers == [("trace", b"abc"), ("origin", b"\x00")]  # not modified


def test_the_source_of_a_dead_letter_is_read_back_from_its_headers():
    headers = Rejected(2**40, None, None, [("trace", b"x")], "validate", "e").dlq_headers(TOPIC, 11)

    assert source_of(headers) == (TOPIC, 11, 2**40)


def test_the_latest_dead_letter_coordinates_win_over_ones_already_in_the_headers():
    replayed = [("dlq.topic", b"old.topic"), ("dlq.partition", b"9"), ("dlq.offset", b"99")]

    headers = Rejected(3, None, b"x", replayed, "parse", "e").dlq_headers(TOPIC, 1)

    assert source_of(headers) == (TOPIC, 1, 3)


@pytest.mark.parametrize("dropped", ["dlq.topic", "dlq.partition", "dlq.offset"])
def test_a_dead_letter_without_complete_coordinates_has_no_source(dropped):
    headers = Rejected(3, None, b"x", [], "parse", "e").dlq_headers(TOPIC, 1)

    assert source_of([(k, v) for k, v in headers if k != dropped]) is None


def test_a_record_without_dead_letter_headers_has_no_source():
    assert source_of([]) is None
    assert source_of([("trace", b"1"), ("dlq.error", b"why")]) is None
