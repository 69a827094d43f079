"""The NTCIP 1202 objects the ``ntcip`` adapter uses, and a signal plan as a controller's pattern.

A controller's phases, their order and their clearance intervals are its configuration, fixed in
the cabinet; what a central system changes is a coordination *pattern*: a cycle, an offset and
a split per phase (NTCIP 1202 §1.3: the split is the share of the cycle a phase gets, its yellow
change and red clearance included), selected by number. So a plan goes to a controller as a
:class:`Pattern` over the signal's :class:`SignalConfiguration`: each SUMO green phase, with the
yellow and all-red phases that follow it, is one controller phase whose split is their sum. A plan
that a pattern cannot carry exactly is refused with a :class:`~field.adapter.FieldError` before
anything is sent, so a plan read back from a controller is the plan that was sent.

Object identifiers and ranges are those of the NTCIP 1202 v01 ASC MIB (``1202ASC.mib``; read in
its pysmi compilation, Metrolla-Inc/ntcipy ``py_mibs/ASC_MIB1.py``): patternCycleTime,
patternOffsetTime and splitTime are whole seconds in 0..255 (§2.5.7, §2.5.9), phaseYellowChange
and phaseRedClear tenths of a second in 0..255 (§2.2.2; MMITSS's controller interface,
mmitss/mmitss-az ``src/mrp/traffic-controller-interface``, reads them as value × 0.1 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from field.adapter import FieldError
from optimizer.plans.model import DEFAULT_PROGRAM_ID, Phase, SignalPlan

Oid = tuple[int, ...]

#: asc: the actuated signal controller node, ``{nema devices 2 1}``.
ASC: Oid = (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1)

# phaseTable (asc 1 2), indexed by phaseNumber.
PHASE_YELLOW_CHANGE: Oid = ASC + (1, 2, 1, 8)  # tenths of a second
PHASE_RED_CLEAR: Oid = ASC + (1, 2, 1, 9)  # tenths of a second

# patternTable (asc 4 7), indexed by patternNumber (1..253).
PATTERN_CYCLE_TIME: Oid = ASC + (4, 7, 1, 2)  # s
PATTERN_OFFSET_TIME: Oid = ASC + (4, 7, 1, 3)  # s
PATTERN_SPLIT_NUMBER: Oid = ASC + (4, 7, 1, 4)
PATTERN_SEQUENCE_NUMBER: Oid = ASC + (4, 7, 1, 5)

# splitTable (asc 4 9), indexed by splitNumber and splitPhase.
SPLIT_TIME: Oid = ASC + (4, 9, 1, 3)  # s, clearance included
SPLIT_MODE: Oid = ASC + (4, 9, 1, 4)
SPLIT_COORD_PHASE: Oid = ASC + (4, 9, 1, 5)  # 1: the coordinated phase

# Coordination scalars (asc 4 n), instance 0.
COORD_PATTERN_STATUS: Oid = ASC + (4, 10, 0)  # the pattern running: 1..253, 254 Free, 255 Flash
LOCAL_FREE_STATUS: Oid = ASC + (4, 11, 0)  # why the controller does not run the called pattern
SYSTEM_PATTERN_CONTROL: Oid = ASC + (4, 14, 0)  # the central system's pattern call

# sequenceTable (asc 7 3), indexed by sequenceNumber and sequenceRingNumber: the phase numbers
# of one ring in the order they run, one octet each.
SEQUENCE_DATA: Oid = ASC + (7, 3, 1, 3)

#: Each object's name in the MIB, for messages (``describe``).
NAMES: dict[Oid, str] = {
    PHASE_YELLOW_CHANGE: "phaseYellowChange",
    PHASE_RED_CLEAR: "phaseRedClear",
    PATTERN_CYCLE_TIME: "patternCycleTime",
    PATTERN_OFFSET_TIME: "patternOffsetTime",
    PATTERN_SPLIT_NUMBER: "patternSplitNumber",
    PATTERN_SEQUENCE_NUMBER: "patternSequenceNumber",
    SPLIT_TIME: "splitTime",
    SPLIT_MODE: "splitMode",
    SPLIT_COORD_PHASE: "splitCoordPhase",
    COORD_PATTERN_STATUS[:-1]: "coordPatternStatus",
    LOCAL_FREE_STATUS[:-1]: "localFreeStatus",
    SYSTEM_PATTERN_CONTROL[:-1]: "systemPatternControl",
    SEQUENCE_DATA: "sequenceData",
}

#: The largest patternCycleTime, patternOffsetTime and splitTime (INTEGER (0..255), seconds).
MAX_SECONDS = 255
#: The largest phaseYellowChange and phaseRedClear (INTEGER (0..255), tenths).
MAX_TENTHS = 255
#: Pattern numbers a controller runs (coordPatternStatus 254 is Free, 255 Flash).
PATTERNS = range(1, 254)
FREE = 254
#: splitMode maximumVehicleRecall: every phase is called and timed to its full split, which is
#: how a controller runs a fixed-time pattern.
SPLIT_MODE_MAX_RECALL = 4
#: localFreeStatus values (§2.5.11) the adapter and the simulated controller use.
LOCAL_FREE = {
    1: "other",
    2: "notFree",
    3: "commandFree",
    4: "transitionFree",
    5: "inputFree",
    6: "coordFree",
    7: "badPlan",
    8: "badCycleTime",
    9: "splitOverrun",
    10: "invalidOffset",
    11: "failed",
}
NOT_FREE = 2
BAD_PLAN = 7
FAILED = 11
#: localFreeStatus values saying the called pattern cannot run: badPlan to failed.
CANNOT_RUN = frozenset(range(BAD_PLAN, FAILED + 1))
#: The ring every phase of a configuration runs in: SUMO programs are one sequence of phases.
RING = 1
_GREEN = frozenset("Gg")
_YELLOW = frozenset("yY")
#: Seconds below which two times count as equal.
_EPS = 1e-6


def describe(oid: Oid) -> str:
    """``oid`` as NTCIP names it, with its index: ``patternCycleTime.2``, ``coordPatternStatus.0``."""
    for length in range(len(oid), 0, -1):
        if oid[:length] in NAMES:
            return ".".join([NAMES[oid[:length]], *map(str, oid[length:])])
    return ".".join(map(str, oid))


@dataclass(frozen=True)
class ControllerPhase:
    """One configured controller phase: its number and the SUMO phases it shows, a green and the
    yellow change and red clearance after it (None where the program has none). The clearance
    phases' durations are the controller's phaseYellowChange and phaseRedClear."""

    number: int
    green: Phase
    yellow: Phase | None = None
    red: Phase | None = None

    @property
    def clearance_s(self) -> float:
        return sum(p.duration_s for p in (self.yellow, self.red) if p is not None)

    @property
    def yellow_tenths(self) -> int:
        return 0 if self.yellow is None else round(self.yellow.duration_s * 10)

    @property
    def red_tenths(self) -> int:
        return 0 if self.red is None else round(self.red.duration_s * 10)


@dataclass(frozen=True)
class SignalConfiguration:
    """What a controller is configured to run at ``tls_id``: its phases in sequence (one ring),
    with their states. Central system and controller hold the same configuration, as a city's
    signal database and its cabinets do."""

    tls_id: str
    phases: tuple[ControllerPhase, ...]
    sequence_number: int = 1

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(p.number for p in self.phases)

    @property
    def sequence_data(self) -> bytes:
        """The sequenceData of the ring: the phase numbers in the order they run."""
        return bytes(self.numbers)


@dataclass(frozen=True)
class Pattern:
    """A coordination pattern's values: cycle and offset (s), and each configured phase's split
    (s), in the configuration's phase order."""

    cycle_s: int
    offset_s: int
    splits_s: tuple[int, ...]


