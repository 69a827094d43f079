"""Automated traffic signal performance measures (ATSPM) from one signal's high-resolution event log.

Pure functions over a pandas frame of one signal's events (``signal_id``, ``ts`` in UTC,
``event_code``, ``event_param``: the Indiana enumerations, ``schemas/traffic.signal_event.v1.json``)
and its :class:`~sim.signal_config.SignalConfig`. The lake's gold jobs (:mod:`lake.signal_gold`)
run them per signal in Spark, the CLI's plots call them directly, so both give the same numbers.
Only the configuration's phases are measured (not overlaps or pedestrian phases).

Intervals of a phase (:func:`phase_intervals`):

- *green*: from its begin green (1) to its termination (the first 7, 8 or 10 after it); the
  termination cause is the last gap out (4), max out (5) or force off (6) logged during that green,
  else ``unknown``;
- *yellow*: from begin yellow (8) to end yellow (9), or begin red clearance (10) if 9 is missing;
- *red clearance*: from 10 to end red clearance (11), or the next begin green of any phase if 11
  is missing.

An interval whose end is not in the log (yet), or a green that another begin green of the phase
cuts short, is left out: it is incomplete, not short.

Phase cycles (:func:`signal_cycles`, ``gold.signal_cycles``): from a phase's begin green to its
next begin green; ``red_s`` is the cycle less green and yellow (so it includes red clearance);
``pattern`` is the last coordination pattern (131) logged at or before the cycle's start.

Purdue coordination diagram cycles (PCD, as ATSPM draws them): red → green → yellow. A cycle runs
from one *red start* of the phase to the next, where a red start is the end of its yellow (9), else
the begin red clearance (10), else — once the phase's next begin green shows no clearance was
logged — the end of its green.

:func:`pcd_cycles` lists them, with each one's GOR, ROR5 and split failure (below).

Arrivals (:func:`arrivals`): one per detector on (82) of an advance channel of the phase (a phase
without one: its stop-bar channels), projected to the stop bar at free flow
(``arrival_at = detected_at + distance_m / speed_mps``) and classed by the phase's indication then.
An arrival on red waits until the green: its delay is ``green_start − arrival_at`` (ATSPM's
approach delay); on green or yellow it is 0.

Approach measures (:func:`approach_measures`, ``gold.approach_measures_15min``), per phase and
quarter hour, over the PCD cycles that *land* in it. A cycle ``[red start k, red start k+1)`` lands
in the quarter hour holding ``red start k+1 + 5 s``, when the last thing it is measured on (ROR5)
has been seen. So a quarter hour's measures need only events before its end, each cycle counts in
exactly one quarter hour, and a rerun, or a run over a longer interval, gives the same rows.

- ``cycles``; ``volume`` (arrivals in them), ``volume_vph`` (volume × 3600 / 900);
- ``arrivals_on_green|yellow|red``; ``percent_on_green`` = 100 × on green / volume;
- ``green_s`` (total green), ``green_ratio`` = Σ green / Σ cycle length (g/C);
- ``platoon_ratio`` = (percent_on_green / 100) / green_ratio: above 1, platoons arrive on green;
- ``green_occupancy_ratio``: mean over cycles of GOR, the share of the green during which any
  stop-bar channel of the phase is occupied (on 82, off 81; a loop whose first logged event is
  an off was on before);
- ``red_occupancy_ratio``: mean ROR5, the same over the first 5 s of red after that green;
- ``split_failures``: cycles with GOR > 0.79 and ROR5 > 0.79 (a queue that the green did not clear);
- ``approach_delay_s`` (Σ delay) and ``delay_per_vehicle_s``;
- ``yellow_actuations`` and ``red_actuations``: detector ons of the phase's stop-bar channels
  during its yellow, and during its red (red clearance included), within the cycle.

A row is written for every phase and every quarter hour of [start, end) in which the signal logged
anything or a cycle landed; ratios are null where undefined (no cycles, no arrivals, no stop-bar
channel). A phase cycle longer than :data:`MAX_CYCLE_S`, or a PCD cycle ending more than that after
the begin green before it (the green whose clearance opens it), is left out: a phase that rests that
long is not cycling, and the lake's jobs read only :data:`lake.signal_gold.LOOKBACK` before an
interval, so a longer one would count or not depending on how the runs split the day.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from sim.event_log import (
    BEGIN_RED_CLEARANCE,
    BEGIN_YELLOW,
    DETECTOR_OFF,
    DETECTOR_ON,
    END_RED_CLEARANCE,
    END_YELLOW,
    FORCE_OFF,
    GAP_OUT,
    GREEN_TERMINATION,
    MAX_OUT,
)
from sim.event_log import PATTERN_CHANGE as PATTERN
from sim.event_log import PHASE_BEGIN_GREEN as BEGIN_GREEN
from sim.signal_config import SignalConfig

TERMINATIONS = {GAP_OUT: "gap_out", MAX_OUT: "max_out", FORCE_OFF: "force_off"}

#: ROR5: the first seconds of red observed for a split failure.
ROR_WINDOW_S = 5.0
#: GOR and ROR5 above this in one cycle make a split failure (ATSPM's threshold).
SPLIT_FAILURE_OCCUPANCY = 0.79
#: The longest phase cycle measured, and the latest a PCD cycle may end after the begin green before it (s).
MAX_CYCLE_S = 600.0
QUARTER_S = 900

INTERVAL_COLUMNS = ["signal_id", "phase", "interval", "start", "end", "duration_s", "termination"]
CYCLE_COLUMNS = [
    "signal_id", "phase", "cycle_start", "cycle_end", "cycle_s", "green_s", "yellow_s",
    "red_clearance_s", "red_s", "termination", "pattern",
]  # fmt: skip
ARRIVAL_COLUMNS = [
    "signal_id", "phase", "channel", "detected_at", "arrival_at", "indication", "cycle_start",
    "green_start", "yellow_start", "cycle_end", "time_in_cycle_s", "delay_s",
]  # fmt: skip
PCD_COLUMNS = [
    "signal_id", "phase", "cycle_start", "green_start", "yellow_start", "cycle_end", "cycle_s", "green_s",
    "green_occupancy_ratio", "red_occupancy_ratio", "split_failure", "window_start",
]  # fmt: skip
MEASURE_COLUMNS = [
    "signal_id", "phase", "approach", "direction", "movement", "window_start", "window_end", "cycles",
    "volume", "volume_vph", "arrivals_on_green", "arrivals_on_yellow", "arrivals_on_red",
    "percent_on_green", "green_s", "green_ratio", "platoon_ratio", "green_occupancy_ratio",
    "red_occupancy_ratio", "split_failures", "approach_delay_s", "delay_per_vehicle_s",
    "yellow_actuations", "red_actuations",
]  # fmt: skip

#: "Not in the log": later than any event, so it never ends an interval.
_NEVER = np.iinfo(np.int64).max
_NS = 1_000_000_000


class _Log:
    """One signal's events as sorted numpy arrays (times in ns since the epoch, UTC)."""

    def __init__(self, events: pd.DataFrame) -> None:
        ts = pd.to_datetime(events["ts"], utc=True).dt.as_unit("ns")
        frame = pd.DataFrame(
            {
                "ts": ts.astype("int64").to_numpy(),
                "code": events["event_code"].to_numpy(dtype=np.int64),
                "param": events["event_param"].to_numpy(dtype=np.int64),
            }
        ).sort_values(["ts", "code", "param"], kind="stable")
        self.ts = frame["ts"].to_numpy()
        self.code = frame["code"].to_numpy()
        self.param = frame["param"].to_numpy()
        self.all_greens = self.times((BEGIN_GREEN,))

    def times(self, codes: tuple[int, ...], params: tuple[int, ...] | None = None) -> np.ndarray:
        """Sorted times of the events with one of ``codes`` (and one of ``params``, when given)."""
        mask = np.isin(self.code, codes)
        if params is not None:
            mask &= np.isin(self.param, params)
        return self.ts[mask]


