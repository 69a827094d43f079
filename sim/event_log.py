"""A signal controller's high-resolution event log, written from what SUMO shows each step.

The sensor twin feeds :class:`EventLog` every simulation step with each signal's state string,
running program and program phase, and with the per-vehicle data of each detector channel's loop;
it returns ``traffic.signal_event.v1`` records coded by the Indiana Hi-Resolution Data Logger
Enumerations, as a field controller would log them. Nothing here imports libsumo, so the state
machine is tested with hand-made state sequences.

What is logged, per signal of the configuration (:mod:`sim.signal_config`):

- vehicle phases, from the transitions of :meth:`PhaseGroup.indication`: red→green ``1``;
  green→yellow the termination cause, ``7``, ``8``; yellow→red ``9``, ``10`` (red clearance
  begins); green→red directly the cause, ``7``, ``10``. A red clearance stays open until a phase
  or overlap of the signal begins green; then every open one is closed with ``11`` and ``12``
  (the next phase's start is where a controller ends red clearance; a phase that itself begins
  green again logs ``11`` only, as it does not go inactive). The cause is ``6`` force off
  for a fixed-time (``static``) program; otherwise ``5`` max out when the SUMO phase that just
  ended ran to its ``maxDur`` (within half a step), else ``4`` gap out;
- overlaps likewise with ``61`` green, ``63`` yellow, ``64`` red clearance and ``65`` off, the
  off closing like ``11``/``12``;
- pedestrian phases: ``21`` walk when a crossing link turns green, ``22`` clearance when it stops
  being green, and ``23`` solid don't walk when the vehicle phase of the same number (the one the
  crossing walks with) ends its yellow, at once if that phase already shows red or is missing;
- detector channels: ``82`` on at the vehicle's entry time and ``81`` off at its leave time, once
  each per vehicle, from libsumo's ``inductionloop.getVehicleData`` tuples;
- coordination, when the run starts and whenever a signal's program id changes: ``131`` pattern,
  ``132`` cycle length, ``133`` offset, and ``134 + n - 1`` the split of each phase ``n`` ≤ 16
  (:func:`split_s`).

Each observation is stamped with the time its states took effect (the twin passes the start of
the step SUMO showed them in), detector events with the loop's own entry and leave times. The log
opens as if every group had been red: a phase green at the first observation gets its ``1`` then
(one yellow gets ``8``). Times are rounded to 0.1 s, as controllers log them; within one
observation records are sorted by (ts, signal, event code, parameter). The codes are those of the
contract, ``schemas/traffic.signal_event.v1.json`` (Sturdevant et al., 2012).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from core.errors import CitybrainError
from sim.signal_config import (
    GREEN_STATES,
    YELLOW_STATES,
    Indication,
    PhaseGroup,
    SignalConfig,
    SignalConfiguration,
)

TOPIC = "traffic.signal_event.v1"

PHASE_BEGIN_GREEN = 1
GAP_OUT = 4
MAX_OUT = 5
FORCE_OFF = 6
GREEN_TERMINATION = 7
BEGIN_YELLOW = 8
END_YELLOW = 9
BEGIN_RED_CLEARANCE = 10
END_RED_CLEARANCE = 11
PHASE_INACTIVE = 12
PED_BEGIN_WALK = 21
PED_BEGIN_CLEARANCE = 22
PED_BEGIN_DONT_WALK = 23
OVERLAP_BEGIN_GREEN = 61
OVERLAP_BEGIN_YELLOW = 63
OVERLAP_BEGIN_RED_CLEARANCE = 64
OVERLAP_OFF = 65
DETECTOR_OFF = 81
DETECTOR_ON = 82
PATTERN_CHANGE = 131
CYCLE_LENGTH_CHANGE = 132
OFFSET_CHANGE = 133
SPLIT_1_CHANGE = 134
#: Splits are logged for phases 1 to 16 (codes 134 to 149).
MAX_SPLIT_PHASE = 16
#: A pattern number is a byte; a program id outside it is numbered by its place instead.
MAX_PATTERN = 255
#: TraCI's program type codes (``tc.TRAFFICLIGHT_TYPE_*``) as the tlLogic ``type`` names.
PROGRAM_KINDS = {0: "static", 3: "actuated", 4: "NEMA", 5: "delay_based"}

#: What an overlap logs when it begins an indication.
_OVERLAP_BEGINS = {
    "green": OVERLAP_BEGIN_GREEN,
    "yellow": OVERLAP_BEGIN_YELLOW,
    "red": OVERLAP_BEGIN_RED_CLEARANCE,
}

#: A vehicle on a loop as libsumo reports it: id, length, entry time, leave time (-1 while on), type.
LoopVehicle = tuple[str, float, float, float, str]


class EventLogError(CitybrainError, ValueError):
    """An observation the event log cannot use (an unknown signal, a program without phases)."""


# -- programs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramInfo:
    """What the log needs of a running SUMO program: its pattern, cycle, offset and phases."""

    program_id: str
    #: ``static``, ``actuated``, ``delay_based``, ``NEMA``...
    kind: str
    pattern: int
    offset_s: float
    states: tuple[str, ...]
    durations: tuple[float, ...]
    #: Per phase, the longest it may run (-1 or 0: not set).
    max_durations: tuple[float, ...]

    @property
    def cycle_s(self) -> float:
        return sum(self.durations)


class _TraciPhase(Protocol):
    state: str
    duration: float
    maxDur: float  # noqa: N815 - libsumo's name


class _TraciLogic(Protocol):
    programID: str  # noqa: N815 - libsumo's name
    type: int
    phases: Sequence[_TraciPhase]


def pattern_number(program_id: str, program_ids: Sequence[str]) -> int:
    """The pattern a program stands for: its id when that is a number 0–255, else its place
    among the signal's programs, counted from 1."""
    if program_id.isdigit() and int(program_id) <= MAX_PATTERN:
        return int(program_id)
    if program_id not in program_ids:
        raise EventLogError(f"program {program_id!r} is not among the signal's programs {list(program_ids)}")
    return min(program_ids.index(program_id) + 1, MAX_PATTERN)


