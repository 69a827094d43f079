"""The sample feed: deterministic, exactly the asked share broken, and honest about which."""

from __future__ import annotations

import math
from collections import Counter

import orjson
import pytest

from schemas import INPUT_TOPICS, RecordInvalid, contract
from streaming.sample_feed import generate


def breaks_contract(topic: str, value: bytes) -> bool:
    """Whether the ingest would refuse ``value``: not JSON, not an object, or invalid."""
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(record, dict):
        return True
    try:
        contract(topic).validate(record)
    except RecordInvalid:
        return True
    return False


def test_the_same_seed_gives_the_same_feed():
    assert list(generate(500, 0.1, seed=3)) == list(generate(500, 0.1, seed=3))


def test_another_seed_gives_another_feed():
    assert list(generate(500, 0.1, seed=3)) != list(generate(500, 0.1, seed=4))


def test_the_default_feed_is_all_valid():
    assert all(record.valid for record in generate(300))


@pytest.mark.parametrize(
    ("records", "fraction"),
    [(100, 0.1), (1000, 0.013), (7, 0.5), (10, 0.25), (10, 0.35), (50, 0.0), (50, 1.0), (0, 0.5), (1, 0.5)],
)
def test_exactly_round_records_times_fraction_are_broken(records, fraction):
    feed = list(generate(records, fraction, seed=11))

    assert len(feed) == records
    assert sum(not record.valid for record in feed) == round(records * fraction)


def test_every_record_called_valid_passes_its_contract_and_every_broken_one_fails():
    feed = list(generate(3000, 0.2, seed=5))

    for record in feed:
        assert breaks_contract(record.topic, record.value) is not record.valid, record


def test_the_feed_covers_every_input_topic_valid_and_broken():
    feed = list(generate(3000, 0.2, seed=5))

    assert {r.topic for r in feed if r.valid} == set(INPUT_TOPICS)
    assert {r.topic for r in feed if not r.valid} == set(INPUT_TOPICS)


def test_probes_dominate_the_mix():
    counts = Counter(record.topic for record in generate(3000, seed=5))

    assert counts.most_common(1)[0][0] == "operator.probe.v1"


def test_the_key_of_a_valid_record_is_its_contract_key():
    for record in generate(1000, seed=9):
        assert record.key == contract(record.topic).key_of(orjson.loads(record.value))


def test_a_broken_record_keeps_the_key_of_the_record_it_was_made_from():
    for record in generate(1000, 0.5, seed=9):
        if record.valid:
            continue
        try:
            parsed = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parsed, list):
            (parsed,) = parsed  # the wrong-shape breakage wraps the record in a list
        assert record.key == contract(record.topic).key_of(parsed)


def test_the_feed_breaks_records_in_several_ways():
    """Not JSON, not an object, a missing field, a local time zone, out of range, unknown field."""
    ways = set()
    for record in generate(2000, 0.5, seed=1):
        if record.valid:
            continue
        try:
            parsed = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            ways.add("not json")
            continue
        if not isinstance(parsed, dict):
            ways.add("not an object")
        elif "ts" not in parsed:
            ways.add("no ts")
        elif parsed["ts"].endswith("+08:00"):
            ways.add("local time")
        elif "unexpected" in parsed:
            ways.add("unknown field")
        else:
            ways.add("out of range")

    assert ways == {"not json", "not an object", "no ts", "local time", "unknown field", "out of range"}


@pytest.mark.parametrize("fraction", [-0.01, 1.01, -1, 2, math.nan, math.inf])
def test_an_invalid_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match="invalid_fraction"):
        list(generate(10, fraction))
