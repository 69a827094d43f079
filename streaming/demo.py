"""``citybrain demo``: the part of the data flow that exists today, end to end, on one machine.

It runs in its own corner (``var/demo``, its own embedded broker) so it never mixes with a
real lake: a sample corridor feed with some broken records goes to Kafka, the ingest lands
it in bronze and dead-letters the rest, and the summary compares what was sent with what
landed where, with a few of the refusal reasons.
"""

from __future__ import annotations

import shutil
from collections import Counter
from typing import Any

from kafka import KafkaConsumer
from rich.console import Console

from citybrain.settings import Settings
from schemas import INPUT_TOPICS
from streaming import admin, broker
from streaming.bronze import read_topic
from streaming.connection import connect
from streaming.deadletter import read_dead_letters
from streaming.ingest import Ingest
from streaming.producer import RecordProducer
from streaming.sample_feed import generate


def run_demo(settings: Settings, records: int, invalid_fraction: float, progress: Console) -> dict[str, Any]:
    demo_dir = settings.var_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo = settings.model_copy(update={"var_dir": demo_dir, "lake_uri": None, "kafka_bootstrap": None})
    with progress.status("starting the embedded Kafka-protocol broker"):
        state = broker.start(demo)
        admin.ensure_topics(demo)
    progress.log(f"broker up at {state.bootstrap}")
    try:
        sent: Counter[str] = Counter()
        valid: Counter[str] = Counter()
        with (
            progress.status(f"sending {records:,} sample-feed records"),
            RecordProducer(demo, validate=False) as producer,
        ):
            for record in generate(records, invalid_fraction):
                producer.send_raw(record.topic, record.key, record.value)
                sent[record.topic] += 1
                valid[record.topic] += record.valid
        progress.log(f"sent {records:,} records, {records - sum(valid.values()):,} of them broken on purpose")
        with progress.status("ingesting into bronze (joining the consumer group takes a few seconds)"):
            ingest = Ingest(demo, group="citybrain-demo")
            counters = ingest.run(stop_when=lambda c: c.consumed >= records, handle_signals=False)
            elapsed = (ingest.drained_at or 0.0) - (ingest.first_record_at or 0.0)
        progress.log(f"ingest: landed {counters.landed:,}, dead-lettered {counters.dead_lettered:,}")
        reader = connect(demo, KafkaConsumer, enable_auto_commit=False)
        try:
            dead = {topic: read_dead_letters(reader, topic) for topic in INPUT_TOPICS}
        finally:
            reader.close()
        topics = {}
        for topic in INPUT_TOPICS:
            table = read_topic(demo.lake_path, topic)
            files = list((demo.lake_path / "bronze" / topic).rglob("*.parquet"))
            topics[topic] = {
                "sent": sent[topic],
                "valid_sent": valid[topic],
                "bronze_rows": table.num_rows,
                "bronze_files": len(files),
                "dlq": len(dead[topic]),
            }
        reasons = [reason for topic in INPUT_TOPICS for _, reason, _ in dead[topic]][:5]
        return {
            "lake": str(demo.lake_path.resolve()),
            "topics": topics,
            "landed": counters.landed,
            "dead_lettered": counters.dead_lettered,
            "ingest_rate": counters.handled / elapsed if elapsed > 0 else 0.0,
            "sample_dead_letter_reasons": reasons,
        }
    finally:
        broker.stop(demo)
