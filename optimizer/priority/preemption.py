"""How one signal moves to an emergency vehicle's green and back, without breaking a safety rule.

A preemption leaves the signal's cycle: from what the signal shows now, it goes the shortest
safe way to a phase of its own program that gives the vehicle's links green (a *priority
phase*) and holds it until the vehicle has passed (:func:`preempt`). Then it goes back the same
safe way to where its program would be had nothing happened (:func:`resume`), so the signal is
in step with its cycle — and its coordination with its neighbours — again within seconds,
rather than shifted for the rest of the day.
"Safe" is :mod:`optimizer.plans.safety`'s rules, applied as :mod:`optimizer.plans.shown` reads
them on the record:

1. a green that ends keeps its minimum: the current state is held until every link it stops
   has been green ``min_green_s`` (``pedestrian_min_s`` for a crossing);
2. every vehicle link that stops shows yellow for the program's own yellow time, kept within
   the rules' bounds; links green in both the current and the priority state stay green;
3. where the network's own program keeps conflicting links apart with an all-red interval,
   the links that stopped and the links that start are kept apart as long;
4. the priority state is the program's own phase state, so no pair of links the program
   keeps apart moves at once, and it is held until every link it shows green has had its
   minimum (counted from that link's own start, which may lie before the preemption).

While the signal shows a transition (a yellow, or no green at all) nothing is decided: cutting
a yellow or an all-red short is never allowed, so the caller asks again when it has ended.

This is the decision only, on plain data; :mod:`optimizer.priority.controller` drives it in a
running simulation. A field controller does the same with its own preemption sequence (NTCIP
1202's preempt objects): the same rules hold.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from core.errors import CitybrainError
from optimizer.plans.model import SignalPlan
from optimizer.plans.safety import (
    DEFAULT_RULES,
    GREEN,
    MAJOR,
    YELLOW,
    SafetyRules,
    SignalNetwork,
    required_clearances,
)
from optimizer.plans.sumo_programs import cycle_position


class NoPriorityPhase(CitybrainError, ValueError):
    """The signal's program has no phase giving green to the links asked for."""


@dataclass(frozen=True)
class Step:
    """Show ``state`` for ``seconds`` (the last step of a preemption: at least that long)."""

    state: str
    seconds: float


@dataclass(frozen=True)
class Preemption:
    """A safe way from what a signal shows to one phase of its program.

    ``steps`` ends with that phase's state and ``resume_phase`` is that phase: the priority phase
    for :func:`preempt`, the phase the program runs on from for :func:`resume`.
    """

    tls_id: str
    links: frozenset[int]
    steps: tuple[Step, ...]
    resume_phase: int

    @property
    def until_green_s(self) -> float:
        """Seconds until the priority green shows."""
        return sum(step.seconds for step in self.steps[:-1])

    @property
    def green(self) -> Step:
        return self.steps[-1]


def is_transition(state: str) -> bool:
    """Whether ``state`` is a change interval (some yellow, or no green at all): never cut."""
    return any(letter in YELLOW for letter in state) or not any(letter in GREEN for letter in state)


def priority_phases(program: SignalPlan, links: Collection[int]) -> list[int]:
    """The program's green phases (no yellow) that give every one of ``links`` green, those
    giving them priority (``G``) first."""
    found = [
        index
        for index, phase in enumerate(program.phases)
        if not is_transition(phase.state) and all(phase.state[link] in GREEN for link in links)
    ]
    return sorted(found, key=lambda i: not all(program.phases[i].state[link] in MAJOR for link in links))


def _program_yellow_s(program: SignalPlan, rules: SafetyRules) -> float:
    yellows = [
        phase.duration_s for phase in program.phases if any(letter in YELLOW for letter in phase.state)
    ]
    return min(max(max(yellows, default=rules.yellow_min_s), rules.yellow_min_s), rules.yellow_max_s)


def _minimum(network: SignalNetwork, link: int, rules: SafetyRules) -> float:
    return rules.pedestrian_min_s if link in network.crossing_links else rules.min_green_s