def offset_s(t: float, durations: Sequence[float], phase_index: int, remaining_s: float) -> float:
    """Where the cycle began, modulo the cycle, from where the program is at ``t`` (the phase and
    the seconds until it ends: SUMO's next switch, which unlike the time spent in it is right at
    the start of a run), rounded to SUMO's milliseconds: ``optimizer.plans``' convention, which
    holds after a program switch or a stretched phase, when the tlLogic's own offset no longer does."""
    cycle = sum(durations)
    if cycle <= 0:
        return 0.0
    elapsed = sum(durations[: phase_index + 1]) - remaining_s
    offset = round((t - elapsed) % cycle, 3)
    return 0.0 if offset >= cycle - 1e-6 else offset


def program_info(
    logic: _TraciLogic, program_ids: Sequence[str], t: float, phase_index: int, remaining_s: float
) -> ProgramInfo:
    """A :class:`ProgramInfo` from a libsumo ``Logic`` (``trafficlight.getAllProgramLogics``)."""
    if not logic.phases:
        raise EventLogError(f"program {logic.programID!r} has no phases")
    durations = tuple(float(p.duration) for p in logic.phases)
    return ProgramInfo(
        program_id=logic.programID,
        kind=PROGRAM_KINDS.get(logic.type, str(logic.type)),
        pattern=pattern_number(logic.programID, program_ids),
        offset_s=offset_s(t, durations, phase_index, remaining_s),
        states=tuple(p.state for p in logic.phases),
        durations=durations,
        max_durations=tuple(float(p.maxDur) for p in logic.phases),
    )


def _all_red(state: str) -> bool:
    return not any(letter in GREEN_STATES or letter in YELLOW_STATES for letter in state)


