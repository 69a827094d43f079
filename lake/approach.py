"""Delay on a signal's approaches, from gold's fused link state: what the map colours signals by
and what the field's watcher compares before and after a plan.

On an incoming edge of length L with speed limit v₀ and fused speed v, a vehicle spends
``L / v − L / v₀`` seconds more than at the limit (never below 0). The fused speed is a travel
speed, the stop at the signal included, so this is segment delay; it is not the HCM's control
delay, which needs the signal's event log. Read through the table's Delta log with delta-rs
(:mod:`lake.delta`): no Spark session for a web request or a watcher's check.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lake.delta import Lake, read_partitions
from lake.tables import TABLES

LINK_STATE = TABLES["gold.link_state_15min"]


def segment_delay_s(length_m: float, speed_limit_mps: float | None, speed_mps: float | None) -> float | None:
    """Seconds a vehicle loses on an edge at ``speed_mps`` against its limit; None when unknown."""
    if (
        not speed_mps
        or speed_mps <= 0
        or not speed_limit_mps
        or speed_limit_mps <= 0
        or math.isnan(speed_mps)
    ):
        return None
    return max(0.0, length_m / speed_mps - length_m / speed_limit_mps)


def approach_delay(
    approaches: Iterable[tuple[float, float | None, Mapping[str, Any] | None]],
) -> dict[str, Any]:
    """A signal's delay over its approaches, each ``(length_m, speed_limit_mps, link state row
    or None)``: the segment delays averaged weighted by flow (equally when no approach has a
    flow). ``approach_delay_s`` is None when no approach has a speed; ``approach_flow_vph`` is
    the approaches' total flow; ``approaches`` their count."""
    delays, flows, count = [], [], 0
    for length, limit, row in approaches:
        count += 1
        delay = segment_delay_s(length, limit, (row or {}).get("speed_mps"))
        if delay is None:
            continue
        delays.append(delay)
        flows.append((row or {}).get("flow_vph") or 0.0)
    mean = None
    if delays:
        weights = flows if sum(flows) > 0 else [1.0] * len(delays)
        mean = round(float(np.average(delays, weights=weights)), 1)
    return {
        "approach_delay_s": mean,
        "approach_flow_vph": round(sum(flows), 1) if delays else None,
        "approaches": count,
    }


def link_state_rows(
    lake: Lake, start: datetime, end: datetime, edges: set[str] | None = None
) -> list[dict[str, Any]]:
    """Gold's link state rows of the quarter hours in [start, end) (of ``edges`` only, when given),
    in time then edge order, NaN read as null."""
    columns = ["edge_id", "window_start", "flow_vph", "speed_mps"]
    state = read_partitions(lake, LINK_STATE, LINK_STATE.partition_values(start, end), columns=columns)
    if edges is not None:
        state = state.filter(pc.is_in(state["edge_id"], pa.array(sorted(edges), pa.string())))
    state = state.sort_by([("window_start", "ascending"), ("edge_id", "ascending")])
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in state.to_pylist()
    ]
