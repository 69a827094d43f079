"""The ``webster`` method: every signal's own program, re-timed by Webster from movement flows.

For each traffic light the program SUMO runs (the network's own or one its scenario's
additional files load, from :mod:`sim.network`) keeps its phases, their order and its clearance
intervals; only the green phases change length. That keeps what the network's designers
decided — which movements go together, protected or permissive turns, yellow and all-red
times — and re-sizes the cycle and splits to the demand, which is what Webster's method is
for (and what a traffic engineer would do with it).

- A *green phase* shows some green (``G``/``g``) and no yellow; every other phase (yellow,
  all-red, red-yellow, a mixed phase where some links clear while others keep green) is a
  clearance interval kept as it is, and their total is Webster's ``fixed_intervals_s``.
- Each movement's flow (:func:`optimizer.demand.own_routes.movement_flows`, from edge → to edge) is split
  evenly over the lanes of the signal that serve it.
- Each green phase is taken by itself. A lane movement's flow is carried by one green phase
  per uninterrupted green, the one where it starts, even where the green spans several phases
  (cologne1's left turns are permissive in the through phase, then protected: the through
  phase carries them, and the protected stage gets the minimum green); a
  phase's load on a lane is the sum of the flows it carries there (a shared through-and-right
  lane carries both), and its critical ratio y is its largest lane load over the saturation
  flow. A phase that carries no flow of its own gets y = 0 and so the minimum green.

The offset is 0: Webster times a junction in isolation, and an offset set for the old cycle
means nothing for the new one (coordination is the ``green-wave`` and ``coordinated``
methods' business). Signals with no green phase are left out of the plan and keep their own
program.

Webster's formula (:func:`webster`): for each green phase i the critical flow ratio y_i is the
largest flow/saturation ratio among the lanes it serves; with Y = Σ y_i and L the lost time per
cycle (the yellow and all-red intervals plus a start-up loss per phase), the delay-minimising
cycle is C = (1.5 L + 5) / (1 − Y), and the effective green C − L is shared in proportion to y_i
(each displayed green adding back its start-up loss). The cycle is kept within the safety limits,
and each green at or above the minimum green. (F. V. Webster, *Traffic Signal Settings*, Road
Research Technical Paper 39, 1958.)
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import CitybrainError
from optimizer.plans.model import NetworkPlan, Phase, SignalPlan
from optimizer.plans.safety import Rule, SafetyRules, SignalNetwork, check, signal_networks
from sim.network import Network, for_scenario, load
from sim.scenarios import Scenario

METHOD = "webster"
#: The rules with their defaults (frozen, so one shared instance is safe as a default argument).
DEFAULT_RULES = SafetyRules()
_GREEN = frozenset("Gg")
_YELLOW = frozenset("yY")
#: Seconds below which two durations count as equal.
_EPS = 1e-6

Movement = tuple[str, str]

#: Saturation flow of one lane, vehicles per hour of green.
SATURATION_VPH_PER_LANE = 1800.0
#: Start-up lost time per green phase (s).
STARTUP_LOSS_S = 2.0
#: Above this total critical ratio no cycle serves the demand; the longest cycle is used.
MAX_TOTAL_RATIO = 0.9


class WebsterError(CitybrainError, ValueError):
    """Inputs Webster's formula cannot use; the message names which."""


@dataclass(frozen=True)
class WebsterTiming:
    """A cycle and the green time of each green phase, in the order given."""

    cycle_s: float
    greens_s: tuple[float, ...]
    total_ratio: float
    lost_time_s: float
    saturated: bool


def webster(
    critical_ratios: Sequence[float],
    fixed_intervals_s: float,
    *,
    min_green_s: float = 5.0,
    min_cycle_s: float = 40.0,
    max_cycle_s: float = 180.0,
    startup_loss_s: float = STARTUP_LOSS_S,
) -> WebsterTiming:
    """The timing for green phases with ``critical_ratios`` (y_i), given the cycle's yellow and
    all-red seconds (``fixed_intervals_s``), which stay as they are and count as lost time."""
    if not critical_ratios:
        raise WebsterError("Webster needs at least one green phase")
    if any(y < 0 for y in critical_ratios):
        raise WebsterError(f"critical flow ratios must not be negative, got {list(critical_ratios)}")
    if fixed_intervals_s < 0:
        raise WebsterError(f"yellow and all-red time must not be negative, got {fixed_intervals_s}")
    phases = len(critical_ratios)
    lost = fixed_intervals_s + startup_loss_s * phases
    total = sum(critical_ratios)
    saturated = total >= MAX_TOTAL_RATIO
    cycle = max_cycle_s if saturated else (1.5 * lost + 5.0) / (1.0 - total)
    floor = fixed_intervals_s + min_green_s * phases
    cycle = min(max(cycle, min_cycle_s, floor), max(max_cycle_s, floor))
    # Each displayed green is its start-up loss plus its share of the effective green C − L.
    shares = [y / total for y in critical_ratios] if total > 0 else [1.0 / phases] * phases
    raw = [startup_loss_s + (cycle - lost) * share for share in shares]
    greens = _at_least(cycle - fixed_intervals_s, [g / sum(raw) for g in raw], min_green_s)
    return WebsterTiming(round(cycle, 1), tuple(greens), total, lost, saturated)


