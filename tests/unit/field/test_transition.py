"""Planning the transition cycles: the shorter way, the offset reached exactly, greens within their
bounds, yellows and all-reds untouched. The plan is a two-stage 100 s cycle (50 s and 38 s greens,
4 s yellows, 2 s all-reds) running with offset 0, so its boundary at or after 0 s is 0 s and a new
offset ``o`` puts the new plan ``(0 - o) mod 100`` seconds into its cycle there."""

from __future__ import annotations

import dataclasses

import pytest

from field.transition import (
    LENGTHEN_MAX_SHARE,
    SHORTEN_MAX_SHARE,
    UNSET_MIN_GREEN_S,
    Transition,
    TransitionError,
    next_boundary,
    plan_transition,
)
from optimizer.plans.model import Phase, SignalPlan
from optimizer.plans.sumo_programs import cycle_position

STATES = ("GGrr", "yyrr", "rrrr", "rrGG", "rryy", "rrrr")
GREENS = (0, 3)


def plan(durations=(50, 4, 2, 38, 4, 2), offset=0.0, **bounds: tuple[float | None, ...]) -> SignalPlan:
    """The test plan; ``min_s``/``max_s`` give per-phase bounds (None: unset)."""
    mins = bounds.get("min_s", (None,) * len(durations))
    maxes = bounds.get("max_s", (None,) * len(durations))
    phases = tuple(
        Phase(s, d, min_s=lo, max_s=hi) for s, d, lo, hi in zip(STATES, durations, mins, maxes, strict=True)
    )
    return SignalPlan("J", phases, offset_s=offset)


RUNNING = plan()


def in_force_on_its_offset(transition: Transition) -> bool:
    new = transition.plan
    return cycle_position(new, transition.ends_at_s) == (0, new.phases[0].duration_s)


def test_a_plan_already_on_its_offset_needs_no_transition_cycles():
    transition = plan_transition(RUNNING, plan(offset=0), 0.0)
    assert (transition.cycles, transition.direction, transition.error_s) == ((), None, 0.0)
    assert transition.ends_at_s == transition.starts_at_s == 0.0
    # a new cycle whose boundary falls on the running one's: on its offset too
    shorter = plan((40, 4, 2, 28, 4, 2), offset=60)  # 80 s: 300 - 60 is three cycles
    assert plan_transition(RUNNING, shorter, 250.0).cycles == ()


@pytest.mark.parametrize(
    ("offset", "direction", "cycles", "correction"),
    [
        (85, "shorten", 1, -15),  # 15 s into its cycle: one cycle 15 s shorter, not 85 s longer
        (20, "lengthen", 1, 20),  # 80 s into it: one cycle 20 s longer, not 80 s shorter
        (65, "shorten", 3, -35),  # 35 s: three cycles shorter (15 s at most) beat four longer
        (55, "lengthen", 3, 55),  # 45 s: three cycles either way; a tie lengthens
    ],
)
def test_the_shorter_way_is_taken_and_a_tie_lengthens(offset, direction, cycles, correction):
    transition = plan_transition(RUNNING, plan(offset=offset), 0.0)
    assert transition.direction == direction
    assert len(transition.cycles) == cycles
    assert transition.correction_s == correction
    assert in_force_on_its_offset(transition)


@pytest.mark.parametrize("offset", [o + 0.0 for o in range(1, 100, 3)])
def test_every_offset_is_reached_exactly_with_clearances_untouched_and_bounded_cycles(offset):
    new = plan(offset=offset)
    transition = plan_transition(RUNNING, new, 0.0)
    assert in_force_on_its_offset(transition)
    assert transition.error_s == (0 - offset) % 100
    for cycle in transition.cycles:
        assert all(float(d).is_integer() for d in cycle)  # whole steps: every switch on a step
        for index, (phase, duration) in enumerate(zip(new.phases, cycle, strict=True)):
            if index in GREENS:
                assert duration >= UNSET_MIN_GREEN_S
            else:
                assert duration == phase.duration_s  # yellow and all-red never change
        change = sum(cycle) - 100
        assert -SHORTEN_MAX_SHARE * 100 <= change <= LENGTHEN_MAX_SHARE * 100
        assert (change < 0) == (transition.direction == "shorten")


def test_the_correction_is_spread_over_the_greens_in_proportion_and_evenly_over_the_cycles():
    transition = plan_transition(RUNNING, plan(offset=85), 0.0)
    # 15 s from 50 and 38 s greens: 8.52 and 6.48, whole seconds by the larger remainder
    assert transition.cycles == ((41, 4, 2, 32, 4, 2),)
    # 35 s over three cycles: 12, 12, 11 s
    assert [sum(c) for c in plan_transition(RUNNING, plan(offset=65), 0.0).cycles] == [88, 88, 89]


