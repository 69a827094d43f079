"""Lane and road closures in a scenario: which lanes can close, and the scenario with them closed.

An incident takes road capacity: one or more lanes of an edge, or the whole edge. What a plan
for the incident is judged on is the scenario as it runs while that capacity is gone, with
drivers diverting as they would. :func:`incident_scenario` writes that scenario beside the
original, without touching it:

- the closure is a SUMO rerouter with a ``closingLaneReroute`` per closed lane (or a
  ``closingReroute`` for the whole edge) over the closure's interval; SUMO takes the lanes'
  permissions away for every vehicle class at the interval's start and gives them back at its
  end, and reroutes the vehicles that reach the rerouter's edges and need the closed road;
- rerouting is on for every vehicle (``device.rerouting``, every :data:`REROUTING_PERIOD_S`
  seconds on the travel times it sees), so traffic also diverts from the queue the closure
  makes, not only from the closed road itself.

The rerouter's trigger edges are the closed edge and every edge that leads into it up to
:data:`UPSTREAM_EDGES` edges back: a vehicle learns of the closure early enough to take
another road, as it would from a sign or a navigation app.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError
from sim.network import read_sumolib
from sim.scenarios import Scenario, from_sumocfg
from sim.xml_files import element, render

if TYPE_CHECKING:
    import sumolib.net

#: How often every vehicle looks for a faster route while an incident is on (SUMO's
#: ``device.rerouting.period``; its default 0 never reroutes).
REROUTING_PERIOD_S = 60
#: How many edges back from the closure a driver learns of it.
UPSTREAM_EDGES = 3
#: The configuration file an incident scenario is written to, in its own folder.
SUMOCFG_FILE = "incident.sumocfg"
CLOSURE_FILE = "closure.add.xml"


class ClosureError(CitybrainError, ValueError):
    """A closure names an edge or lane the network does not have; the message says which."""


@dataclass(frozen=True)
class Closure:
    """Road capacity taken away: ``lane_ids`` of ``edge_id`` (all its lanes when empty), from
    ``begin_s`` to ``end_s`` in simulation seconds."""

    edge_id: str
    lane_ids: tuple[str, ...]
    begin_s: float
    end_s: float

    @property
    def whole_edge(self) -> bool:
        return not self.lane_ids

    def label(self) -> str:
        what = f"edge {self.edge_id}" if self.whole_edge else f"lane(s) {', '.join(self.lane_ids)}"
        return f"{what} closed {self.begin_s:g}–{self.end_s:g} s"


def closable_lanes(net: sumolib.net.Net, vclass: str = "passenger") -> list[str]:
    """Lanes that can be closed without stranding anyone: sorted lane ids.

    A lane qualifies when its edge keeps at least one other lane for ``vclass``, every edge it
    leads to is also reached from another lane of its edge, and every edge that feeds it also
    feeds another lane of its edge. With teleporting off, closing any other lane could strand
    vehicles whose route needs it, and gridlock the scenario.
    """
    result = []
    for edge in net.getEdges():
        if edge.getFunction() == "internal":
            continue
        lanes = [lane for lane in edge.getLanes() if lane.allows(vclass)]
        if len(lanes) < 2:
            continue
        incoming = edge.getIncoming()  # {from_edge: [connections into this edge]}
        for lane in lanes:
            others = [other for other in lanes if other is not lane]
            reached = {c.getTo().getID() for other in others for c in other.getOutgoing()}
            if not {c.getTo().getID() for c in lane.getOutgoing()} <= reached:
                continue
            if all(
                any(c.getToLane() in others for c in connections)
                for connections in incoming.values()
                if any(c.getToLane() is lane for c in connections)
            ):
                result.append(lane.getID())
    return sorted(result)


def check_closure(net: sumolib.net.Net, closure: Closure) -> None:
    """Refuse a closure of an edge or lane the network does not have, or a lane of another edge."""
    if not net.hasEdge(closure.edge_id):
        raise ClosureError(f"the network has no edge {closure.edge_id!r}")
    lanes = {lane.getID() for lane in net.getEdge(closure.edge_id).getLanes()}
    foreign = sorted(set(closure.lane_ids) - lanes)
    if foreign:
        raise ClosureError(f"edge {closure.edge_id} has lanes {sorted(lanes)}, not {foreign}")
    if closure.end_s <= closure.begin_s:
        raise ClosureError(f"a closure must end after it begins ({closure.begin_s:g}–{closure.end_s:g} s)")


def upstream_edges(net: sumolib.net.Net, edge_id: str, depth: int = UPSTREAM_EDGES) -> list[str]:
    """``edge_id`` and the edges leading into it up to ``depth`` edges back, nearest first."""
    found = [edge_id]
    frontier = [net.getEdge(edge_id)]
    for _ in range(depth):
        frontier = [
            incoming
            for edge in frontier
            for incoming in edge.getIncoming()
            if incoming.getFunction() != "internal" and incoming.getID() not in found
        ]
        for edge in frontier:
            if edge.getID() not in found:
                found.append(edge.getID())
    return found


def closure_xml(net: sumolib.net.Net, closure: Closure) -> str:
    """The additional file that closes the lanes (or the edge) over the closure's interval."""
    check_closure(net, closure)
    root = element(None, "additional", {})
    rerouter = element(
        root,
        "rerouter",
        {
            "id": f"citybrain_closure_{closure.edge_id}",
            "edges": " ".join(upstream_edges(net, closure.edge_id)),
        },
    )
    interval = element(rerouter, "interval", {"begin": f"{closure.begin_s:g}", "end": f"{closure.end_s:g}"})
    if closure.whole_edge:
        element(interval, "closingReroute", {"id": closure.edge_id, "disallow": "all"})
    for lane_id in closure.lane_ids:
        element(interval, "closingLaneReroute", {"id": lane_id, "disallow": "all"})
    return render(root, comment=f"citybrain: {closure.label()}")


