"""`citybrain sim stream` (with an emergency dispatch) → `citybrain ingest run`: the twin's records
all land, none dead-lettered."""

from __future__ import annotations

import json

from schemas import INPUT_TOPICS
from streaming.bronze import read_topic

from ..conftest import both_brokers, citybrain


@both_brokers
def test_the_twin_streams_the_corridor_into_bronze_with_nothing_dead_lettered(kafka):
    streamed = citybrain(
        kafka,
        "sim",
        "stream",
        "--scenario",
        "corridor",
        "--minutes",
        "10",
        "--emergency",
        "--json",
        timeout=300,
    )
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    twin = json.loads(streamed.stdout)
    assert all(twin["counts"][topic] > 0 for topic in INPUT_TOPICS), twin["counts"]

    ingested = citybrain(kafka, "ingest", "run", "--until-idle", "3", "--json", timeout=300)
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    report = json.loads(ingested.stdout)
    assert report["dead_lettered"] == 0
    assert report["landed"] == twin["total"]
    for topic in INPUT_TOPICS:
        assert read_topic(kafka.lake_path, topic).num_rows == twin["counts"][topic], topic