def _groups(plan: SignalPlan) -> list[list[Phase]]:
    """The plan's phases cut into controller phases: a green (some green, no yellow), then at most
    one yellow (a phase with yellow) and one all-red (neither green nor yellow), in that order."""
    groups: list[list[Phase]] = []
    for index, phase in enumerate(plan.phases):
        letters = set(phase.state)
        if letters & _GREEN and not letters & _YELLOW:
            groups.append([phase])
            continue
        kind = "yellow" if letters & _YELLOW else "red"
        if not groups:
            raise FieldError(
                f"signal {plan.tls_id}: phase {index} ({phase.state}) comes before any green; a "
                "controller's cycle starts with its first phase's green"
            )
        group = groups[-1]
        kinds = ["yellow" if set(p.state) & _YELLOW else "red" for p in group[1:]]
        if [*kinds, kind] not in (["yellow"], ["red"], ["yellow", "red"]):
            raise FieldError(
                f"signal {plan.tls_id}: phase {index} ({phase.state}) is a {kind} interval after "
                f"{' and '.join(kinds)}; an NTCIP phase has one yellow change, then one red clearance"
            )
        group.append(phase)
    return groups


def _tenths(seconds: float, what: str) -> int:
    tenths = round(seconds * 10)
    if abs(seconds * 10 - tenths) > _EPS or not 0 <= tenths <= MAX_TENTHS:
        raise FieldError(f"{what} is {seconds:g} s; NTCIP carries 0 to 25.5 s in tenths of a second")
    return tenths


