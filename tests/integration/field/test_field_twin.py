"""The field loop on the real embedded broker and a real libsumo twin: approvals published to
``control.plan.approved.v1`` are applied to the twin's signal as it streams, refused when unsafe,
dead-lettered when broken; the answers reach ``control.plan.applied.v1``, and the plan store,
following that topic, moves the plans to applied and refused."""

from __future__ import annotations

import time

import orjson
import pytest

from core import database
from field.run import follow, run_twin_field
from field.service import APPLIED_TOPIC, ROLLBACK_TOPIC
from optimizer.proposing import store
from optimizer.proposing.propose import publish
from streaming.admin import dlq_topic
from tests.integration.conftest import citybrain, read_records
from tests.unit.field.test_service import SIGNAL, stored_and_approved

pytestmark = pytest.mark.integration

APPROVED = store.APPROVED_TOPIC


def test_approvals_reach_the_twins_signal_and_the_store_follows(kafka, reader, tmp_path):
    engine = database.open_database(kafka)
    good = stored_and_approved(engine, offset_s=40.0)
    unsafe = stored_and_approved(engine, green_s=1.0)
    publish(kafka, [good, unsafe], topic=APPROVED)
    publish(kafka, [good], topic=APPROVED)  # redelivered: applied once
    from streaming.producer import RecordProducer

    with RecordProducer(kafka, validate=False) as producer:
        producer.send_raw(APPROVED, SIGNAL.encode(), b'{"plan_id": "broken"}')

    answers = []
    summary, counts = run_twin_field(
        kafka,
        engine,
        "resco/cologne1",
        out_dir=tmp_path / "twin",
        until=25200 + 600,
        on_handled=answers.append,
    )
    assert summary.counts, "the twin streamed its sensors meanwhile"
    assert counts.outcomes == {"submitted": 1, "refused": 1, "duplicate": 1, "dead_lettered": 1, "applied": 1}
    by_plan = {h.plan_id: h for h in answers}
    assert by_plan[good["plan_id"]].outcome == "applied"
    assert "min-green" in by_plan[unsafe["plan_id"]].detail

    applied = [orjson.loads(r.value) for r in read_records(reader, APPLIED_TOPIC)]
    assert sorted(a["application"]["status"] for a in applied) == ["applied", "refused"]
    (ok,) = [a for a in applied if a["plan_id"] == good["plan_id"]]
    assert ok["application"]["adapter"] == "sumo-twin" and ok["offset_s"] == 40.0
    # in the twin's own time (07:00-07:10 on its day), after the offset moved over some cycles
    assert "2026-11-28T07:00:00Z" < ok["application"]["effective_at"] < "2026-11-28T07:10:00Z"
    assert ok["application"]["transition_cycles"] >= 1 and ok["application"]["program_id"] == "citybrain"
    dead = read_records(reader, dlq_topic(APPROVED))
    assert len(dead) == 1 and b"not a control.plan.approved.v1 record" in dict(dead[0].headers)["dlq.error"]

    seen = []
    follow(kafka, engine, stop_when=lambda: len(seen) >= 2, on_record=seen.append)
    assert store.get(engine, good["plan_id"]).status == "applied"
    assert store.get(engine, unsafe["plan_id"]).status == "refused"


