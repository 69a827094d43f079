"""The library producer against the real broker: keys, acknowledgements, a bounded buffer."""

from __future__ import annotations

import random
import time

import pytest

from core.settings import Settings
from schemas import RecordInvalid
from streaming import admin, broker
from streaming.producer import DeliveryFailed, RecordProducer
from streaming.sample_feed import detector

from .conftest import both_brokers


@both_brokers
def test_records_are_keyed_by_their_contract_id_and_acknowledged(kafka, reader):
    rng = random.Random(9)
    records = [detector(rng, i) for i in range(30)]
    with RecordProducer(kafka) as producer:
        futures = [
            producer.send_raw("traffic.detector.v1", r["detector_id"].encode(), b"{}") for r in records
        ]
        producer.send_all("traffic.detector.v1", records)
        producer.flush()
    partition_of = {}
    for record, future in zip(records, futures, strict=True):
        partition_of.setdefault(record["detector_id"], future.value.partition)
        assert partition_of[record["detector_id"]] == future.value.partition, "one detector, one partition"


@both_brokers
def test_an_invalid_record_is_refused_before_it_is_sent(kafka):
    with RecordProducer(kafka) as producer:
        with pytest.raises(RecordInvalid, match="occupancy"):
            producer.send("traffic.detector.v1", {**detector(random.Random(1), 0), "occupancy": 2.0})
        assert producer.sent == 0


@pytest.mark.parametrize("kind", ["tansu", "kafka"])
def test_the_buffer_is_bounded_when_the_broker_goes_away(tmp_path, kind):
    settings = Settings(var_dir=tmp_path / "var", kafka_bootstrap=None, lake_uri=None)
    broker.start(settings, kind)  # a broker of its own: this test stops it
    admin.ensure_topics(settings)
    producer = RecordProducer(settings.model_copy(update={"kafka_connect_timeout_s": 2}), max_pending=200)
    rng = random.Random(4)
    for i in range(50):
        producer.send("traffic.detector.v1", detector(rng, i))
    producer.flush()
    broker.stop(settings)

    began = time.monotonic()
    with pytest.raises(DeliveryFailed, match="not acknowledged"):
        for i in range(10_000):
            producer.send("traffic.detector.v1", detector(rng, i))
    assert producer.sent - 50 <= 201, "no more than max_pending records were buffered"
    assert time.monotonic() - began < 30
    with pytest.raises(DeliveryFailed):
        producer.close(timeout_s=1)
