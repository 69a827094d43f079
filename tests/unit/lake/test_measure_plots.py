"""Plots and the before/after comparison of signal measures, over a hand-built silver.signal_events.

One signal, phase 2 on a 60 s fixed cycle: green at :00, yellow at :30, red from :34. Its advance
loop is 60 m upstream at 15 m/s (arrivals reach the stop bar 4 s after detection), and every
minute four vehicles arrive: at :10 (green), :31 (yellow), :40 and :50 (red, waiting 20 s and
10 s for the next green). The stop bar is occupied from 07:05:00 to 07:05:40, through the whole
green and the first 5 s of red: one split failure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from lake import measure_plots
from lake.measure_plots import MeasureError
from sim.signal_config import DetectorChannel, PhaseGroup, SignalConfig, SignalConfiguration
from tests.unit.lake.signal_events import write_lake

T0 = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
PERIOD = (T0, T0 + timedelta(minutes=15))
SIGNAL = SignalConfig(
    signal_id="J2",
    controller_id="1002",
    reference_phase=2,
    phases=(
        PhaseGroup(2, "west_in", "EB", "through", (0,)),
        PhaseGroup(4, "south_in", "NB", "through", (1,)),
        PhaseGroup(6, "east_in", "WB", "through", (2,)),
    ),
    detectors=(
        DetectorChannel(1, "e1_w_0", "west_in_0", "stop_bar", 2, 1.0, 99.0, 15.0),
        DetectorChannel(2, "adv_w_0", "west_in_0", "advance", 2, 60.0, 40.0, 15.0),
    ),
)


def phase_2_events(*, red_arrivals: bool = True) -> list[tuple[datetime, int, int]]:
    """(ts, code, param) from 06:45 to 07:20: the cycles, the arrivals and the one long queue."""
    events = []
    for minute in range(-15, 20):
        at = T0 + timedelta(minutes=minute)
        events += [(at, 1, 2), (at + timedelta(seconds=30), 4, 2), (at + timedelta(seconds=30), 7, 2)]
        events += [(at + timedelta(seconds=30), 8, 2), (at + timedelta(seconds=34), 9, 2)]
        events += [(at + timedelta(seconds=34), 10, 2), (at + timedelta(seconds=35), 11, 2)]
        arrivals = (10, 31, 40, 50) if red_arrivals else (10, 31)
        for second in arrivals:
            detected = at + timedelta(seconds=second - 4)
            events += [(detected, 82, 2), (detected + timedelta(seconds=0.5), 81, 2)]
    events += [(T0 + timedelta(minutes=5), 82, 1), (T0 + timedelta(minutes=5, seconds=40), 81, 1)]
    return sorted(events)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    write_lake(lake, phase_2_events())
    write_lake(lake, [(T0, 1, 2), (T0 + timedelta(seconds=1), 82, 1)], signal_id="other")
    return lake


def test_read_events_takes_the_signals_events_of_whole_quarter_hours_and_a_margin(lake):
    events = measure_plots.read_events(lake, SIGNAL, T0 + timedelta(minutes=2), T0 + timedelta(minutes=10))
    assert set(events["signal_id"]) == {"1002"}
    assert events["ts"].min() == pd.Timestamp(T0 - timedelta(minutes=15))
    assert events["ts"].max() >= pd.Timestamp(T0 + timedelta(minutes=19))
    assert events["ts"].max() < pd.Timestamp(T0 + timedelta(minutes=30)), "whole quarter hours and 15 min"
    assert events["ts"].is_monotonic_increasing


def test_read_events_reads_the_tables_live_rows_not_its_folders(lake):
    write_lake(lake, phase_2_events(red_arrivals=False))  # a rerun: the first files stay on disk
    folder = measure_plots.EVENTS.partition_path(lake, ("2024-05-01", "0700"))
    (folder / "part-00009-torn.c000.snappy.parquet").write_bytes(b"PAR1")  # a killed job's, no commit
    assert len(list(folder.glob("*.parquet"))) == 4  # three commits' files and the torn one

    events = measure_plots.read_events(lake, SIGNAL, *PERIOD)

    rerun = [e for e in phase_2_events(red_arrivals=False) if T0 - timedelta(minutes=15) <= e[0]]
    rerun = [e for e in rerun if e[0] < PERIOD[1] + timedelta(minutes=15)]
    assert list(zip(events["ts"], events["event_code"], events["event_param"], strict=True)) == [
        (pd.Timestamp(ts), code, param) for ts, code, param in rerun
    ]


def test_an_empty_period_or_one_that_ends_first_is_refused(lake):
    with pytest.raises(MeasureError, match="no events of signal 1002 from 2024-05-02 07:00Z"):
        measure_plots.read_events(lake, SIGNAL, T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    with pytest.raises(MeasureError, match="ends .* before it starts"):
        measure_plots.read_events(lake, SIGNAL, PERIOD[1], PERIOD[0])


def test_the_pcd_places_each_arrival_in_its_band(lake, tmp_path):
    events = measure_plots.read_events(lake, SIGNAL, *PERIOD)
    png = tmp_path / "plots" / "pcd.png"
    figure = measure_plots.plot_measure("pcd", events, SIGNAL, *PERIOD, png)
    assert figure.phases == (2, 6), "the through phases by default"
    assert figure.arrivals_by_band[2] == {"green": 15, "yellow": 15, "red": 30}
    assert figure.percent_on_green[2] == 25.0
    assert figure.arrivals_by_band[6] == {"green": 0, "yellow": 0, "red": 0}
    assert figure.percent_on_green[6] is None
    dots = figure.panels[2]
    on_green = dots[dots["indication"] == "green"]
    assert (on_green["time_in_cycle_s"] == 36.0).all(), "10 s into green, which starts 26 s after red"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_split_monitor_and_split_failure_show_each_cycle(lake, tmp_path):
    events = measure_plots.read_events(lake, SIGNAL, *PERIOD)
    splits = measure_plots.plot_measure("split-monitor", events, SIGNAL, *PERIOD, tmp_path / "s.png", phase=2)
    cycles = splits.panels[2]
    assert splits.phases == (2,) and len(cycles) == 15
    assert (cycles["green_s"] == 30).all() and (cycles["split_s"] == 35).all()
    assert set(cycles["termination"]) == {"gap_out"}

    failures = measure_plots.plot_measure(
        "split-failure", events, SIGNAL, *PERIOD, tmp_path / "f.png", phase=2
    )
    failed = failures.panels[2][failures.panels[2]["split_failure"]]
    assert list(failed["green_start"]) == [pd.Timestamp(T0 + timedelta(minutes=5))]
    assert failed.iloc[0]["green_occupancy_ratio"] == 1.0 and failed.iloc[0]["red_occupancy_ratio"] == 1.0
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "f.png").stat().st_size > 0


def test_quarter_hour_plots_show_delay_and_arrivals_on_red(lake, tmp_path):
    events = measure_plots.read_events(lake, SIGNAL, *PERIOD)
    delay = measure_plots.plot_measure("approach-delay", events, SIGNAL, *PERIOD, tmp_path / "d.png", phase=2)
    quarter = delay.panels[2].iloc[0]
    assert len(delay.panels[2]) == 1 and quarter["window_start"] == pd.Timestamp(T0)
    assert quarter["volume"] == 60 and quarter["delay_per_vehicle_s"] == pytest.approx(7.5)
    red = measure_plots.plot_measure("arrivals-on-red", events, SIGNAL, *PERIOD, tmp_path / "r.png", phase=2)
    assert red.panels[2].iloc[0]["percent_on_red"] == 50.0
    assert (tmp_path / "d.png").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0


def test_compare_gives_each_measure_before_after_and_the_change(lake, tmp_path):
    before = measure_plots.read_events(lake, SIGNAL, *PERIOD)
    after_lake = tmp_path / "after"
    write_lake(after_lake, phase_2_events(red_arrivals=False))
    after = measure_plots.read_events(after_lake, SIGNAL, *PERIOD)
    result = measure_plots.compare(before, after, SIGNAL, PERIOD, PERIOD)
    phase_2 = result.to_dict()["phases"]["2"]
    assert phase_2["percent_on_red"] == {"before": 50.0, "after": 0.0, "change": -50.0}
    assert phase_2["percent_on_green"]["after"] == 50.0
    assert phase_2["delay_per_vehicle_s"] == {"before": 7.5, "after": 0.0, "change": -7.5}
    assert phase_2["volume_vph"] == {"before": 240.0, "after": 120.0, "change": -120.0}
    assert phase_2["split_failures"] == {"before": 1.0, "after": 1.0, "change": 0.0}
    assert phase_2["mean_cycle_s"]["before"] == 60.0 and phase_2["mean_green_s"]["before"] == 30.0
    assert phase_2["green_ratio"]["before"] == pytest.approx(0.5)
    assert phase_2["platoon_ratio"]["after"] == pytest.approx(1.0)
    assert result.to_dict()["phases"]["4"]["percent_on_green"]["before"] is None, "no arrivals, no share"


def test_signals_are_found_by_controller_or_tls_id_and_phases_must_exist():
    configuration = SignalConfiguration("corridor", {"J2": SIGNAL})
    assert measure_plots.find_signal(configuration, "1002") is SIGNAL
    assert measure_plots.find_signal(configuration, "J2") is SIGNAL
    with pytest.raises(MeasureError, match="no signal 'J9' in the corridor signal configuration; it has J2"):
        measure_plots.find_signal(configuration, "J9")
    with pytest.raises(MeasureError, match=r"signal J2 has no phase 8; its phases are \[2, 4, 6\]"):
        measure_plots.chosen_phases(SIGNAL, 8)
