"""The guarantee: after a crash at any point, running again leaves each valid record in bronze
exactly once and each invalid one in its dead-letter topic exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from streaming.landing import CRASH_POINTS, Manifest

from .conftest import both_brokers, citybrain, cli_env
from .feed import assert_exactly_once, send_feed

pytestmark = both_brokers

SMALL_BATCHES = {"CITYBRAIN_INGEST_BATCH_RECORDS": "200"}


def bronze_files(settings) -> int:
    root = settings.lake_path / "bronze"
    return sum(1 for _ in root.rglob("*.parquet")) if root.exists() else 0


@pytest.mark.parametrize("step", CRASH_POINTS)
def test_crash_at_each_step_then_restart_loses_and_duplicates_nothing(kafka, reader, step):
    sent = send_feed(kafka, 2_000, invalid_fraction=0.05)

    crashed = citybrain(
        kafka, "ingest", "run", "--until-idle", "3", CITYBRAIN_INGEST_CRASH_AT=step, **SMALL_BATCHES
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]

    resumed = citybrain(kafka, "ingest", "run", "--until-idle", "3", "--json", **SMALL_BATCHES)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    assert_exactly_once(kafka, reader, sent)
    assert not list((kafka.lake_path / "_ingest").rglob("*.json")), "manifests left after recovery"


def test_kill_9_in_the_middle_of_batches_repeatedly(kafka, reader):
    sent = send_feed(kafka, 12_000, invalid_fraction=0.02)
    command = [sys.executable, "-m", "citybrain.cli", "ingest", "run"]
    env = cli_env(kafka, **SMALL_BATCHES)
    for kill in range(3):
        before = bronze_files(kafka)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while bronze_files(kafka) < before + 3 + 2 * kill and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        assert bronze_files(kafka) > before, f"kill {kill + 1}: the ingest made no progress"

    final = citybrain(kafka, "ingest", "run", "--until-idle", "3", "--json", **SMALL_BATCHES)
    assert final.returncode == 0, final.stderr[-2000:]
    assert_exactly_once(kafka, reader, sent)


def test_sigterm_lands_and_commits_what_was_read(kafka, reader):
    sent = send_feed(kafka, 3_000, invalid_fraction=0.01)
    process = subprocess.Popen(
        [sys.executable, "-m", "citybrain.cli", "ingest", "run", "--json"],
        env=cli_env(kafka, CITYBRAIN_INGEST_LINGER_MS="60000"),  # only SIGTERM can flush the tail
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status_path = kafka.run_dir / f"ingest-{kafka.ingest_group}.json"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if status_path.exists() and json.loads(status_path.read_text())["counters"]["consumed"] >= len(sent):
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert json.loads(stdout)["landed"] == sum(s.valid for s in sent)

    status = citybrain(kafka, "ingest", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["lag_total"] == 0 and report["running"] is False
    assert report["counters"]["dead_lettered"] == sum(not s.valid for s in sent)
    assert_exactly_once(kafka, reader, sent)


def test_a_manifest_left_behind_after_its_commit_moves_nothing_backwards(kafka, reader):
    """A crash while deleting manifests after a commit can leave an early batch's manifest
    behind a later committed offset; recovery must not rewind the group to that batch."""
    first = send_feed(kafka, 1_500, invalid_fraction=0.0, seed=1)
    done = citybrain(kafka, "ingest", "run", "--until-idle", "2", **SMALL_BATCHES)
    assert done.returncode == 0, done.stderr[-2000:]
    earliest = min(
        (p for p in (kafka.lake_path / "bronze" / "operator.probe.v1").rglob("0-*.parquet")),
        key=lambda p: int(p.stem.split("-")[1]),
    )
    _, first_offset, last_offset = map(int, earliest.stem.split("-"))
    assert first_offset == 0 and last_offset < 400, "the partition must have later batches committed"
    Manifest(
        topic="operator.probe.v1",
        partition=0,
        first=first_offset,
        last=last_offset,
        files=[str(earliest.relative_to(kafka.lake_path))],
        dlq_partition=0,
        dlq_start=-1,
    ).write(Manifest.path_for(kafka.lake_path, "operator.probe.v1", 0, first_offset, last_offset))

    second = send_feed(kafka, 500, invalid_fraction=0.0, seed=2)
    again = citybrain(kafka, "ingest", "run", "--until-idle", "2", **SMALL_BATCHES)
    assert again.returncode == 0, again.stderr[-2000:]

    assert_exactly_once(kafka, reader, first + second)
    assert not list((kafka.lake_path / "_ingest").rglob("*.json"))


def test_a_second_member_joining_then_the_first_dying_loses_and_duplicates_nothing(kafka, reader):
    sent = send_feed(kafka, 15_000, invalid_fraction=0.02, seed=5)
    command = [sys.executable, "-m", "citybrain.cli", "ingest", "run"]
    env = cli_env(kafka, **SMALL_BATCHES)
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while bronze_files(kafka) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    # The dead member's partitions come to the second only after the broker gives up on it (its
    # session timeout, 6 s here) and the group rejoins: idle for less than that, the second would stop
    # with those records still unread in Kafka — not lost, but not in bronze for this check.
    second = subprocess.Popen(
        [*command, "--until-idle", "25", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(4)  # the join rebalances the group: the first member revokes and hands over
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    _out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-2000:]
    # Under load the group can take longer than the second's idle window to hand it the dead
    # member's partitions (CI saw 127 records still uncommitted in Kafka). What this test is about
    # is that nothing committed is lost and nothing is landed twice, so a later member reads
    # whatever is still uncommitted: a record the dead member committed without landing it would
    # still be missing, and one landed by both would be a duplicate.
    later = citybrain(kafka, "ingest", "run", "--until-idle", "8", **SMALL_BATCHES)
    assert later.returncode == 0, later.stderr[-2000:]

    assert_exactly_once(kafka, reader, sent)
