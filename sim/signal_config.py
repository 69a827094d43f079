"""Signal configuration: which links form each NEMA phase, and which detector channel feeds which phase.

A controller's high-resolution event log speaks in phases (1–8, up to 40), overlaps and detector
channels; SUMO speaks in link indices and lanes. This module is the map between them, one small
JSON file per network (``schemas/signal_config.v1.json``) that :func:`derive` writes from the
road-network model for any scenario and a traffic engineer can correct by hand; :func:`read`
checks a file against the schema and the network before anything uses it.

Derivation, per signal (the usual dual-ring convention; agencies differ, hence the file):

- an *approach* is an incoming edge with signalised vehicle links; its direction of travel is the
  compass heading of its last lane segment (NB, EB, SB, WB);
- the approach with the most signalised lanes (then the fastest) and the one opposite it form the
  major street: through phases 2 and 6, their protected lefts 5 and 1; the next approach and its
  opposite form the minor street: 4 and 8, lefts 7 and 3; on each street the lower number goes to
  the eastbound approach of a street running east-west, the northbound one of a street running
  north-south; approaches beyond four get overlaps;
- a link index belongs to the through phase of its approach when any of its connections goes
  straight, else to the left phase when it turns left or makes a U-turn (a *protected* left: its
  links show ``G`` in the running program; a left only ever yielding, ``g``, is served in the
  through phase as a permitted movement), else it is a right turn: permitted in the through
  phase when its greens are the through's, an overlap when they differ (a right-turn overlap);
- a crossing becomes the pedestrian phase of the vehicle phase green with it most often;
- detector channels: a stop-bar loop on every approach lane (the sensor twin's ``e1_<lane>``,
  :mod:`sim.detectors`) and an advance loop :data:`ADVANCE_DISTANCE_M` before the stop bar
  where the lane is long enough (``adv_<lane>``), each feeding the phase of its lane's movements
  (a shared through/left lane feeds the through phase, as in ATSPM).

A phase's indication is that of its own links (``links``); ``permitted_links`` are served while
it is green but do not make it green (a permissive left, a right turn).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import fastjsonschema

from core.errors import CitybrainError
from core.files import write_atomic
from sim.detectors import VEHICLE_CLASS, approach_lanes, contract_id
from sim.network import Network, Signal

if TYPE_CHECKING:
    from core.settings import Settings
    from sim.scenarios import Scenario

#: Where an advance loop goes: this many metres before the stop bar (ATSPM advises beyond the
#: usual queue; the corridor's turn bays are 70–100 m long).
ADVANCE_DISTANCE_M = 60.0
#: An advance loop stays this far from the start of its lane: vehicles sort themselves into their
#: lanes there, and one that changes lane over a loop is counted by the loops of both lanes (as a
#: real car straddling two loops is). On the corridor's twin, 10 m over-counted a short bay's
#: approach by up to 11 %, 20 m by up to 3 % (``tests/integration/lake/test_signal_measures_truth.py``).
ADVANCE_FROM_LANE_START_M = 20.0
#: An advance loop is only worth having this far upstream of the stop-bar loop.
ADVANCE_MIN_SEPARATION_M = 20.0
#: The through phase and the protected left of each through phase, by the dual-ring convention.
LEFT_OF = {2: 5, 6: 1, 4: 7, 8: 3}

Indication = Literal["green", "yellow", "red"]
#: SUMO link state letters by indication: green (priority, yielding, right-turn-on-red arrow),
#: yellow (and blinking); everything else (red, red-yellow, off) shows no green.
GREEN_STATES = frozenset("Ggs")
YELLOW_STATES = frozenset("yYo")


class SignalConfigError(CitybrainError, ValueError):
    """A signal configuration that breaks the schema or does not fit the network; names the place."""


@dataclass(frozen=True)
class PhaseGroup:
    """A NEMA phase (or an overlap, or a pedestrian phase): the links that make its indication."""

    number: int
    #: The incoming edge it serves ("" for a pedestrian phase).
    approach: str
    #: Direction of travel: NB, EB, SB, WB ("" for a pedestrian phase).
    direction: str
    movement: Literal["through", "left", "right", "pedestrian"]
    links: tuple[int, ...]
    permitted_links: tuple[int, ...] = ()

    def indication(self, state: str) -> Indication:
        """This group's indication in a SUMO state string: green if any of its own links is green,
        else yellow if any is yellow, else red."""
        letters = {state[i] for i in self.links if i < len(state)}
        if letters & GREEN_STATES:
            return "green"
        if letters & YELLOW_STATES:
            return "yellow"
        return "red"


@dataclass(frozen=True)
class DetectorChannel:
    """One detector input of the controller: the loop, its lane, what it is for and where it is."""

    channel: int
    detector_id: str
    lane: str
    kind: Literal["stop_bar", "advance"]
    phase: int
    #: Metres from the loop to the stop bar (the end of the lane).
    distance_m: float
    #: Metres from the start of the lane (where SUMO places the loop).
    position_m: float
    #: Approach speed for projecting an advance detection to the stop bar (the lane's limit).
    speed_mps: float


@dataclass(frozen=True)
class SignalConfig:
    """One signal's phases, overlaps, pedestrian phases and detector channels."""

    signal_id: str
    #: The id the signal's event log uses (an ATSPM SignalID, for instance); the tls id by default.
    controller_id: str
    #: The phase whose begin-green marks a cycle (the coordinated phase, 2 where it exists).
    reference_phase: int
    phases: tuple[PhaseGroup, ...]
    overlaps: tuple[PhaseGroup, ...] = ()
    pedestrian_phases: tuple[PhaseGroup, ...] = ()
    detectors: tuple[DetectorChannel, ...] = ()

    def phase(self, number: int) -> PhaseGroup:
        for group in self.phases:
            if group.number == number:
                return group
        raise KeyError(f"signal {self.signal_id} has no phase {number}")

    def channel(self, number: int) -> DetectorChannel | None:
        return next((d for d in self.detectors if d.channel == number), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SignalConfiguration:
    """Every signal of a network, by SUMO tls id."""

    network: str
    signals: Mapping[str, SignalConfig] = field(default_factory=dict)

    def by_controller(self) -> dict[str, SignalConfig]:
        """The signals by the id their controllers log under."""
        return {s.controller_id: s for s in self.signals.values()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "network": self.network,
            "signals": [self.signals[k].to_dict() for k in sorted(self.signals)],
        }


# -- derivation ----------------------------------------------------------------------------------


@dataclass
class _Approach:
    edge: str
    heading: float
    lanes: int
    speed: float
    through: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)