def test_a_green_never_goes_below_its_minimum_and_an_unset_one_keeps_the_safety_minimum():
    bounded = plan(offset=85, min_s=(45, None, None, 36, None, None))
    transition = plan_transition(RUNNING, bounded, 0.0)
    # 7 s of room a cycle (5 + 2): 15 s shorter takes three cycles, still fewer than 85 s longer
    assert (transition.direction, len(transition.cycles)) == ("shorten", 3)
    assert all(c[0] >= 45 and c[3] >= 36 for c in transition.cycles)
    assert in_force_on_its_offset(transition)
    # a bound that binds: the first green gives 5 s, the second the other 10
    one_bound = plan_transition(RUNNING, plan(offset=85, min_s=(45, None, None, None, None, None)), 0.0)
    assert one_bound.cycles == ((45, 4, 2, 28, 4, 2),)
    # min_s equal to the duration is how the model records "unset": the green keeps 7 s
    short_green = plan((10, 4, 2, 78, 4, 2), offset=85)
    cycles = plan_transition(plan((10, 4, 2, 78, 4, 2)), short_green, 0.0).cycles
    assert cycles and min(c[0] for c in cycles) >= UNSET_MIN_GREEN_S
    assert short_green.phases[0].min_s == 10  # the model's "unset"
    # less than a step of room: no green may shorten, the longer way however long
    fixed = plan(offset=95, min_s=(49.5, None, None, 37.5, None, None))
    assert plan_transition(RUNNING, fixed, 0.0).direction == "lengthen"


def test_a_maximum_above_the_duration_bounds_the_lengthening_and_one_equal_to_it_does_not():
    capped = plan(offset=30, max_s=(52, None, None, 40, None, None))
    transition = plan_transition(RUNNING, capped, 0.0)
    # 4 s of room a cycle: 70 s shorter (five cycles) is now the shorter way, not 30 s longer (eight)
    assert (transition.direction, len(transition.cycles)) == ("shorten", 5)
    assert plan_transition(RUNNING, plan(offset=30), 0.0).direction == "lengthen"  # two cycles
    longer = plan_transition(RUNNING, plan(offset=10, max_s=(52, None, None, 40, None, None)), 0.0)
    assert longer.direction == "lengthen" and all(c[0] <= 52 and c[3] <= 40 for c in longer.cycles)
    assert in_force_on_its_offset(longer)
    assert plan_transition(RUNNING, plan(offset=20), 0.0).cycles == ((61, 4, 2, 47, 4, 2),)


def test_a_new_cycle_length_starts_at_the_running_cycles_boundary():
    running = plan((60, 4, 2, 48, 4, 2), offset=10)  # 120 s: boundaries at 10, 130, 250...
    new = plan((40, 4, 2, 48, 4, 2), offset=20)  # 100 s
    transition = plan_transition(running, new, 50.0)
    assert transition.starts_at_s == 130.0
    assert transition.error_s == 10.0  # (130 - 20) mod 100
    assert transition.cycles == ((35, 4, 2, 43, 4, 2),)
    assert transition.ends_at_s == 220.0 and in_force_on_its_offset(transition)


def test_a_fractional_offset_is_reached_exactly_with_the_remainder_on_one_green():
    transition = plan_transition(RUNNING, plan(offset=87.5), 0.0)  # 12.5 s: one cycle shorter
    assert transition.correction_s == -12.5
    assert in_force_on_its_offset(transition)
    (cycle,) = transition.cycles
    assert sorted(d for d in cycle if not float(d).is_integer()) == [pytest.approx(42.5)]


def test_a_plan_without_a_green_to_stretch_cannot_transition():
    blinking = SignalPlan("J", (Phase("yy", 40), Phase("rr", 60)), offset_s=30)
    with pytest.raises(TransitionError, match="no green that may be shortened or lengthened"):
        plan_transition(SignalPlan("J", (Phase("yy", 40), Phase("rr", 60))), blinking, 0.0)
    assert plan_transition(blinking, dataclasses.replace(blinking, program_id="x"), 0.0).cycles == ()


def test_next_boundary_is_the_running_cycles_first_start_at_or_after():
    running = plan(offset=10)
    assert [next_boundary(running, t) for t in (5, 10, 10.5, 109.999, 110)] == [10, 10, 110, 110, 110]
