"""The fuse jobs on the sensor twin's data, scored against what really happened in SUMO."""

from __future__ import annotations

import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from lake.bronze_input import BadBronzeFile
from lake.jobs import fuse
from lake.truth import score_map_matching, score_speeds
from tests.integration.conftest import cli_env
from tests.integration.lake.conftest import checksums, content_checksums
from tests.integration.twin_lake import DAY

pytestmark = pytest.mark.integration


def test_every_table_gets_rows_from_the_twin(fused):
    lake = fused.settings.lake_path
    for name in (
        "silver/detector_readings",
        "silver/probe_points",
        "silver/weather",
        "silver/incidents",
        "silver/signal_events",
        "gold/link_state_15min",
        "gold/turning_movements_15min",
        "gold/signal_cycles",
        "gold/approach_measures_15min",
        "gold/detector_health_daily",
    ):
        files = sorted((lake / name).rglob("part-*.parquet"))
        assert files and sum(pq.read_metadata(f).num_rows for f in files) > 0, name


def test_map_matching_puts_at_least_95_percent_of_fixes_on_their_true_edge(fused):
    score = score_map_matching(fused.settings.lake_path, fused.truth)
    assert score.on_normal_edges > 5_000
    assert score.accuracy >= 0.95, score


def test_fused_speed_beats_detectors_alone_and_probes_alone(fused):
    score = score_speeds(fused.settings.lake_path, fused.truth, DAY)
    assert score.cells >= 50
    assert score.fused_mape < score.detector_mape, score
    assert score.fused_mape < score.probe_mape, score


def test_a_rerun_writes_byte_identical_files(twin, fused, spark):
    fuse(twin.settings, twin.start, twin.end, spark=spark)
    assert checksums(twin.settings.lake_path) == checksums(fused.settings.lake_path)


@pytest.mark.timeout(900)
def test_a_job_killed_half_way_then_run_again_gives_the_clean_result(twin, fused):
    s = twin.settings
    env = cli_env(s, CITYBRAIN_LAKE_NETWORK=s.lake_network, CITYBRAIN_SPARK_SHUFFLE_PARTITIONS="4")
    command = [
        sys.executable,
        "-m",
        "citybrain.cli",
        "lake",
        "fuse",
        "--start",
        twin.start.isoformat(),
        "--end",
        twin.end.isoformat(),
    ]
    killed = subprocess.run(command, env={**env, "CITYBRAIN_LAKE_CRASH_AT": "swapping"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    half = content_checksums(s.lake_path)
    assert half and half != content_checksums(fused.settings.lake_path)  # some partitions swapped in
    again = subprocess.run(command, env=env, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert content_checksums(s.lake_path) == content_checksums(fused.settings.lake_path)
    assert not any(p.name.startswith(".") for p in s.lake_path.rglob("*") if "bronze" not in p.parts)


def test_a_corrupt_bronze_file_stops_the_job_naming_it_and_touches_no_gold(twin, spark):
    s = twin.settings
    fuse(s, twin.start, twin.end, spark=spark)
    before = checksums(s.lake_path)
    victim = sorted((s.lake_path / "bronze" / "operator.probe.v1").rglob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(BadBronzeFile, match=str(victim)):
        fuse(s, twin.start, twin.end, spark=spark)
    assert checksums(s.lake_path) == before


def test_a_schema_drift_in_bronze_names_the_file_and_the_column(twin, spark):
    import pyarrow as pa

    s = twin.settings
    victim = sorted((s.lake_path / "bronze" / "traffic.detector.v1").rglob("*.parquet"))[-1]
    table = pq.read_table(victim)
    drifted = table.set_column(
        table.schema.get_field_index("count"), "count", table["count"].cast(pa.float64())
    )
    pq.write_table(drifted, victim)
    with pytest.raises(BadBronzeFile, match=rf"{victim}.*column 'count' is double, expected int64"):
        fuse(s, twin.start, twin.end, spark=spark)
    assert not (s.lake_path / "gold").exists() and not (s.lake_path / "silver").exists()


def test_lake_cli_shows_and_checks(fused):
    s = fused.settings
    env = cli_env(s, CITYBRAIN_LAKE_NETWORK=s.lake_network)
    run = [sys.executable, "-m", "citybrain.cli", "lake"]
    shown = subprocess.run(
        [*run, "show", "gold.link_state_15min", "--where", "probe_samples > 0", "--limit", "3", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    rows = __import__("json").loads(shown.stdout)["rows"]
    assert len(rows) == 3 and all(r["probe_samples"] > 0 and 0 <= r["confidence"] <= 1 for r in rows)
    fresh = subprocess.run(
        [*run, "check", "--as-of", fused.end.isoformat(), "--json"], env=env, capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-2000:]
    stale = subprocess.run(
        [*run, "check", "--table", "gold.link_state_15min"], env=env, capture_output=True, text=True
    )
    assert stale.returncode == 1 and "old" in stale.stdout  # judged at today's date, the twin's day is past
    bad = subprocess.run(
        [*run, "fuse", "--start", "2026-11-28T07:05Z", "--end", "2026-11-28T08:00Z"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "quarter hour" in bad.stderr