def configuration(program: SignalPlan, sequence_number: int = 1) -> SignalConfiguration:
    """The configuration of a controller running ``program`` (e.g. the signal's program in the
    network): its phases numbered 1, 2, … in program order."""
    phases = []
    for number, group in enumerate(_groups(program), start=1):
        green, clearance = group[0], group[1:]
        yellow = next((p for p in clearance if set(p.state) & _YELLOW), None)
        red = next((p for p in clearance if not set(p.state) & _YELLOW), None)
        for name, phase in (("yellow change", yellow), ("red clearance", red)):
            if phase is not None:
                _tenths(phase.duration_s, f"signal {program.tls_id}: the {name} of phase {number}")
        phases.append(ControllerPhase(number, _fixed(green), yellow and _fixed(yellow), red and _fixed(red)))
    return SignalConfiguration(program.tls_id, tuple(phases), sequence_number)


def _fixed(phase: Phase, duration_s: float | None = None) -> Phase:
    """``phase`` as a fixed-time phase (no bounds of its own), lasting ``duration_s`` if given."""
    return Phase(phase.state, phase.duration_s if duration_s is None else duration_s, name=phase.name)


def _whole(seconds: float, what: str) -> int:
    whole = round(seconds)
    if abs(seconds - whole) > _EPS:
        raise FieldError(f"{what} is {seconds:g} s; NTCIP carries whole seconds")
    if not 0 <= whole <= MAX_SECONDS:
        raise FieldError(f"{what} is {seconds:g} s; NTCIP carries 0 to {MAX_SECONDS} s")
    return whole


def pattern(plan: SignalPlan, config: SignalConfiguration) -> Pattern:
    """``plan`` as pattern values for the controller configured as ``config``.

    :class:`FieldError` naming what a pattern cannot carry: an actuated plan, a phase sequence or
    clearance other than the configured one, a green with its own minimum or maximum (a
    controller's green bounds are its phase table's, not a pattern's), whole seconds that are not,
    a cycle other than the sum of the splits, values beyond 255 s.
    """
    tls = plan.tls_id
    if plan.kind != "static":
        raise FieldError(f"signal {tls}: a {plan.kind} plan needs actuated timing a pattern does not carry")
    groups = _groups(plan)
    shape = [tuple(p.state for p in group) for group in groups]
    configured = [tuple(p.state for p in (c.green, c.yellow, c.red) if p is not None) for c in config.phases]
    if shape != configured:
        raise FieldError(
            f"signal {tls}: the plan's phase sequence {_sequence(shape)} is not the controller's "
            f"configured {_sequence(configured)}; a pattern changes splits, not the sequence"
        )
    splits = []
    for group, phase in zip(groups, config.phases, strict=True):
        for planned, setting in zip(
            group[1:], (p for p in (phase.yellow, phase.red) if p is not None), strict=True
        ):
            if abs(planned.duration_s - setting.duration_s) > _EPS:
                raise FieldError(
                    f"signal {tls}: phase {phase.number}'s clearance {planned.state} lasts "
                    f"{planned.duration_s:g} s, the controller's {setting.duration_s:g} s; a pattern "
                    "cannot change clearance intervals"
                )
        for planned in group:
            if (
                abs(planned.min_s - planned.duration_s) > _EPS
                or abs(planned.max_s - planned.duration_s) > _EPS
            ):
                raise FieldError(
                    f"signal {tls}: phase {planned.state} has min {planned.min_s:g} s / max "
                    f"{planned.max_s:g} s; a pattern carries fixed splits only"
                )
        split = sum(p.duration_s for p in group)
        splits.append(_whole(split, f"signal {tls}: the split of phase {phase.number}"))
    cycle = _whole(plan.cycle_s, f"signal {tls}: the cycle")
    if cycle != sum(splits):
        raise FieldError(
            f"signal {tls}: the cycle is {cycle} s but the splits add up to {sum(splits)} s; a "
            "controller runs the splits within the pattern's cycle"
        )
    offset = _whole(plan.offset_s % cycle, f"signal {tls}: the offset")
    return Pattern(cycle, offset, tuple(splits))


def _sequence(shape: Sequence[tuple[str, ...]]) -> str:
    return " | ".join(" ".join(group) for group in shape)


