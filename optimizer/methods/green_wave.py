"""The ``green-wave`` method: one common cycle, Webster splits, and offsets along the main routes.

Webster (:mod:`optimizer.methods.webster`) times each junction alone, each at its own cycle, so
the greens of neighbouring signals drift against each other and a platoon released by one
green meets the next signal at any point of its cycle. A green wave fixes that in three steps:

1. **Common cycle.** Signals can only stay in step if they share one cycle. The common cycle
   is the largest Webster cycle of any signal (its optimum for the demand, clamped to the
   rules' 40–180 s): a shorter one would overload the most critical junction, and a longer
   cycle costs the others less than a shorter one costs it. Every signal's green phases are
   then re-timed by Webster at that cycle (:func:`retime_at_cycle`), keeping its phases,
   their order and its clearance intervals.
2. **Main routes.** Signals are joined by :class:`RoadLink`\\ s: the edges from one signal's
   exit to the next signal's approach, through any unsignalised junctions, weighted by the
   flow that can use all of them (:func:`road_links`). :func:`arterials` chains the links into
   arterials greedily: from the heaviest unused link it follows, at each signal, the heaviest
   movement onto a further unused link, forwards and backwards, and the chains are ranked by
   the flow they carry from signal to signal.
3. **Offsets.** Arterials are taken heaviest first; each signal's offset is set once, by the
   first arterial that reaches it (:func:`progression_offsets`). Along an arterial, the green
   of the arterial's movement at the next signal starts one travel time (link length over its
   speed limit, or a given progression speed) after the green at the one before: a vehicle at
   the head of the platoon meets green all the way.

Offsets follow SUMO. At simulation time ``t`` a fixed-time program is ``(t - offset) mod C``
seconds into its cycle of length ``C``: the tlLogic ``offset`` is "the initial time offset of
the program", and SUMO's loader (``NLJunctionControlBuilder``: "a positive offset delays all
phases by x") starts the program ``(now - offset) mod C`` seconds in; so does
:func:`optimizer.plans.sumo_programs.cycle_position`, whose tests check it against libsumo. The phase
starting ``g`` seconds into the cycle therefore starts at the times ``offset + g (mod C)``,
and for a platoon leaving signal A at the start of its green and arriving ``τ`` seconds
later at signal B on the start of B's green::

    offset_B + g_B ≡ offset_A + g_A + τ   (mod C)

Signals no arterial reaches keep offset 0. A network with one signal gets its Webster plan
(at its own cycle, offset 0): there is nothing to coordinate. Signals with no green phase
(or no program) are left out, as Webster leaves them, and no route is coordinated through
them: they keep their own program and cycle. A junction group under one traffic light whose
inner edges are themselves approaches (none in the RESCO nets or ours) is not chained through
either: a link ends at the first approach edge it meets, and one that ends at its own signal
is dropped.

Like :func:`optimizer.methods.webster.webster_plan`, the plan is not checked here: callers check it
with :func:`optimizer.plans.safety.enforce` and :func:`optimizer.methods.webster.inherited_waivers`.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from optimizer.methods.webster import DEFAULT_RULES, Link, links_of, retime_signal
from optimizer.plans.model import NetworkPlan, SignalPlan
from optimizer.plans.safety import SafetyRules, SignalNetwork, signal_networks
from sim.network import for_scenario, load
from sim.scenarios import Scenario

METHOD = "green-wave"
_GREEN = frozenset("Gg")
#: Seconds below which two times count as equal (SUMO itself works in milliseconds).
_EPS = 1e-6

Movement = tuple[str, str]


@dataclass(frozen=True)
class RoadLink:
    """The road from signal ``upstream`` to signal ``downstream``.

    ``edges`` run from an edge ``upstream`` lets traffic onto to an edge approaching
    ``downstream``, through unsignalised junctions only. ``flow_vph`` is the most traffic that
    can use the whole road: the least of what ``upstream`` sends onto its first edge, each
    movement between its edges, and what leaves its last edge through ``downstream``.
    ``travel_s`` is the time to drive its edges.
    """

    upstream: str
    downstream: str
    edges: tuple[str, ...]
    flow_vph: float
    travel_s: float

    @property
    def exit_edge(self) -> str:
        return self.edges[0]

    @property
    def approach_edge(self) -> str:
        return self.edges[-1]


@dataclass(frozen=True)
class Arterial:
    """A chain of signals along a main route.

    ``links`` are consecutive (each starts at the signal the one before ends at);
    ``movements`` holds, for each signal in :attr:`signals`, the movement (from edge, to edge)
    the route takes through it, whose green the wave lines up. ``weight_vph`` sums, link by
    link, the flow that goes on along the route: a link's flow, capped at the flow of the
    movement that joins it to the chain.
    """

    links: tuple[RoadLink, ...]
    movements: tuple[Movement, ...]
    weight_vph: float

    @property
    def signals(self) -> tuple[str, ...]:
        return (self.links[0].upstream, *(link.downstream for link in self.links))


def signal_movements(
    tls_links: Mapping[str, Mapping[int, Iterable[Link]]],
) -> dict[str, dict[Movement, tuple[int, ...]]]:
    """Per signal, each movement it controls and the link indices (state positions) serving it.

    ``tls_links`` is :func:`optimizer.methods.webster.signal_links` of the net.
    """
    result: dict[str, dict[Movement, tuple[int, ...]]] = {}
    for tls_id, links in tls_links.items():
        indices: dict[Movement, set[int]] = defaultdict(set)
        for index, group in links.items():
            for link in group:
                indices[(link.from_edge, link.to_edge)].add(index)
        result[tls_id] = {movement: tuple(sorted(i)) for movement, i in indices.items()}
    return result


def road_links(
    tls_links: Mapping[str, Mapping[int, Iterable[Link]]],
    flows: Mapping[Movement, float],
    edge_travel_s: Mapping[str, float],
) -> list[RoadLink]:
    """Every road from one signal to another that some traffic uses, found from the flows.

    From each edge a signal sends traffic onto, the widest path (the one whose least movement
    flow is largest) to each approach edge of another signal is followed through the
    movements with flow: that is the way the traffic between the two signals mostly goes, and
    its least flow bounds how much of it drives the whole way. Sorted heaviest first.
    """
    approach_of: dict[str, str] = {}
    sent: dict[tuple[str, str], float] = defaultdict(float)
    taken: dict[tuple[str, str], float] = defaultdict(float)
    for tls_id, movements in signal_movements(tls_links).items():
        for from_edge, to_edge in movements:
            approach_of[from_edge] = tls_id
            flow = flows.get((from_edge, to_edge), 0.0)
            sent[(tls_id, to_edge)] += flow
            taken[(tls_id, from_edge)] += flow
    onward: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (from_edge, to_edge), flow in sorted(flows.items()):
        if flow > 0:
            onward[from_edge].append((to_edge, flow))
    links = []
    for (tls_id, exit_edge), flow in sorted(sent.items()):
        if flow <= 0:
            continue
        for end, (width, edges) in _widest_paths(exit_edge, flow, onward, approach_of).items():
            downstream = approach_of[end]
            through = min(width, taken[(downstream, end)])
            if downstream != tls_id and through > 0:
                travel = sum(edge_travel_s[edge] for edge in edges)
                links.append(RoadLink(tls_id, downstream, edges, through, travel))
    return sorted(links, key=_link_order)


def _link_order(link: RoadLink) -> tuple[float, str, str, tuple[str, ...]]:
    return (-link.flow_vph, link.upstream, link.downstream, link.edges)


def _widest_paths(
    start: str,
    capacity: float,
    onward: Mapping[str, list[tuple[str, float]]],
    approach_of: Mapping[str, str],
) -> dict[str, tuple[float, tuple[str, ...]]]:
    """From ``start``, the widest path to each approach edge reachable without passing one.

    Dijkstra with "least flow so far" for distance and the largest first; ``capacity`` is
    what enters ``start``. Approach edges end a path (the next signal is reached there).
    """
    best = {start: capacity}
    before: dict[str, str] = {}
    heap = [(-capacity, start)]
    done: set[str] = set()
    found: dict[str, tuple[float, tuple[str, ...]]] = {}
    while heap:
        negative, edge = heapq.heappop(heap)
        if edge in done:
            continue
        done.add(edge)
        if edge in approach_of:
            path = [edge]
            while path[-1] in before:
                path.append(before[path[-1]])
            found[edge] = (-negative, tuple(reversed(path)))
            continue
        for following, flow in onward.get(edge, ()):
            width = min(-negative, flow)
            if following not in done and width > best.get(following, 0.0):
                best[following] = width
                before[following] = edge
                heapq.heappush(heap, (-width, following))
    return found


def arterials(
    links: Iterable[RoadLink],
    flows: Mapping[Movement, float],
    movements: Mapping[str, Mapping[Movement, tuple[int, ...]]],
) -> list[Arterial]:
    """The links chained into arterials, heaviest first; every link belongs to one arterial.

    From the heaviest link not yet used, the chain grows at its end by the unused link that the
    heaviest movement through the end signal leads onto, and at its start the same way
    backwards, never visiting a signal twice, until no movement with flow continues it.
    ``movements`` is :func:`signal_movements`: a join must be a movement of its signal.
    """
    ordered = sorted(links, key=_link_order)
    by_upstream: dict[str, list[RoadLink]] = defaultdict(list)
    by_downstream: dict[str, list[RoadLink]] = defaultdict(list)
    for link in ordered:
        by_upstream[link.upstream].append(link)
        by_downstream[link.downstream].append(link)

    def joining(into: RoadLink, out: RoadLink) -> float:
        movement = (into.approach_edge, out.exit_edge)
        return flows.get(movement, 0.0) if movement in movements.get(into.downstream, {}) else 0.0

    unused = set(ordered)
    chains = []
    for seed in ordered:
        if seed not in unused:
            continue
        unused.discard(seed)
        chain, weight, visited = [seed], seed.flow_vph, {seed.upstream, seed.downstream}
        while True:
            last = chain[-1]
            options = [
                (joining(last, link), link)
                for link in by_upstream[last.downstream]
                if link in unused and link.downstream not in visited
            ]
            joined, link = max(options, key=lambda option: option[0], default=(0.0, None))
            if link is None or joined <= 0:
                break
            chain.append(link)
            unused.discard(link)
            visited.add(link.downstream)
            weight += min(joined, link.flow_vph)
        while True:
            first = chain[0]
            options = [
                (joining(link, first), link)
                for link in by_downstream[first.upstream]
                if link in unused and link.upstream not in visited
            ]
            joined, link = max(options, key=lambda option: option[0], default=(0.0, None))
            if link is None or joined <= 0:
                break
            chain.insert(0, link)
            unused.discard(link)
            visited.add(link.upstream)
            weight += min(joined, link.flow_vph)
        chains.append(_arterial(chain, weight, flows, movements))
    return sorted(chains, key=lambda a: (-a.weight_vph, a.signals))


def _arterial(
    chain: list[RoadLink],
    weight: float,
    flows: Mapping[Movement, float],
    movements: Mapping[str, Mapping[Movement, tuple[int, ...]]],
) -> Arterial:
    """The arterial of a chain, with its movement through each signal: at the ends, where the
    route has no movement of its own, the heaviest movement onto (or off) the route."""
    first, last = chain[0], chain[-1]
    onto = [m for m in sorted(movements[first.upstream]) if m[1] == first.exit_edge]
    off = [m for m in sorted(movements[last.downstream]) if m[0] == last.approach_edge]
    inner = [(a.approach_edge, b.exit_edge) for a, b in zip(chain, chain[1:], strict=False)]
    heaviest = functools.partial(max, key=lambda m: flows.get(m, 0.0))
    return Arterial(tuple(chain), (heaviest(onto), *inner, heaviest(off)), weight)


def green_start(plan: SignalPlan, link_indices: Iterable[int]) -> float | None:
    """Seconds into ``plan``'s cycle at which the green of the given links starts.

    A link may turn green more than once per cycle; the longest green (the one that serves a
    platoon best) counts, the earliest of equally long ones. None when the links are green
    throughout or never: no start to line up (any offset suits them).
    """
    phases = plan.phases
    starts = [sum(p.duration_s for p in phases[:i]) for i in range(len(phases))]
    best: tuple[float, float] | None = None  # (green duration, -start): larger is better
    for index in sorted(link_indices):
        green = [phase.state[index] in _GREEN for phase in phases]
        if all(green) or not any(green):
            continue
        for i, is_green in enumerate(green):
            if not is_green or green[i - 1]:
                continue  # not where a green starts (green[-1] is the cycle's last phase)
            duration, j = 0.0, i
            while green[j % len(phases)]:
                duration += phases[j % len(phases)].duration_s
                j += 1
            candidate = (duration, -starts[i])
            if best is None or candidate > best:
                best = candidate
    return None if best is None else -best[1]


def wrap_offset(seconds: float, cycle_s: float) -> float:
    """``seconds`` modulo the cycle, to a tenth of a second, within ``[0, cycle)``."""
    value = round(seconds % cycle_s, 1)
    return 0.0 if value >= cycle_s - _EPS else value


def downstream_offset(
    offset_a: float, green_a: float, travel_s: float, green_b: float, cycle_s: float
) -> float:
    """B's offset so that its green (``green_b`` s into its cycle) starts ``travel_s`` after A's
    (``green_a`` s into A's cycle, A at ``offset_a``): ``offset_A + g_A + τ − g_B (mod C)``."""
    return wrap_offset(offset_a + green_a + travel_s - green_b, cycle_s)


def upstream_offset(
    offset_b: float, green_b: float, travel_s: float, green_a: float, cycle_s: float
) -> float:
    """A's offset so that B's green (B at ``offset_b``) starts ``travel_s`` after A's: the same
    relation as :func:`downstream_offset`, solved for A (an arterial reached in its middle)."""
    return wrap_offset(offset_b + green_b - travel_s - green_a, cycle_s)


def progression_offsets(
    plans: Mapping[str, SignalPlan],
    routes: Iterable[Arterial],
    movements: Mapping[str, Mapping[Movement, tuple[int, ...]]],
    cycle_s: float,
) -> dict[str, float]:
    """The offset of every signal on some arterial; arterials in the order given (heaviest first).

    Each signal's offset is set once, by the first arterial that reaches it. An arterial none of
    whose signals is set yet starts its first signal at 0. Otherwise its first set signal
    anchors it: the signals after it follow downstream, each from the one before (set earlier
    or just now), and those before it are solved upstream. Every signal of ``routes`` must have
    a plan, at ``cycle_s``.
    """
    offsets: dict[str, float] = {}
    for route in routes:
        signals = route.signals
        # A movement green throughout (or never) has no start to line up: any offset suits it.
        starts = [
            green_start(plans[s], movements[s][m]) for s, m in zip(signals, route.movements, strict=True)
        ]
        greens = [0.0 if start is None else start for start in starts]
        anchor = next((i for i, s in enumerate(signals) if s in offsets), 0)
        offsets.setdefault(signals[anchor], 0.0)
        for i in range(anchor + 1, len(signals)):
            if signals[i] not in offsets:
                travel = route.links[i - 1].travel_s
                start = offsets[signals[i - 1]]
                offsets[signals[i]] = downstream_offset(start, greens[i - 1], travel, greens[i], cycle_s)
        for i in range(anchor - 1, -1, -1):
            if signals[i] not in offsets:
                travel = route.links[i].travel_s
                start = offsets[signals[i + 1]]
                offsets[signals[i]] = upstream_offset(start, greens[i + 1], travel, greens[i], cycle_s)
    return offsets


def common_cycle(plans: Iterable[SignalPlan], rules: SafetyRules = DEFAULT_RULES) -> float:
    """The largest cycle of the (Webster) plans, within the rules' cycle limits, to 0.1 s (as
    Webster's cycles are: the sum of a plan's phases may be off by float rounding)."""
    longest = round(max(plan.cycle_s for plan in plans), 1)
    return min(max(longest, rules.cycle_min_s), rules.cycle_max_s)


def retime_at_cycle(
    program: SignalPlan,
    network: SignalNetwork,
    links: Mapping[int, Iterable[Link]],
    flows: Mapping[Movement, float],
    cycle_s: float,
    rules: SafetyRules = DEFAULT_RULES,
) -> SignalPlan | None:
    """``program`` re-timed by Webster with its cycle fixed at ``cycle_s``.

    Webster's cycle is clamped to the rules' limits, so limits both at ``cycle_s`` fix it there
    and the greens split what is left of it by their critical ratios. ``cycle_s`` must be at
    least the signal's own Webster cycle (the common cycle is), which is never below its
    yellows, all-reds and minimum greens.
    """
    fixed = dataclasses.replace(rules, cycle_min_s=cycle_s, cycle_max_s=cycle_s)
    return retime_signal(program, network, links, flows, fixed)


def edge_travel_times(net_file: Path, speed_mps: float | None = None) -> dict[str, float]:
    """Seconds to drive each edge of the net: its length over its speed limit, or over
    ``speed_mps`` when given (a progression speed below the limit suits platoons that rarely
    reach it). Junctions' internal lanes (a few metres each) are left out, as is the platoon's
    start from standstill: both shift a wave by a second or two. From the network model."""
    if speed_mps is not None and speed_mps <= 0:
        raise ValueError(f"the progression speed must be positive, got {speed_mps} m/s")
    return {edge.id: edge.length / (speed_mps or edge.speed) for edge in load(net_file).normal_edges()}


def green_wave_plan(
    scenario: Scenario,
    flows: Mapping[Movement, float],
    rules: SafetyRules | None = None,
    *,
    progression_speed_mps: float | None = None,
) -> NetworkPlan:
    """The green-wave plan of every signal of ``scenario`` for movement ``flows`` (veh/h).

    See the module for the method. ``rules`` gives the cycle limits and minimum greens
    (default :class:`~optimizer.plans.safety.SafetyRules`); ``progression_speed_mps`` replaces each
    edge's speed limit in the travel times. A signal whose own Webster cycle is the common one
    keeps its Webster timing exactly.
    """
    rules = DEFAULT_RULES if rules is None else rules
    model = for_scenario(scenario)
    network, tls_links = signal_networks(model), links_of(model)
    own = {
        tls_id: retime_signal(signal.program, signal, tls_links.get(tls_id, {}), flows, rules)
        for tls_id, signal in sorted(network.items())
        if signal.program is not None
    }
    webster = {tls_id: plan for tls_id, plan in own.items() if plan is not None}
    if not webster:
        return NetworkPlan(signals=(), method=METHOD)
    cycle = common_cycle(webster.values(), rules)
    plans: dict[str, SignalPlan] = {}
    for tls_id, plan in webster.items():
        if abs(plan.cycle_s - cycle) > _EPS:
            signal = network[tls_id]
            assert signal.program is not None  # only signals with a program were re-timed
            plan = retime_at_cycle(signal.program, signal, tls_links.get(tls_id, {}), flows, cycle, rules)
            assert plan is not None  # it has green phases: it was re-timed once already
        plans[tls_id] = plan
    movements = signal_movements(tls_links)
    travel = edge_travel_times(scenario.net_file, progression_speed_mps)
    links = [
        link
        for link in road_links(tls_links, flows, travel)
        if link.upstream in plans and link.downstream in plans
    ]
    offsets = progression_offsets(plans, arterials(links, flows, movements), movements, cycle)
    signals = tuple(dataclasses.replace(plan, offset_s=offsets.get(tls, 0.0)) for tls, plan in plans.items())
    return NetworkPlan(signals=signals, method=METHOD)
