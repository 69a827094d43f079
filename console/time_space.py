"""The time-space diagram of a stored plan: its signals' greens along the route they coordinate.

The route is found from the road network, not taken from the method that made the plan: the
``green-wave`` method chains its arterials from movement flows (a SUMO demand run the stored
plan does not carry, far too slow for a page), and the ``coordinated`` search has no route at
all. So the console follows the roads between the plan's signals:

- **Roads.** From each edge a plan signal lets traffic onto, the road runs straight on through
  unsignalised junctions (the out-edge that turns least, by at most :data:`MAX_BEND_DEG`)
  until it reaches the approach of a signal. A plan signal there makes a road of the route
  graph; any other signal ends it, since the plan does not time that signal.
- **Chains.** A road goes on, at the signal it reaches, along the road that a through movement
  of that signal (SUMO ``dir`` ``s``, else a half turn ``L``/``R``) joins it to. The route is
  the chain with the most signals, then the longest, then the first by signal ids.
- **Both ways.** Where roads and movements join the same signals in the opposite order, the
  route's other direction is shown too, on the same distance axis: a two-way arterial's
  diagram is read for both. Distance then grows eastwards (northwards), as on a map.

Distances run stop line to stop line: the junction crossed (the movement's internal lane) and
the road's edges. Vehicles travel at the edges' speed limits, the progression speed the
``green-wave`` method assumes (:func:`optimizer.methods.green_wave.edge_travel_times`).

Times are simulation seconds from 0, with SUMO's offsets (:func:`optimizer.plans.sumo_programs.
cycle_position`): a program is ``(t - offset) mod cycle`` seconds into its cycle at time ``t``.
A movement is green while any of its links shows ``G``/``g``, yellow while none is green and
some shows ``y``/``Y``, red otherwise. The *through band* is the departure times from a
direction's first signal at which a vehicle at the progression speed meets green at every
signal. Actuated programs are drawn with their phases' nominal durations.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, Field

from core.errors import CitybrainError
from core.settings import Settings
from optimizer.methods.green_wave import signal_movements
from optimizer.methods.webster import links_of
from optimizer.plans.model import SignalPlan
from optimizer.plans.safety import signal_networks
from optimizer.proposing import store
from sim.detectors import contract_id
from sim.network import Network, for_scenario
from sim.scenarios import network_of

#: Cycles of departures the diagram covers: enough to see the band repeat (or drift).
HORIZON_CYCLES = 3
#: The sharpest turn at an unsignalised junction that still continues the same road. Geometry
#: nodes on a bending street turn a few degrees; a side street leaves at 60-90 degrees.
MAX_BEND_DEG = 45.0
#: SUMO's movement directions a route goes on through a signal by, best first: straight,
#: then a half turn (a main road bending at the junction).
THROUGH_DIRECTIONS = ("s", "L", "R")
_GREEN = frozenset("Gg")
_YELLOW = frozenset("yY")
#: Seconds below which two times count as equal (SUMO itself works in milliseconds).
_EPS = 1e-6

Movement = tuple[str, str]
Kind = Literal["green", "yellow"]


# -- the answer ---------------------------------------------------------------------------------


class SpanOut(BaseModel):
    start_s: float
    end_s: float


class IntervalOut(SpanOut):
    kind: Kind


class RouteSignalOut(BaseModel):
    tls_id: str = Field(description="The signal's contract id, as the plan's records name it.")
    distance_m: float = Field(description="Its stop line's distance along the route's first direction.")
    arrival_s: float = Field(
        description="Travel time from the direction's first signal at the progression speed."
    )
    movement: str = Field(description="The movement the route takes through it: from edge -> to edge.")
    link_indices: list[int]
    before: list[IntervalOut] | None = Field(
        description="Green and yellow of the movement under the program running now (null: none)."
    )
    after: list[IntervalOut] = Field(description="The same under the plan.")


class BandsOut(BaseModel):
    before: list[SpanOut] | None = Field(description="Under the programs running now (null: not known).")
    after: list[SpanOut]


class DirectionOut(BaseModel):
    heading: str = Field(description="Compass direction of travel, first signal to last.")
    street: str = Field(description="The street most of the route's edges belong to ('' unnamed).")
    length_m: float
    travel_s: float
    speed_mps: float = Field(description="The progression speed: length over travel time.")
    signals: list[RouteSignalOut] = Field(description="In the order of travel.")
    bands: BandsOut = Field(
        description="Through bands: departures from the first signal that meet green everywhere."
    )


class TimeSpaceOut(BaseModel):
    scenario: str | None
    horizon_s: float | None = Field(None, description="The diagram's time axis runs from 0 to here.")
    directions: list[DirectionOut] = Field(
        default_factory=list, description="The route one way and, where it runs both ways, the other."
    )
    reason: str | None = Field(None, description="Why there is no route to show, if so.")
    before_error: str | None = Field(None, description="Why the programs running now cannot be read.")


# -- the route ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Road:
    """The edges from one signal's exit to the next signal's approach (``edges[-1]``)."""

    upstream: str
    downstream: str
    edges: tuple[str, ...]


@dataclass(frozen=True)
class Stop:
    """A signal on a route, with the movement the route takes through it."""

    tls_id: str
    movement: Movement
    link_indices: tuple[int, ...]


@dataclass(frozen=True)
class Leg:
    """One direction of a route: its signals in the order of travel, each one's stop line's
    position on the diagram's distance axis and travel time from the first one's, the edges
    driven and their length (with the junctions crossed)."""

    stops: tuple[Stop, ...]
    distances_m: tuple[float, ...]
    arrivals_s: tuple[float, ...]
    edges: tuple[str, ...]
    length_m: float


class _Graph:
    """The plan's signals and the roads between them, from the network model."""

    def __init__(self, network: Network, tls_ids: Sequence[str]) -> None:
        self.network = network
        movements = signal_movements(links_of(network))
        self.indices = {tls: movements.get(tls, {}) for tls in tls_ids}
        self.directions: dict[str, dict[Movement, str]] = defaultdict(dict)
        self.via: dict[Movement, str] = {}
        approaches: dict[str, str] = {}
        for tls_id, signal in network.signals.items():
            for c in sorted(signal.connections, key=lambda c: c.from_lane):
                if c.pedestrian:
                    continue
                approaches[c.from_edge] = tls_id
                self.directions[tls_id].setdefault((c.from_edge, c.to_edge), c.direction)
                self.via.setdefault((c.from_edge, c.to_edge), c.via)
        self.leaving: dict[str, list[str]] = defaultdict(list)
        for edge in network.normal_edges():
            self.leaving[edge.from_node].append(edge.id)
        self.roads = [
            Road(tls_id, approaches[edges[-1]], edges)
            for tls_id in tls_ids
            for exit_edge in sorted({to for _, to in self.indices[tls_id]})
            if (edges := self._road(exit_edge, approaches)) is not None
            and approaches[edges[-1]] in self.indices
            and approaches[edges[-1]] != tls_id
        ]

    def _road(self, start: str, approaches: Mapping[str, str]) -> tuple[str, ...] | None:
        edges = [start]
        while edges[-1] not in approaches:
            following = self._straight_on(edges[-1])
            if following is None or following in edges:
                return None
            edges.append(following)
        return tuple(edges)

    def _straight_on(self, edge_id: str) -> str | None:
        edge = self.network.edges[edge_id]
        heading = _heading(self._shape(edge_id), end=True)
        options = []
        for other in self.leaving[edge.to_node]:
            turn = abs((_heading(self._shape(other), end=False) - heading + 180.0) % 360.0 - 180.0)
            if turn <= MAX_BEND_DEG:
                options.append((turn, other))
        return min(options)[1] if options else None

    def _shape(self, edge_id: str) -> tuple[tuple[float, float], ...]:
        return self.network.lanes[self.network.edges[edge_id].lanes[0]].shape

    def rank(self, tls_id: str, movement: Movement) -> int | None:
        """How well ``movement`` carries a route through the signal (lower: better); None: it
        is no through movement of the signal."""
        direction = self.directions[tls_id].get(movement)
        if direction not in THROUGH_DIRECTIONS or movement not in self.indices[tls_id]:
            return None
        return THROUGH_DIRECTIONS.index(direction)

    def following(self, road: Road) -> Road | None:
        """The road ``road`` goes on along at its downstream signal, if any."""
        options = [
            (rank, other.edges, other)
            for other in self.roads
            if other.upstream == road.downstream
            and (rank := self.rank(road.downstream, (road.edges[-1], other.edges[0]))) is not None
        ]
        return min(options, key=lambda option: option[:2])[2] if options else None

    def chain(self, first: Road) -> list[Road]:
        """The roads from ``first`` on, as long as through movements join them and no signal
        comes twice."""
        chain, seen = [first], {first.upstream, first.downstream}
        while (road := self.following(chain[-1])) is not None and road.downstream not in seen:
            chain.append(road)
            seen.add(road.downstream)
        return chain

    def leg(self, chain: Sequence[Road]) -> Leg | None:
        """The route along ``chain``, with the movements onto it at its first signal and off it
        at its last (the best through movement there); None where there is none."""
        first, last = chain[0], chain[-1]
        onto = self._best(first.upstream, [m for m in self.indices[first.upstream] if m[1] == first.edges[0]])
        off = self._best(
            last.downstream, [m for m in self.indices[last.downstream] if m[0] == last.edges[-1]]
        )
        if onto is None or off is None:
            return None
        movements = [onto, *((a.edges[-1], b.edges[0]) for a, b in zip(chain, chain[1:], strict=False)), off]
        signals = [first.upstream, *(road.downstream for road in chain)]
        distances, arrivals = [0.0], [0.0]
        for movement, road in zip(movements, chain, strict=False):
            length, travel = self._crossing(movement)
            for edge_id in road.edges:
                edge = self.network.edges[edge_id]
                length, travel = length + edge.length, travel + edge.length / edge.speed
            distances.append(distances[-1] + length)
            arrivals.append(arrivals[-1] + travel)
        stops = tuple(
            Stop(tls, movement, self.indices[tls][movement])
            for tls, movement in zip(signals, movements, strict=True)
        )
        edges = tuple(edge for road in chain for edge in road.edges)
        return Leg(stops, tuple(distances), tuple(arrivals), edges, distances[-1])

    def _best(self, tls_id: str, movements: Sequence[Movement]) -> Movement | None:
        ranked = [(rank, m) for m in movements if (rank := self.rank(tls_id, m)) is not None]
        return min(ranked)[1] if ranked else None

    def _crossing(self, movement: Movement) -> tuple[float, float]:
        """Length and travel time of the junction a movement crosses (its internal lane)."""
        lane = self.network.lanes.get(self.via.get(movement, ""))
        return (0.0, 0.0) if lane is None else (lane.length, lane.length / lane.speed)

    def reverse(self, route: Leg) -> Leg | None:
        """The route's signals the other way, where roads and through movements join them so."""
        signals = [stop.tls_id for stop in reversed(route.stops)]
        chain: list[Road] = []
        for upstream, downstream in zip(signals, signals[1:], strict=False):
            options = [r for r in self.roads if r.upstream == upstream and r.downstream == downstream]
            if chain:
                options = [
                    r for r in options if self.rank(upstream, (chain[-1].edges[-1], r.edges[0])) is not None
                ]
            if not options:
                return None
            chain.append(min(options, key=lambda r: (self._length(r), r.edges)))
        return self.leg(chain)

    def _length(self, road: Road) -> float:
        return sum(self.network.edges[edge].length for edge in road.edges)