def _way(
    network: SignalNetwork,
    program: SignalPlan,
    shown: str,
    green_for: Sequence[float],
    target: int,
    rules: SafetyRules,
) -> tuple[Step, ...]:
    goal = program.phases[target].state
    stopping = [i for i, letter in enumerate(shown) if letter in GREEN and goal[i] not in GREEN]
    starting = [i for i, letter in enumerate(goal) if letter in GREEN and shown[i] not in GREEN]
    steps = []
    wait = max((_minimum(network, i, rules) - green_for[i] for i in stopping), default=0.0)
    if wait > 0:
        steps.append(Step(shown, wait))
    kept = "".join(letter if goal[i] in GREEN and letter in GREEN else "r" for i, letter in enumerate(shown))
    if any(i not in network.crossing_links for i in stopping):
        yellow = "".join(
            "y" if i in stopping and i not in network.crossing_links else kept[i] for i in range(len(shown))
        )
        steps.append(Step(yellow, _program_yellow_s(program, rules)))
    required = required_clearances(network)
    clearance = max((required.get((a, b), 0.0) for a in stopping for b in starting), default=0.0)
    if clearance > 0:
        steps.append(Step(kept, clearance))
    # Every link green in the goal keeps its minimum from its own start: a link green all along
    # has had green_for plus the way; one that starts has had nothing yet.
    way = sum(step.seconds for step in steps)
    hold = max(
        (
            _minimum(network, i, rules) - (green_for[i] + way if shown[i] in GREEN else 0.0)
            for i, letter in enumerate(goal)
            if letter in GREEN
        ),
        default=0.0,
    )
    steps.append(Step(goal, max(hold, 0.0)))
    return tuple(steps)


def preempt(
    network: SignalNetwork,
    program: SignalPlan,
    shown: str,
    green_for: Sequence[float],
    links: Collection[int],
    rules: SafetyRules = DEFAULT_RULES,
    lane_links: Collection[int] = (),
) -> Preemption | None:
    """The quickest safe way from ``shown`` to a priority phase for ``links``, or None while
    ``shown`` is a transition (ask again when it has ended).

    ``green_for[i]`` is how long link ``i`` has been green without a break (0 when it is not).
    ``lane_links`` are the other links leaving the vehicle's lane: a phase that gives them green
    too is preferred, however much longer its way, because vehicles queued in front of the
    emergency vehicle for those links would otherwise hold it up on its own green.
    Raises :class:`NoPriorityPhase` when no phase of ``program`` serves every one of ``links``.
    """
    candidates = priority_phases(program, links)
    if not candidates:
        raise NoPriorityPhase(
            f"signal {network.tls_id}: no phase of program {program.program_id!r} gives links "
            f"{sorted(links)} green"
        )
    if is_transition(shown):
        return None
    ways = []
    for order, index in enumerate(candidates):
        steps = _way(network, program, shown, green_for, index, rules)
        blocked = sum(1 for link in lane_links if program.phases[index].state[link] not in GREEN)
        ways.append(((blocked, sum(step.seconds for step in steps[:-1]), order), index, steps))
    # The lane cleared, then the quickest to green, then priority (G) before permissive (g).
    _, target, steps = min(ways)
    return Preemption(network.tls_id, frozenset(links), steps, target)


def resume(
    network: SignalNetwork,
    program: SignalPlan,
    shown: str,
    green_for: Sequence[float],
    time_s: float,
    rules: SafetyRules = DEFAULT_RULES,
) -> Preemption:
    """The safe way from ``shown`` (a held priority green) back into step with ``program``.

    For each green phase of the program, the way to it (:func:`preempt`'s rules) takes some
    seconds; the phase chosen is one the undisturbed program (:func:`cycle_position` at
    ``time_s`` plus those seconds) is inside when the way arrives, and its last step lasts what
    is left of that phase, so the program then runs on in step. When the program would be in a
    change interval on arrival whichever green is aimed at, the next green to start is taken
    and run whole: the signal is then at most that interval behind its cycle.
    """
    cycle = program.phase_sum_s
    starts = [sum(p.duration_s for p in program.phases[:i]) for i in range(len(program.phases))]
    greens = [i for i, phase in enumerate(program.phases) if not is_transition(phase.state)]
    best: tuple[float, float, int, tuple[Step, ...]] | None = None
    for index in greens:
        steps = _way(network, program, shown, green_for, index, rules)
        way = sum(step.seconds for step in steps[:-1])
        phase, left = cycle_position(program, time_s + way)
        if phase == index:
            wait, hold = 0.0, left
        else:
            position = starts[phase] + program.phases[phase].duration_s - left
            wait, hold = (starts[index] - position) % cycle, program.phases[index].duration_s
        if best is None or (wait, way) < best[:2]:
            best = (wait, way, index, (*steps[:-1], Step(steps[-1].state, max(steps[-1].seconds, hold))))
    if best is None:
        raise NoPriorityPhase(f"signal {network.tls_id}: program {program.program_id!r} has no green phase")
    return Preemption(network.tls_id, frozenset(), best[3], best[2])
