"""A second, independent Kafka client (librdkafka, via confluent-kafka) produces into our topics
and the ingest (kafka-python) reads it: wire compatibility is shown, not assumed."""

from __future__ import annotations

import confluent_kafka
import orjson

from streaming.connection import bootstrap_servers
from streaming.ingest import Ingest
from streaming.sample_feed import generate

from .feed import Sent, assert_exactly_once


def test_records_from_librdkafka_land_in_bronze_and_dead_letters(kafka, reader):
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap_servers(kafka), "acks": "all", "enable.idempotence": True}
    )
    delivered: list[tuple] = []

    def on_delivery(error, message):
        assert error is None, error
        delivered.append(
            (message.topic(), message.partition(), message.offset(), message.key(), message.value())
        )

    feed = list(generate(1_000, invalid_fraction=0.05, seed=21))
    valid_by_value = {r.value: r.valid for r in feed}
    for record in feed:
        producer.produce(
            record.topic,
            key=record.key,
            value=record.value,
            headers=[("via", b"librdkafka")],
            on_delivery=on_delivery,
        )
    assert producer.flush(30) == 0
    assert len(delivered) == len(feed)

    counters = Ingest(kafka, group="wire").run(
        stop_when=lambda c: c.consumed >= len(feed), handle_signals=False
    )

    assert counters.landed == sum(r.valid for r in feed)
    sent = [Sent(t, p, o, k, v, valid_by_value[v]) for t, p, o, k, v in delivered]
    assert_exactly_once(kafka, reader, sent)


def test_librdkafka_consumer_reads_what_our_producer_wrote(kafka):
    from streaming.producer import RecordProducer

    records = [orjson.loads(r.value) for r in generate(50, 0.0, seed=2) if r.topic == "traffic.detector.v1"]
    with RecordProducer(kafka) as producer:
        producer.send_all("traffic.detector.v1", records)
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap_servers(kafka),
            "group.id": "librdkafka-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([confluent_kafka.TopicPartition("traffic.detector.v1", p, 0) for p in range(3)])
    got = []
    for _ in range(50):
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got.append(orjson.loads(message.value()))
            assert message.key() == got[-1]["detector_id"].encode()
        if len(got) == len(records):
            break
    consumer.close()
    key = lambda r: (r["detector_id"], r["ts"], r["count"])  # noqa: E731
    assert sorted(got, key=key) == sorted(records, key=key)
