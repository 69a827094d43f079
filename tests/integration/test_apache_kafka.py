"""Apache Kafka itself: `citybrain broker start --kind kafka` keeps its data across a restart,
and the clients reach a SASL_SSL listener (SCRAM-SHA-512, a CA of the test's) configured from
the environment alone."""

from __future__ import annotations

import json
import random
from datetime import datetime

import orjson
import pytest
from kafka import KafkaConsumer

from core.settings import Settings
from streaming.bronze import read_topic
from streaming.connection import connect
from streaming.producer import RecordProducer
from streaming.sample_feed import detector

from .conftest import citybrain, read_records

pytestmark = pytest.mark.integration


def test_broker_start_kind_kafka_keeps_its_records_across_a_restart(tmp_path):
    settings = Settings(var_dir=tmp_path / "var", kafka_bootstrap=None, lake_uri=None)
    started = citybrain(settings, "broker", "start", "--kind", "kafka", "--json", timeout=180)
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)
    assert first["kind"] == "kafka" and first["embedded"] is True
    assert first["topics"]["traffic.detector.v1"] == 3
    try:
        rng = random.Random(3)
        with RecordProducer(settings) as producer:
            producer.send_all("traffic.detector.v1", [detector(rng, i) for i in range(200)])

        assert citybrain(settings, "broker", "stop").returncode == 0
        restarted = citybrain(settings, "broker", "start", "--kind", "kafka", "--json", timeout=180)
        assert restarted.returncode == 0, restarted.stderr
        assert json.loads(restarted.stdout)["bootstrap"] == first["bootstrap"], "clients keep the address"

        status = json.loads(citybrain(settings, "broker", "status", "--json").stdout)
        assert status["reachable"] is True and status["kind"] == "kafka"
        reader = connect(settings, KafkaConsumer, enable_auto_commit=False)
        try:
            assert len(read_records(reader, "traffic.detector.v1")) == 200
        finally:
            reader.close()
        other = citybrain(settings, "broker", "start", "--kind", "tansu")
        assert other.returncode != 0 and "a kafka broker already runs" in other.stderr
    finally:
        citybrain(settings, "broker", "stop")


def secured_env(apache_kafka) -> dict[str, str]:
    return {
        "CITYBRAIN_KAFKA_BOOTSTRAP": apache_kafka.secured_bootstrap,
        "CITYBRAIN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CITYBRAIN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CITYBRAIN_KAFKA_SASL_USERNAME": apache_kafka.user.name,
        "CITYBRAIN_KAFKA_SASL_PASSWORD": apache_kafka.user.password,
        "CITYBRAIN_KAFKA_SSL_CAFILE": str(apache_kafka.ca_file),
        "CITYBRAIN_KAFKA_CONNECT_TIMEOUT_S": "10",
    }


def test_produce_and_ingest_through_a_sasl_ssl_listener_set_from_the_environment(apache_kafka, tmp_path):
    settings = Settings(var_dir=tmp_path / "var", kafka_bootstrap=apache_kafka.bootstrap, lake_uri=None)
    apache_kafka.fresh_topics(settings)
    rng = random.Random(5)
    records = [detector(rng, i) for i in range(300)]
    feed = tmp_path / "detectors.jsonl"
    feed.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    env = secured_env(apache_kafka)

    produced = citybrain(settings, "produce", "--topic", "traffic.detector.v1", str(feed), **env)
    ingested = citybrain(settings, "ingest", "run", "--until-idle", "3", **env)

    assert produced.returncode == 0, produced.stderr
    assert ingested.returncode == 0, ingested.stderr
    bronze = read_topic(settings.lake_path, "traffic.detector.v1").to_pylist()
    assert sorted((r["detector_id"], r["ts"]) for r in bronze) == sorted(
        (r["detector_id"], datetime.fromisoformat(r["ts"])) for r in records
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("CITYBRAIN_KAFKA_SASL_PASSWORD", "Authentication failed"),
        ("CITYBRAIN_KAFKA_SSL_CAFILE", "CERTIFICATE_VERIFY_FAILED"),
    ],
    ids=["wrong-password", "unknown-ca"],
)
def test_a_wrong_password_or_an_untrusted_broker_is_refused_with_the_reason(
    apache_kafka, tmp_path, change, expected
):
    settings = Settings(var_dir=tmp_path / "var", kafka_bootstrap=apache_kafka.bootstrap, lake_uri=None)
    env = secured_env(apache_kafka)
    if change == "CITYBRAIN_KAFKA_SASL_PASSWORD":
        env[change] = "not-the-password"
    else:  # the system's CAs, which never signed the test's broker
        del env[change]

    status = citybrain(settings, "broker", "status", "--json", **env)

    assert status.returncode == 1
    assert expected in json.loads(status.stdout)["error"]
