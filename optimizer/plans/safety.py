"""The safety rules every signal plan must pass before it is published or applied in the field.

:func:`check` returns every :class:`Violation` of a plan (as data, for the console);
:func:`enforce` raises one :class:`UnsafePlan` listing them all. Each violation names the
signal, the phase index (where a rule concerns a phase) and the rule. The rules need the
network — how many links a signal controls, which of them conflict, which are pedestrian
crossings, and the signal's own program — which :func:`read_network` takes from the network model
(:mod:`sim.network`).

The rules, with ``SafetyRules`` holding their parameters (defaults below), and the names
(:class:`Rule`) that violations carry and that ``SafetyRules.skip`` accepts:

``state``
    Every state string has one letter per link the signal controls, only SUMO's letters
    (``rugGyYoOs``), and a plan has at least two phases. Checked first and never skipped: the
    other rules read the states link by link and are not run for a signal that fails this one.
``cycle``
    The cycle lies within [40, 180] s and equals the sum of the phase durations (SUMO runs
    the sum; a different stated cycle would mislead the operator and the coordination).
``offset``
    The offset lies within [0, cycle).
``min-green``
    Every time a vehicle link turns green it stays green at least 5 s: the phases of one
    uninterrupted green of a link (a green can span phases, as when a left turn stays green
    from a permissive into a protected phase) sum to the minimum, in duration and in
    ``min_s`` (so an actuated controller cannot cut it short either). Reported at the phase
    where that green starts. Per link rather than per phase because the minimum protects the
    drivers who were given green, however the phases are cut.
``yellow``
    Every vehicle link whose green ends shows yellow next (``y``/``Y``), for 3 to 6 s in all
    (a yellow may span phases). Reported at the phase after the green. Pedestrian crossings
    have no yellow in SUMO; their clearance is the ``all-red`` rule's business.
``all-red``
    Where the network's own program has an all-red interval between conflicting links, the
    plan keeps at least as long a red between them. Precisely: link ``a`` *stops* at the
    start of a phase where it shows neither green nor yellow after a phase where it showed
    either; link ``b`` *starts* at the start of a phase where it is green after one where it
    was not; an *all-red phase* shows no green and no yellow to any link. A *direct
    transition* from ``a`` to ``b`` is a stop of ``a`` followed by a start of ``b`` in the
    first phase, from the stop on, in which any link starts. For every pair of conflicting
    links, the network's own program gives ``R(a, b)``: the least time its direct transitions
    from ``a`` to ``b`` spend in all-red phases. Where ``R(a, b) > 0``, every stop of ``a`` in
    the plan must be followed by at least ``R(a, b)`` seconds (of any phases: what counts is
    that both are red) before ``b`` next starts. Reported at the phase where ``b`` starts too
    early. Counting only all-red phases in the network's program keeps a stage in between
    (cologne1's protected left turns between two through stages) from being taken for
    clearance; a signal whose network program has no all-red phase has nothing to keep.
``conflicting-greens``
    In no phase may two conflicting links (foes in the junction's right-of-way matrix) both
    move unless SUMO resolves the conflict: two major links (``G``, ``Y``) never; otherwise
    a minor one (``g``, ``y``) must yield to the other in the junction's response matrix.
    The response matrix is fixed when netconvert builds the net, so a ``g`` that yields under
    the network's own phases may not yield in a new combination: that is a conflict too.
``pedestrian-minimum``
    Every green of a pedestrian crossing link lasts at least 7 s (walk time), with the same
    reading as ``min-green``.

Why these numbers: 5 s minimum green and 3-6 s yellow are the usual engineering bounds
(shorter yellow cannot stop a car from urban speeds; longer invites running it), 40-180 s
are the cycles a field controller is normally allowed, and 7 s is the usual minimum walk.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.errors import CitybrainError
from optimizer.plans.model import NetworkPlan, SignalPlan
from sim.network import Network, for_scenario, load
from sim.scenarios import Scenario

DEFAULT_MIN_GREEN_S = 5.0
DEFAULT_YELLOW_MIN_S = 3.0
DEFAULT_YELLOW_MAX_S = 6.0
DEFAULT_CYCLE_MIN_S = 40.0
DEFAULT_CYCLE_MAX_S = 180.0
DEFAULT_PEDESTRIAN_MIN_S = 7.0

#: Every letter SUMO accepts in a state string: red, red-yellow, minor/major green, minor/major
#: yellow, off (blinking / no signal), stop.
SUMO_STATE_LETTERS = frozenset("rugGyYoOs")
#: Networks whose signal tables are kept, as many as :mod:`sim.network` keeps models.
_CACHED_NETWORKS = 32
GREEN = frozenset("gG")
YELLOW = frozenset("yY")
MOVING = GREEN | YELLOW
MAJOR = frozenset("GY")
#: Seconds below which two durations count as equal (SUMO itself works in milliseconds).
EPS = 1e-6
#: At most this many links or link pairs are spelled out in one violation's message.
LISTED = 6


class Rule(StrEnum):
    STATE = "state"
    CYCLE = "cycle"
    OFFSET = "offset"
    MIN_GREEN = "min-green"
    YELLOW = "yellow"
    ALL_RED = "all-red"
    CONFLICTING_GREENS = "conflicting-greens"
    PEDESTRIAN_MINIMUM = "pedestrian-minimum"


@dataclass(frozen=True)
class SafetyRules:
    """The parameters of the rules, the rules to skip, and rules waived for single signals.

    Skipping and waivers exist for scenarios whose own programs break a rule (a researcher
    reproducing a benchmark as published): ``waivers`` holds ``(rule, tls_id)`` pairs, e.g.
    ``(Rule.CONFLICTING_GREENS, "gneJ210")`` for ingolstadt7/21, whose own program gives two
    left turns merging into the same lanes priority at once. A plan proposed for the field
    should pass every rule; waive per signal rather than loosen a rule for all.
    """

    min_green_s: float = DEFAULT_MIN_GREEN_S
    yellow_min_s: float = DEFAULT_YELLOW_MIN_S
    yellow_max_s: float = DEFAULT_YELLOW_MAX_S
    cycle_min_s: float = DEFAULT_CYCLE_MIN_S
    cycle_max_s: float = DEFAULT_CYCLE_MAX_S
    pedestrian_min_s: float = DEFAULT_PEDESTRIAN_MIN_S
    skip: frozenset[Rule] = frozenset()
    waivers: frozenset[tuple[Rule, str]] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "skip", frozenset(Rule(r) for r in self.skip))
        object.__setattr__(self, "waivers", frozenset((Rule(r), tls) for r, tls in self.waivers))
        if Rule.STATE in self.skip or any(rule is Rule.STATE for rule, _ in self.waivers):
            raise ValueError("the state rule cannot be skipped: the other rules read the states it checks")
        if self.yellow_min_s > self.yellow_max_s or self.cycle_min_s > self.cycle_max_s:
            raise ValueError("a rule's minimum must not exceed its maximum")

    def enforces(self, rule: Rule, tls_id: str | None = None) -> bool:
        """Whether ``rule`` is checked (for signal ``tls_id``, when given)."""
        return rule not in self.skip and (rule, tls_id) not in self.waivers


#: The rules with their usual parameters, nothing skipped or waived.
DEFAULT_RULES = SafetyRules()


@dataclass(frozen=True)
class Violation:
    """One broken rule: the signal (SUMO id), the phase index where it concerns one, and why."""

    tls_id: str
    phase_index: int | None
    rule: Rule
    message: str

    def __str__(self) -> str:
        where = f"signal {self.tls_id}" + ("" if self.phase_index is None else f" phase {self.phase_index}")
        return f"{where}: {self.rule}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tls_id": self.tls_id,
            "phase_index": self.phase_index,
            "rule": str(self.rule),
            "message": self.message,
        }


class UnsafePlan(CitybrainError, ValueError):
    """A plan that breaks safety rules; ``violations`` lists every one, the message all of them."""

    def __init__(self, violations: Iterable[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__(self.violations)

    def __str__(self) -> str:
        count = len(self.violations)
        return f"unsafe plan, {count} violation{'s' if count != 1 else ''}: " + "; ".join(
            str(v) for v in self.violations
        )


@dataclass(frozen=True)
class SignalNetwork:
    """What the rules need to know about one signal of the network.

    ``foes`` holds unordered link pairs ``(a, b)``, ``a < b``, of which some connections
    conflict at their junction; ``yields`` ordered pairs ``(a, b)`` where link ``a`` yields
    to link ``b`` on every such conflict. ``program`` is the network's own program (the one
    SUMO runs: the last loaded), the reference of the ``all-red`` rule.
    """

    tls_id: str
    link_count: int
    foes: frozenset[tuple[int, int]] = frozenset()
    yields: frozenset[tuple[int, int]] = frozenset()
    crossing_links: frozenset[int] = frozenset()
    link_labels: tuple[str, ...] = field(default=())
    program: SignalPlan | None = None

    def label(self, link: int) -> str:
        if link < len(self.link_labels) and self.link_labels[link]:
            return f"link {link} ({self.link_labels[link]})"
        return f"link {link}"

    def conflict(self, a: int, b: int) -> bool:
        return (min(a, b), max(a, b)) in self.foes


def signal_networks(network: Network) -> dict[str, SignalNetwork]:
    """What the rules need of every signal of the network model, keyed by SUMO tls id.

    Two links conflict where some connections of theirs are foes in their junction's
    right-of-way logic; ``a`` yields to ``b`` where every such conflict has ``a`` yield. Kept per
    network (the model is cached per file), since a controller's start and every proposal ask.
    """
    return dict(_signal_networks(network))


@functools.lru_cache(maxsize=_CACHED_NETWORKS)
def _signal_networks(network: Network) -> dict[str, SignalNetwork]:
    from optimizer.plans.sumo_programs import program_plan

    found = {}
    for tls_id, signal in network.signals.items():
        by_index = signal.links()
        link_count = signal.link_count
        foes: set[tuple[int, int]] = set()
        not_yielding: set[tuple[int, int]] = set()
        for a, a_links in by_index.items():
            for b, b_links in by_index.items():
                for x in a_links if a != b else ():
                    for y in b_links:
                        if x.request < 0 or y.request < 0 or x.junction != y.junction:
                            continue
                        junction = network.junctions[x.junction]
                        if junction.conflict(x.request, y.request):
                            foes.add((min(a, b), max(a, b)))
                            if not junction.must_yield(x.request, y.request):
                                not_yielding.add((a, b))
        yields = {(a, b) for a, b in foes} | {(b, a) for a, b in foes}
        program = None if signal.program is None else program_plan(signal.program)
        if link_count == 0 and program is not None:
            link_count = program.link_count
        found[tls_id] = SignalNetwork(
            tls_id=tls_id,
            link_count=link_count,
            foes=frozenset(foes),
            yields=frozenset(yields - not_yielding),
            crossing_links=frozenset(i for i, cs in by_index.items() if any(c.crossing for c in cs)),
            link_labels=tuple((cs[0].label if (cs := by_index.get(i)) else "") for i in range(link_count)),
            program=program,
        )
    return found


def scenario_signals(scenario: Scenario) -> dict[str, SignalNetwork]:
    """Every signal of the network a scenario runs, with the programs it runs (its additional
    files' where they replace the net's): what its plans are checked against."""
    return signal_networks(for_scenario(scenario))


def read_network(net_file: Path, additional_files: Iterable[Path] = ()) -> dict[str, SignalNetwork]:
    """Every signal of a .net.xml (with the programs ``additional_files`` load), keyed by SUMO
    tls id; from :func:`sim.network.load`, so read once while the files are unchanged."""
    return signal_networks(load(net_file, additional_files))


def listed(items: list[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def _starts(plan: SignalPlan) -> list[float]:
    starts, total = [], 0.0
    for phase in plan.phases:
        starts.append(total)
        total += phase.duration_s
    return starts


def _runs(plan: SignalPlan, link: int, letters: frozenset[str]) -> list[list[int]]:
    """The phase indices of each uninterrupted (cyclic) stretch where ``link`` shows ``letters``.

    A link that shows them in every phase has no stretch: it never changes.
    """
    states = [p.state[link] for p in plan.phases]
    n = len(states)
    if all(s in letters for s in states) or not any(s in letters for s in states):
        return []
    first_out = next(i for i, s in enumerate(states) if s not in letters)
    runs: list[list[int]] = []
    current: list[int] = []
    for step in range(1, n + 1):
        index = (first_out + step) % n
        if states[index] in letters:
            current.append(index)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _check_state(plan: SignalPlan, network: SignalNetwork) -> list[Violation]:
    found = []
    if len(plan.phases) < 2:
        found.append(Violation(plan.tls_id, None, Rule.STATE, "a plan needs at least two phases"))
    for index, phase in enumerate(plan.phases):
        problems = []
        if len(phase.state) != network.link_count:
            problems.append(
                f"state {phase.state!r} has {len(phase.state)} letters, the signal controls "
                f"{network.link_count} links"
            )
        odd = sorted(set(phase.state) - SUMO_STATE_LETTERS)
        if odd:
            problems.append(
                f"state {phase.state!r} uses {''.join(odd)!r}, not SUMO signal letters (rugGyYoOs)"
            )
        found += [Violation(plan.tls_id, index, Rule.STATE, p) for p in problems]
    return found


def _check_cycle_and_offset(plan: SignalPlan, rules: SafetyRules) -> list[Violation]:
    found = []
    cycle, total = plan.cycle_s, plan.phase_sum_s
    if rules.enforces(Rule.CYCLE, plan.tls_id):
        if not rules.cycle_min_s - EPS <= cycle <= rules.cycle_max_s + EPS:
            found.append(
                Violation(
                    plan.tls_id,
                    None,
                    Rule.CYCLE,
                    f"cycle {cycle:g} s is outside [{rules.cycle_min_s:g}, {rules.cycle_max_s:g}] s",
                )
            )
        if abs(cycle - total) > EPS:
            found.append(
                Violation(
                    plan.tls_id,
                    None,
                    Rule.CYCLE,
                    f"cycle {cycle:g} s differs from its phases' sum {total:g} s",
                )
            )
    if rules.enforces(Rule.OFFSET, plan.tls_id) and not 0 <= plan.offset_s < cycle:
        found.append(
            Violation(
                plan.tls_id, None, Rule.OFFSET, f"offset {plan.offset_s:g} s is outside [0, {cycle:g}) s"
            )
        )
    return found


def _check_green_minimum(
    plan: SignalPlan, network: SignalNetwork, rule: Rule, minimum: float, links: Iterable[int]
) -> list[Violation]:
    short: dict[int, list[str]] = defaultdict(list)
    for link in links:
        for run in _runs(plan, link, GREEN):
            duration = sum(plan.phases[i].duration_s for i in run)
            least = sum(plan.phases[i].min_s for i in run)
            if min(duration, least) < minimum - EPS:
                got = f"{duration:g} s" if least >= duration - EPS else f"{duration:g} s (min {least:g} s)"
                short[run[0]].append(f"{network.label(link)} {got}")
    what = "green" if rule is Rule.MIN_GREEN else "pedestrian green"
    return [
        Violation(plan.tls_id, phase, rule, f"{what} shorter than {minimum:g} s: {listed(items)}")
        for phase, items in sorted(short.items())
    ]


def _check_yellow(plan: SignalPlan, network: SignalNetwork, rules: SafetyRules) -> list[Violation]:
    n = len(plan.phases)
    problems: dict[int, list[str]] = defaultdict(list)
    for link in range(network.link_count):
        if link in network.crossing_links:
            continue
        for run in _runs(plan, link, GREEN):
            after = (run[-1] + 1) % n
            state = plan.phases[after].state[link]
            if state not in YELLOW:
                problems[after].append(f"{network.label(link)} goes from green to {state!r} without yellow")
                continue
            yellow, index = 0.0, after
            while plan.phases[index].state[link] in YELLOW and yellow < plan.phase_sum_s:
                yellow += plan.phases[index].duration_s
                index = (index + 1) % n
            if not rules.yellow_min_s - EPS <= yellow <= rules.yellow_max_s + EPS:
                problems[after].append(
                    f"{network.label(link)} has {yellow:g} s of yellow, outside "
                    f"[{rules.yellow_min_s:g}, {rules.yellow_max_s:g}] s"
                )
    return [Violation(plan.tls_id, p, Rule.YELLOW, listed(items)) for p, items in sorted(problems.items())]


def _transitions(plan: SignalPlan, link_count: int) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Per phase index, the links that stop (leave green and yellow) and start (turn green) there."""
    stops: dict[int, list[int]] = defaultdict(list)
    starts: dict[int, list[int]] = defaultdict(list)
    phases = plan.phases
    for index, phase in enumerate(phases):
        before = phases[index - 1].state
        for link in range(link_count):
            if before[link] in MOVING and phase.state[link] not in MOVING:
                stops[index].append(link)
            if before[link] not in GREEN and phase.state[link] in GREEN:
                starts[index].append(link)
    return stops, starts


