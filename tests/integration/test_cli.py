"""The ``citybrain`` CLI as a user runs it: real subprocesses against the real broker."""

from __future__ import annotations

import json
import socket
import time

import orjson

from core.settings import Settings
from streaming.sample_feed import detector, probe

from .conftest import citybrain


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_broker_start_status_stop_round_trip(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    started = citybrain(settings, "broker", "start", "--partitions", "2", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["embedded"] is True and info["bootstrap"].startswith("127.0.0.1:")
    assert info["topics"]["traffic.detector.v1"] == 2
    assert info["topics"]["traffic.detector.v1.dlq"] == 2
    assert "control.plan.approved.v1" in info["topics"]
    try:
        again = citybrain(settings, "broker", "start", "--json")
        assert json.loads(again.stdout)["bootstrap"] == info["bootstrap"], "a second start reuses the broker"
        status = citybrain(settings, "broker", "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["reachable"] is True
    finally:
        stopped = citybrain(settings, "broker", "stop", "--json")
    assert json.loads(stopped.stdout) == {"stopped": True}
    down = citybrain(settings, "broker", "status", "--json")
    assert down.returncode == 1 and json.loads(down.stdout)["reachable"] is False


def test_external_bootstrap_starts_nothing_and_unreachable_is_a_clear_error(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    address = f"127.0.0.1:{closed_port()}"
    began = time.monotonic()
    result = citybrain(
        settings, "broker", "start", CITYBRAIN_KAFKA_BOOTSTRAP=address, CITYBRAIN_KAFKA_CONNECT_TIMEOUT_S="2"
    )
    assert time.monotonic() - began < 30, "an unreachable broker must not hang"
    assert result.returncode == 2
    assert f"cannot reach Kafka at {address} (from CITYBRAIN_KAFKA_BOOTSTRAP)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (settings.run_dir / "broker.json").exists()


def test_produce_and_ingest_fail_clearly_when_the_broker_is_unreachable(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(orjson.dumps(detector(__import__("random").Random(1), 0)) + b"\n")
    env = {
        "CITYBRAIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}",
        "CITYBRAIN_KAFKA_CONNECT_TIMEOUT_S": "2",
    }
    for args in (("produce", "--topic", "traffic.detector.v1", str(feed)), ("ingest", "run")):
        result = citybrain(settings, *args, timeout=60, **env)
        assert result.returncode == 2, (args, result.stderr[-1000:])
        assert "cannot reach Kafka at" in result.stderr and "Traceback" not in result.stderr


def test_commands_say_when_no_broker_is_running(tmp_path):
    result = citybrain(Settings(var_dir=tmp_path / "var"), "ingest", "status")
    assert result.returncode == 2
    assert "run `citybrain broker start`" in result.stderr and "CITYBRAIN_KAFKA_BOOTSTRAP" in result.stderr


def test_produce_validates_and_names_the_bad_line(kafka, tmp_path):
    import random

    rng = random.Random(3)
    good = [orjson.dumps(probe(rng, i)) for i in range(3)]
    bad = orjson.loads(good[0])
    bad["lat"] = 123.0
    feed = tmp_path / "probes.jsonl"
    feed.write_bytes(b"\n".join([good[0], good[1], orjson.dumps(bad), good[2]]) + b"\n")

    result = citybrain(kafka, "produce", "--topic", "operator.probe.v1", "--validate", str(feed))
    assert result.returncode == 2
    assert f"line 3 of {feed}" in result.stderr and "lat" in result.stderr
    assert "2 earlier records were sent" in result.stderr

    sent = citybrain(
        kafka, "produce", "--topic", "operator.probe.v1", "--json", "-", input_bytes=b"\n".join(good)
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"topic": "operator.probe.v1", "sent": 3}


def test_produce_rejects_unknown_topics_and_missing_files(kafka, tmp_path):
    unknown = citybrain(kafka, "produce", "--topic", "traffic.nope.v9", str(tmp_path / "x.jsonl"))
    assert unknown.returncode == 2 and "known topics: traffic.detector.v1" in unknown.stderr
    missing = citybrain(kafka, "produce", "--topic", "traffic.detector.v1", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_ingest_status_reports_counters_and_lag(kafka):
    import random

    rng = random.Random(5)
    lines = b"\n".join(orjson.dumps(detector(rng, i)) for i in range(50)) + b"\nnot json\n"
    produced = citybrain(kafka, "produce", "--topic", "traffic.detector.v1", "-", input_bytes=lines)
    assert produced.returncode == 0, produced.stderr

    before = json.loads(citybrain(kafka, "ingest", "status", "--json").stdout)
    assert before["lag"]["traffic.detector.v1"] == 51 and before["lag_total"] == 51

    ran = citybrain(kafka, "ingest", "run", "--until-idle", "2", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert json.loads(ran.stdout)["landed"] == 50 and json.loads(ran.stdout)["dead_lettered"] == 1

    after = json.loads(citybrain(kafka, "ingest", "status", "--json").stdout)
    assert after["lag_total"] == 0
    assert after["counters"]["landed"] == 50 and after["counters"]["dead_lettered"] == 1