def signal_plan(
    values: Pattern, config: SignalConfiguration, program_id: str = DEFAULT_PROGRAM_ID
) -> SignalPlan:
    """The plan a controller configured as ``config`` runs under the pattern ``values``.

    :class:`FieldError` when the pattern does not fit the configuration (a split too short for its
    clearance, splits that do not fill the cycle, an offset beyond it)."""
    tls = config.tls_id
    if len(values.splits_s) != len(config.phases):
        raise FieldError(
            f"signal {tls}: {len(values.splits_s)} splits for {len(config.phases)} configured phases"
        )
    if values.cycle_s <= 0 or sum(values.splits_s) != values.cycle_s:
        raise FieldError(
            f"signal {tls}: splits {list(values.splits_s)} do not fill a {values.cycle_s} s cycle"
        )
    if not 0 <= values.offset_s < values.cycle_s:
        raise FieldError(
            f"signal {tls}: offset {values.offset_s} s lies outside the {values.cycle_s} s cycle"
        )
    phases: list[Phase] = []
    for split, phase in zip(values.splits_s, config.phases, strict=True):
        green_s = split - phase.clearance_s
        if green_s <= _EPS:
            raise FieldError(
                f"signal {tls}: the {split} s split of phase {phase.number} leaves no green after its "
                f"{phase.clearance_s:g} s clearance"
            )
        phases.append(_fixed(phase.green, green_s))
        phases.extend(p for p in (phase.yellow, phase.red) if p is not None)
    return SignalPlan(
        tls_id=tls,
        phases=tuple(phases),
        offset_s=float(values.offset_s),
        cycle_s=float(values.cycle_s),
        program_id=program_id,
    )


def pattern_writes(config: SignalConfiguration, values: Pattern, number: int) -> list[tuple[Oid, int]]:
    """The SETs that put ``values`` into pattern ``number``, with split row ``number``: the
    pattern's cycle, offset, split and sequence numbers, and per phase its split time, a max
    recall (fixed time), and the first phase as the coordinated one (its green starts the cycle,
    which is where SUMO's offset counts from)."""
    writes = [
        (PATTERN_CYCLE_TIME + (number,), values.cycle_s),
        (PATTERN_OFFSET_TIME + (number,), values.offset_s),
        (PATTERN_SPLIT_NUMBER + (number,), number),
        (PATTERN_SEQUENCE_NUMBER + (number,), config.sequence_number),
    ]
    for index, (phase, split) in enumerate(zip(config.phases, values.splits_s, strict=True)):
        row = (number, phase.number)
        writes += [
            (SPLIT_TIME + row, split),
            (SPLIT_MODE + row, SPLIT_MODE_MAX_RECALL),
            (SPLIT_COORD_PHASE + row, 1 if index == 0 else 0),
        ]
    return writes


def pattern_row(number: int) -> list[Oid]:
    """The objects of pattern ``number``: cycle, offset, split number, sequence number."""
    return [
        column + (number,)
        for column in (PATTERN_CYCLE_TIME, PATTERN_OFFSET_TIME, PATTERN_SPLIT_NUMBER, PATTERN_SEQUENCE_NUMBER)
    ]


def split_times(config: SignalConfiguration, split_number: int) -> list[Oid]:
    """The splitTime of each configured phase in split row ``split_number``."""
    return [SPLIT_TIME + (split_number, p.number) for p in config.phases]


def clearances(config: SignalConfiguration) -> list[Oid]:
    """phaseYellowChange and phaseRedClear of each configured phase, in that order."""
    return [column + (p.number,) for p in config.phases for column in (PHASE_YELLOW_CHANGE, PHASE_RED_CLEAR)]


def check_reported(config: SignalConfiguration, sequence: bytes, clearance_tenths: Iterable[int]) -> None:
    """:class:`FieldError` unless the controller reports the configured phase sequence and
    clearances (``clearance_tenths`` in :func:`clearances` order): a central system whose
    configuration of the signal is out of date must not read its timing as a plan."""
    tls = config.tls_id
    if bytes(sequence) != config.sequence_data:
        raise FieldError(
            f"signal {tls}: the controller runs phases {list(bytes(sequence))} in sequence "
            f"{config.sequence_number}, the configuration {list(config.numbers)}"
        )
    expected = [t for p in config.phases for t in (p.yellow_tenths, p.red_tenths)]
    reported = list(clearance_tenths)
    if reported != expected:
        raise FieldError(
            f"signal {tls}: the controller's yellow/red clearances (tenths of a second) are "
            f"{reported}, the configuration's {expected}"
        )