def split_s(group: PhaseGroup, program: ProgramInfo) -> float:
    """A phase's split: the seconds of the program's phases in which it shows green or yellow,
    plus the all-red phases that directly follow its yellow (or green) in the cycle."""
    indications = [group.indication(state) for state in program.states]
    total = 0.0
    count = len(program.states)
    for i, duration in enumerate(program.durations):
        if indications[i] != "red":
            total += duration
            continue
        if not _all_red(program.states[i]):
            continue
        before = next(
            (j for j in ((i - k) % count for k in range(1, count)) if not _all_red(program.states[j])), None
        )
        if before is not None and indications[before] != "red":
            total += duration
    return total


# -- the log -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalObservation:
    """One signal at one step: SUMO's state string, the running program and where it is in it."""

    state: str
    program: ProgramInfo
    phase_index: int
    #: Seconds the program phase has been in force (``trafficlight.getSpentDuration``): in the last
    #: observation before it ends, how long it ran.
    spent_s: float


@dataclass
class _SignalState:
    """What the log remembers of a signal between observations."""

    config: SignalConfig
    indications: dict[str, tuple[Indication, ...]] = field(default_factory=dict)
    last: SignalObservation | None = None
    shown: tuple[Indication, ...] = ()
    #: Phases (and overlaps) whose red clearance began and has not ended.
    clearing: set[int] = field(default_factory=set)
    clearing_overlaps: set[int] = field(default_factory=set)
    #: Pedestrian phases in clearance, waiting for their vehicle phase to show red.
    ped_clearing: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Channel:
    controller_id: str
    channel: int


