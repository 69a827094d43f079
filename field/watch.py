"""Watching an applied plan: did delay on its approaches get worse than before it?

For each signal of an applied plan, gold's fused link state gives, per quarter hour, the delay on
the signal's approaches (:func:`lake.approach.approach_delay`). The quarter hours of the window
after the plan took effect (the first whole one after it, on) are compared with as many just
before it: the plan is judged worse when the mean after exceeds the mean before by more than a
share of it *and* Welch's one-sided t-test says the difference is significant — a busy quarter
hour alone must not undo an operator's decision. Too few quarter hours on either side (the lake
behind, detectors down) gives no verdict, and nothing is undone.

Before and after are the hours next to each other, not the same hours of two days: the twin and
a freshly applied plan give no earlier day of the same plan, and the hours either side of a
change share their demand more closely than last week's do. A plan applied at a demand peak's
edge can therefore look worse than it is; the share and the significance level are settings
(``CITYBRAIN_FIELD_ROLLBACK_*``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lake.approach import approach_delay, link_state_rows
from lake.tables import SLOT, ceil_to, floor_to
from sim.network import Network

#: Fewest quarter hours on each side for a verdict (a t-test needs two; four is an hour).
MIN_SLOTS = 4


@dataclass(frozen=True)
class Approach:
    """An incoming edge of a signal, with what its segment delay needs."""

    edge_id: str
    length_m: float
    speed_limit_mps: float


def approaches_of(network: Network) -> dict[str, tuple[Approach, ...]]:
    """Each signal's incoming normal edges (those of its controlled links), by SUMO tls id."""
    found = {}
    for tls_id, signal in network.signals.items():
        edges = sorted({c.from_edge for c in signal.connections} & set(network.edges))
        found[tls_id] = tuple(
            Approach(e, network.edges[e].length, network.edges[e].speed)
            for e in edges
            if network.edges[e].function not in ("internal", "walkingarea", "crossing")
        )
    return found


@dataclass(frozen=True)
class Verdict:
    """The comparison for one signal: mean approach delay (s/veh) before and after, the relative
    change, Welch's one-sided p-value (after greater), the quarter hours used; ``worse`` decides
    a rollback; ``reason`` says it in words; ``compared`` is False when gold had too little to
    compare (the lake may catch up: ask again later)."""

    worse: bool
    reason: str
    before_s: float | None = None
    after_s: float | None = None
    change: float | None = None
    p_value: float | None = None
    slots_before: int = 0
    slots_after: int = 0
    compared: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def approaches_delay(
    approaches: tuple[Approach, ...], state: Mapping[str, Mapping[str, Any] | None]
) -> float | None:
    """The approaches' delay (s per vehicle, flow-weighted) from a link state by edge id: gold's
    rows, or SUMO's own measures beside them."""
    found = approach_delay((a.length_m, a.speed_limit_mps, state.get(a.edge_id)) for a in approaches)
    return found["approach_delay_s"]


def per_slot_delay(
    lake: Path, approaches: tuple[Approach, ...], start: datetime, end: datetime
) -> dict[datetime, float]:
    """The approaches' delay in each quarter hour of [start, end) that gold has a speed for."""
    by_edge = {a.edge_id: a for a in approaches}
    slots: dict[datetime, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for row in link_state_rows(lake, start, end, set(by_edge)):
        slots[row["window_start"]][row["edge_id"]] = row
    delays = {slot: approaches_delay(approaches, rows) for slot, rows in slots.items()}
    return {slot: delay for slot, delay in delays.items() if delay is not None}


def judge(
    lake: Path,
    approaches: tuple[Approach, ...],
    effective_at: datetime,
    window: timedelta,
    worse_share: float,
    p_max: float,
) -> Verdict:
    """The verdict on one signal's plan that took effect at ``effective_at`` (see the module)."""
    if not approaches:
        return Verdict(False, "the signal has no approach on the network: nothing to compare")
    first_after = ceil_to(effective_at, SLOT)
    before = list(
        per_slot_delay(
            lake, approaches, floor_to(effective_at, SLOT) - window, floor_to(effective_at, SLOT)
        ).values()
    )
    after = list(per_slot_delay(lake, approaches, first_after, first_after + window).values())
    counts = {"slots_before": len(before), "slots_after": len(after)}
    if len(before) < MIN_SLOTS or len(after) < MIN_SLOTS:
        return Verdict(
            False,
            f"too few quarter hours in gold to judge ({len(before)} before, {len(after)} after; "
            f"{MIN_SLOTS} each needed)",
            **counts,
            compared=False,
        )
    mean_before, mean_after = float(np.mean(before)), float(np.mean(after))
    change = (mean_after - mean_before) / mean_before if mean_before > 0 else None
    if np.std(before) == 0 and np.std(after) == 0:
        p_value = 0.0 if mean_after > mean_before else 1.0
    else:
        p_value = float(stats.ttest_ind(after, before, equal_var=False, alternative="greater").pvalue)
    worse = change is not None and change > worse_share and p_value < p_max
    words = (
        f"approach delay {mean_before:.1f} s before, {mean_after:.1f} s after"
        + (f" ({change:+.0%})" if change is not None else "")
        + f", p = {p_value:.3g}: "
        + (
            "worse beyond the threshold, significant"
            if worse
            else "not worse beyond the threshold with significance"
        )
    )
    return Verdict(
        worse, words, round(mean_before, 2), round(mean_after, 2),
        None if change is None else round(change, 4), round(p_value, 6), **counts,
    )  # fmt: skip
