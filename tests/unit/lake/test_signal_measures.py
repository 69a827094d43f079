"""Signal performance measures on hand-built event logs of a two-phase fixed-time signal."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lake.signal_measures import (
    BEGIN_GREEN,
    DETECTOR_OFF,
    DETECTOR_ON,
    END_RED_CLEARANCE,
    FORCE_OFF,
    GAP_OUT,
    MAX_OUT,
    approach_measures,
    arrivals,
    pcd_cycles,
    phase_intervals,
    signal_cycles,
)
from sim.signal_config import DetectorChannel, PhaseGroup, SignalConfig

#: Cycle k of the signal starts at T0 + 60 k s; phase 2's red starts at T0 + 60 k + 28 s, so its
#: PCD cycle k ends there and lands in the quarter hour holding T0 + 60 k + 33 s.
T0 = datetime(2026, 11, 28, 6, 59, 29, tzinfo=UTC)
Q = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)

SIGNAL = SignalConfig(
    signal_id="J1",
    controller_id="ctl-J1",
    reference_phase=2,
    phases=(
        PhaseGroup(2, "A", "EB", "through", (0, 1)),
        PhaseGroup(4, "B", "NB", "through", (2, 3)),
    ),
    detectors=(
        DetectorChannel(1, "e1_A_0", "A_0", "stop_bar", 2, 0.5, 99.5, 15.0),
        DetectorChannel(2, "adv_A_0", "A_0", "advance", 2, 60.0, 40.0, 15.0),  # 4 s from the stop bar
        DetectorChannel(3, "e1_B_0", "B_0", "stop_bar", 4, 0.0, 100.0, 15.0),
    ),
)


def at(k: int, second: float) -> datetime:
    """``second`` s into cycle ``k``."""
    return T0 + timedelta(seconds=60 * k + second)


def fixed_time(cycles: int, *, phase4_cause: int = GAP_OUT, closing_green: bool = True) -> list[tuple]:
    """Phase 2: green 25 s (forced off), yellow 3 s, red clearance 2 s; then phase 4 the same (gapping
    out); pattern 3 from the start. With ``closing_green``, phase 2's next begin green ends the log."""
    events = [(T0, 131, 3)]
    for k in range(cycles):
        events += [
            (at(k, 0), BEGIN_GREEN, 2),
            (at(k, 25), FORCE_OFF, 2), (at(k, 25), 7, 2), (at(k, 25), 8, 2),
            (at(k, 28), 9, 2), (at(k, 28), 10, 2),
            (at(k, 30), END_RED_CLEARANCE, 2), (at(k, 30), BEGIN_GREEN, 4),
            (at(k, 55), phase4_cause, 4), (at(k, 55), 7, 4), (at(k, 55), 8, 4),
            (at(k, 58), 9, 4), (at(k, 58), 10, 4),
            (at(k, 60), END_RED_CLEARANCE, 4),
        ]  # fmt: skip
    if closing_green:
        events.append((at(cycles, 0), BEGIN_GREEN, 2))
    return events


def frame(events: list[tuple]) -> pd.DataFrame:
    rows = pd.DataFrame(events, columns=["ts", "event_code", "event_param"])
    rows.insert(0, "signal_id", SIGNAL.controller_id)
    return rows.sample(frac=1.0, random_state=7)  # the functions sort for themselves


def test_intervals_of_a_fixed_time_signal_have_their_programmed_durations_and_causes():
    found = phase_intervals(frame(fixed_time(3, phase4_cause=MAX_OUT)), SIGNAL)
    durations = found.groupby(["phase", "interval"])["duration_s"].agg(["min", "max", "count"])
    for phase in (2, 4):
        assert durations.loc[(phase, "green")].tolist() == [25.0, 25.0, 3]
        assert durations.loc[(phase, "yellow")].tolist() == [3.0, 3.0, 3]
        assert durations.loc[(phase, "red_clearance")].tolist() == [2.0, 2.0, 3]
    causes = found.groupby("phase")["termination"].unique()
    assert list(causes[2]) == ["force_off"] and list(causes[4]) == ["max_out"]
    first = found.iloc[0]
    assert (first["phase"], first["interval"], first["start"]) == (2, "green", pd.Timestamp(at(0, 0)))


def test_missing_events_leave_intervals_out_or_fall_back():
    events = [e for e in fixed_time(2) if not (e[1] == END_RED_CLEARANCE and e[2] == 2)]
    events = [e for e in events if not (e[1] == FORCE_OFF and e[0] == at(1, 25))]
    events.append((at(2, 10), BEGIN_GREEN, 2))  # a second begin green, no termination between
    found = phase_intervals(frame(events), SIGNAL)
    clearance = found[(found["phase"] == 2) & (found["interval"] == "red_clearance")]
    assert clearance["duration_s"].tolist() == [2.0, 2.0]  # ended by phase 4's begin green
    greens = found[(found["phase"] == 2) & (found["interval"] == "green")]
    assert greens["termination"].tolist() == ["force_off", "unknown"]  # the cut-short green is left out
    assert found.groupby("interval")["termination"].apply(lambda t: t.notna().all()).all()


