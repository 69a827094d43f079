"""The fuse jobs on the sensor twin's data, scored against what really happened in SUMO."""

from __future__ import annotations

import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from lake.bronze_input import BadBronzeFile
from lake.delta import read_partitions, table_version, table_versions
from lake.jobs import fuse
from lake.tables import TABLES
from lake.truth import score_map_matching, score_speeds
from tests.integration.conftest import cli_env
from tests.integration.lake.conftest import contents
from tests.integration.twin_lake import DAY

pytestmark = pytest.mark.integration


def test_every_table_gets_rows_from_the_twin(fused):
    for name, table in TABLES.items():
        assert read_partitions(fused.settings.lake_path, table).num_rows > 0, name


def test_map_matching_puts_at_least_95_percent_of_fixes_on_their_true_edge(fused):
    score = score_map_matching(fused.settings.lake_path, fused.truth)
    assert score.on_normal_edges > 5_000
    assert score.accuracy >= 0.95, score


def test_fused_speed_beats_detectors_alone_and_probes_alone(fused):
    score = score_speeds(fused.settings.lake_path, fused.truth, DAY)
    assert score.cells >= 50
    assert score.fused_mape < score.detector_mape, score
    assert score.fused_mape < score.probe_mape, score


def test_a_second_run_commits_the_same_rows_and_keeps_the_first(twin, fused, spark):
    """The twin's bronze fused again (in a copy of it: the shared lake stays as it is) gives the same
    rows, as each table's next version; the first versions stay readable."""
    lake = twin.settings.lake_path
    fuse(twin.settings, twin.start, twin.end, spark=spark)
    assert set(table_versions(lake, TABLES).values()) == {0}
    first = contents(lake)
    assert first == contents(fused.settings.lake_path)
    fuse(twin.settings, twin.start, twin.end, spark=spark, layers=("gold",))
    link_state = TABLES["gold.link_state_15min"]
    assert table_version(lake, link_state) == 1
    assert contents(lake) == first
    again, before = (read_partitions(lake, link_state, version=v).num_rows for v in (1, 0))
    assert again == before > 0


@pytest.mark.timeout(900)
def test_a_job_killed_mid_write_leaves_nothing_visible_and_a_rerun_gives_the_clean_result(twin, fused):
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
    killed = subprocess.run(command, env={**env, "CITYBRAIN_LAKE_CRASH_AT": "writing"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    # The first table's data files were on disk, its commit never happened: no reader sees them.
    first = TABLES["silver.detector_readings"]
    assert any(first.path(s.lake_path).rglob("part-*.parquet"))
    assert set(table_versions(s.lake_path, TABLES).values()) == {None}
    assert contents(s.lake_path) == {}
    again = subprocess.run(command, env=env, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert contents(s.lake_path) == contents(fused.settings.lake_path)


def test_a_corrupt_bronze_file_stops_the_job_naming_it_and_touches_no_gold(twin, spark):
    s = twin.settings
    fuse(s, twin.start, twin.end, spark=spark)
    before = table_versions(s.lake_path, TABLES)
    victim = sorted((s.lake_path / "bronze" / "operator.probe.v1").rglob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(BadBronzeFile, match=str(victim)):
        fuse(s, twin.start, twin.end, spark=spark)
    assert table_versions(s.lake_path, TABLES) == before


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