def _first_at_or_after(candidates: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """For each moment, the first of the sorted ``candidates`` at or after it (else ``_NEVER``)."""
    return np.append(candidates, _NEVER)[np.searchsorted(candidates, moments, side="left")]


def _timestamps(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True))


def _table(
    parts: list[pd.DataFrame], signal: SignalConfig, columns: list[str], order: list[str]
) -> pd.DataFrame:
    """One frame of the per-phase ``parts`` with the signal's id, in ``columns``, sorted by ``order``."""
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns[1:])
    frame.insert(0, "signal_id", signal.controller_id)
    return frame.sort_values(order, kind="stable", ignore_index=True)[columns]


class _Phase:
    """A phase's greens, yellows and red clearances as arrays (ns), complete ones only."""

    def __init__(self, log: _Log, phase: int) -> None:
        p = (phase,)
        starts = log.times((BEGIN_GREEN,), p)
        next_start = np.append(starts[1:], _NEVER)
        ends = _first_at_or_after(
            log.times((GREEN_TERMINATION, BEGIN_YELLOW, BEGIN_RED_CLEARANCE), p), starts
        )
        complete = (ends != _NEVER) & (ends <= next_start)
        #: Every begin green of the phase, whether its green is complete, with its end and the next.
        self.begins, self.begin_ends, self.next_begins, self.complete = starts, ends, next_start, complete
        self.green_start, self.green_end = starts[complete], ends[complete]

        is_cause = np.isin(log.code, tuple(TERMINATIONS)) & (log.param == phase)
        cause_ts, cause_code = log.ts[is_cause], log.code[is_cause]
        last = np.searchsorted(cause_ts, self.green_end, side="right") - 1
        cause_at = np.append(cause_ts, -_NEVER)[np.where(last >= 0, last, len(cause_ts))]
        found = cause_at >= self.green_start
        self.termination = np.array(
            [
                TERMINATIONS[int(cause_code[i])] if ok else "unknown"
                for i, ok in zip(last, found, strict=True)
            ],
            dtype=object,
        )

        yellow = log.times((BEGIN_YELLOW,), p)
        yellow_end = _first_at_or_after(log.times((END_YELLOW, BEGIN_RED_CLEARANCE), p), yellow)
        ok = (yellow_end != _NEVER) & (yellow_end <= _first_at_or_after(starts, yellow))
        self.yellow_start, self.yellow_end = yellow[ok], yellow_end[ok]

        clearance = log.times((BEGIN_RED_CLEARANCE,), p)
        clearance_end = np.minimum(
            _first_at_or_after(log.times((END_RED_CLEARANCE,), p), clearance),
            _first_at_or_after(log.all_greens, clearance),
        )
        ok = clearance_end != _NEVER
        self.clearance_start, self.clearance_end = clearance[ok], clearance_end[ok]

        # Red start after each begin green's green: the first end of yellow (9) or begin red
        # clearance (10) before the next begin green, else (no clearance logged) the green's end,
        # but only once the next begin green shows that none is coming.
        clearing = _first_at_or_after(log.times((END_YELLOW, BEGIN_RED_CLEARANCE), p), ends)
        self.red_start = np.where(
            clearing < next_start,
            clearing,
            np.where(next_start != _NEVER, ends, _NEVER),
        )
        self.red_start = np.where(complete, self.red_start, _NEVER)

    def termination_before(self, moments: np.ndarray) -> np.ndarray:
        """The termination cause of the green that ended last at or before each moment."""
        k = np.searchsorted(self.green_end, moments, side="right") - 1
        causes = np.append(self.termination, None)
        return causes[np.where(k >= 0, k, len(self.termination))]


