"""A real-format ATSPM export, written here, goes through the whole path: ``citybrain produce
--format atspm-csv`` → Kafka → the ingest → bronze → silver → gold measures → the PCD plot.

The export is a fixed-time controller (SignalID 7115, mapped to the corridor's J2 by an edited
signal configuration, times in China Standard Time) whose every arrival and occupancy is placed
by hand, so the measures it must give are known exactly: per cycle of phase 2, five arrivals on
green, one on yellow and two on red (40 s and 20 s before the green), and five cycles in the
middle with the stop bar occupied through the green and the start of the red (split failures).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.settings import Settings
from lake.delta import read_partitions
from lake.tables import TABLES
from sim import signal_config
from tests.integration.conftest import citybrain

pytestmark = pytest.mark.integration

CONTROLLER = "7115"
SIGNAL = "J2"
LOCAL = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
CYCLES = 20
CYCLE_S = 100
#: Phase 2 and 6 green from 0 s, yellow at 50 s, red clearance 54–56 s; phases 4 and 8 at 56 s.
TIMING = {2: (0, 50), 6: (0, 50), 4: (56, 90), 8: (56, 90)}
YELLOW_S, RED_CLEARANCE_S = 4, 2
#: Seconds into each cycle at which a phase-2 vehicle reaches the stop bar.
ON_GREEN = (5, 15, 25, 35, 45)
ON_YELLOW = (51,)
ON_RED = (60, 80)
SPLIT_FAILING_CYCLES = range(5, 10)


def _events(signal: signal_config.SignalConfig) -> list[tuple[datetime, int, int]]:
    advance = next(d for d in signal.detectors if d.phase == 2 and d.kind == "advance")
    stop_bar = next(d for d in signal.detectors if d.phase == 2 and d.kind == "stop_bar")
    travel = timedelta(seconds=advance.distance_m / advance.speed_mps)
    events = []
    for cycle in range(CYCLES):
        at = START + timedelta(seconds=cycle * CYCLE_S)
        for phase, (green, end) in TIMING.items():
            events += [
                (at + timedelta(seconds=green), 1, phase),
                (at + timedelta(seconds=end), 6, phase),
                (at + timedelta(seconds=end), 7, phase),
                (at + timedelta(seconds=end), 8, phase),
                (at + timedelta(seconds=end + YELLOW_S), 9, phase),
                (at + timedelta(seconds=end + YELLOW_S), 10, phase),
                (at + timedelta(seconds=end + YELLOW_S + RED_CLEARANCE_S), 11, phase),
            ]
        for offset in (*ON_GREEN, *ON_YELLOW, *ON_RED):
            detected = at + timedelta(seconds=offset) - travel
            events += [
                (detected, 82, advance.channel),
                (detected + timedelta(seconds=0.4), 81, advance.channel),
            ]
        if cycle in SPLIT_FAILING_CYCLES:  # standing on the stop bar from the green into the red
            events += [
                (at + timedelta(seconds=0.5), 82, stop_bar.channel),
                (at + timedelta(seconds=62), 81, stop_bar.channel),
            ]
        else:  # a car crossing early in the green
            events += [
                (at + timedelta(seconds=3), 82, stop_bar.channel),
                (at + timedelta(seconds=3.6), 81, stop_bar.channel),
            ]
    return sorted(events, key=lambda e: (e[0], e[1], e[2]))


def _export(path: Path, events: list[tuple[datetime, int, int]]) -> Path:
    """The export as ATSPM writes it: local wall time to the millisecond, one signal unknown."""
    lines = ["SignalID,Timestamp,EventCode,EventParam"]
    for at, code, param in events:
        local = at.astimezone(LOCAL)
        lines.append(f"{CONTROLLER},{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d},{code},{param}")
    lines.append(f"9999,{START.astimezone(LOCAL):%Y-%m-%d %H:%M:%S}.000,1,2")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_atspm_export_goes_through_kafka_and_the_lake_to_exact_measures(kafka: Settings, spark, tmp_path):
    from lake.jobs import fuse

    derived = signal_config.configuration(kafka.model_copy(update={"lake_network": "corridor"}), "corridor")
    j2 = dataclasses.replace(derived.signals[SIGNAL], controller_id=CONTROLLER)
    edited = dataclasses.replace(derived, signals={**derived.signals, SIGNAL: j2})
    config_file = signal_config.write(edited, tmp_path / "signals.json")
    settings = kafka.model_copy(
        update={"signal_config": config_file, "lake_network": "corridor", "lake_watermark_s": 30 * 86_400}
    )
    env = {"CITYBRAIN_SIGNAL_CONFIG": str(config_file), "CITYBRAIN_LAKE_NETWORK": "corridor"}
    events = _events(j2)
    export = _export(tmp_path / "controller_event_log.csv", events)

    produced = citybrain(
        settings,
        "produce",
        "--format",
        "atspm-csv",
        "--timezone",
        "Asia/Shanghai",
        "--json",
        str(export),
        **env,
    )
    report = json.loads(produced.stdout)
    assert report["sent"] == len(events), produced.stderr
    assert report["refused"] == 1 and report["unknown_signals"] == {"9999": 1}
    ingested = citybrain(settings, "ingest", "run", "--until-idle", "3", "--json", timeout=180, **env)
    assert ingested.returncode == 0, ingested.stderr

    fuse(settings, START, START + timedelta(minutes=45), spark=spark)

    silver = read_partitions(settings.lake_path, TABLES["silver.signal_events"]).to_pylist()
    assert len(silver) == len(events) and {row["signal_id"] for row in silver} == {CONTROLLER}
    measures = [
        row
        for row in read_partitions(settings.lake_path, TABLES["gold.approach_measures_15min"]).to_pylist()
        if row["phase"] == 2
    ]
    cycles = sum(row["cycles"] for row in measures)
    # the PCD's cycles run red to red: twenty reds begin nineteen whole cycles
    assert cycles == CYCLES - 1
    assert sum(row["arrivals_on_green"] for row in measures) == len(ON_GREEN) * cycles
    assert sum(row["arrivals_on_yellow"] for row in measures) == len(ON_YELLOW) * cycles
    assert sum(row["arrivals_on_red"] for row in measures) == len(ON_RED) * cycles
    assert sum(row["approach_delay_s"] for row in measures) == pytest.approx(
        cycles * sum(CYCLE_S - t for t in ON_RED), abs=0.5
    )
    assert sum(row["split_failures"] for row in measures) == len(SPLIT_FAILING_CYCLES)

    splits = [
        row
        for row in read_partitions(settings.lake_path, TABLES["gold.signal_cycles"]).to_pylist()
        if row["phase"] == 2
    ]
    assert len(splits) == CYCLES - 1
    assert {
        (row["green_s"], row["yellow_s"], row["red_clearance_s"], row["termination"]) for row in splits
    } == {(50.0, 4.0, 2.0, "force_off")}

    plot = citybrain(
        settings,
        "measures", "plot", "--signal", SIGNAL, "--measure", "pcd", "--phase", "2",
        "--from", "2026-11-28T07:00Z", "--to", "2026-11-28T07:45Z", "-o", str(tmp_path / "pcd.png"),
        **env,
    )  # fmt: skip
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "pcd.png").stat().st_size > 10_000
