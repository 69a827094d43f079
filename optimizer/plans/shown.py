"""The safety rules applied to what a signal actually showed, second by second.

:mod:`optimizer.plans.safety` checks a plan: a cycle of phases that repeats. A preemption (an
emergency vehicle's green, :mod:`optimizer.priority.preemption`) leaves the cycle, so what
proves it safe is the record of the states the signal showed, one per simulation step. This
module reads such a record with the same rules and the same :class:`SafetyRules`, as a
straight line instead of a cycle:

``state``
    Every state has one letter per link, all of them SUMO's.
``min-green`` / ``pedestrian-minimum``
    Every green of a link that starts and ends inside the record lasts the minimum (a green
    cut by the record's start or end is not judged: its length is unknown).
``yellow``
    Every vehicle link whose green ends inside the record shows yellow next, for a length
    within the bounds (unless the record ends during it).
``all-red``
    After conflicting link ``a`` stops, link ``b`` turns green no sooner than the network's own
    program keeps them apart (:func:`~optimizer.plans.safety.required_clearances`).
``conflicting-greens``
    No state lets two conflicting links move unless one yields, as in a plan's phases.

The record is read as stretches of one state (:class:`Shown`), so an hour of one-second steps
costs as much as the number of changes. Violations carry ``phase_index=None`` and name the
simulation time in their message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from optimizer.plans.safety import (
    DEFAULT_RULES,
    EPS,
    GREEN,
    MOVING,
    SUMO_STATE_LETTERS,
    YELLOW,
    Rule,
    SafetyRules,
    SignalNetwork,
    Violation,
    conflicts,
    listed,
    required_clearances,
)


@dataclass
class Shown:
    """What one signal showed: stretches of ``(state, start time, seconds)``, in time order.

    :meth:`add` takes one step at a time and only grows the list when the state changes.
    """

    tls_id: str
    stretches: list[tuple[str, float, float]] = field(default_factory=list)

    def add(self, state: str, time: float, step_s: float = 1.0) -> None:
        if self.stretches and self.stretches[-1][0] == state:
            last_state, start, length = self.stretches[-1]
            self.stretches[-1] = (last_state, start, length + step_s)
        else:
            self.stretches.append((state, time, step_s))

    @classmethod
    def of_states(cls, tls_id: str, states: Iterable[str], start: float = 0.0, step_s: float = 1.0) -> Shown:
        shown = cls(tls_id)
        for index, state in enumerate(states):
            shown.add(state, start + index * step_s, step_s)
        return shown


@dataclass(frozen=True)
class _Run:
    """One uninterrupted stretch of a link in a set of letters: its first and last stretch index."""

    first: int
    last: int


def _runs(letters_of: Sequence[str], letters: frozenset[str]) -> list[_Run]:
    runs, begin = [], None
    for index, letter in enumerate(letters_of):
        if letter in letters and begin is None:
            begin = index
        elif letter not in letters and begin is not None:
            runs.append(_Run(begin, index - 1))
            begin = None
    if begin is not None:
        runs.append(_Run(begin, len(letters_of) - 1))
    return runs


def check_shown(shown: Shown, network: SignalNetwork, rules: SafetyRules = DEFAULT_RULES) -> list[Violation]:
    """Every rule the record of one signal breaks (empty: it showed nothing unsafe)."""
    tls = shown.tls_id
    stretches = shown.stretches
    bad = [
        Violation(
            tls, None, Rule.STATE, f"at t={start:g} s state {state!r} does not fit {network.link_count} links"
        )
        for state, start, _ in stretches
        if len(state) != network.link_count or set(state) - SUMO_STATE_LETTERS
    ]
    if bad or not stretches:
        return bad
    found: list[Violation] = []
    last = len(stretches) - 1
    per_link = [[s[0][link] for s in stretches] for link in range(network.link_count)]

    def seconds(run: _Run) -> float:
        return sum(stretches[i][2] for i in range(run.first, run.last + 1))

    for link, letters in enumerate(per_link):
        crossing = link in network.crossing_links
        rule = Rule.PEDESTRIAN_MINIMUM if crossing else Rule.MIN_GREEN
        minimum = rules.pedestrian_min_s if crossing else rules.min_green_s
        yellows = {run.first: run for run in _runs(letters, YELLOW)}
        for run in _runs(letters, GREEN):
            inside = run.first > 0 and run.last < last
            if inside and rules.enforces(rule, tls) and seconds(run) < minimum - EPS:
                found.append(
                    Violation(
                        tls, None, rule,
                        f"at t={stretches[run.first][1]:g} s {network.label(link)} was green "
                        f"{seconds(run):g} s, less than {minimum:g} s",
                    )
                )  # fmt: skip
            if crossing or run.last == last or not rules.enforces(Rule.YELLOW, tls):
                continue
            after = run.last + 1
            at = stretches[after][1]
            if letters[after] not in YELLOW:
                found.append(
                    Violation(
                        tls, None, Rule.YELLOW,
                        f"at t={at:g} s {network.label(link)} went from green to "
                        f"{letters[after]!r} without yellow",
                    )
                )  # fmt: skip
                continue
            yellow = yellows[after]
            ends_inside = yellow.last < last
            length = seconds(yellow)
            too_short = ends_inside and length < rules.yellow_min_s - EPS
            if too_short or length > rules.yellow_max_s + EPS:
                found.append(
                    Violation(
                        tls, None, Rule.YELLOW,
                        f"at t={at:g} s {network.label(link)} had {length:g} s of yellow, outside "
                        f"[{rules.yellow_min_s:g}, {rules.yellow_max_s:g}] s",
                    )
                )  # fmt: skip
    if rules.enforces(Rule.ALL_RED, tls):
        found += _check_clearances(shown, network, per_link)
    if rules.enforces(Rule.CONFLICTING_GREENS, tls):
        found += _check_conflicts(shown, network)
    return found


def _check_clearances(shown: Shown, network: SignalNetwork, per_link: list[list[str]]) -> list[Violation]:
    required = required_clearances(network)
    if not required:
        return []
    stretches = shown.stretches
    stops: dict[int, list[float]] = defaultdict(list)
    starts: dict[int, list[float]] = defaultdict(list)
    for link, letters in enumerate(per_link):
        for index in range(1, len(letters)):
            if letters[index - 1] in MOVING and letters[index] not in MOVING:
                stops[link].append(stretches[index][1])
            if letters[index - 1] not in GREEN and letters[index] in GREEN:
                starts[link].append(stretches[index][1])
    found = []
    for (a, b), needed in sorted(required.items()):
        for stopped in stops.get(a, ()):
            started = next((t for t in starts.get(b, ()) if t >= stopped), None)
            if started is not None and started - stopped < needed - EPS:
                found.append(
                    Violation(
                        shown.tls_id, None, Rule.ALL_RED,
                        f"at t={started:g} s link {b} turned green {started - stopped:g} s after conflicting "
                        f"link {a} stopped (the network's own program keeps {needed:g} s)",
                    )
                )  # fmt: skip
    return found


def _check_conflicts(shown: Shown, network: SignalNetwork) -> list[Violation]:
    found = []
    judged: dict[str, list[str]] = {}
    for state, start, _ in shown.stretches:
        clashes = judged.setdefault(state, conflicts(state, network))
        if clashes:
            found.append(
                Violation(shown.tls_id, None, Rule.CONFLICTING_GREENS, f"at t={start:g} s: {listed(clashes)}")
            )
    return found
