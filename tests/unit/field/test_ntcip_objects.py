"""A signal plan as an NTCIP 1202 pattern and back: the configured phases cut from a program, the
pattern's values and SETs, the exact round trip, and every plan a pattern cannot carry refused
with the reason. The signal is the corridor's J4 as its network has it: four greens, each with a
3 s yellow and a 2 s all-red, 120 s cycle, offset 118."""

from __future__ import annotations

import dataclasses

import pytest

from field import ntcip_objects as ntcip
from field.adapter import FieldError
from field.ntcip_objects import Pattern, configuration, pattern, signal_plan
from optimizer.plans.model import Phase, SignalPlan

GREENS = ("GrGrrrrr", "rGrGrrrr", "rrrrGrGr", "rrrrrGrG")
YELLOWS = ("yryrrrrr", "ryryrrrr", "rrrryryr", "rrrrryry")
ALL_RED = "rrrrrrrr"


def j4(greens=(44, 16, 28, 12), offset=118.0, **changes) -> SignalPlan:
    phases = []
    for green, yellow, duration in zip(GREENS, YELLOWS, greens, strict=True):
        phases += [Phase(green, duration), Phase(yellow, 3), Phase(ALL_RED, 2)]
    return dataclasses.replace(SignalPlan("J4", tuple(phases), offset_s=offset), **changes)


CONFIG = configuration(j4())


def test_each_green_with_its_yellow_and_all_red_is_one_configured_phase():
    assert CONFIG.numbers == (1, 2, 3, 4)
    assert [p.green.state for p in CONFIG.phases] == list(GREENS)
    assert [(p.yellow.state, p.red.state) for p in CONFIG.phases] == [(y, ALL_RED) for y in YELLOWS]
    assert [(p.yellow_tenths, p.red_tenths) for p in CONFIG.phases] == [(30, 20)] * 4
    assert CONFIG.sequence_data == bytes([1, 2, 3, 4])


def test_a_split_is_green_plus_clearance_and_the_cycle_and_offset_are_the_patterns():
    assert pattern(j4(), CONFIG) == Pattern(cycle_s=120, offset_s=118, splits_s=(49, 21, 33, 17))


@pytest.mark.parametrize(
    "plan",
    [
        j4(),
        j4(greens=(40, 20, 28, 12), offset=10),
        j4(greens=(60, 30, 40, 30), offset=0),  # a longer cycle: 180 s
        j4(greens=(5, 5, 5, 5), offset=39),  # a 40 s cycle
    ],
)
def test_a_plan_comes_back_from_its_pattern_exactly(plan):
    assert signal_plan(pattern(plan, CONFIG), CONFIG) == plan


def test_an_offset_outside_the_cycle_goes_as_the_same_point_in_it():
    # SUMO runs offset -10 and 110 alike; NTCIP's offset lies within the cycle
    assert pattern(j4(offset=-10), CONFIG).offset_s == 110
    assert signal_plan(pattern(j4(offset=250), CONFIG), CONFIG) == j4(offset=10)


def test_a_clearance_in_tenths_of_a_second_is_configured_and_kept():
    plan = SignalPlan("J", (Phase("Gr", 40.5), Phase("yr", 3.5), Phase("rG", 40), Phase("ry", 4)))
    config = configuration(plan)
    assert [(p.yellow_tenths, p.red_tenths) for p in config.phases] == [(35, 0), (40, 0)]
    assert pattern(plan, config) == Pattern(88, 0, (44, 44))
    assert signal_plan(pattern(plan, config), config) == plan


def test_the_patterns_sets_fill_its_row_and_split_row_and_make_the_first_phase_coordinated():
    writes = dict(ntcip.pattern_writes(CONFIG, pattern(j4(), CONFIG), 2))
    named = {ntcip.describe(oid): value for oid, value in writes.items()}
    assert {k: v for k, v in named.items() if k.startswith("pattern")} == {
        "patternCycleTime.2": 120,
        "patternOffsetTime.2": 118,
        "patternSplitNumber.2": 2,
        "patternSequenceNumber.2": 1,
    }
    assert [named[f"splitTime.2.{p}"] for p in (1, 2, 3, 4)] == [49, 21, 33, 17]
    assert [named[f"splitCoordPhase.2.{p}"] for p in (1, 2, 3, 4)] == [1, 0, 0, 0]
    assert {named[f"splitMode.2.{p}"] for p in (1, 2, 3, 4)} == {ntcip.SPLIT_MODE_MAX_RECALL}
    assert ntcip.PATTERN_CYCLE_TIME + (2,) == (1, 3, 6, 1, 4, 1, 1206, 4, 2, 1, 4, 7, 1, 2, 2)
    assert ntcip.describe(ntcip.COORD_PATTERN_STATUS) == "coordPatternStatus.0"


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        (j4(greens=(44.5, 16, 27.5, 12)), "the split of phase 1 is 49.5 s; NTCIP carries whole seconds"),
        (j4(offset=10.25), "the offset is 10.25 s; NTCIP carries whole seconds"),
        (j4(cycle_s=130.0), "the cycle is 130 s but the splits add up to 120 s"),
        (j4(greens=(100, 100, 40, 20)), "the cycle is 280 s; NTCIP carries 0 to 255 s"),
        (j4(kind="actuated"), "a actuated plan needs actuated timing"),
    ],
)
def test_what_a_pattern_cannot_carry_is_refused_with_the_reason(plan, reason):
    with pytest.raises(FieldError, match=f"^signal J4: {reason}"):
        pattern(plan, CONFIG)


