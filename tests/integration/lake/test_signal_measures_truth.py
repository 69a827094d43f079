"""The lake's signal measures against the sensor twin's truth, on the corridor (seed 2, a seed
nothing was tuned on): what the event log → bronze → silver → gold path computes beside what SUMO
itself did.

- arrivals on green per approach (signal and phase) within 2 percentage points of SUMO's own: each
  vehicle's crossing of the advance loop's position (from its lane positions, not the loops),
  projected to the stop bar at the approach speed as the Purdue Coordination Diagram does, and
  the indication of *its own* link in SUMO's signal state at that moment;
- volumes within 2 % of those crossings on most approaches, and within 4 % on every one: a vehicle
  that changes lane over an advance loop is counted by the loops of both lanes (SUMO's loops do
  so, as a real car straddling two loops does), which on the corridor's arterial bays adds up to
  3 %; a lane too short for an advance loop has none (its phase is measured at the stop bar and
  has no crossings to compare with);
- every green, yellow and red clearance of every cycle exact to 0.1 s against SUMO's state changes.

Both sides count the arrivals of the same cycles: the complete PCD cycles of each phase that the
gold table holds.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import pyarrow.parquet as pq
import pytest

from lake.delta import read_partitions
from lake.signal_measures import pcd_cycles
from lake.tables import TABLES
from sim import signal_config
from sim.twin import TRUTH_ARRIVALS_FILE, TRUTH_SIGNAL_STATES_FILE
from tests.integration.conftest import TwinLake

pytestmark = pytest.mark.integration

#: An approach needs this many arrivals for a share in percentage points to mean something.
MIN_ARRIVALS = 40


def _gold(fused: TwinLake, name: str) -> pd.DataFrame:
    return read_partitions(fused.settings.lake_path, TABLES[name]).to_pandas()


def _events(fused: TwinLake) -> pd.DataFrame:
    events = read_partitions(fused.settings.lake_path, TABLES["silver.signal_events"]).to_pandas()
    return events.sort_values(["signal_id", "ts", "event_code", "event_param"], kind="stable")


def test_arrivals_on_green_and_volumes_match_sumos_own_per_approach(fused: TwinLake):
    configuration = signal_config.configuration(fused.settings).by_controller()
    measures = _gold(fused, "gold.approach_measures_15min")
    truth = pq.read_table(fused.truth / TRUTH_ARRIVALS_FILE).to_pandas()
    events = _events(fused)
    volume_errors = []
    for controller, signal in configuration.items():
        advance = {d.phase for d in signal.detectors if d.kind == "advance"}
        cycles = pcd_cycles(events[events["signal_id"] == controller], signal)
        landed = cycles[(cycles["window_start"] < fused.end) & cycles["phase"].isin(advance)]
        for phase, own in landed.groupby("phase"):
            rows = measures[(measures["signal_id"] == controller) & (measures["phase"] == phase)]
            lake_volume = int(rows["volume"].sum())
            if lake_volume < MIN_ARRIVALS:
                continue
            first, last = own["cycle_start"].min(), own["cycle_end"].max()
            seen = truth[
                (truth["signal_id"] == controller)
                & (truth["phase"] == phase)
                & (truth["arrival_ts"] >= first)
                & (truth["arrival_ts"] < last)
            ]
            on_green = 100 * rows["arrivals_on_green"].sum() / lake_volume
            truly_on_green = 100 * (seen["indication_at_arrival"] == "green").mean()
            where = (
                f"{controller} phase {phase}: lake {on_green:.1f} % of {lake_volume}, "
                f"SUMO {truly_on_green:.1f} % of {len(seen)}"
            )
            assert abs(on_green - truly_on_green) <= 2.0, where
            assert abs(lake_volume - len(seen)) <= 0.04 * len(seen), where
            volume_errors.append(abs(lake_volume - len(seen)) / len(seen))
    # the corridor's seven signals: every arterial through phase and the busy lefts and side streets
    assert len(volume_errors) >= 15
    assert sorted(volume_errors)[len(volume_errors) // 2] <= 0.02


def test_every_green_yellow_and_red_clearance_is_sumos_to_a_tenth_of_a_second(fused: TwinLake):
    configuration = signal_config.configuration(fused.settings)
    states = pq.read_table(fused.truth / TRUTH_SIGNAL_STATES_FILE).to_pandas()
    lake = _gold(fused, "gold.signal_cycles")
    assert len(lake) > 0
    checked = 0
    for tls_id, signal in configuration.signals.items():
        changes = states[states["signal_id"] == tls_id].sort_values("ts")
        for group in signal.phases:
            truth = _intervals(changes, signal, group)
            rows = lake[(lake["signal_id"] == signal.controller_id) & (lake["phase"] == group.number)]
            for row in rows.itertuples():
                green = truth["green"][row.cycle_start]
                assert row.green_s == pytest.approx(green, abs=0.05), (tls_id, group.number, row.cycle_start)
                assert row.yellow_s == pytest.approx(truth["yellow"][row.cycle_start], abs=0.05)
                assert row.red_clearance_s == pytest.approx(truth["red_clearance"][row.cycle_start], abs=0.05)
                checked += 1
    assert checked == len(lake)


def _intervals(
    changes: pd.DataFrame, signal: signal_config.SignalConfig, group: signal_config.PhaseGroup
) -> dict[str, dict[pd.Timestamp, float]]:
    """Per begin-green of the phase in SUMO's own state changes: how long its green and its yellow
    lasted, and the red clearance after it: until any phase or overlap of the signal began green."""
    times = list(changes["ts"])
    states = list(changes["state"])
    shown = [group.indication(state) for state in states]
    groups = (*signal.phases, *signal.overlaps)
    begins = [
        i > 0 and any(g.indication(states[i]) == "green" != g.indication(states[i - 1]) for g in groups)
        for i in range(len(states))
    ]
    found: dict[str, dict[pd.Timestamp, float]] = defaultdict(dict)
    for i, at in enumerate(times):
        if shown[i] != "green" or (i and shown[i - 1] == "green"):
            continue
        j = next((k for k in range(i + 1, len(times)) if shown[k] != "green"), None)
        if j is None:
            continue
        found["green"][at] = (times[j] - at).total_seconds()
        k = next((m for m in range(j, len(times)) if shown[m] != "yellow"), None)
        if k is None:
            continue
        found["yellow"][at] = (times[k] - times[j]).total_seconds()
        n = next((m for m in range(k, len(times)) if begins[m]), None)
        if n is not None:
            found["red_clearance"][at] = (times[n] - times[k]).total_seconds()
    return found