def phase_intervals(events: pd.DataFrame, signal: SignalConfig) -> pd.DataFrame:
    """Every complete green, yellow and red clearance of the signal's phases: ``signal_id``,
    ``phase``, ``interval`` (green, yellow, red_clearance), ``start``, ``end``, ``duration_s`` and
    ``termination`` (the cause that ended the green, or the green it follows; None if no green did)."""
    log = _Log(events)
    parts = []
    for group in signal.phases:
        phase = _Phase(log, group.number)
        for name, start, end, cause in (
            ("green", phase.green_start, phase.green_end, phase.termination),
            ("yellow", phase.yellow_start, phase.yellow_end, phase.termination_before(phase.yellow_start)),
            (
                "red_clearance",
                phase.clearance_start,
                phase.clearance_end,
                phase.termination_before(phase.clearance_start),
            ),
        ):
            parts.append(
                pd.DataFrame(
                    {
                        "phase": group.number,
                        "interval": name,
                        "start": _timestamps(start),
                        "end": _timestamps(end),
                        "duration_s": (end - start) / _NS,
                        "termination": pd.Series(cause, dtype=object),
                    }
                )
            )
    return _table(parts, signal, INTERVAL_COLUMNS, ["start", "phase", "interval"])


def _total_in(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each [lo, hi): the total length (ns) of the intervals that start in it."""
    order = np.argsort(starts, kind="stable")
    starts, lengths = starts[order], (ends - starts)[order]
    cumulative = np.append(0, np.cumsum(lengths))
    return cumulative[np.searchsorted(starts, hi, "left")] - cumulative[np.searchsorted(starts, lo, "left")]


def _pattern_at(log: _Log, moments: np.ndarray) -> pd.Series:
    """The coordination pattern (131) last logged at or before each moment; null before any."""
    is_pattern = log.code == PATTERN
    times, values = log.ts[is_pattern], log.param[is_pattern]
    k = np.searchsorted(times, moments, side="right") - 1
    found = pd.array(np.append(values, 0)[np.where(k >= 0, k, len(values))], dtype="Int64")
    found[k < 0] = pd.NA
    return pd.Series(found)


def signal_cycles(events: pd.DataFrame, signal: SignalConfig) -> pd.DataFrame:
    """The rows of ``gold.signal_cycles`` (without ``window_start``): one per phase cycle, from a
    begin green whose green is complete to the phase's next begin green, at most
    :data:`MAX_CYCLE_S` long; sorted by phase and start."""
    log = _Log(events)
    parts = []
    for group in signal.phases:
        phase = _Phase(log, group.number)
        keep = phase.complete & (phase.next_begins != _NEVER)
        keep &= phase.next_begins - phase.begins <= MAX_CYCLE_S * _NS
        start, end = phase.begins[keep], phase.next_begins[keep]
        green = (phase.begin_ends[keep] - start) / _NS
        yellow = _total_in(phase.yellow_start, phase.yellow_end, start, end) / _NS
        clearance = _total_in(phase.clearance_start, phase.clearance_end, start, end) / _NS
        cycle = (end - start) / _NS
        parts.append(
            pd.DataFrame(
                {
                    "phase": group.number,
                    "cycle_start": _timestamps(start),
                    "cycle_end": _timestamps(end),
                    "cycle_s": cycle,
                    "green_s": green,
                    "yellow_s": yellow,
                    "red_clearance_s": clearance,
                    "red_s": cycle - green - yellow,
                    "termination": pd.Series(phase.termination[keep[phase.complete]], dtype=object),
                    "pattern": _pattern_at(log, start),
                }
            )
        )
    return _table(parts, signal, CYCLE_COLUMNS, ["phase", "cycle_start"])


class _Cycles:
    """A phase's PCD cycles (ns): [start, end) = [red start k, red start k+1), with the green and
    yellow start of the green between them; complete ones only, ending at most :data:`MAX_CYCLE_S`
    after the begin green before them."""

    def __init__(self, phase: _Phase) -> None:
        red = phase.red_start
        previous = np.append(_NEVER, red[:-1])  # the red start after the begin green before
        before = np.append(_NEVER, phase.begins[:-1])
        ok = (previous != _NEVER) & (red != _NEVER) & (previous <= phase.begins)
        ok &= red - np.where(ok, before, red) <= MAX_CYCLE_S * _NS
        self.start, self.end = previous[ok], red[ok]
        self.green_start, self.yellow_start = phase.begins[ok], phase.begin_ends[ok]

    def landing(self) -> np.ndarray:
        """The quarter hour (its start, ns) each cycle lands in: the one holding the end of its ROR5."""
        quarter = QUARTER_S * _NS
        return ((self.end + int(ROR_WINDOW_S * _NS)) // quarter) * quarter

    def holding(self, moments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The index of the cycle holding each moment (0 where none does), and whether one does."""
        k = np.searchsorted(self.start, moments, side="right") - 1
        ends = np.append(self.end, -_NEVER)[np.where(k >= 0, k, len(self.end))]
        return np.maximum(k, 0), moments < ends


def _within(starts: np.ndarray, ends: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """Whether each moment is in one of the disjoint sorted intervals [starts, ends)."""
    k = np.searchsorted(starts, moments, side="right") - 1
    return moments < np.append(ends, -_NEVER)[np.where(k >= 0, k, len(ends))]


def _channels(signal: SignalConfig, phase: int, kind: str) -> list[int]:
    return [d.channel for d in signal.detectors if d.phase == phase and d.kind == kind]


class _Arrivals:
    """A phase's arrivals (ns arrays) and the PCD cycle holding each (``cycle``, where ``inside``)."""

    def __init__(self, log: _Log, signal: SignalConfig, number: int, phase: _Phase, cycles: _Cycles) -> None:
        counted = set(_channels(signal, number, "advance") or _channels(signal, number, "stop_bar"))
        travel = {
            d.channel: int(round(d.distance_m / d.speed_mps * 1e6)) * 1000 if d.speed_mps > 0 else 0
            for d in signal.detectors
            if d.channel in counted
        }
        mask = (log.code == DETECTOR_ON) & np.isin(log.param, list(travel))
        self.phase = number
        self.detected, self.channel = log.ts[mask], log.param[mask]
        self.at = self.detected + np.array([travel[int(c)] for c in self.channel], dtype=np.int64)
        self.cycle, self.inside = cycles.holding(self.at)
        pick = (
            (lambda values: values[self.cycle]) if len(cycles.start) else (lambda _: np.zeros_like(self.at))
        )
        self.start, self.green, self.yellow, self.end = (
            pick(a) for a in (cycles.start, cycles.green_start, cycles.yellow_start, cycles.end)
        )
        in_cycle = np.where(self.at < self.green, "red", np.where(self.at < self.yellow, "green", "yellow"))
        logged = np.where(
            _within(phase.green_start, phase.green_end, self.at),
            "green",
            np.where(_within(phase.yellow_start, phase.yellow_end, self.at), "yellow", "red"),
        )
        self.indication = np.where(self.inside, in_cycle, logged)
        on_red = self.at < self.green
        self.delay_s = np.where(self.inside, np.where(on_red, (self.green - self.at) / _NS, 0.0), np.nan)

    def frame(self) -> pd.DataFrame:
        def cycle_time(values: np.ndarray) -> pd.Series:
            return _timestamps(values).where(self.inside, pd.NaT)

        return pd.DataFrame(
            {
                "phase": self.phase,
                "channel": self.channel,
                "detected_at": _timestamps(self.detected),
                "arrival_at": _timestamps(self.at),
                "indication": self.indication,
                "cycle_start": cycle_time(self.start),
                "green_start": cycle_time(self.green),
                "yellow_start": cycle_time(self.yellow),
                "cycle_end": cycle_time(self.end),
                "time_in_cycle_s": np.where(self.inside, (self.at - self.start) / _NS, np.nan),
                "delay_s": self.delay_s,
            }
        )


def arrivals(events: pd.DataFrame, signal: SignalConfig) -> pd.DataFrame:
    """One row per detector on of the channels that count a phase's arrivals (see the module
    docstring); the cycle fields are null for an arrival outside a complete PCD cycle, and its
    indication then comes from the logged intervals (red when in none). Sorted by time, channel."""
    log = _Log(events)
    parts = []
    for group in signal.phases:
        phase = _Phase(log, group.number)
        parts.append(_Arrivals(log, signal, group.number, phase, _Cycles(phase)).frame())
    return _table(parts, signal, ARRIVAL_COLUMNS, ["detected_at", "channel", "phase"])


def _occupancy(log: _Log, channels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """When any of ``channels`` is occupied: disjoint sorted [start, end) (ns); a loop on before
    the log starts from ``-_NEVER``, one still on at its end runs to ``_NEVER``."""
    starts, ends = [], []
    for number in channels:
        mask = (log.param == number) & np.isin(log.code, (DETECTOR_OFF, DETECTOR_ON))
        times, on = log.ts[mask], log.code[mask] == DETECTOR_ON
        if not len(times):
            continue
        before = np.append(not on[0], on[:-1])
        rise, fall = times[on & ~before], times[~on & before]
        if not on[0]:
            rise = np.append(-_NEVER, rise)
        if on[-1]:
            fall = np.append(fall, _NEVER)
        starts.append(rise)
        ends.append(fall)
    if not starts:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    s, e = np.concatenate(starts), np.concatenate(ends)
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    new = np.append(True, s[1:] > reach[:-1])
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first)


def _occupied_share(occupied: tuple[np.ndarray, np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each [lo, hi): the share of it that the disjoint intervals ``occupied`` cover."""
    starts, ends = occupied
    if not len(lo):
        return np.array([], dtype=float)
    floor, ceiling = lo.min(), hi.max()
    starts, ends = np.clip(starts, floor, ceiling), np.clip(ends, floor, ceiling)
    cumulative = np.append(0, np.cumsum(ends - starts))

    def covered_until(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(starts, x, side="right") - 1
        j = np.maximum(k, 0)
        partial = (
            np.clip(x - starts[j], 0, ends[j] - starts[j]) if len(starts) else np.zeros(len(x), np.int64)
        )
        return np.where(k >= 0, cumulative[j] + partial, 0)

    span = (hi - lo).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (covered_until(hi) - covered_until(lo)) / span, np.nan)


def _occupancy_ratios(log: _Log, stop_bar: list[int], cycles: _Cycles) -> tuple[np.ndarray, np.ndarray]:
    """GOR and ROR5 of each cycle over the ``stop_bar`` channels."""
    occupied = _occupancy(log, stop_bar)
    gor = _occupied_share(occupied, cycles.green_start, cycles.yellow_start)
    return gor, _occupied_share(occupied, cycles.end, cycles.end + int(ROR_WINDOW_S * _NS))


def pcd_cycles(events: pd.DataFrame, signal: SignalConfig) -> pd.DataFrame:
    """Every complete PCD cycle of the signal's phases: ``cycle_start`` (red start), ``green_start``,
    ``yellow_start``, ``cycle_end`` (the next red start), ``cycle_s``, ``green_s``, its GOR, ROR5 and
    whether it is a split failure (null without a stop-bar channel), and the quarter hour it lands in
    (``window_start``). Sorted by phase and start."""
    log = _Log(events)
    parts = []
    for group in signal.phases:
        cycles = _Cycles(_Phase(log, group.number))
        stop_bar = _channels(signal, group.number, "stop_bar")
        gor, ror5 = _occupancy_ratios(log, stop_bar, cycles)
        failed = pd.array((gor > SPLIT_FAILURE_OCCUPANCY) & (ror5 > SPLIT_FAILURE_OCCUPANCY), dtype="boolean")
        parts.append(
            pd.DataFrame(
                {
                    "phase": group.number,
                    "cycle_start": _timestamps(cycles.start),
                    "green_start": _timestamps(cycles.green_start),
                    "yellow_start": _timestamps(cycles.yellow_start),
                    "cycle_end": _timestamps(cycles.end),
                    "cycle_s": (cycles.end - cycles.start) / _NS,
                    "green_s": (cycles.yellow_start - cycles.green_start) / _NS,
                    "green_occupancy_ratio": gor if stop_bar else np.nan,
                    "red_occupancy_ratio": ror5 if stop_bar else np.nan,
                    "split_failure": failed if stop_bar else pd.array([pd.NA] * len(gor), dtype="boolean"),
                    "window_start": _timestamps(cycles.landing()),
                }
            )
        )
    return _table(parts, signal, PCD_COLUMNS, ["phase", "cycle_start"])


def _count_in(times: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.searchsorted(times, hi, "left") - np.searchsorted(times, lo, "left")


def _mean(values: np.ndarray) -> float:
    """The mean of the defined values; NaN (null) when there are none."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else np.nan


def _utc_ns(moment: datetime | pd.Timestamp) -> int:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def approach_measures(
    events: pd.DataFrame, signal: SignalConfig, start: datetime | pd.Timestamp, end: datetime | pd.Timestamp
) -> pd.DataFrame:
    """The rows of ``gold.approach_measures_15min`` for the quarter hours of [start, end) (whole
    quarter hours, UTC): per phase, the PCD cycles landing in each (see the module docstring).
    Nulls are NaN (``<NA>`` for ``split_failures``); sorted by quarter hour and phase."""
    log = _Log(events)
    lo, hi, quarter = _utc_ns(start), _utc_ns(end), QUARTER_S * _NS
    logged = (log.ts[(log.ts >= lo) & (log.ts < hi)] // quarter) * quarter
    rows = []
    for group in signal.phases:
        phase = _Phase(log, group.number)
        cycles = _Cycles(phase)
        landing = cycles.landing()
        found = _Arrivals(log, signal, group.number, phase, cycles)
        found_landing = np.where(found.inside, landing[found.cycle] if len(landing) else 0, -1)
        stop_bar = _channels(signal, group.number, "stop_bar")
        gor, ror5 = _occupancy_ratios(log, stop_bar, cycles)
        failed = (gor > SPLIT_FAILURE_OCCUPANCY) & (ror5 > SPLIT_FAILURE_OCCUPANCY)
        actuations = log.times((DETECTOR_ON,), tuple(stop_bar))
        yellow_actuations = _count_in(actuations, cycles.yellow_start, cycles.end)
        red_actuations = _count_in(actuations, cycles.start, cycles.green_start)
        for window in np.unique(np.concatenate([logged, landing[(landing >= lo) & (landing < hi)]])):
            here, mine = landing == window, found_landing == window
            n, volume = int(here.sum()), int(mine.sum())
            indication = found.indication[mine]
            on_green = int((indication == "green").sum())
            green_s = float((cycles.yellow_start - cycles.green_start)[here].sum() / _NS)
            cycle_s = float((cycles.end - cycles.start)[here].sum() / _NS)
            delay = float(found.delay_s[mine].sum())
            percent = 100.0 * on_green / volume if volume else np.nan
            ratio = green_s / cycle_s if n else np.nan
            rows.append(
                {
                    "phase": group.number,
                    "approach": group.approach,
                    "direction": group.direction,
                    "movement": group.movement,
                    "window_start": window,
                    "cycles": n,
                    "volume": volume,
                    "volume_vph": volume * 3600 / QUARTER_S,
                    "arrivals_on_green": on_green,
                    "arrivals_on_yellow": int((indication == "yellow").sum()),
                    "arrivals_on_red": int((indication == "red").sum()),
                    "percent_on_green": percent,
                    "green_s": green_s,
                    "green_ratio": ratio,
                    "platoon_ratio": percent / 100 / ratio if ratio > 0 else np.nan,
                    "green_occupancy_ratio": _mean(gor[here]) if stop_bar else np.nan,
                    "red_occupancy_ratio": _mean(ror5[here]) if stop_bar else np.nan,
                    "split_failures": int(failed[here].sum()) if stop_bar else pd.NA,
                    "approach_delay_s": delay,
                    "delay_per_vehicle_s": delay / volume if volume else np.nan,
                    "yellow_actuations": int(yellow_actuations[here].sum()),
                    "red_actuations": int(red_actuations[here].sum()),
                }
            )
    frame = pd.DataFrame(rows, columns=MEASURE_COLUMNS[1:])
    frame["window_start"] = _timestamps(frame["window_start"].to_numpy(dtype=np.int64))
    frame["window_end"] = frame["window_start"] + pd.Timedelta(seconds=QUARTER_S)
    frame["split_failures"] = frame["split_failures"].astype("Int64")
    frame.insert(0, "signal_id", signal.controller_id)
    return frame.sort_values(["window_start", "phase"], kind="stable", ignore_index=True)[MEASURE_COLUMNS]
