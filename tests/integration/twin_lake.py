"""A lake with bronze from the sensor twin: the corridor's first 45 minutes, written as the ingest would.

The twin's records go through a sink straight into bronze files (same schema, names and
provenance columns as the ingest writes), so lake tests get real twin data without a broker;
the Kafka path into bronze has its own tests. Built once per test session and copied per use.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.settings import Settings
from streaming.bronze import Row, plan_files, to_table, write_durably

SCENARIO = "corridor"
MINUTES = 45
DAY = "2026-11-28"
#: Not seed 1, on which the detector speed model's effective length was calibrated.
SEED = 2
#: The corridor's window starts at 23400 s: 06:30Z.
WINDOW_START = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
WINDOW_END = WINDOW_START + timedelta(minutes=MINUTES)
#: Records reach "Kafka" this long after their event time.
ARRIVAL_DELAY = timedelta(seconds=2)


def twin_settings(var_dir: Path) -> Settings:
    return Settings(var_dir=var_dir, lake_network=SCENARIO, spark_shuffle_partitions=4)


def land(lake: Path, records: dict[str, list[dict[str, Any]]]) -> None:
    """Write records to bronze as partition 0 of their topic, offsets in arrival order."""
    from schemas import contract

    for topic, items in records.items():
        topic_contract = contract(topic)
        rows = []
        for offset, record in enumerate(items):
            arrived = datetime.fromisoformat(record["ts"].replace("Z", "+00:00")) + ARRIVAL_DELAY
            if topic == "traffic.detector.v1":
                arrived += timedelta(seconds=record["interval_s"])
            rows.append(Row(record, offset, int(arrived.timestamp() * 1000), topic_contract.key_of(record)))
        for path, group in plan_files(lake, topic, 0, rows).items():
            write_durably(to_table(topic, 0, group), path)


def build(base: Path) -> tuple[Path, Path]:
    """Run the twin once into ``base``: returns (its var folder with bronze, its ground-truth folder)."""
    from sim.scenarios import resolve
    from sim.twin import run_twin

    settings = twin_settings(base / "var")
    records: dict[str, list[dict[str, Any]]] = defaultdict(list)
    scenario = resolve(SCENARIO, settings.sim_dir / "build")
    run_twin(
        settings,
        scenario,
        out_dir=base / "truth",
        sink=lambda topic, record: records[topic].append(record),
        until=scenario.begin + MINUTES * 60,
        day=DAY,
        seed=SEED,
    )
    land(settings.lake_path, records)
    return base / "var", base / "truth"


def make_twin_lake(cache: Path, target: Path) -> tuple[Settings, datetime, datetime]:
    """A copy in ``target`` of the twin lake built (once) in ``cache``: settings and its window."""
    if not (cache / "var").exists():
        build(cache)
    shutil.copytree(cache / "var", target / "var", symlinks=True)
    return twin_settings(target / "var"), WINDOW_START, WINDOW_END