def test_the_cli_applies_an_approval_and_reports_the_outcomes(kafka):
    engine = database.open_database(kafka)
    good = stored_and_approved(engine, offset_s=20.0)
    publish(kafka, [good], topic=APPROVED)
    result = citybrain(
        kafka, "field", "run", "--scenario", "resco/cologne1", "--until", str(25200 + 400), "--json"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert orjson.loads(result.stdout)["outcomes"] == {"submitted": 1, "applied": 1}
    # the progress line may fold it on a narrow terminal
    assert f"plan {good['plan_id']} signal {SIGNAL}: applied" in " ".join(result.stderr.split())
    bad = citybrain(kafka, "field", "run", "--adapter", "snmp")
    assert bad.returncode == 2 and "snmp" in bad.stderr and "twin" in bad.stderr


def test_a_rollback_asked_for_while_the_twin_runs_restores_the_signal(kafka, reader, tmp_path):
    engine = database.open_database(kafka)
    good = stored_and_approved(engine, offset_s=40.0)
    publish(kafka, [good], topic=APPROVED)
    request = {
        "schema_version": 1,
        "ts": "2026-11-28T07:10:00Z",
        "plan_id": good["plan_id"],
        "requested_by": "olga",
        "reason": "queues back to the bridge",
    }

    def on_handled(handled) -> None:
        if handled.outcome == "applied":  # the operator sees it applied, and takes it back
            publish(kafka, [request], topic=ROLLBACK_TOPIC)

    _, counts = run_twin_field(
        kafka, engine, "resco/cologne1", out_dir=tmp_path / "twin", until=25200 + 1200, on_handled=on_handled
    )
    assert counts.outcomes == {"submitted": 1, "applied": 1, "rolling_back": 1, "rolled_back": 1}
    answers = [orjson.loads(r.value) for r in read_records(reader, APPLIED_TOPIC)]
    assert [a["application"]["status"] for a in answers] == ["applied", "rolled_back"]
    back = answers[-1]["application"]
    assert back["program_id"] == "0" and "by hand by olga" in back["detail"]
    assert back["effective_at"] > answers[0]["application"]["effective_at"]
    seen = []
    follow(kafka, engine, stop_when=lambda: len(seen) >= 2, on_record=seen.append)
    assert store.get(engine, good["plan_id"]).status == "rolled_back"


def test_through_ntcip_a_controller_that_does_not_answer_fails_the_application(kafka):
    import socket

    from field.run import run_ntcip_field

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a UDP port nobody answers on
        probe.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{probe.getsockname()[1]}"
    settings = kafka.model_copy(
        update={"ntcip_controllers": silent, "ntcip_timeout_s": 0.3, "ntcip_retries": 0}
    )
    engine = database.open_database(settings)
    good = stored_and_approved(engine, offset_s=40.0)
    publish(settings, [good], topic=APPROVED)
    answers = []
    counts = run_ntcip_field(
        settings, engine, "resco/cologne1", stop_when=lambda: bool(answers), on_handled=answers.append
    )
    assert counts.outcomes == {"failed": 1}
    (failed,) = answers
    assert failed.plan_id == good["plan_id"] and "did not take it" in failed.detail


def test_the_cli_runs_the_ntcip_adapter_until_stopped_and_names_what_it_needs(kafka):
    import signal
    import socket
    import subprocess
    import sys

    from tests.integration.conftest import cli_env

    missing = citybrain(kafka, "field", "run", "--adapter", "ntcip")
    assert missing.returncode == 2 and "CITYBRAIN_NTCIP_CONTROLLERS" in missing.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a UDP port nobody answers on
        probe.bind(("127.0.0.1", 0))
        silent = f"127.0.0.1:{probe.getsockname()[1]}"
    engine = database.open_database(kafka)
    good = stored_and_approved(engine, offset_s=35.0)
    publish(kafka, [good], topic=APPROVED)
    env = cli_env(
        kafka,
        CITYBRAIN_NTCIP_CONTROLLERS=silent,
        CITYBRAIN_NTCIP_TIMEOUT_S="0.3",
        CITYBRAIN_NTCIP_RETRIES="0",
    )
    command = [sys.executable, "-m", "citybrain.cli", "field", "run", "--adapter", "ntcip"]
    command += ["--scenario", "resco/cologne1", "--json"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        said = ""
        deadline = time.monotonic() + 120
        while f"signal {SIGNAL}: failed" not in " ".join(said.split()) and time.monotonic() < deadline:
            line = run.stderr.readline()
            if not line:
                break
            said += line
        run.send_signal(signal.SIGINT)
        out, rest = run.communicate(timeout=60)
    assert run.returncode == 0, said + rest
    assert f"plan {good['plan_id']} signal {SIGNAL}: failed" in " ".join(said.split())
    assert orjson.loads(out)["outcomes"] == {"failed": 1}
