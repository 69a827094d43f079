"""What reads silver and gold outside the jobs (`lake check`, `lake show`, the watcher's link
state, the twin's scores) reads a table's live rows through its Delta log: never the files that a
rerun replaced or a killed job tore, which stay in the partition folders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from citybrain.cli import app
from core.settings import Settings
from lake import quality
from lake.approach import link_state_rows
from lake.delta import NoSuchVersion
from lake.show import show_rows
from lake.tables import TABLES, partition_of
from lake.truth import read_lake_table
from tests.lake_rows import write_rows

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
LINK = TABLES["gold.link_state_15min"]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def link(edge: str, start: datetime, **values) -> dict:
    return {"edge_id": edge, "window_start": start, "window_end": start + timedelta(minutes=15), **values}


def torn_file(lake: Path, start: datetime, edge: str) -> None:
    """A Parquet file of link state in the quarter hour's folder that no commit names."""
    folder = LINK.partition_path(lake, partition_of(start))
    folder.mkdir(parents=True, exist_ok=True)
    rows = pa.Table.from_pylist([link(edge, start, speed_mps=1.0)])
    pq.write_table(rows, folder / "part-00007-torn.c000.snappy.parquet")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A lake whose link state went through two versions: 07:00 and 07:15 written (version 0),
    then 07:00 rerun with other rows (version 1); and a torn file in 07:15."""
    s = Settings(var_dir=tmp_path / "var", lake_freshness_max_s=3600)
    write_rows(
        s.lake_path,
        LINK.name,
        [link("A", at(0), speed_mps=5.0), link("B", at(15), speed_mps=7.0, flow_vph=None)],
    )
    rerun = [link("A", at(0), speed_mps=6.0, flow_vph=300.0), link("C", at(0), speed_mps=None, flow_vph=None)]
    write_rows(s.lake_path, LINK.name, rerun)
    torn_file(s.lake_path, at(15), "TORN")
    return s


def test_lake_check_counts_live_rows_and_partitions_without_a_jvm(settings, monkeypatch):
    monkeypatch.setattr("core.spark.spark_session", lambda *_: pytest.fail("lake check started Spark"))

    report = quality.check(settings, as_of=at(40), tables=[LINK.name, "silver.weather"])

    state, weather = report.tables
    assert (state.rows, state.partitions) == (3, 2)
    assert state.newest == at(15) and state.age_s == 25 * 60
    assert state.null_rates["speed_mps"] == pytest.approx(1 / 3) and state.null_rates["slot"] == 0.0
    assert state.null_rates["flow_vph"] == pytest.approx(2 / 3)
    assert state.failures == ["speed_mps null rate 33.3% above 25%"]
    assert weather.failures == ["no data"] and weather.partitions == 0
    assert not report.ok and report.to_dict()["tables"][LINK.name]["partitions"] == 2


def test_lake_check_fails_a_stale_table(settings):
    found = quality.check(settings, as_of=at(15 + 61), tables=[LINK.name]).tables[0]
    assert found.failures[-1] == (
        "newest window_start 2026-11-28T07:15:00+00:00 is 3,660 s old (more than 3,600 s)"
    )


def test_the_watchers_link_state_and_the_twins_scores_read_live_rows(settings):
    rows = link_state_rows(settings.lake_path, at(0), at(30))
    assert [(r["edge_id"], r["window_start"], r["speed_mps"]) for r in rows] == [
        ("A", at(0), 6.0),
        ("C", at(0), None),
        ("B", at(15), 7.0),
    ]
    assert [r["edge_id"] for r in link_state_rows(settings.lake_path, at(0), at(30), {"A", "TORN"})] == ["A"]
    assert link_state_rows(settings.lake_path, at(30), at(60)) == []

    table = read_lake_table(settings.lake_path, LINK)
    assert sorted(table["edge_id"].to_pylist()) == ["A", "B", "C"] and table.schema.names[-2:] == [
        "date",
        "slot",
    ]
    nothing = read_lake_table(settings.lake_path, TABLES["silver.probe_points"])
    assert nothing.num_rows == 0 and "edge_id" in nothing.schema.names


def test_lake_show_reads_the_newest_version_or_an_earlier_one(spark, settings):
    columns, rows, version = show_rows(settings, "link_state_15min")
    assert version == 1 and columns[-2:] == ["date", "slot"]
    assert [(r["slot"], r["edge_id"], r["speed_mps"]) for r in rows] == [
        ("0715", "B", 7.0),
        ("0700", "A", 6.0),
        ("0700", "C", None),
    ]
    assert rows[0]["window_start"] == "2026-11-28T07:15:00+00:00"

    _, rows, version = show_rows(settings, LINK.name, version=0, where="edge_id = 'A'")
    assert version == 0 and [(r["edge_id"], r["speed_mps"]) for r in rows] == [("A", 5.0)]


def test_a_version_the_log_does_not_have_is_one_clear_error(settings):
    with pytest.raises(NoSuchVersion, match=r"^gold.link_state_15min has no version 5; its newest is 1$"):
        show_rows(settings, LINK.name, version=5)
    with pytest.raises(NoSuchVersion, match=r"^silver.weather has no version 0: no job wrote it yet$"):
        show_rows(settings, "silver.weather", version=0)
    assert show_rows(settings, "silver.weather")[1:] == ([], None)


def test_the_cli_shows_a_version_and_refuses_one_it_lacks(spark, settings, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_VAR_DIR", str(settings.var_dir))
    runner = CliRunner()

    shown = runner.invoke(app, ["lake", "show", LINK.name, "--version", "0", "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"version": 0' in shown.output and '"edge_id": "B"' in shown.output

    missing = runner.invoke(app, ["lake", "show", LINK.name, "--version", "9"])
    assert isinstance(missing.exception, NoSuchVersion)  # `citybrain` prints it as one line, exit 2
    assert str(missing.exception) == "gold.link_state_15min has no version 9; its newest is 1"