def test_cycles_run_from_begin_green_to_begin_green():
    cycles = signal_cycles(frame(fixed_time(3)), SIGNAL)
    two = cycles[cycles["phase"] == 2]
    assert len(two) == 3
    assert two[
        ["cycle_s", "green_s", "yellow_s", "red_clearance_s", "red_s"]
    ].drop_duplicates().values.tolist() == [[60.0, 25.0, 3.0, 2.0, 32.0]]
    assert set(two["termination"]) == {"force_off"} and set(two["pattern"]) == {3}
    four = cycles[cycles["phase"] == 4]
    assert len(four) == 2  # its third green's cycle ends after the log
    assert four["cycle_end"].tolist() == [pd.Timestamp(at(1, 30)), pd.Timestamp(at(2, 30))]
    assert set(four["termination"]) == {"gap_out"} and set(four["red_s"]) == {32.0}
    no_pattern = signal_cycles(frame([e for e in fixed_time(1) if e[1] != 131]), SIGNAL)
    assert no_pattern["pattern"].isna().all()


def test_arrivals_are_projected_to_the_stop_bar_and_classed_by_the_pcd_cycle():
    events = fixed_time(3)
    events += [
        (at(0, 10), DETECTOR_ON, 2),  # before phase 2's first red start: no complete PCD cycle
        (at(1, -10), DETECTOR_ON, 2),  # arrives at 0:54 of cycle 0, on red: waits 6 s
        (at(1, 6), DETECTOR_ON, 2),  # arrives on green
        (at(1, 22), DETECTOR_ON, 2),  # arrives at 26 s, on yellow
        (at(1, 40), DETECTOR_ON, 3),  # phase 4 has no advance channel: its stop bar counts
        (at(1, 41), DETECTOR_ON, 1),  # phase 2's stop bar: not an arrival, it has an advance channel
    ]
    found = arrivals(frame(events), SIGNAL)
    assert found["channel"].tolist() == [2, 2, 2, 2, 3]
    outside, red, green, yellow, four = (row for _, row in found.iterrows())
    assert (
        outside["indication"] == "green"
        and pd.isna(outside["cycle_start"])
        and math.isnan(outside["delay_s"])
    )
    assert red["arrival_at"] == pd.Timestamp(at(0, 54)) and red["indication"] == "red"
    assert red["cycle_start"] == pd.Timestamp(at(0, 28)) and red["green_start"] == pd.Timestamp(at(1, 0))
    assert red["yellow_start"] == pd.Timestamp(at(1, 25)) and red["cycle_end"] == pd.Timestamp(at(1, 28))
    assert red["time_in_cycle_s"] == 26.0 and red["delay_s"] == 6.0
    assert (green["indication"], green["delay_s"], green["time_in_cycle_s"]) == ("green", 0.0, 42.0)
    assert (yellow["indication"], yellow["delay_s"]) == ("yellow", 0.0)
    assert four["phase"] == 4 and four["arrival_at"] == four["detected_at"] and four["indication"] == "green"


def measures_by_phase(events, start=Q, end=Q + QUARTER) -> dict[tuple[int, datetime], dict]:
    rows = approach_measures(frame(events), SIGNAL, start, end)
    return {(r["phase"], r["window_start"].to_pydatetime()): r.to_dict() for _, r in rows.iterrows()}


def test_approach_measures_count_arrivals_delay_and_actuations_per_landing_cycle():
    events = fixed_time(20)
    for k in range(1, 15):  # PCD cycles 1-14 of phase 2 land in 07:00-07:15
        events += [(at(k, -10), DETECTOR_ON, 2), (at(k, 6), DETECTOR_ON, 2), (at(k, 6.5), DETECTOR_ON, 2)]
    events += [(at(3, 26), DETECTOR_ON, 1), (at(3, 26.5), DETECTOR_OFF, 1)]  # an actuation on yellow
    events += [(at(3, -5), DETECTOR_ON, 1), (at(3, -4), DETECTOR_OFF, 1)]  # and one on red
    row = measures_by_phase(events)[(2, Q)]
    assert row["approach"] == "A" and row["direction"] == "EB" and row["window_end"] == Q + QUARTER
    assert row["cycles"] == 14 and row["volume"] == 42 and row["volume_vph"] == 168.0
    assert (row["arrivals_on_green"], row["arrivals_on_yellow"], row["arrivals_on_red"]) == (28, 0, 14)
    assert row["percent_on_green"] == pytest.approx(100 * 2 / 3)
    assert row["green_s"] == 14 * 25.0 and row["green_ratio"] == pytest.approx(25 / 60)
    assert row["platoon_ratio"] == pytest.approx((2 / 3) / (25 / 60))
    assert row["approach_delay_s"] == 14 * 6.0 and row["delay_per_vehicle_s"] == pytest.approx(2.0)
    assert (row["yellow_actuations"], row["red_actuations"]) == (1, 1)
    four = measures_by_phase(events)[(4, Q)]
    assert four["cycles"] == 14 and four["volume"] == 0 and math.isnan(four["percent_on_green"])
    assert math.isnan(four["delay_per_vehicle_s"]) and four["approach_delay_s"] == 0.0
    assert four["green_occupancy_ratio"] == 0.0 and four["split_failures"] == 0


