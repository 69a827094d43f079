"""The road-network model: a SUMO ``.net.xml`` read once, through sumolib, into plain values.

Every part of the project that needs the network (detectors, the lake's map-matching, the safety
rules, the optimisation methods, regions) reads it here: :func:`load` parses a net with sumolib's
``readNet`` (right of way, pedestrian links and programs included) and keeps the result per file
and modification time in the process. The :class:`Network` holds frozen dataclasses, tuples and a
:class:`~sim.geo.NetProjection`, never sumolib objects, so it pickles: Spark ships it to workers
and forked processes inherit it.

A scenario's configuration may load further signal programs from its additional files;
:func:`load` given them (:func:`for_scenario` does) lets each ``<tlLogic>`` there replace the
net's program of the same signal and program id, or join it, and become the one that runs, as
SUMO runs the program loaded last.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError
from sim.geo import NetProjection
from sim.sumo_home import ensure_sumo_home

if TYPE_CHECKING:
    import sumolib.net

    from sim.scenarios import Scenario

#: Edge functions of the pedestrian areas inside a junction; links to or from them are walks.
PEDESTRIAN_FUNCTIONS = frozenset({"crossing", "walkingarea"})


class NetworkError(CitybrainError, ValueError):
    """A network (or additional) file that cannot be read; the message names it."""


class NetworkNotFound(NetworkError, FileNotFoundError):
    """A network file that does not exist."""


@dataclass(frozen=True)
class Lane:
    id: str
    edge: str
    index: int
    length: float
    speed: float
    #: Vehicle classes allowed on the lane (SUMO's ``allow``/``disallow`` resolved).
    allowed: frozenset[str]
    #: x/y of the lane's centre line, network metres.
    shape: tuple[tuple[float, float], ...]

    def allows(self, vclass: str) -> bool:
        return vclass in self.allowed


@dataclass(frozen=True)
class Edge:
    id: str
    #: SUMO's function: ``""`` for a normal road, ``internal``, ``crossing``, ``walkingarea``.
    function: str
    from_node: str
    to_node: str
    #: Length and speed limit as sumolib gives them (its first lane's length, its lanes' top speed).
    length: float
    speed: float
    lanes: tuple[str, ...]
    #: The street's name, where the net has one.
    name: str = ""

    @property
    def normal(self) -> bool:
        return self.function == ""


@dataclass(frozen=True)
class Connection:
    """One link from a lane to a lane, with its signal (if any) and its place in the junction logic."""

    from_edge: str
    from_lane: str
    to_edge: str
    to_lane: str
    via: str
    direction: str
    state: str
    tls_id: str = ""
    link_index: int = -1
    link_index2: int = -1
    #: The junction whose right of way governs the link, and the link's row in its logic (-1: none).
    junction: str = ""
    request: int = -1
    #: A walk: from or to a crossing or walking area.
    pedestrian: bool = False
    #: From or to a crossing: a signal's pedestrian link, with a walk time rather than a yellow.
    crossing: bool = False

    @property
    def label(self) -> str:
        """``from_lane->to_lane``, how a signal link is named to a person."""
        return f"{self.from_lane}->{self.to_lane}"


@dataclass(frozen=True)
class Junction:
    """A junction's right-of-way logic: per request (row), its foes and the links it yields to.

    Rows are SUMO's ``<request>`` bit strings, highest index first, as sumolib keeps them.
    """

    id: str
    type: str
    foes: tuple[str, ...] = ()
    response: tuple[str, ...] = ()
    #: x/y of the junction's centre, network metres.
    position: tuple[float, float] | None = None

    def conflict(self, a: int, b: int) -> bool:
        """Whether requests ``a`` and ``b`` conflict."""
        row = self.foes[a]
        return row[len(row) - 1 - b] == "1"

    def must_yield(self, a: int, b: int) -> bool:
        """Whether request ``a`` yields to request ``b``."""
        row = self.response[a]
        return row[len(row) - 1 - b] == "1"


@dataclass(frozen=True)
class Phase:
    state: str
    duration: float
    #: -1 when the file does not set them.
    min_dur: float = -1.0
    max_dur: float = -1.0
    name: str = ""
    next: tuple[int, ...] = ()


@dataclass(frozen=True)
class Program:
    tls_id: str
    program_id: str
    type: str
    offset: float
    phases: tuple[Phase, ...]
    #: Where it was loaded from: the net or an additional file.
    source: str = ""


@dataclass(frozen=True)
class Signal:
    """A traffic light: its controlled connections (file order) and its programs (load order)."""

    id: str
    connections: tuple[Connection, ...]
    programs: tuple[Program, ...] = ()

    @property
    def program(self) -> Program | None:
        """The program SUMO runs: the one loaded last."""
        return self.programs[-1] if self.programs else None

    @property
    def link_count(self) -> int:
        """Letters of a state string: one more than the highest link index."""
        return 1 + max((max(c.link_index, c.link_index2) for c in self.connections), default=-1)

    def links(self, *, pedestrian: bool = True) -> dict[int, tuple[Connection, ...]]:
        """Per link index, the connections it controls (``linkIndex`` or ``linkIndex2``), in file
        order; ``pedestrian=False`` leaves walks out."""
        found: dict[int, list[Connection]] = {}
        for connection in self.connections:
            if connection.pedestrian and not pedestrian:
                continue
            for index in (connection.link_index, connection.link_index2):
                if index >= 0:
                    found.setdefault(index, []).append(connection)
        return {index: tuple(found[index]) for index in sorted(found)}


@dataclass(frozen=True, eq=False)
class Network:
    """A SUMO network as plain values; see the module."""

    path: str
    edges: Mapping[str, Edge]
    lanes: Mapping[str, Lane]
    junctions: Mapping[str, Junction]
    #: Traffic lights by id, sorted.
    signals: Mapping[str, Signal]
    projection: NetProjection
    #: Additional files whose programs were applied, in load order.
    additional_files: tuple[str, ...] = ()

    def normal_edges(self) -> list[Edge]:
        """The roads: edges that are neither inside a junction nor pedestrian areas."""
        return [edge for edge in self.edges.values() if edge.normal]

    def with_programs(self, programs: Iterable[Program], sources: Iterable[str] = ()) -> Network:
        """The network with ``programs`` loaded after its own: each replaces the signal's program
        of the same id, or is added, and runs."""
        signals = dict(self.signals)
        for program in programs:
            signal = signals.get(program.tls_id)
            if signal is None:
                raise NetworkError(
                    f"{program.source}: tlLogic {program.tls_id!r} is no signal of {self.path}"
                )
            kept = tuple(p for p in signal.programs if p.program_id != program.program_id)
            signals[program.tls_id] = replace(signal, programs=(*kept, program))
        return replace(self, signals=signals, additional_files=(*self.additional_files, *sources))


def load(net_file: str | Path, additional_files: Iterable[str | Path] = ()) -> Network:
    """The network of ``net_file`` with the programs of ``additional_files`` applied, cached while
    the files are unchanged. Raises :class:`NetworkError` naming a missing or unreadable file."""
    path = _stamped(net_file)
    additional = tuple(_stamped(a) for a in additional_files)
    return _load_cached(path, additional)


def for_scenario(scenario: Scenario) -> Network:
    """The network a scenario runs: its net with the programs its additional files load."""
    return load(scenario.net_file, scenario.additional_files)


def _stamped(file: str | Path) -> tuple[str, int]:
    path = Path(file).resolve()
    try:
        return str(path), path.stat().st_mtime_ns
    except FileNotFoundError:
        raise NetworkNotFound(f"SUMO network file not found: {path}") from None


#: Networks kept per process: enough for a city's regions and a benchmark's scenarios.
_CACHED_NETWORKS = 32


@functools.lru_cache(maxsize=_CACHED_NETWORKS)
def _load_cached(net: tuple[str, int], additional: tuple[tuple[str, int], ...]) -> Network:
    if additional:
        network = _load_cached(net, ())
        programs = [p for path, _mtime in additional for p in read_programs(path)]
        return network.with_programs(programs, [path for path, _mtime in additional])
    return from_sumolib(read_sumolib(net[0], pedestrian=True), net[0], right_of_way=True)


def read_sumolib(net_file: str | Path, *, pedestrian: bool = False) -> sumolib.net.Net:
    """sumolib's own object model of a network, with programs and right of way, for code that
    walks it (the sensor twin); ``pedestrian`` also loads the walks and internal lanes."""
    net_file = Path(net_file)
    if not net_file.is_file():
        raise NetworkNotFound(f"SUMO network file not found: {net_file}")
    ensure_sumo_home()
    import sumolib

    try:
        return sumolib.net.readNet(
            str(net_file), withPrograms=True, withFoes=True, withPedestrianConnections=pedestrian
        )
    except Exception as exc:  # noqa: BLE001 - sumolib raises whatever its XML library does
        raise NetworkError(f"cannot read SUMO network {net_file}: {exc}") from exc


def read_programs(additional_file: str | Path) -> list[Program]:
    """The ``<tlLogic>`` programs of an additional file, in file order (none: an empty list)."""
    path = Path(additional_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetworkNotFound(f"signal program file not found: {path}") from None
    return parse_programs(text, str(path))


def parse_programs(text: str, source: str) -> list[Program]:
    """The ``<tlLogic>`` programs in the text of an additional file, in file order; the one
    reader of that element, for the scenario's programs here and the optimizer's plan files.

    Raises :class:`NetworkError` naming the file, signal, phase and attribute that is wrong.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise NetworkError(f"{source} is not valid XML: {exc}") from None
    return programs_in(root, source)


