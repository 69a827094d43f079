"""How a signal moves from the timing it runs to a new one without an abrupt jump.

The new timing takes over at the running program's next cycle boundary. Started there, its cycle
would begin ``error_s`` seconds later than its offset says (``error_s`` is how far into its cycle
the new plan already is at the boundary, by :func:`~optimizer.plans.sumo_programs.cycle_position`).
The signal catches up as a controller does in a "smooth" transition: it runs a few *transition
cycles* of the new plan with the greens shortened (together ``error_s``) or lengthened (together
``cycle - error_s``), whichever takes fewer cycles (a tie lengthens: longer greens never cut a
movement short). After them the new plan runs exactly as its offset says.

The rules a transition keeps:

- only green phases change (:func:`optimizer.methods.webster.is_green_phase`: some green, no
  yellow); yellow, mixed and all-red phases keep their durations, so no clearance is ever cut;
- a green is never shorter than its ``min_s`` where the plan sets one below the duration. The
  plan model records an unset minimum as the duration, and every fixed-time plan we make or read
  carries exactly that; read literally no such green could shorten and the shorter way would never
  be taken, so a ``min_s`` equal to the duration is read as unset and the green keeps at least
  :data:`UNSET_MIN_GREEN_S` (the safety rules' minimum green and pedestrian walk, the larger);
- a green is never longer than its ``max_s`` where the plan sets one above the duration (an
  actuated maximum). A ``max_s`` equal to the duration is the model's record of "none" and does
  not bound a transition, as controllers leave maximum greens aside in coordination;
- each transition cycle changes by at most :data:`SHORTEN_MAX_SHARE` / :data:`LENGTHEN_MAX_SHARE`
  of the new cycle, the correction is spread evenly over the cycles and, within a cycle, over the
  greens in proportion to their durations;
- every change is a whole number of ``resolution_s`` (the simulation step), so a phase switches
  on a step and its length is what the plan says; a correction that is not (a fractional offset)
  leaves its remainder to one green of the last transition cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from core.errors import CitybrainError
from optimizer.methods.webster import is_green_phase
from optimizer.plans.model import SignalPlan
from optimizer.plans.safety import DEFAULT_MIN_GREEN_S, DEFAULT_PEDESTRIAN_MIN_S

#: The most a transition cycle may be shortened, and lengthened, as a share of the new cycle.
#: Field controllers' smooth offset transitions bound each cycle's change, typically to about
#: 15-20 % shorter and 20-25 % longer; we take the gentle end of both ranges (not a particular
#: standard's figure: a controller's own settings govern in the field).
SHORTEN_MAX_SHARE = 0.15
LENGTHEN_MAX_SHARE = 0.20
#: The least a green whose ``min_s`` is unset keeps in a transition: long enough for the safety
#: rules whether it serves vehicles (minimum green) or a crossing (minimum walk).
UNSET_MIN_GREEN_S = max(DEFAULT_MIN_GREEN_S, DEFAULT_PEDESTRIAN_MIN_S)
#: Seconds below which two times count as equal (SUMO itself works in milliseconds).
_EPS = 1e-6

Direction = Literal["shorten", "lengthen"]


class TransitionError(CitybrainError):
    """A new timing the signal cannot move to smoothly (no green it may stretch or cut)."""


@dataclass(frozen=True)
class Transition:
    """The transition from a running timing to ``plan``.

    ``starts_at_s`` is the running program's cycle boundary (simulation seconds) where the first
    transition cycle begins; ``error_s`` how far into its cycle ``plan`` already is there;
    ``cycles`` the phase durations of each transition cycle, one per phase of ``plan`` (empty
    when the plan starts on its offset); ``direction`` None when there are none.
    """

    plan: SignalPlan
    starts_at_s: float
    error_s: float
    direction: Direction | None
    cycles: tuple[tuple[float, ...], ...]

    @property
    def correction_s(self) -> float:
        """Seconds the transition cycles add to (positive) or take from the plan's cycles in all."""
        return sum(sum(cycle) for cycle in self.cycles) - len(self.cycles) * self.plan.phase_sum_s

    @property
    def ends_at_s(self) -> float:
        """When the plan takes over at its offset: the start of its first regular cycle."""
        return self.starts_at_s + sum(sum(cycle) for cycle in self.cycles)


def next_boundary(running: SignalPlan, after_s: float) -> float:
    """The first start of ``running``'s cycle at or after ``after_s`` (rounded to milliseconds)."""
    cycle = running.phase_sum_s
    wait = (running.offset_s - after_s) % cycle
    return round(after_s + (0.0 if wait >= cycle - _EPS else wait), 3)


