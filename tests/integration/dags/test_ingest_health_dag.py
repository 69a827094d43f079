"""citybrain_ingest_health run by Airflow (``dag.test()``) against the real embedded broker."""

from __future__ import annotations

import json
import socket

import pytest
from kafka import KafkaProducer

from core.settings import Settings
from schemas import INPUT_TOPICS
from streaming.connection import connect
from streaming.health import state_file
from tests.integration.conftest import both_brokers
from tests.unit.dags.airflow_env import run_dag

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]

DAG_ID = "citybrain_ingest_health"
DETECTOR_DLQ = "traffic.detector.v1.dlq"


@pytest.fixture
def health_dag(dagbag):
    return dagbag.dags[DAG_ID]


def dead_letter(settings, count: int) -> None:
    producer = connect(settings, KafkaProducer, acks="all")
    try:
        for n in range(count):
            producer.send(
                DETECTOR_DLQ, key=b"det-%d" % n, value=b"{not json", headers=[("dlq.stage", b"parse")]
            )
        producer.flush()
    finally:
        producer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@both_brokers
def test_a_healthy_ingest_passes_then_a_dead_letter_burst_fails_the_run(
    kafka, citybrain_env, health_dag, capfd
):
    settings = citybrain_env(kafka, ingest_health_max_dead_letters=2)

    healthy = run_dag(health_dag)

    assert healthy.state == "success", healthy
    report = healthy.returned["check"]
    assert report["healthy"] is True and report["previous_check"] is None
    assert {t["topic"]: t["lag"] for t in report["topics"]} == dict.fromkeys(INPUT_TOPICS, 0)

    dead_letter(settings, 3)
    capfd.readouterr()
    burst = run_dag(health_dag)

    assert burst.state == "failed" and burst.tasks == {"check": "failed"}
    # The task log (here: this process's output) says what is wrong, with the figure and the limit.
    assert (
        f"IngestUnhealthy: ingest unhealthy: 3 new dead letters in {DETECTOR_DLQ} since"
        in capfd.readouterr().out
    )
    recorded = json.loads(state_file(settings).read_text())
    assert sum(recorded["dead_letter_ends"][DETECTOR_DLQ].values()) == 3

    quiet_again = run_dag(health_dag)

    assert quiet_again.state == "success"
    detector = next(t for t in quiet_again.returned["check"]["topics"] if t["topic"] == "traffic.detector.v1")
    assert (detector["dead_letters"], detector["new_dead_letters"]) == (3, 0)


def test_an_unreachable_broker_fails_the_run(citybrain_env, health_dag, tmp_path, capfd):
    nowhere = f"127.0.0.1:{free_port()}"
    settings = citybrain_env(
        Settings(var_dir=tmp_path / "var"), kafka_bootstrap=nowhere, kafka_connect_timeout_s=1
    )

    result = run_dag(health_dag)

    assert result.state == "failed" and result.tasks == {"check": "failed"}
    assert f"BrokerUnreachable: cannot reach Kafka at {nowhere}" in capfd.readouterr().out
    assert not state_file(settings).exists()