def find_route(network: Network, tls_ids: Sequence[str]) -> list[Leg]:
    """The route through the signals ``tls_ids`` (SUMO ids): its first direction, and the other
    where it runs both ways; empty when no road joins two of them (see the module)."""
    graph = _Graph(network, sorted(set(tls_ids)))
    legs = [leg for road in graph.roads if (leg := graph.leg(graph.chain(road))) is not None]
    if not legs:
        return []
    route = min(legs, key=lambda leg: (-len(leg.stops), -leg.length_m, _ids(leg)))
    back = graph.reverse(route)
    if back is None:
        return [route]
    if _heading_name(network, route) in ("westbound", "southbound"):
        route, back = back, route
    position = {stop.tls_id: d for stop, d in zip(route.stops, route.distances_m, strict=True)}
    return [route, replace(back, distances_m=tuple(position[s.tls_id] for s in back.stops))]


def _ids(leg: Leg) -> tuple[str, ...]:
    return tuple(stop.tls_id for stop in leg.stops)


def _heading(shape: Sequence[tuple[float, float]], *, end: bool) -> float:
    """Degrees (counter-clockwise from east) of a lane's first or last stretch."""
    points = list(reversed(shape)) if end else list(shape)
    x0, y0 = points[0]
    far = next(((x, y) for x, y in points[1:] if math.hypot(x - x0, y - y0) > _EPS), (x0 + 1.0, y0))
    dx, dy = far[0] - x0, far[1] - y0
    angle = math.degrees(math.atan2(dy, dx))
    return (angle + 180.0) % 360.0 if end else angle