def test_a_queue_that_outlasts_the_green_is_a_split_failure():
    events = fixed_time(20)
    events += [(at(4, -2), DETECTOR_ON, 1), (at(4, 34), DETECTOR_OFF, 1)]  # occupied all green and 5 s of red
    events += [(at(6, 5), DETECTOR_ON, 1), (at(6, 10), DETECTOR_OFF, 1)]  # a fifth of the green
    events += [(at(8, 25), DETECTOR_ON, 1), (at(8, 30), DETECTOR_OFF, 1)]  # ROR5 0.4, on yellow
    row = measures_by_phase(events)[(2, Q)]
    assert row["split_failures"] == 1
    assert row["green_occupancy_ratio"] == pytest.approx((1.0 + 0.2) / 14)
    assert row["red_occupancy_ratio"] == pytest.approx((1.0 + 0.4) / 14)
    per_cycle = pcd_cycles(frame(events), SIGNAL)
    failed = per_cycle[per_cycle["split_failure"]].iloc[0]
    assert len(per_cycle[per_cycle["split_failure"]]) == 1 and failed["phase"] == 2
    assert (
        failed["cycle_start"],
        failed["green_start"],
        failed["yellow_start"],
        failed["cycle_end"],
    ) == tuple(pd.Timestamp(t) for t in (at(3, 28), at(4, 0), at(4, 25), at(4, 28)))
    assert (failed["cycle_s"], failed["green_s"], failed["window_start"]) == (60.0, 25.0, pd.Timestamp(Q))
    assert (failed["green_occupancy_ratio"], failed["red_occupancy_ratio"]) == (1.0, 1.0)
    # A loop already on when the log starts (its first event is an off) was occupied before.
    late_start = [e for e in fixed_time(20) if e[0] >= at(2, 55)] + [(at(4, 34), DETECTOR_OFF, 1)]
    occupied = approach_measures(frame(late_start), SIGNAL, Q, Q + QUARTER)
    assert occupied.loc[occupied["phase"] == 2, "split_failures"].tolist() == [1]


def test_a_cycle_lands_where_its_ror5_window_ends_and_counts_once():
    events = fixed_time(40)
    for k in range(40):
        events += [(at(k, -10), DETECTOR_ON, 2), (at(k, 2), DETECTOR_ON, 3)]
    whole = approach_measures(frame(events), SIGNAL, Q - QUARTER, Q + 2 * QUARTER)
    assert whole[whole["phase"] == 2]["cycles"].tolist() == [0, 14, 15]  # T0 + 28 s is its first red start
    assert whole[whole["phase"] == 4]["cycles"].tolist() == [0, 14, 15]
    empty = whole[whole["window_start"] == pd.Timestamp(Q - QUARTER)].iloc[0]
    assert empty["volume"] == 0 and math.isnan(empty["green_ratio"]) and math.isnan(empty["platoon_ratio"])
    assert math.isnan(empty["green_occupancy_ratio"]) and empty["green_s"] == 0.0
    # A quarter hour's run needs only the events before its end, and a lookback of a quarter hour.
    for start in (Q, Q + QUARTER):
        seen = [e for e in events if start - QUARTER <= e[0] < start + QUARTER]
        alone = approach_measures(frame(seen), SIGNAL, start, start + QUARTER)
        expected = whole[whole["window_start"] == pd.Timestamp(start)].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone, expected)
    assert whole["volume"].sum() == 2 * 29  # each arrival once, with its cycle
    # The log ends mid-cycle: the cycle it cuts is left out.
    cut = approach_measures(frame([e for e in events if e[0] < at(20, 10)]), SIGNAL, Q, Q + 2 * QUARTER)
    assert cut[cut["phase"] == 2]["cycles"].tolist() == [14, 5]


def test_no_events_no_rows():
    assert approach_measures(frame([]), SIGNAL, Q, Q + QUARTER).empty
    assert signal_cycles(frame([]), SIGNAL).empty and arrivals(frame([]), SIGNAL).empty
    assert phase_intervals(frame([]), SIGNAL).empty