def _at_least(total: float, shares: Sequence[float], minimum: float) -> list[float]:
    """Split ``total`` by ``shares``, raising any part below ``minimum`` to it and taking the
    difference from the others in proportion, so the parts still add up to ``total``."""
    fixed: dict[int, float] = {}
    while True:
        free = [i for i in range(len(shares)) if i not in fixed]
        remaining = total - sum(fixed.values())
        weight = sum(shares[i] for i in free)
        parts = {i: remaining * shares[i] / weight if weight > 0 else remaining / len(free) for i in free}
        short = [i for i, g in parts.items() if g < minimum]
        if not short:
            split = {**fixed, **parts}
            return [round(split[i], 1) for i in range(len(shares))]
        for i in short:
            fixed[i] = minimum


@dataclass(frozen=True)
class Link:
    """One controlled link of a signal: its incoming lane and the movement it belongs to."""

    from_lane: str
    from_edge: str
    to_edge: str


def is_green_phase(state: str) -> bool:
    """A phase Webster sizes: some green and no yellow (mixed phases are clearance)."""
    letters = set(state)
    return bool(letters & _GREEN) and not letters & _YELLOW


def signal_links(
    net_file: Path, additional_files: Iterable[Path] = ()
) -> dict[str, dict[int, tuple[Link, ...]]]:
    """Per tls id, per link index (position in the state string), the vehicle links it controls
    (by ``linkIndex``; walks left out), from the network model."""
    return links_of(load(net_file, additional_files))


def links_of(network: Network) -> dict[str, dict[int, tuple[Link, ...]]]:
    """:func:`signal_links` of a loaded network model."""
    result: dict[str, dict[int, tuple[Link, ...]]] = {}
    for tls_id, signal in network.signals.items():
        links: dict[int, list[Link]] = defaultdict(list)
        for c in signal.connections:
            if not c.pedestrian:
                links[c.link_index].append(Link(c.from_lane, c.from_edge, c.to_edge))
        result[tls_id] = {i: tuple(ls) for i, ls in links.items()}
    return result


def lane_flows(
    links: Mapping[int, Iterable[Link]], flows: Mapping[Movement, float]
) -> dict[tuple[str, Movement], float]:
    """The flow (veh/h) of each movement on each incoming lane of one signal: every movement's
    flow split evenly over the signal's lanes that serve it."""
    lanes_of: dict[Movement, set[str]] = defaultdict(set)
    for group in links.values():
        for link in group:
            lanes_of[(link.from_edge, link.to_edge)].add(link.from_lane)
    return {
        (lane, movement): flows.get(movement, 0.0) / len(lanes)
        for movement, lanes in lanes_of.items()
        for lane in lanes
    }


def _owners(letters: str, program: SignalPlan) -> dict[int, float]:
    """The green phases that carry a lane movement's flow, with the share each carries.

    ``letters`` is the movement's signal in each phase. Each uninterrupted green of it (which
    may span phases, as a left turn permissive in the through phase and then protected) is
    carried by the green phase where it starts: that phase has to serve the queue, and a
    protected stage that only continues a green (cologne1's left turns) has no flow of its own,
    so Webster gives it the minimum green, about what the network's designers gave it. A
    movement that turns green more than once per cycle has its flow shared among those phases
    in proportion to their durations in the program, as its designers divided it. A movement
    green all the time is not held back by the signal and loads no phase.
    """
    phases = program.phases
    n = len(phases)
    green = [letter in _GREEN for letter in letters]
    if all(green) or not any(green):
        return {}
    first_red = green.index(False)
    owners: list[int] = []
    starting = True
    for step in range(1, n + 1):
        index = (first_red + step) % n
        if not green[index]:
            starting = True
        elif starting and is_green_phase(phases[index].state):
            owners.append(index)
            starting = False
    total = sum(phases[i].duration_s for i in owners)
    shares: dict[int, float] = defaultdict(float)
    for owner in owners:
        shares[owner] += phases[owner].duration_s / total
    return dict(shares)