def required_clearances(network: SignalNetwork) -> dict[tuple[int, int], float]:
    """``R(a, b)`` of the ``all-red`` rule from the network's own program: only pairs with ``R > 0``."""
    program = network.program
    if program is None or program.link_count != network.link_count or len(program.phases) < 2:
        return {}
    n = len(program.phases)
    stops, starts = _transitions(program, network.link_count)
    required: dict[tuple[int, int], float] = {}
    for stop_phase, stopped in stops.items():
        next_start = next((i % n for i in range(stop_phase, stop_phase + n) if starts.get(i % n)), None)
        if next_start is None:
            continue
        walk = [i % n for i in range(stop_phase, stop_phase + (next_start - stop_phase) % n)]
        gap = sum(program.phases[i].duration_s for i in walk if not MOVING & set(program.phases[i].state))
        for a in stopped:
            for b in starts[next_start]:
                if a != b and network.conflict(a, b):
                    required[(a, b)] = min(required.get((a, b), gap), gap)
    return {pair: gap for pair, gap in required.items() if gap > EPS}


def _check_all_red(plan: SignalPlan, network: SignalNetwork) -> list[Violation]:
    required = required_clearances(network)
    if not required:
        return []
    n = len(plan.phases)
    begin, cycle = _starts(plan), plan.phase_sum_s
    stops, starts = _transitions(plan, network.link_count)
    start_phases: dict[int, list[int]] = defaultdict(list)
    for phase, started in starts.items():
        for link in started:
            start_phases[link].append(phase)
    short: dict[int, list[str]] = defaultdict(list)
    for stop_phase, stopped in stops.items():
        for a in stopped:
            for (first, b), needed in required.items():
                if first != a or not start_phases.get(b):
                    continue
                next_start = min(start_phases[b], key=lambda p: (p - stop_phase) % n)
                gap = (begin[next_start] - begin[stop_phase]) % cycle
                if gap < needed - EPS:
                    short[next_start].append(
                        f"link {b} turns green {gap:g} s after conflicting link {a} stopped "
                        f"(the network's own program keeps {needed:g} s)"
                    )
    return [Violation(plan.tls_id, p, Rule.ALL_RED, listed(items)) for p, items in sorted(short.items())]