# -- greens -------------------------------------------------------------------------------------


def _kind(state: str, links: Sequence[int]) -> Kind | None:
    letters = {state[i] for i in links if i < len(state)}
    if letters & _GREEN:
        return "green"
    return "yellow" if letters & _YELLOW else None


def movement_intervals(
    plan: SignalPlan, links: Sequence[int], horizon_s: float
) -> list[tuple[float, float, Kind]]:
    """The green and yellow intervals of the links ``links`` under ``plan`` within
    ``[0, horizon_s]``, in simulation seconds; consecutive phases of one kind make one interval."""
    cycle = plan.phase_sum_s
    starts = [sum(p.duration_s for p in plan.phases[:i]) for i in range(len(plan.phases))]
    kinds = [_kind(phase.state, links) for phase in plan.phases]
    found: list[tuple[float, float, Kind]] = []
    for n in range(
        math.floor(-plan.offset_s / cycle) - 1, math.ceil((horizon_s - plan.offset_s) / cycle) + 1
    ):
        for phase, start, kind in zip(plan.phases, starts, kinds, strict=True):
            begin = plan.offset_s + n * cycle + start
            low, high = max(begin, 0.0), min(begin + phase.duration_s, horizon_s)
            if kind is None or high - low <= _EPS:
                continue
            if found and found[-1][2] == kind and abs(found[-1][1] - low) <= _EPS:
                found[-1] = (found[-1][0], high, kind)
            else:
                found.append((low, high, kind))
    return found