def critical_ratios(
    program: SignalPlan, links: Mapping[int, Iterable[Link]], flows: Mapping[Movement, float]
) -> list[float]:
    """y of each green phase of ``program`` (in phase order).

    A phase's load on a lane is the flow of the lane movements it carries (see :func:`_owners`);
    y is its largest lane load over the saturation flow. Counting each movement in one phase
    per green, rather than in every phase that shows it green, keeps the total Y from
    counting a shared lane twice.
    """
    by_lane_movement = lane_flows(links, flows)
    letters_of: dict[tuple[str, Movement], list[str]] = {}
    for index, group in links.items():
        for link in group:
            key = (link.from_lane, (link.from_edge, link.to_edge))
            states = [phase.state[index] for phase in program.phases]
            best = letters_of.setdefault(key, states)
            for i, letter in enumerate(states):  # G over g over anything else
                if letter == "G" or (letter == "g" and best[i] != "G"):
                    best[i] = letter
    load: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (lane, movement), letters in letters_of.items():
        for phase, share in _owners("".join(letters), program).items():
            load[phase][lane] += by_lane_movement.get((lane, movement), 0.0) * share
    return [
        max(load[i].values(), default=0.0) / SATURATION_VPH_PER_LANE
        for i, phase in enumerate(program.phases)
        if is_green_phase(phase.state)
    ]


def retime_signal(
    program: SignalPlan,
    network: SignalNetwork,
    links: Mapping[int, Iterable[Link]],
    flows: Mapping[Movement, float],
    rules: SafetyRules = DEFAULT_RULES,
) -> SignalPlan | None:
    """``program`` with its green phases re-timed by Webster, or None when it has no green phase."""
    ratios = critical_ratios(program, links, flows)
    if not ratios:
        return None
    fixed = sum(p.duration_s for p in program.phases if not is_green_phase(p.state))
    # A crossing's walk time is set by the phases that show it green; where the signal has
    # crossings, no green may go below the pedestrian minimum either.
    min_green = rules.min_green_s
    if network.crossing_links and rules.enforces(Rule.PEDESTRIAN_MINIMUM, program.tls_id):
        min_green = max(min_green, rules.pedestrian_min_s)
    timing = webster(
        ratios, fixed, min_green_s=min_green, min_cycle_s=rules.cycle_min_s, max_cycle_s=rules.cycle_max_s
    )
    greens = _within_cycle_limits(list(timing.greens_s), fixed, rules)
    durations = iter(greens)
    phases = tuple(
        Phase(state=p.state, duration_s=next(durations), name=p.name)
        if is_green_phase(p.state)
        else Phase(state=p.state, duration_s=p.duration_s, name=p.name)
        for p in program.phases
    )
    return SignalPlan(tls_id=program.tls_id, phases=phases, offset_s=0.0)


def _within_cycle_limits(greens: list[float], fixed: float, rules: SafetyRules) -> list[float]:
    """Webster rounds each green to 0.1 s, so their sum can miss the cycle limits by a few
    tenths; the longest green absorbs the difference."""
    total = sum(greens) + fixed
    excess = total - rules.cycle_max_s
    shortfall = rules.cycle_min_s - total
    longest = max(range(len(greens)), key=greens.__getitem__)
    if excess > _EPS:
        greens[longest] = round(greens[longest] - excess, 1)
    elif shortfall > _EPS:
        greens[longest] = round(greens[longest] + shortfall, 1)
    return greens


def webster_plan(
    scenario: Scenario, flows: Mapping[Movement, float], rules: SafetyRules = DEFAULT_RULES
) -> NetworkPlan:
    """The Webster plan of every signal of ``scenario`` for movement ``flows`` (veh/h).

    Not checked here: callers check it with :func:`optimizer.plans.safety.check` (the controller does,
    with :func:`inherited_waivers`), because which rules to waive is their decision.
    """
    model = for_scenario(scenario)
    network, links = signal_networks(model), links_of(model)
    signals = []
    for tls_id, signal in sorted(network.items()):
        if signal.program is None:
            continue
        plan = retime_signal(signal.program, signal, links.get(tls_id, {}), flows, rules)
        if plan is not None:
            signals.append(plan)
    return NetworkPlan(signals=tuple(signals), method=METHOD)


def inherited_waivers(
    network: Mapping[str, SignalNetwork], rules: SafetyRules = DEFAULT_RULES
) -> SafetyRules:
    """``rules`` plus a waiver for each (rule, signal) the network's own program already breaks.

    A re-timed program keeps the original's phase states, so a conflict the original has
    (ingolstadt7/21's gneJ210 gives two merging left turns priority at once) stays; refusing the
    new timing for it would keep the old one, which has the same conflict. Only the signals
    and rules the original breaks are waived.
    """
    programs = [signal.program for signal in network.values() if signal.program is not None]
    broken = {(violation.rule, violation.tls_id) for violation in check(programs, network, rules)}
    # A malformed original (the state rule, which cannot be waived) is left for check to report.
    return dataclasses.replace(rules, waivers=rules.waivers | {p for p in broken if p[0] is not Rule.STATE})