def programs_in(root: ET.Element, source: str) -> list[Program]:
    """Every ``<tlLogic>`` under a parsed file's ``root``, in file order; see :func:`parse_programs`."""
    return [_parsed_program(element, source) for element in root.iter("tlLogic")]


def _parsed_program(element: ET.Element, source: str) -> Program:
    tls_id = element.get("id")
    if not tls_id:
        raise NetworkError(f"{source}: a tlLogic without an id")
    where = f"{source}: tlLogic {tls_id}"
    phases = []
    for index, item in enumerate(element.findall("phase")):
        phase_where = f"{where} phase {index}"
        duration = _number(item, "duration", phase_where)
        if duration is None or not item.get("state"):
            raise NetworkError(f"{phase_where}: a phase needs duration and state")
        minimum, maximum = _number(item, "minDur", phase_where), _number(item, "maxDur", phase_where)
        phases.append(
            Phase(
                state=item.get("state", ""),
                duration=duration,
                min_dur=-1.0 if minimum is None else minimum,
                max_dur=-1.0 if maximum is None else maximum,
                name=item.get("name", ""),
                next=tuple(int(n) for n in item.get("next", "").split()),
            )
        )
    offset = _number(element, "offset", where)
    return Program(
        tls_id=tls_id,
        program_id=element.get("programID", ""),
        type=element.get("type", "static"),
        offset=0.0 if offset is None else offset,
        phases=tuple(phases),
        source=source,
    )