def through_bands(
    greens: Sequence[Sequence[tuple[float, float]]], arrivals_s: Sequence[float], departures_s: float
) -> list[tuple[float, float]]:
    """Departure times in ``[0, departures_s]`` from the first signal at which a vehicle that
    reaches signal ``i`` ``arrivals_s[i]`` later meets one of its ``greens[i]`` every time."""
    bands = [(0.0, departures_s)]
    for intervals, arrival in zip(greens, arrivals_s, strict=True):
        shifted = [(start - arrival, end - arrival) for start, end in intervals]
        bands = [(max(a, c), min(b, d)) for a, b in bands for c, d in shifted if min(b, d) - max(a, c) > _EPS]
    return bands


# -- the diagram of a stored plan ---------------------------------------------------------------


def diagram(settings: Settings, stored: store.StoredPlan) -> TimeSpaceOut:
    """The time-space diagram of ``stored`` on its scenario's network: the route, and along it
    the plan's greens ("after") and those of the programs running now ("before"); a reason
    instead where there is no route."""
    if not stored.scenario:
        return TimeSpaceOut(scenario=None, reason=f"plan {stored.plan_id} names no scenario")
    try:
        network = for_scenario(network_of(stored.scenario, settings.sim_dir / "build"))
        plan = stored.network_plan(list(network.signals))
    except (CitybrainError, OSError) as exc:
        return TimeSpaceOut(scenario=stored.scenario, reason=f"the network of {stored.scenario}: {exc}")
    if len(plan.signals) < 2:
        return TimeSpaceOut(
            scenario=stored.scenario, reason="the plan times one signal: there is no route to coordinate"
        )
    legs = find_route(network, plan.tls_ids)
    if not legs:
        return TimeSpaceOut(
            scenario=stored.scenario,
            reason="no road joins two of the plan's signals without passing another signal",
        )
    before_error = None
    try:
        running = {tls: s.program for tls, s in signal_networks(network).items()}
    except CitybrainError as exc:
        running, before_error = {}, f"the programs of {stored.scenario}: {exc}"
    after = {signal.tls_id: signal for signal in plan.signals}
    stops = [stop.tls_id for stop in legs[0].stops]
    cycles = [after[tls].phase_sum_s for tls in stops]
    cycles += [program.phase_sum_s for tls in stops if (program := running.get(tls)) is not None]
    horizon = HORIZON_CYCLES * max(cycles) + max(leg.arrivals_s[-1] for leg in legs)
    return TimeSpaceOut(
        scenario=stored.scenario,
        horizon_s=round(horizon, 1),
        directions=[_direction(network, leg, after, running, horizon) for leg in legs],
        before_error=before_error,
    )