def conflicts(state: str, network: SignalNetwork) -> list[str]:
    """The pairs of conflicting links that ``state`` lets move without one yielding, described."""
    clashes = []
    for a, b in sorted(network.foes):
        if state[a] not in MOVING or state[b] not in MOVING:
            continue
        if state[a] in MAJOR and state[b] in MAJOR:
            clashes.append(f"links {a} and {b} both have priority ({state[a]}{state[b]})")
        elif not (
            (state[a] not in MAJOR and (a, b) in network.yields)
            or (state[b] not in MAJOR and (b, a) in network.yields)
        ):
            clashes.append(f"links {a} and {b} ({state[a]}{state[b]}) move and neither yields to the other")
    return clashes


def _check_conflicts(plan: SignalPlan, network: SignalNetwork) -> list[Violation]:
    found = []
    for index, phase in enumerate(plan.phases):
        clashes = conflicts(phase.state, network)
        if clashes:
            found.append(Violation(plan.tls_id, index, Rule.CONFLICTING_GREENS, listed(clashes)))
    return found


def check_signal(
    plan: SignalPlan, network: SignalNetwork | None, rules: SafetyRules = SafetyRules()
) -> list[Violation]:
    """Every rule the plan of one signal breaks, in rule order (empty: safe)."""
    if network is None:
        return [Violation(plan.tls_id, None, Rule.STATE, "the network has no such traffic light")]
    found = _check_state(plan, network)  # never skipped: the other rules read the states link by link
    if found:
        return found
    found += _check_cycle_and_offset(plan, rules)
    vehicle_links = [i for i in range(network.link_count) if i not in network.crossing_links]
    if rules.enforces(Rule.MIN_GREEN, plan.tls_id):
        found += _check_green_minimum(plan, network, Rule.MIN_GREEN, rules.min_green_s, vehicle_links)
    if rules.enforces(Rule.YELLOW, plan.tls_id):
        found += _check_yellow(plan, network, rules)
    if rules.enforces(Rule.ALL_RED, plan.tls_id):
        found += _check_all_red(plan, network)
    if rules.enforces(Rule.CONFLICTING_GREENS, plan.tls_id):
        found += _check_conflicts(plan, network)
    if rules.enforces(Rule.PEDESTRIAN_MINIMUM, plan.tls_id):
        found += _check_green_minimum(
            plan, network, Rule.PEDESTRIAN_MINIMUM, rules.pedestrian_min_s, sorted(network.crossing_links)
        )
    return found


def check(
    plan: NetworkPlan | Iterable[SignalPlan],
    network: Mapping[str, SignalNetwork],
    rules: SafetyRules = SafetyRules(),
) -> list[Violation]:
    """Every rule any signal of the plan breaks (empty: the plan is safe on this network)."""
    signals = plan.signals if isinstance(plan, NetworkPlan) else tuple(plan)
    return [v for signal in signals for v in check_signal(signal, network.get(signal.tls_id), rules)]


def enforce(
    plan: NetworkPlan | Iterable[SignalPlan],
    network: Mapping[str, SignalNetwork],
    rules: SafetyRules = SafetyRules(),
) -> None:
    """Raise :class:`UnsafePlan` listing every violation, unless the plan passes every rule."""
    violations = check(plan, network, rules)
    if violations:
        raise UnsafePlan(violations)