def _number(element: ET.Element, name: str, where: str) -> float | None:
    text = element.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise NetworkError(f"{where}: {name}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise NetworkError(f"{where}: {name}={text!r} is not a finite number")
    return value


def from_sumolib(net: sumolib.net.Net, path: str = "", *, right_of_way: bool = False) -> Network:
    """The model of a network sumolib has read. ``right_of_way`` when it was read with its walks
    (``read_sumolib(..., pedestrian=True)``): only then does sumolib number each junction's
    connections as its logic does, so only then are the connections' requests filled in
    (checked against the logic); otherwise they are -1 and no conflict can be looked up."""
    edges, lanes = {}, {}
    for edge in net.getEdges():
        ids = []
        for lane in edge.getLanes():
            ids.append(lane.getID())
            lanes[lane.getID()] = Lane(
                id=lane.getID(),
                edge=edge.getID(),
                index=lane.getIndex(),
                length=float(lane.getLength()),
                speed=float(lane.getSpeed()),
                allowed=frozenset(lane._allowed),  # noqa: SLF001 - sumolib has no getter for the set
                shape=tuple((float(x), float(y)) for x, y, *_z in lane.getShape3D()),
            )
        edges[edge.getID()] = Edge(
            id=edge.getID(),
            function=edge.getFunction(),
            from_node=edge.getFromNode().getID(),
            to_node=edge.getToNode().getID(),
            length=float(edge.getLength()),
            speed=float(edge.getSpeed()),
            lanes=tuple(ids),
            name=edge.getName() or "",
        )
    junctions = {
        node.getID(): Junction(
            id=node.getID(),
            type=node.getType() or "",
            foes=tuple(node._foes[i] for i in sorted(node._foes)),  # noqa: SLF001 - the <request> rows
            response=tuple(node._prohibits[i] for i in sorted(node._prohibits)),  # noqa: SLF001
            position=(float(node.getCoord()[0]), float(node.getCoord()[1])),
        )
        for node in net.getNodes()
        if node.getType() is not None
    }
    if right_of_way:
        for node in net.getNodes():
            _check_requests(node, path)
    signals = {}
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        connections = tuple(
            _connection(tls.getID(), *link, edges, right_of_way) for link in tls.getConnections()
        )
        programs = tuple(_program(tls.getID(), p, path) for p in tls.getPrograms().values())
        signals[tls.getID()] = Signal(tls.getID(), connections, programs)
    return Network(path, edges, lanes, junctions, signals, NetProjection.of(net))


def _check_requests(node: sumolib.net.node.Node, path: str) -> None:
    """Refuse a junction whose connections, as sumolib numbers them, do not fill its logic.

    sumolib's ``getLinkIndex`` numbers a junction's connections by incoming lane; a net read
    without the walks a junction's logic counts would shift every number after them, and the
    safety rules would then test the wrong links against each other.
    """
    rows = len(node._foes)  # noqa: SLF001 - the <request> rows
    if not rows:
        return
    numbered = sum(
        1
        for lane_id in node._incLanes  # noqa: SLF001
        if "_" in lane_id.strip("_")
        for edge in node.getIncoming()
        if edge.getID() == lane_id.rpartition("_")[0]
        for connection in edge.getLane(int(lane_id.rpartition("_")[2])).getOutgoing()
        if node.getLinkIndex(connection) >= 0
    )
    if numbered != rows:
        raise NetworkError(
            f"network {path}: junction {node.getID()} has {rows} requests but {numbered} connections"
        )


def _connection(
    tls_id: str, in_lane: object, out_lane: object, link: int, edges: dict[str, Edge], right_of_way: bool
) -> Connection:
    """The connection a signal controls as ``link``, with its junction request index (sumolib's)."""
    found = next(
        (
            c
            for c in in_lane.getOutgoing()  # type: ignore[attr-defined]
            if c.getToLane() is out_lane and c.getTLSID() == tls_id and c.getTLLinkIndex() == link
        ),
        None,
    )
    if found is None:
        raise NetworkError(f"signal {tls_id}: link {link} has no connection from {in_lane.getID()}")  # type: ignore[attr-defined]
    from_edge, to_edge = found.getFrom().getID(), found.getTo().getID()
    functions = {edges[from_edge].function, edges[to_edge].function}
    junction = found.getFrom().getToNode()
    return Connection(
        from_edge=from_edge,
        from_lane=in_lane.getID(),  # type: ignore[attr-defined]
        to_edge=to_edge,
        to_lane=out_lane.getID(),  # type: ignore[attr-defined]
        via=found.getViaLaneID() or "",
        direction=found.getDirection(),
        state=found._state,  # noqa: SLF001 - sumolib has no getter
        tls_id=tls_id,
        link_index=link,
        link_index2=found.getTLLinkIndex2(),
        junction=junction.getID(),
        request=junction.getLinkIndex(found) if right_of_way and junction._foes else -1,  # noqa: SLF001
        pedestrian=bool(functions & PEDESTRIAN_FUNCTIONS),
        crossing="crossing" in functions,
    )


def _program(tls_id: str, program: object, source: str) -> Program:
    return Program(
        tls_id=tls_id,
        program_id=program._id,  # type: ignore[attr-defined]  # noqa: SLF001
        type=program.getType(),  # type: ignore[attr-defined]
        offset=float(program.getOffset()),  # type: ignore[attr-defined]
        phases=tuple(
            Phase(
                state=p.state,
                duration=float(p.duration),
                min_dur=float(p.minDur),
                max_dur=float(p.maxDur),
                name=p.name or "",
                next=tuple(p.next or ()),
            )
            for p in program.getPhases()  # type: ignore[attr-defined]
        ),
        source=source,
    )