def _direction(
    network: Network,
    leg: Leg,
    after: Mapping[str, SignalPlan],
    running: Mapping[str, SignalPlan | None],
    horizon_s: float,
) -> DirectionOut:
    signals = []
    now: list[list[tuple[float, float, Kind]] | None] = []
    planned: list[list[tuple[float, float, Kind]]] = []
    for stop, distance, arrival in zip(leg.stops, leg.distances_m, leg.arrivals_s, strict=True):
        program = running.get(stop.tls_id)
        now.append(None if program is None else movement_intervals(program, stop.link_indices, horizon_s))
        planned.append(movement_intervals(after[stop.tls_id], stop.link_indices, horizon_s))
        signals.append(
            RouteSignalOut(
                tls_id=contract_id(stop.tls_id),
                distance_m=round(distance, 1),
                arrival_s=round(arrival, 1),
                movement=f"{stop.movement[0]}->{stop.movement[1]}",
                link_indices=list(stop.link_indices),
                before=None if now[-1] is None else _intervals(now[-1]),
                after=_intervals(planned[-1]),
            )
        )
    names = Counter(network.edges[edge].name for edge in leg.edges if network.edges[edge].name)
    travel = leg.arrivals_s[-1]
    known = [intervals for intervals in now if intervals is not None]
    return DirectionOut(
        heading=_heading_name(network, leg),
        street=names.most_common(1)[0][0] if names else "",
        length_m=round(leg.length_m, 1),
        travel_s=round(travel, 1),
        speed_mps=round(leg.length_m / travel, 2),
        signals=signals,
        bands=BandsOut(
            before=_bands(known, leg, horizon_s) if len(known) == len(leg.stops) else None,
            after=_bands(planned, leg, horizon_s),
        ),
    )


def _bands(
    intervals: Sequence[Sequence[tuple[float, float, Kind]]], leg: Leg, horizon_s: float
) -> list[SpanOut]:
    """The leg's through bands under one set of programs, for departures early enough that the
    whole route is driven within the horizon."""
    greens = [[(a, b) for a, b, kind in found if kind == "green"] for found in intervals]
    bands = through_bands(greens, leg.arrivals_s, horizon_s - leg.arrivals_s[-1])
    return [SpanOut(start_s=round(a, 1), end_s=round(b, 1)) for a, b in bands]


def _intervals(found: Sequence[tuple[float, float, Kind]]) -> list[IntervalOut]:
    return [IntervalOut(start_s=round(a, 1), end_s=round(b, 1), kind=kind) for a, b, kind in found]


def _heading_name(network: Network, leg: Leg) -> str:
    """``eastbound`` and the like, from the first edge's start to the last edge's end."""
    (x0, y0), (x1, y1) = (
        network.lanes[network.edges[leg.edges[0]].lanes[0]].shape[0],
        network.lanes[network.edges[leg.edges[-1]].lanes[0]].shape[-1],
    )
    angle = math.degrees(math.atan2(y1 - y0, x1 - x0)) % 360.0
    return ("eastbound", "northbound", "westbound", "southbound")[int(((angle + 45.0) % 360.0) // 90.0)]