def test_a_phase_sequence_other_than_the_configured_one_is_refused():
    own = j4()
    swapped = dataclasses.replace(own, phases=own.phases[3:6] + own.phases[:3] + own.phases[6:])
    with pytest.raises(FieldError, match="is not the controller's configured .*a pattern changes splits"):
        pattern(swapped, CONFIG)
    without_phase_4 = dataclasses.replace(own, phases=own.phases[:9], cycle_s=None)
    with pytest.raises(FieldError, match="phase sequence"):
        pattern(without_phase_4, CONFIG)


def test_a_changed_clearance_is_refused():
    own = j4()
    longer_yellow = dataclasses.replace(own, phases=(own.phases[0], Phase(YELLOWS[0], 4), *own.phases[2:]))
    with pytest.raises(FieldError, match="phase 1's clearance yryrrrrr lasts 4 s, the controller's 3 s"):
        pattern(dataclasses.replace(longer_yellow, cycle_s=None, phases=longer_yellow.phases), CONFIG)


def test_a_green_with_its_own_minimum_or_maximum_is_refused():
    own = j4()
    bounded = dataclasses.replace(own, phases=(Phase(GREENS[0], 44, min_s=10, max_s=60), *own.phases[1:]))
    with pytest.raises(FieldError, match="has min 10 s / max 60 s; a pattern carries fixed splits only"):
        pattern(bounded, CONFIG)


@pytest.mark.parametrize(
    ("phases", "reason"),
    [
        ((Phase("rr", 2), Phase("GG", 30)), r"phase 0 \(rr\) comes before any green"),
        ((Phase("Gr", 30), Phase("yr", 3), Phase("yr", 3), Phase("rG", 9)), "a yellow interval after yellow"),
        ((Phase("Gr", 30), Phase("rr", 2), Phase("yr", 3), Phase("rG", 9)), "a yellow interval after red"),
        ((Phase("Gr", 30), Phase("yr", 3.05), Phase("rG", 9)), "the yellow change of phase 1 is 3.05 s"),
    ],
)
def test_a_program_no_controller_can_be_configured_for_is_refused(phases, reason):
    with pytest.raises(FieldError, match=reason):
        configuration(SignalPlan("X", phases))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (Pattern(120, 0, (49, 21, 33)), "3 splits for 4 configured phases"),
        (Pattern(120, 0, (49, 21, 33, 16)), r"splits \[49, 21, 33, 16\] do not fill a 120 s cycle"),
        (Pattern(120, 120, (49, 21, 33, 17)), "offset 120 s lies outside the 120 s cycle"),
        (Pattern(120, 0, (5, 48, 50, 17)), "the 5 s split of phase 1 leaves no green after its 5 s"),
    ],
)
def test_a_pattern_that_does_not_fit_the_configuration_gives_no_plan(values, reason):
    with pytest.raises(FieldError, match=f"^signal J4: {reason}"):
        signal_plan(values, CONFIG)


def test_a_controller_reporting_another_sequence_or_clearance_is_not_read_as_the_plan():
    clearances = [30, 20] * 4
    ntcip.check_reported(CONFIG, bytes([1, 2, 3, 4]), clearances)  # as configured: no error
    with pytest.raises(FieldError, match=r"runs phases \[2, 1, 3, 4\] in sequence 1, the configuration"):
        ntcip.check_reported(CONFIG, bytes([2, 1, 3, 4]), clearances)
    with pytest.raises(FieldError, match="yellow/red clearances"):
        ntcip.check_reported(CONFIG, bytes([1, 2, 3, 4]), [40, 20] + clearances[2:])