class EventLog:
    """The event log of the signals ``tls_ids`` of ``configuration``; :meth:`observe` each step.

    ``step_s`` is the simulation step: it bounds when a phase counts as having run to its
    ``maxDur``. Records carry ``source`` and the signal's ``controller_id``.
    """

    def __init__(
        self,
        configuration: SignalConfiguration,
        tls_ids: Iterable[str],
        *,
        day: date,
        step_s: float = 1.0,
        source: str = "sumo",
    ) -> None:
        from sim.twin import sim_time_to_utc, utc_timestamp  # here: the twin imports this module

        self.day, self.step_s, self.source = day, step_s, source
        self._utc, self._timestamp = sim_time_to_utc, utc_timestamp
        self._recent_ts: dict[float, str] = {}
        self.signals: dict[str, _SignalState] = {}
        for tls_id in tls_ids:
            if tls_id not in configuration.signals:
                raise EventLogError(
                    f"signal {tls_id!r} is not in the signal configuration {configuration.network}"
                )
            self.signals[tls_id] = _SignalState(configuration.signals[tls_id])
        self.channels = {
            d.detector_id: _Channel(s.config.controller_id, d.channel)
            for s in self.signals.values()
            for d in s.config.detectors
        }
        #: The loop ids whose vehicle data :meth:`observe` wants.
        self.loops = tuple(self.channels)
        self.on_loop: dict[str, dict[str, float]] = {loop: {} for loop in self.channels}
        #: Vehicles whose off was logged at the last observation, per loop: (vehicle, entry time).
        self.just_left: dict[str, set[tuple[str, float]]] = {loop: set() for loop in self.channels}

    def observe(
        self,
        t: float,
        signals: Mapping[str, SignalObservation],
        loops: Mapping[str, Sequence[LoopVehicle]] | None = None,
    ) -> list[dict[str, Any]]:
        """The records of what changed since the last observation: the signals showed ``signals``
        from simulated second ``t`` on, and the loops report their vehicles with their own times."""
        events: list[tuple[float, str, int, int]] = []
        for tls_id, observation in signals.items():
            signal = self.signals.get(tls_id)
            if signal is None:
                raise EventLogError(f"signal {tls_id!r} is not one this event log follows")
            events.extend(self._signal_events(signal, t, observation))
        for loop, vehicles in (loops or {}).items():
            events.extend(self._loop_events(loop, vehicles))
        events.sort(key=lambda e: (round(e[0], 1), e[1], e[2], e[3]))
        self._recent_ts = {}
        return [self.record(at, signal_id, code, param) for at, signal_id, code, param in events]

    def record(self, t: float, signal_id: str, code: int, param: int) -> dict[str, Any]:
        """One ``traffic.signal_event.v1`` record at simulated second ``t`` (to 0.1 s)."""
        return {
            "schema_version": 1,
            "ts": self._ts(round(t, 1)),
            "signal_id": signal_id,
            "event_code": code,
            "event_param": param,
            "source": self.source,
        }

    def _ts(self, tenths: float) -> str:
        """The timestamp of a time already rounded to 0.1 s; this observation's are kept, as
        one observation's events share a few tenths."""
        text = self._recent_ts.get(tenths)
        if text is None:
            text = self._recent_ts[tenths] = self._timestamp(self._utc(self.day, tenths))
        return text

    # -- signals ---------------------------------------------------------------------------------

    def _signal_events(
        self, signal: _SignalState, t: float, now: SignalObservation
    ) -> list[tuple[float, str, int, int]]:
        config, last = signal.config, signal.last
        signal.last = now
        if last is not None and last.state == now.state and last.program.program_id == now.program.program_id:
            return []  # the usual step: nothing changed
        codes: list[tuple[int, int]] = []
        if last is None or last.program.program_id != now.program.program_id:
            codes.extend(coordination_codes(config, now.program))
        shown = self._indications(signal, now.state)
        before = signal.shown or ("red",) * len(shown)
        signal.shown = shown
        cause = self._cause(last) if last is not None else GAP_OUT  # no green ends at the start
        began_phase = _phase_transitions(signal, before, shown, cause, codes)
        began_overlap = _overlap_transitions(signal, before, shown, codes)
        _pedestrian_transitions(signal, before, shown, codes)
        if began_phase or began_overlap:
            codes.extend(_closing_codes(signal))
        return [(t, config.controller_id, code, param) for code, param in codes]

    def _indications(self, signal: _SignalState, state: str) -> tuple[Indication, ...]:
        """Every group's indication in ``state`` (phases, overlaps, pedestrian phases), memoised:
        a signal shows few distinct states."""
        shown = signal.indications.get(state)
        if shown is None:
            config = signal.config
            groups = (*config.phases, *config.overlaps, *config.pedestrian_phases)
            shown = signal.indications[state] = tuple(g.indication(state) for g in groups)
        return shown

    def _cause(self, last: SignalObservation) -> int:
        """Why the green that just ended ended: the SUMO phase of the last observation was the one
        that ran out."""
        program = last.program
        if program.kind == "static":
            return FORCE_OFF
        max_dur = (
            program.max_durations[last.phase_index] if last.phase_index < len(program.max_durations) else -1
        )
        ran = last.spent_s  # the last observation before the switch saw the phase's whole run
        return MAX_OUT if max_dur > 0 and ran >= max_dur - self.step_s / 2 else GAP_OUT

    # -- detectors -------------------------------------------------------------------------------

    def _loop_events(self, loop: str, vehicles: Sequence[LoopVehicle]) -> list[tuple[float, str, int, int]]:
        channel = self.channels.get(loop)
        if channel is None:
            raise EventLogError(f"loop {loop!r} is no detector channel of the configuration")
        on, left_before = self.on_loop[loop], self.just_left[loop]
        left_now: set[tuple[str, float]] = set()
        events = []
        for vehicle_id, _length, entry, leave, _type in vehicles:
            if (vehicle_id, entry) in left_before:
                continue
            if vehicle_id not in on:
                events.append((entry, channel.controller_id, DETECTOR_ON, channel.channel))
                on[vehicle_id] = entry
            if leave >= 0:
                events.append((leave, channel.controller_id, DETECTOR_OFF, channel.channel))
                left_now.add((vehicle_id, on.pop(vehicle_id)))
        self.just_left[loop] = left_now
        return events


def coordination_codes(config: SignalConfig, program: ProgramInfo) -> list[tuple[int, int]]:
    """Pattern, cycle length, offset and the splits of phases 1–16, as (code, parameter)."""
    codes = [
        (PATTERN_CHANGE, program.pattern),
        (CYCLE_LENGTH_CHANGE, round(program.cycle_s)),
        (OFFSET_CHANGE, round(program.offset_s)),
    ]
    for group in config.phases:
        if 1 <= group.number <= MAX_SPLIT_PHASE:
            codes.append((SPLIT_1_CHANGE + group.number - 1, round(split_s(group, program))))
    return codes