def compass(heading_deg: float) -> str:
    """NB, EB, SB or WB for a heading in degrees clockwise from north."""
    return ("NB", "EB", "SB", "WB")[int(((heading_deg % 360) + 45) // 90) % 4]


def _heading(network: Network, edge_id: str) -> float:
    """Direction of travel at the end of an edge, clockwise from true north."""
    lane = network.lanes[network.edges[edge_id].lanes[0]]
    (x0, y0), (x1, y1) = lane.shape[-2], lane.shape[-1]
    grid = math.degrees(math.atan2(x1 - x0, y1 - y0))
    return (grid + network.projection.grid_north_deg) % 360


def _angle_between(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def _approaches(network: Network, signal: Signal) -> list[_Approach]:
    found: dict[str, _Approach] = {}
    kinds: dict[tuple[str, int], set[str]] = {}
    for connection in signal.connections:
        if connection.pedestrian or connection.link_index < 0:
            continue
        if not network.lanes[connection.from_lane].allows(VEHICLE_CLASS):
            continue
        edge = connection.from_edge
        if edge not in found:
            lanes = {c.from_lane for c in signal.connections if c.from_edge == edge}
            found[edge] = _Approach(edge, _heading(network, edge), len(lanes), network.edges[edge].speed)
        kinds.setdefault((edge, connection.link_index), set()).add(connection.direction.lower())
    for (edge, link), directions in sorted(kinds.items()):
        approach = found[edge]
        if "s" in directions:
            approach.through.append(link)
        elif directions & {"l", "t"}:
            approach.left.append(link)
        else:
            approach.right.append(link)
    return sorted(found.values(), key=lambda a: (-a.lanes, -a.speed, a.edge))


def _greens(signal: Signal, links: Iterable[int]) -> frozenset[int]:
    """The program phases (by index) in which any of ``links`` is green."""
    program = signal.program
    if program is None:
        return frozenset()
    links = tuple(links)
    return frozenset(
        i
        for i, p in enumerate(program.phases)
        if any(p.state[k] in GREEN_STATES for k in links if k < len(p.state))
    )


def _protected(signal: Signal, links: Iterable[int]) -> bool:
    return any(
        p.state[k] == "G"
        for program in signal.programs
        for p in program.phases
        for k in links
        if k < len(p.state)
    )


def _pair_up(approaches: list[_Approach]) -> list[tuple[_Approach, _Approach | None]]:
    """Streets: the biggest approach with its opposite, then the next; what is left stays alone."""
    left = list(approaches)
    streets = []
    while left:
        first = left.pop(0)
        opposite = min(
            (a for a in left if _angle_between(a.heading, first.heading) >= 120),
            key=lambda a: abs(180 - _angle_between(a.heading, first.heading)),
            default=None,
        )
        if opposite is not None:
            left.remove(opposite)
        streets.append((first, opposite))
    return streets


def _leading(a: _Approach, b: _Approach) -> tuple[_Approach, _Approach]:
    """The approach that gets the street's lower number (2 or 4) first: the eastbound one on a
    street running east-west, the northbound one on a street running north-south."""
    east_west = 45 <= a.heading % 180 < 135
    key = (lambda h: math.sin(math.radians(h))) if east_west else (lambda h: math.cos(math.radians(h)))
    return (a, b) if key(a.heading) >= key(b.heading) else (b, a)


def derive_signal(network: Network, signal: Signal) -> SignalConfig:
    """The configuration of one signal by the convention in the module docstring."""
    approaches = _approaches(network, signal)
    numbered: list[tuple[int, _Approach]] = []
    extra: list[_Approach] = []
    for street, numbers in zip(_pair_up(approaches), ((2, 6), (4, 8)), strict=False):
        first, opposite = street
        if opposite is None:
            leading, _ = _leading(first, _Approach("", (first.heading + 180) % 360, 0, 0))
            numbered.append((numbers[0] if leading is first else numbers[1], first))
            continue
        leading, other = _leading(first, opposite)
        numbered.extend([(numbers[0], leading), (numbers[1], other)])
    for street in _pair_up(approaches)[2:]:
        extra.extend(a for a in street if a is not None)

    phases: list[PhaseGroup] = []
    overlaps: list[PhaseGroup] = []
    lane_phase: dict[str, int] = {}

    def overlap(approach: _Approach, movement: str, links: list[int]) -> None:
        """An overlap for ``links``, or more links for the approach's overlap of that movement
        whose greens are the same."""
        greens = _greens(signal, links)
        for i, group in enumerate(overlaps):
            if (group.approach, group.movement) == (approach.edge, movement) and _greens(
                signal, group.links
            ) == greens:
                overlaps[i] = replace(group, links=tuple(sorted({*group.links, *links})))
                return
        overlaps.append(
            PhaseGroup(len(overlaps) + 1, approach.edge, compass(approach.heading), movement, tuple(links))  # type: ignore[arg-type]
        )

    for number, approach in sorted(numbered, key=lambda item: item[0]):
        direction = compass(approach.heading)
        own = approach.through or approach.left or approach.right
        permitted: list[int] = []
        protected_left = approach.through and approach.left and _protected(signal, approach.left)
        if approach.through and approach.left and not protected_left:
            permitted.extend(approach.left)
        through_greens = _greens(signal, own)
        for link in approach.right if approach.through or approach.left else ():
            if _greens(signal, [link]) == through_greens:
                permitted.append(link)
            else:
                overlap(approach, "right", [link])
        phases.append(
            PhaseGroup(number, approach.edge, direction, "through", tuple(own), tuple(sorted(permitted)))
        )
        if protected_left:
            phases.append(PhaseGroup(LEFT_OF[number], approach.edge, direction, "left", tuple(approach.left)))
    for approach in extra:
        for movement, links in (
            ("through", approach.through),
            ("left", approach.left),
            ("right", approach.right),
        ):
            if links:
                overlap(approach, movement, links)
    phases.sort(key=lambda p: p.number)

    for connection in signal.connections:
        if connection.pedestrian or connection.from_lane in lane_phase:
            continue
        phase = _lane_phase(signal, connection.from_lane, phases)
        if phase is not None:
            lane_phase[connection.from_lane] = phase

    pedestrian = _pedestrian_phases(signal, phases)
    reference = 2 if any(p.number == 2 for p in phases) else min((p.number for p in phases), default=2)
    return SignalConfig(
        signal_id=signal.id,
        controller_id=contract_id(signal.id),
        reference_phase=reference,
        phases=tuple(phases),
        overlaps=tuple(overlaps),
        pedestrian_phases=tuple(pedestrian),
        detectors=_channels(network, signal, lane_phase),
    )


def _lane_phase(signal: Signal, lane: str, phases: list[PhaseGroup]) -> int | None:
    """The phase a lane's detectors feed: the through phase if any of its links is in one, else
    the phase holding its links (a left-turn bay feeds its protected left)."""
    links = {c.link_index for c in signal.connections if c.from_lane == lane and c.link_index >= 0}
    holding = [p for p in phases if links & {*p.links, *p.permitted_links}]
    through = [p for p in holding if p.movement == "through"]
    own = [p for p in holding if links & set(p.links)]
    for candidates in (
        [p for p in own if p.movement == "through"],
        [p for p in own if p.movement == "left"],
        through,
        holding,
    ):
        if candidates:
            return candidates[0].number
    return None


def _pedestrian_phases(signal: Signal, phases: list[PhaseGroup]) -> list[PhaseGroup]:
    crossings: dict[int, None] = {}
    for connection in signal.connections:
        if connection.crossing and connection.link_index >= 0:
            crossings[connection.link_index] = None
    groups: dict[int, list[int]] = {}
    for link in crossings:
        walks = _greens(signal, [link])
        best = max(
            (p for p in phases if p.movement == "through"),
            key=lambda p: (len(walks & _greens(signal, p.links)), -p.number),
            default=None,
        )
        if best is not None and walks & _greens(signal, best.links):
            groups.setdefault(best.number, []).append(link)
    return [PhaseGroup(n, "", "", "pedestrian", tuple(sorted(links))) for n, links in sorted(groups.items())]


def _channels(network: Network, signal: Signal, lane_phase: Mapping[str, int]) -> tuple[DetectorChannel, ...]:
    """Stop-bar loops (the twin's approach detectors), then advance loops where the lane allows."""
    stop_bar = [a for a in approach_lanes(network) if a.tls_id == signal.id and a.lane_id in lane_phase]
    channels: list[DetectorChannel] = []
    ordered = sorted(stop_bar, key=lambda a: (lane_phase[a.lane_id], a.lane_id))
    for approach in ordered:
        lane = network.lanes[approach.lane_id]
        channels.append(
            DetectorChannel(
                channel=len(channels) + 1,
                detector_id=approach.detector_id,
                lane=approach.lane_id,
                kind="stop_bar",
                phase=lane_phase[approach.lane_id],
                distance_m=round(lane.length - approach.position, 2),
                position_m=approach.position,
                speed_mps=round(lane.speed, 2),
            )
        )
    for approach in ordered:
        lane = network.lanes[approach.lane_id]
        distance = min(ADVANCE_DISTANCE_M, lane.length - ADVANCE_FROM_LANE_START_M)
        if distance - (lane.length - approach.position) < ADVANCE_MIN_SEPARATION_M:
            continue
        channels.append(
            DetectorChannel(
                channel=len(channels) + 1,
                detector_id=contract_id(f"adv_{approach.lane_id}"),
                lane=approach.lane_id,
                kind="advance",
                phase=lane_phase[approach.lane_id],
                distance_m=round(distance, 2),
                position_m=round(lane.length - distance, 2),
                speed_mps=round(lane.speed, 2),
            )
        )
    return tuple(channels)


def derive(network: Network, name: str = "") -> SignalConfiguration:
    """The configuration of every signal of ``network`` (see the module docstring)."""
    signals = {tls_id: derive_signal(network, signal) for tls_id, signal in network.signals.items()}
    configuration = SignalConfiguration(name or Path(network.path).name, signals)
    check(configuration, network)
    return configuration


# -- the file ------------------------------------------------------------------------------------


@functools.cache
def _schema_validator():  # noqa: ANN202 - fastjsonschema's compiled function
    from schemas import resolved_document

    schema = resolved_document("signal_config.v1.json")
    return fastjsonschema.compile({**schema, "$schema": "http://json-schema.org/draft-07/schema#"})


def parse(document: Any, source: str = "signal configuration") -> SignalConfiguration:
    """A configuration from its JSON document, checked against ``schemas/signal_config.v1.json``."""
    try:
        _schema_validator()(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise SignalConfigError(f"{source}: {exc.message}") from None

    def group(item: Mapping[str, Any]) -> PhaseGroup:
        return PhaseGroup(
            number=item["number"],
            approach=item.get("approach", ""),
            direction=item.get("direction", ""),
            movement=item["movement"],
            links=tuple(item["links"]),
            permitted_links=tuple(item.get("permitted_links", ())),
        )

    signals = {}
    for item in document["signals"]:
        signals[item["signal_id"]] = SignalConfig(
            signal_id=item["signal_id"],
            controller_id=item.get("controller_id") or contract_id(item["signal_id"]),
            reference_phase=item["reference_phase"],
            phases=tuple(group(p) for p in item["phases"]),
            overlaps=tuple(group(p) for p in item.get("overlaps", ())),
            pedestrian_phases=tuple(group(p) for p in item.get("pedestrian_phases", ())),
            detectors=tuple(DetectorChannel(**d) for d in item.get("detectors", ())),
        )
    if len(signals) != len(document["signals"]):
        raise SignalConfigError(f"{source}: a signal_id appears twice")
    return SignalConfiguration(document["network"], signals)


def check(configuration: SignalConfiguration, network: Network | None = None, source: str = "") -> None:
    """Raise :class:`SignalConfigError` naming the first thing that is inconsistent: numbers used
    twice, a detector feeding a phase that does not exist, a controller id used twice; and, given
    the network, a signal, link index or lane that it does not have."""
    where = source or configuration.network
    controllers: dict[str, str] = {}
    for signal in configuration.signals.values():
        at = f"{where}: signal {signal.signal_id}"
        if signal.controller_id in controllers:
            raise SignalConfigError(
                f"{at}: controller_id {signal.controller_id!r} "
                f"is also signal {controllers[signal.controller_id]}'s"
            )
        controllers[signal.controller_id] = signal.signal_id
        for kind, groups in (
            ("phase", signal.phases),
            ("overlap", signal.overlaps),
            ("pedestrian phase", signal.pedestrian_phases),
        ):
            numbers = [g.number for g in groups]
            twice = sorted({n for n in numbers if numbers.count(n) > 1})
            if twice:
                raise SignalConfigError(f"{at}: {kind} {twice[0]} is defined twice")
        phase_numbers = {g.number for g in signal.phases}
        if signal.phases and signal.reference_phase not in phase_numbers:
            raise SignalConfigError(
                f"{at}: reference_phase {signal.reference_phase} is not one of its phases"
            )
        channels = [d.channel for d in signal.detectors]
        twice = sorted({c for c in channels if channels.count(c) > 1})
        if twice:
            raise SignalConfigError(f"{at}: detector channel {twice[0]} is defined twice")
        for detector in signal.detectors:
            if detector.phase not in phase_numbers:
                raise SignalConfigError(
                    f"{at}: detector channel {detector.channel} feeds phase {detector.phase}, "
                    "which it does not have"
                )
        if network is None:
            continue
        sumo = network.signals.get(signal.signal_id)
        if sumo is None:
            raise SignalConfigError(f"{at}: the network {Path(network.path).name} has no such signal")
        for group in (*signal.phases, *signal.overlaps, *signal.pedestrian_phases):
            for link in (*group.links, *group.permitted_links):
                if not 0 <= link < sumo.link_count:
                    raise SignalConfigError(
                        f"{at}: phase {group.number} names link {link}; "
                        f"the signal has links 0-{sumo.link_count - 1}"
                    )
        for detector in signal.detectors:
            lane = network.lanes.get(detector.lane)
            if lane is None:
                raise SignalConfigError(
                    f"{at}: detector channel {detector.channel} is on lane {detector.lane!r}, "
                    "which the network does not have"
                )
            if not 0 <= detector.position_m <= lane.length:
                raise SignalConfigError(
                    f"{at}: detector channel {detector.channel} at {detector.position_m} m is off its "
                    f"{lane.length:.2f} m lane {detector.lane}"
                )


def read(path: str | Path, network: Network | None = None) -> SignalConfiguration:
    """Read and check a configuration file (against ``network`` too, when given)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SignalConfigError(f"signal configuration not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignalConfigError(f"signal configuration {path} is not readable JSON: {exc}") from None
    configuration = parse(document, str(path))
    check(configuration, network, str(path))
    return configuration


def render(configuration: SignalConfiguration) -> str:
    """The file's text: indented JSON, signals sorted, so a hand edit shows as a small diff."""
    return json.dumps(configuration.to_dict(), indent=2, ensure_ascii=False) + "\n"


def write(configuration: SignalConfiguration, path: str | Path) -> Path:
    return write_atomic(Path(path), render(configuration), durable=False)


def configuration(settings: Settings, network_name: str | None = None) -> SignalConfiguration:
    """The signal configuration in force for the network of ``network_name`` (default: the lake's
    network, ``CITYBRAIN_LAKE_NETWORK``): the file ``CITYBRAIN_SIGNAL_CONFIG`` names, else derived."""
    from sim.scenarios import resolve

    scenario = resolve(network_name or settings.lake_network, settings.sim_dir / "build")
    return of_scenario(scenario, settings.signal_config)


def of_scenario(scenario: Scenario, signal_config: Path | None = None) -> SignalConfiguration:
    """The configuration file ``signal_config`` (checked against the scenario's network), or
    without one the configuration derived from that network."""
    from sim.network import for_scenario

    network = for_scenario(scenario)
    if signal_config is not None:
        return read(signal_config, network)
    return derive(network, scenario.name)