def _absolute(sumocfg: Path, value: str) -> str:
    return ",".join(
        str((sumocfg.parent / part).resolve()) for part in value.replace(" ", ",").split(",") if part
    )


def incident_scenario(
    scenario: Scenario, closure: Closure, folder: Path, name: str | None = None
) -> Scenario:
    """``scenario`` with ``closure`` in force and every vehicle rerouting, written to ``folder``
    (its configuration copied with every file path made absolute, the closure added to its
    additional files). The window is ``scenario``'s; shorten it with :func:`with_window`."""
    net = read_sumolib(scenario.net_file)
    folder.mkdir(parents=True, exist_ok=True)
    closure_file = (folder / CLOSURE_FILE).resolve()  # SUMO reads a relative path from the .sumocfg's folder
    closure_file.write_text(closure_xml(net, closure), encoding="utf-8")
    root = ET.parse(scenario.sumocfg).getroot()
    inputs = root.find("input")
    if inputs is None:
        inputs = element(root, "input", {})
    for option in inputs:
        if option.tag.endswith("-files") or option.tag.endswith("-file"):
            option.set("value", _absolute(scenario.sumocfg, option.get("value", "")))
    additional = inputs.find("additional-files")
    if additional is None:
        additional = element(inputs, "additional-files", {"value": ""})
    additional.set("value", ",".join(p for p in (additional.get("value", ""), str(closure_file)) if p))
    routing = root.find("routing")
    if routing is None:
        routing = element(root, "routing", {})
    for option, value in (
        ("device.rerouting.probability", "1"),
        ("device.rerouting.period", str(REROUTING_PERIOD_S)),
    ):
        found = routing.find(option)
        if found is None:
            found = element(routing, option, {})
        found.set("value", value)
    sumocfg = folder / SUMOCFG_FILE
    sumocfg.write_text(render(root), encoding="utf-8")
    found_scenario = from_sumocfg(sumocfg, name or f"{scenario.name}+incident", scenario.source)
    return dataclasses.replace(found_scenario, begin=scenario.begin, end=scenario.end)


def with_window(scenario: Scenario, begin: int, end: int) -> Scenario:
    """``scenario`` run over [begin, end) instead of its own window (which it must contain)."""
    if not scenario.begin <= begin < end <= scenario.end:
        raise ClosureError(
            f"window {begin}–{end} s is not inside {scenario.name}'s {scenario.begin}–{scenario.end} s"
        )
    return dataclasses.replace(scenario, begin=begin, end=end)


def lanes_entered(lanes_file: Path) -> dict[str, float]:
    """Vehicles that entered each lane, from a run's lane totals (``laneData``)."""
    return {
        lane.get("id", ""): float(lane.get("entered", 0))
        for lane in ET.parse(lanes_file).getroot().iter("lane")
    }


def sumo_lane_ids(net: sumolib.net.Net, edge_id: str, lane_ids: Sequence[str]) -> tuple[str, ...]:
    """The lanes of a report as the network names them, every lane of the edge when none given
    and the edge's lanes all listed (a whole closure is an edge closure)."""
    lanes = tuple(lane.getID() for lane in net.getEdge(edge_id).getLanes())
    chosen = tuple(lane for lane in lanes if lane in set(lane_ids))
    return () if not chosen or chosen == lanes else chosen