def _phase_transitions(
    signal: _SignalState,
    before: tuple[Indication, ...],
    shown: tuple[Indication, ...],
    cause: int,
    codes: list[tuple[int, int]],
) -> bool:
    """Add the vehicle phases' interval changes to ``codes``; whether any phase began green."""
    began_green = False
    for k, group in enumerate(signal.config.phases):
        if before[k] == shown[k]:
            continue
        codes.extend(_phase_codes(group.number, before[k], shown[k], cause))
        began_green |= shown[k] == "green"
        if shown[k] == "red":
            signal.clearing.add(group.number)
        elif group.number in signal.clearing:  # its own red clearance ends; it does not go inactive
            codes.append((END_RED_CLEARANCE, group.number))
            signal.clearing.discard(group.number)
    return began_green


def _overlap_transitions(
    signal: _SignalState,
    before: tuple[Indication, ...],
    shown: tuple[Indication, ...],
    codes: list[tuple[int, int]],
) -> bool:
    """Add the overlaps' interval changes to ``codes``; whether any overlap began green."""
    began_green = False
    for k, group in enumerate(signal.config.overlaps, start=len(signal.config.phases)):
        if before[k] == shown[k]:
            continue
        codes.append((_OVERLAP_BEGINS[shown[k]], group.number))
        began_green |= shown[k] == "green"
        if shown[k] == "red":
            signal.clearing_overlaps.add(group.number)
        else:
            signal.clearing_overlaps.discard(group.number)
    return began_green


def _pedestrian_transitions(
    signal: _SignalState,
    before: tuple[Indication, ...],
    shown: tuple[Indication, ...],
    codes: list[tuple[int, int]],
) -> None:
    """Add walk and clearance starts to ``codes``, then the don't walks now due."""
    config = signal.config
    for k, group in enumerate(config.pedestrian_phases, start=len(config.phases) + len(config.overlaps)):
        if before[k] == "green" and shown[k] != "green":
            codes.append((PED_BEGIN_CLEARANCE, group.number))
            signal.ped_clearing.add(group.number)
        elif before[k] != "green" and shown[k] == "green":
            codes.append((PED_BEGIN_WALK, group.number))
            signal.ped_clearing.discard(group.number)
    codes.extend(_dont_walk_codes(signal, shown))


def _phase_codes(number: int, before: Indication, now: Indication, cause: int) -> list[tuple[int, int]]:
    if now == "green":
        return [*([(END_YELLOW, number)] if before == "yellow" else []), (PHASE_BEGIN_GREEN, number)]
    if now == "yellow":
        ending = [(cause, number), (GREEN_TERMINATION, number)] if before == "green" else []
        return [*ending, (BEGIN_YELLOW, number)]
    if before == "yellow":
        return [(END_YELLOW, number), (BEGIN_RED_CLEARANCE, number)]
    return [(cause, number), (GREEN_TERMINATION, number), (BEGIN_RED_CLEARANCE, number)]


def _dont_walk_codes(signal: _SignalState, shown: tuple[Indication, ...]) -> list[tuple[int, int]]:
    """``23`` for each pedestrian phase in clearance whose vehicle phase shows red (or is missing)."""
    partner = {g.number: k for k, g in enumerate(signal.config.phases)}
    done = sorted(n for n in signal.ped_clearing if n not in partner or shown[partner[n]] == "red")
    signal.ped_clearing.difference_update(done)
    return [(PED_BEGIN_DONT_WALK, n) for n in done]


def _closing_codes(signal: _SignalState) -> list[tuple[int, int]]:
    """End every open red clearance (``11``, ``12``) and overlap (``65``): a group began green."""
    codes = [(code, n) for n in sorted(signal.clearing) for code in (END_RED_CLEARANCE, PHASE_INACTIVE)]
    codes += [(OVERLAP_OFF, n) for n in sorted(signal.clearing_overlaps)]
    signal.clearing.clear()
    signal.clearing_overlaps.clear()
    return codes