def plan_transition(
    running: SignalPlan,
    new: SignalPlan,
    after_s: float,
    *,
    resolution_s: float = 1.0,
    shorten_max_share: float = SHORTEN_MAX_SHARE,
    lengthen_max_share: float = LENGTHEN_MAX_SHARE,
) -> Transition:
    """The transition that puts ``new`` in force from ``running``'s first cycle boundary at or after
    ``after_s`` (see the module for the rules). :class:`TransitionError` when it needs one and
    neither direction is possible."""
    start = next_boundary(running, after_s)
    cycle = new.phase_sum_s
    error = round((start - new.offset_s) % cycle, 3)
    if error < _EPS or error > cycle - _EPS:
        return Transition(new, start, 0.0, None, ())
    shorten = _cycles(new, error, -1, shorten_max_share, resolution_s)
    lengthen = _cycles(new, cycle - error, +1, lengthen_max_share, resolution_s)
    if shorten is None and lengthen is None:
        raise TransitionError(
            f"signal {new.tls_id}: the new timing is {error:g} s off its offset at the boundary and "
            "has no green that may be shortened or lengthened to catch up"
        )
    if lengthen is not None and (shorten is None or len(lengthen) <= len(shorten)):
        return Transition(new, start, error, "lengthen", lengthen)
    assert shorten is not None
    return Transition(new, start, error, "shorten", shorten)


def _slack(plan: SignalPlan, sign: int) -> list[float]:
    """Per phase, how far it may move in the direction ``sign`` (-1 shorter, +1 longer)."""
    slack = []
    for phase in plan.phases:
        assert phase.min_s is not None and phase.max_s is not None  # the model fills them in
        if not is_green_phase(phase.state):
            slack.append(0.0)
        elif sign < 0:
            floor = phase.min_s if phase.min_s < phase.duration_s - _EPS else UNSET_MIN_GREEN_S
            slack.append(max(phase.duration_s - floor, 0.0))
        else:
            slack.append(
                phase.max_s - phase.duration_s if phase.max_s > phase.duration_s + _EPS else math.inf
            )
    return slack


def _cycles(
    plan: SignalPlan, amount_s: float, sign: int, max_share: float, resolution_s: float
) -> tuple[tuple[float, ...], ...] | None:
    """The transition cycles moving ``plan`` by ``amount_s`` in direction ``sign``, or None when it
    has no room that way. Works in whole units of ``resolution_s``; a sub-unit remainder counts as
    a unit when the cycles are counted, so the last cycle always has room for it."""
    slack_units = [
        math.floor(s / resolution_s + _EPS) if math.isfinite(s) else math.inf for s in _slack(plan, sign)
    ]
    per_cycle = min(math.floor(max_share * plan.phase_sum_s / resolution_s + _EPS), sum(slack_units))
    if per_cycle <= 0:
        return None
    units = math.floor(amount_s / resolution_s + _EPS)
    remainder = round(amount_s - units * resolution_s, 6)
    count = math.ceil((units + (1 if remainder > _EPS else 0)) / per_cycle)
    cycles = []
    for index in range(count):
        share = units // count + (1 if index < units % count else 0)
        moves = [u * resolution_s for u in _spread(plan, share, slack_units)]
        if index == count - 1 and remainder > _EPS:
            room = [s - m / resolution_s for s, m in zip(slack_units, moves, strict=True)]
            moves[room.index(max(room))] += remainder
        cycles.append(tuple(p.duration_s + sign * m for p, m in zip(plan.phases, moves, strict=True)))
    return tuple(cycles)


def _spread(plan: SignalPlan, units: int, slack_units: list[float]) -> list[int]:
    """``units`` shared over the phases with room, in proportion to their durations, none beyond
    its room: proportional shares, capped and the rest shared again among the others, then whole
    units by largest remainder."""
    exact = [0.0] * len(plan.phases)
    open_ = {i for i, s in enumerate(slack_units) if s > 0}
    left = float(units)
    while left > _EPS and open_:
        weight = sum(plan.phases[i].duration_s for i in open_)
        share = {i: left * plan.phases[i].duration_s / weight for i in open_}
        full = {i for i in open_ if exact[i] + share[i] >= slack_units[i] - _EPS}
        if not full:
            for i in open_:
                exact[i] += share[i]
            break
        for i in full:
            left -= slack_units[i] - exact[i]
            exact[i] = slack_units[i]
        open_ -= full
    whole = [math.floor(x + _EPS) for x in exact]
    short = units - sum(whole)
    by_remainder = sorted(
        (i for i in range(len(whole)) if whole[i] < slack_units[i]), key=lambda i: (whole[i] - exact[i], i)
    )
    for i in by_remainder[:short]:
        whole[i] += 1
    return whole
