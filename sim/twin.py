"""The sensor twin: a SUMO run that publishes what the field would see, as contract records.

While a scenario runs in libsumo, the twin emits the four input feeds of the platform:

- ``traffic.detector.v1``: every ``detector_period_s``, one reading per E1 induction loop on every
  signalised approach lane (:mod:`sim.detectors`), from libsumo's last-interval values;
- ``operator.probe.v1``: a deterministic share of the vehicles report a noisy GPS fix every
  ``probe_interval_s`` under a salted pseudonym, never their SUMO id;
- ``public.weather.v1``: one station at the network centre with a smooth, seeded weather series;
- ``public.incident.v1``: at about a third of the window one lane of a busy multi-lane edge is
  really closed in the simulation for about ten minutes, reported when it starts and when it clears;
- ``operator.emergency.v1`` (when asked for): at half the window an emergency vehicle is dispatched
  across signals, obeying them, and reported as a fleet system would (:mod:`sim.twin_emergency`);
- ``traffic.signal_event.v1``: every signal's high-resolution event log (:mod:`sim.event_log`), by
  the signal configuration (:mod:`sim.signal_config`: ``settings.signal_config``, else derived from
  the scenario's network), with the advance loops it names placed in SUMO.

Simulated second ``t`` is the instant ``day`` 00:00Z + ``t`` s (RESCO's Cologne windows start at
25200, 07:00Z). SUMO's own view of the same run is kept as ground truth for scoring the fusion
later: per-edge (15 min) and per-lane (1 min) meandata in ``out_dir``, plus SUMO's E1 output;
for the signals, every change of each state string and every vehicle crossing an advance loop's
position, found from vehicle positions rather than the loops (:class:`SignalTruth`).

The record builders (:func:`detector_record`, :func:`probe_record`, :func:`weather_record`,
:func:`incident_record`) are pure functions; :func:`run_twin` drives the simulation.
See https://sumo.dlr.de/docs/Simulation/Output/Lane-_or_Edge-based_Traffic_Measures.html for the
meandata and https://sumo.dlr.de/docs/TraCI/Induction_Loop_Value_Retrieval.html for the loop values.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from core.errors import CitybrainError
from core.files import write_atomic
from schemas import INPUT_TOPICS, contract
from sim.closures import closable_lanes
from sim.detectors import NOT_ID_CHAR, Approach, approach_lanes, contract_id, write_detectors
from sim.dispatches import NoEmergencyRoute, draw_dispatches
from sim.event_log import EventLog, ProgramInfo, SignalObservation, program_info
from sim.geo import NetProjection
from sim.network import read_sumolib
from sim.scenarios import Scenario, resolve
from sim.signal_config import GREEN_STATES, YELLOW_STATES, DetectorChannel, SignalConfiguration, of_scenario
from sim.sumo_home import ensure_sumo_home, import_libsumo, run_options, sumo_binary
from sim.twin_emergency import EMERGENCY_AT, EmergencyLog, EmergencyTrip
from sim.xml_files import element, render

if TYPE_CHECKING:
    import sumolib.net

    from core.settings import Settings

DETECTOR_TOPIC = "traffic.detector.v1"
PROBE_TOPIC = "operator.probe.v1"
WEATHER_TOPIC = "public.weather.v1"
INCIDENT_TOPIC = "public.incident.v1"
EMERGENCY_TOPIC = "operator.emergency.v1"
SIGNAL_EVENT_TOPIC = "traffic.signal_event.v1"

#: Who the twin says it is, in the records' provider/source fields.
PROVIDER = "sumo-twin"
#: Below this speed (m/s) a probe is standing and reports no heading.
STANDING_MPS = 0.1
#: The ground truth: SUMO's own edge speeds and flows per 15 min, and lane counts per minute.
TRUTH_EDGES_FILE = "truth.edges.xml"
TRUTH_LANES_FILE = "truth.lanes.xml"
#: Where each probe fix really was: the probe id and time of the record, the vehicle's edge and lane.
TRUTH_PROBES_FILE = "truth.probes.parquet"
TRUTH_EDGE_PERIOD_S = 900
TRUTH_LANE_PERIOD_S = 60
DETECTORS_ADDITIONAL = "detectors.add.xml"
TRUTH_ADDITIONAL = "truth.add.xml"
E1_OUTPUT_FILE = "e1.xml"
#: The loops the signal configuration names beyond the stop-bar ones (advance loops), and their output.
CHANNEL_LOOPS_ADDITIONAL = "channel_loops.add.xml"
CHANNEL_LOOPS_OUTPUT_FILE = "e1.channels.xml"
#: Every change of each signal's state string, and every vehicle crossing an advance loop's position.
TRUTH_SIGNAL_STATES_FILE = "truth.signal_states.parquet"
TRUTH_ARRIVALS_FILE = "truth.arrivals.parquet"
#: The incident: when (share of the window), how long at most, and the shortest window that gets one.
INCIDENT_AT = 1 / 3
INCIDENT_DURATION_S = 600
INCIDENT_MIN_WINDOW_S = 180
INCIDENT_SEVERITY = 3  # the contract's "lanes blocked"
#: How often (simulated seconds) the twin reports progress.
PROGRESS_EVERY_S = 300

Sink = Callable[[str, dict[str, Any]], None]


class TwinError(CitybrainError, ValueError):
    """A twin option out of range or a scenario the twin cannot run; the message names it."""


# -- time --------------------------------------------------------------------------------------


def parse_day(day: str | date) -> date:
    """The simulated calendar day: a :class:`date` or ``YYYY-MM-DD``."""
    if isinstance(day, datetime):
        return day.date()
    if isinstance(day, date):
        return day
    try:
        return date.fromisoformat(day)
    except (TypeError, ValueError):
        raise TwinError(f"day must be a date as YYYY-MM-DD, got {day!r}") from None


def sim_time_to_utc(day: date, t: float) -> datetime:
    """Simulated second ``t`` as a UTC instant: ``day`` 00:00Z + ``t`` seconds (microseconds kept)."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=t)


def utc_timestamp(moment: datetime) -> str:
    """``2026-11-28T07:00:05Z`` or ``...:05.25Z``: UTC with ``Z`` and at most six fraction digits."""
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime has no time zone: {moment!r}")
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


# -- record builders (pure) --------------------------------------------------------------------


def detector_record(
    *,
    detector_id: str,
    intersection_id: str,
    lane_id: str,
    interval_start: datetime,
    interval_s: int,
    count: int,
    occupancy_pct: float,
    mean_speed_mps: float,
    source: str = "sumo",
) -> dict[str, Any]:
    """One ``traffic.detector.v1`` reading of an E1 loop for one interval, from SUMO's values.

    SUMO ids that do not fit the contract's identifier pass through :func:`contract_id`.
    SUMO gives occupancy in percent of the interval (made a fraction in [0, 1] here) and a mean
    speed of -1 when no vehicle passed (``speed_mps`` null, as it is whenever the count is 0).
    """
    count = max(0, int(count))
    occupancy = occupancy_pct / 100.0 if math.isfinite(occupancy_pct) else 0.0
    speed = None
    if count > 0 and math.isfinite(mean_speed_mps) and mean_speed_mps >= 0:
        speed = round(min(mean_speed_mps, 100.0), 2)
    return {
        "schema_version": 1,
        "ts": utc_timestamp(interval_start),
        "detector_id": detector_id,
        "intersection_id": contract_id(intersection_id),
        "lane_id": contract_id(lane_id),
        "interval_s": int(interval_s),
        "count": count,
        "occupancy": round(min(max(occupancy, 0.0), 1.0), 4),
        "speed_mps": speed,
        "source": source,
        "quality_flags": [],
    }


def heading_deg(angle_deg: float, speed_mps: float) -> float | None:
    """Direction of travel in [0, 360), clockwise from north, to 0.1°; None for a standing vehicle."""
    if speed_mps < STANDING_MPS or not math.isfinite(angle_deg):
        return None
    heading = round(angle_deg % 360.0, 1)
    return 0.0 if heading >= 360.0 else heading


def probe_record(
    *,
    probe_id: str,
    at: datetime,
    lat: float,
    lon: float,
    speed_mps: float,
    angle_deg: float,
    accuracy_m: float,
    provider: str = PROVIDER,
) -> dict[str, Any]:
    """One ``operator.probe.v1`` GPS fix; ``angle_deg`` is the true-north heading of travel."""
    speed = min(max(speed_mps, 0.0), 100.0) if math.isfinite(speed_mps) else 0.0
    return {
        "schema_version": 1,
        "ts": utc_timestamp(at),
        "probe_id": probe_id,
        "lat": round(lat, 7),
        "lon": round(lon, 7),
        "speed_mps": round(speed, 2),
        "heading_deg": heading_deg(angle_deg, speed),
        "accuracy_m": round(accuracy_m, 2),
        "provider": provider,
    }


@dataclass(frozen=True)
class WeatherObservation:
    air_temp_c: float
    precipitation_mm_h: float
    visibility_m: float | None
    wind_speed_mps: float
    road_surface: str
    condition: str


def weather_record(
    *, station_id: str, at: datetime, lat: float, lon: float, observation: WeatherObservation
) -> dict[str, Any]:
    """One ``public.weather.v1`` observation."""
    return {
        "schema_version": 1,
        "ts": utc_timestamp(at),
        "station_id": station_id,
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "air_temp_c": round(observation.air_temp_c, 1),
        "precipitation_mm_h": round(max(observation.precipitation_mm_h, 0.0), 1),
        "visibility_m": None if observation.visibility_m is None else round(observation.visibility_m),
        "wind_speed_mps": round(max(observation.wind_speed_mps, 0.0), 1),
        "road_surface": observation.road_surface,
        "condition": observation.condition,
    }


def incident_record(
    *,
    incident_id: str,
    at: datetime,
    kind: str,
    status: str,
    severity: int,
    lat: float,
    lon: float,
    edge_id: str | None,
    lane_ids: list[str],
    start: datetime,
    end: datetime | None,
    description: str,
    source: str = PROVIDER,
) -> dict[str, Any]:
    """One ``public.incident.v1`` report or update (updates reuse ``incident_id``); SUMO ids as
    :func:`contract_id` makes them."""
    return {
        "schema_version": 1,
        "ts": utc_timestamp(at),
        "incident_id": incident_id,
        "kind": kind,
        "status": status,
        "severity": int(severity),
        "lat": round(lat, 7),
        "lon": round(lon, 7),
        "edge_id": None if edge_id is None else contract_id(edge_id),
        "lane_ids": list(dict.fromkeys(contract_id(lane) for lane in lane_ids)),
        "start": utc_timestamp(start),
        "end": None if end is None else utc_timestamp(end),
        "description": description[:500],
        "source": source,
    }


def emergency_record(
    *,
    dispatch_id: str,
    vehicle_id: str,
    kind: str,
    at: datetime,
    origin_edge: str | None,
    destination_edge: str,
    lat: float,
    lon: float,
    speed_mps: float | None = None,
    angle_deg: float | None = None,
    vehicle_class: str = "ambulance",
    source: str = PROVIDER,
) -> dict[str, Any]:
    """One ``operator.emergency.v1`` record: a dispatch, a position update, an arrival; SUMO ids
    as :func:`contract_id` makes them; ``angle_deg`` is the true-north heading of travel."""
    speed = None if speed_mps is None else round(min(max(speed_mps, 0.0), 100.0), 2)
    return {
        "schema_version": 1,
        "ts": utc_timestamp(at),
        "dispatch_id": dispatch_id,
        "vehicle_id": vehicle_id,
        "vehicle_class": vehicle_class,
        "kind": kind,
        "origin_edge": None if origin_edge is None else contract_id(origin_edge),
        "destination_edge": contract_id(destination_edge),
        "lat": round(lat, 7),
        "lon": round(lon, 7),
        "speed_mps": speed,
        "heading_deg": None if angle_deg is None or speed is None else heading_deg(angle_deg, speed),
        "source": source,
    }


# -- probes: who reports, under which name -------------------------------------------------------


def _unit_hash(*parts: object) -> int:
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def is_probe(vehicle_id: str, seed: int, share: float) -> bool:
    """Whether a vehicle reports as a probe: a stable draw from its id and the seed."""
    return _unit_hash("probe", seed, vehicle_id) < share * 2.0**64


def probe_phase(vehicle_id: str, seed: int, interval_s: int) -> int:
    """The second within each ``interval_s`` at which the vehicle reports (spreads the fixes)."""
    return _unit_hash("phase", seed, vehicle_id) % interval_s


def probe_pseudonym(vehicle_id: str, salt: str) -> str:
    """16 hex characters from a keyed hash of the vehicle id; the salt rotates with the day."""
    key = hashlib.blake2b(salt.encode("utf-8"), digest_size=32).digest()
    return hashlib.blake2b(vehicle_id.encode("utf-8"), key=key, digest_size=8).hexdigest()


# -- weather -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeatherModel:
    """A plausible, smooth central-European weather series, a pure function of the instant and seed.

    Temperature follows the season and the time of day with a slow seeded drift; in each two-hour
    block a shower happens with probability ``rain_chance``, rising and falling smoothly, and the
    road stays wet for ``wet_after_h`` after it.
    """

    seed: int = 1
    rain_chance: float = 0.35
    wet_after_h: float = 0.75

    def _drift(self, hours: float, name: str, periods: tuple[float, ...]) -> float:
        """A smooth seeded wiggle in about [-1, 1]: a few slow sines with random phases."""
        rng = random.Random(f"{self.seed}:{name}")
        return sum(math.sin(2 * math.pi * hours / p + rng.uniform(0, 2 * math.pi)) for p in periods) / len(
            periods
        )

    def _shower(self, block: int) -> tuple[float, float, float] | None:
        """The shower of a two-hour block: (start h, end h, peak mm/h), or None for a dry block."""
        rng = random.Random(f"{self.seed}:rain:{block}")
        if rng.random() >= self.rain_chance:
            return None
        start = block * 2.0 + rng.uniform(0.0, 1.2)
        return start, start + rng.uniform(0.3, 0.8), rng.lognormvariate(0.5, 0.7)

    def observe(self, at: datetime) -> WeatherObservation:
        at = at.astimezone(UTC)
        hours = at.timestamp() / 3600.0
        day_of_year = at.timetuple().tm_yday
        hour_of_day = at.hour + at.minute / 60 + at.second / 3600
        season = 10.0 - 8.0 * math.cos(2 * math.pi * (day_of_year - 20) / 365.25)
        diurnal = 3.5 * math.sin(2 * math.pi * (hour_of_day - 8.0) / 24.0)  # warmest ~14:00Z
        temp = season + diurnal + 1.5 * self._drift(hours, "temp", (5.3, 11.7, 31.0))

        block = math.floor(hours / 2.0)
        precipitation, wet = 0.0, False
        for shower in filter(None, (self._shower(block - 1), self._shower(block))):
            start, end, peak = shower
            if start <= hours < end:
                precipitation = peak * math.sin(math.pi * (hours - start) / (end - start))
            if start <= hours < end + self.wet_after_h:
                wet = True
        precipitation = round(precipitation, 1)
        raining = precipitation > 0
        freezing = temp <= 0.5

        if raining:
            condition = "snow" if freezing else "heavy_rain" if precipitation >= 4.0 else "rain"
            visibility = max(800.0, (4000.0 if freezing else 20000.0) / (1.0 + precipitation))
        else:
            cloud = self._drift(hours, "cloud", (3.1, 7.9))
            condition = "cloudy" if cloud > -0.2 else "clear"
            visibility = 18000.0 + 6000.0 * self._drift(hours, "visibility", (4.3, 9.1))
        if raining and freezing:
            surface = "snow"
        elif wet:
            surface = "ice" if temp < 0.0 else "wet"
        else:
            surface = "dry"
        wind = max(0.0, 3.5 + 2.0 * self._drift(hours, "wind", (2.3, 6.1)) + 0.4 * precipitation)
        return WeatherObservation(
            air_temp_c=temp,
            precipitation_mm_h=precipitation,
            visibility_m=visibility,
            wind_speed_mps=wind,
            road_surface=surface,
            condition=condition,
        )


# -- geography ---------------------------------------------------------------------------------


class Geo:
    """Network x/y to WGS84 for the twin's scalar use; :class:`sim.geo.NetProjection` underneath."""

    def __init__(self, net: sumolib.net.Net) -> None:
        self.projection = NetProjection.of(net)
        self.projected = self.projection.projected
        self.centre_xy = self.projection.centre_xy
        #: Add to a SUMO angle (clockwise from grid north) to get one from true north.
        self.grid_north_deg = self.projection.grid_north_deg
        self.centre_lonlat = self.lonlat(*self.centre_xy)

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.projection.lonlat(x, y)
        return float(lon), float(lat)


def lane_midpoint(lane: sumolib.net.lane.Lane) -> tuple[float, float]:
    """The x/y halfway along a lane's shape."""
    from sumolib import geomhelper

    shape = lane.getShape()
    x, y = geomhelper.positionAtShapeOffset(shape, geomhelper.polyLength(shape) / 2.0)
    return float(x), float(y)


# -- the incident's lane -----------------------------------------------------------------------


@dataclass
class IncidentLog:
    """What the twin did to the simulation and what it saw while the lane was closed."""

    incident_id: str
    kind: str
    edge_id: str
    lane_id: str
    lat: float
    lon: float
    start_s: float
    planned_end_s: float
    end_s: float | None = None  # when it was reopened; None if the run ended first
    allowed_before: tuple[str, ...] = ()
    allowed_while_closed: tuple[str, ...] = ()
    allowed_after: tuple[str, ...] = ()
    #: Vehicles on the lane, or inside the junction just before it, when it closed: they may go on.
    vehicles_at_close: tuple[str, ...] = ()
    #: Any other vehicle seen on the lane while it was closed (should stay empty).
    entered_while_closed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


# -- signals: the event log's inputs and SUMO's truth ---------------------------------------------


def write_channel_loops(
    channels: Iterable[DetectorChannel], path: Path, *, period_s: int, output_file: str
) -> Path:
    """The loops of ``channels`` as a SUMO additional file of ``<inductionLoop>`` elements, one per
    detector id, sorted: the advance loops, which the stop-bar file (:mod:`sim.detectors`) lacks."""
    loops = {channel.detector_id: channel for channel in channels}
    root = element(None, "additional", {})
    for loop_id in sorted(loops):
        channel = loops[loop_id]
        attributes = {"id": loop_id, "lane": channel.lane, "pos": f"{channel.position_m:.2f}"}
        element(root, "inductionLoop", attributes | {"period": period_s, "file": output_file})
    comment = "generated by citybrain (sim.twin): the signal configuration's loops beyond the stop bar"
    return write_atomic(path, render(root, comment=comment, indent="  "), durable=False)


def running_program(sim: Any, tls_id: str, t: float, phase_index: int) -> ProgramInfo:
    """What the event log needs of the program ``tls_id`` runs at ``t`` (read from SUMO on a change)."""
    light = sim.trafficlight
    program_id = light.getProgram(tls_id)
    logics = light.getAllProgramLogics(tls_id)
    logic = next(lg for lg in logics if lg.programID == program_id)
    remaining = light.getNextSwitch(tls_id) - t
    return program_info(logic, [lg.programID for lg in logics], t, phase_index, remaining)


def crossing_time(t: float, step_s: float, start_m: float, end_m: float, at_m: float) -> float | None:
    """When a vehicle's front, moved from ``start_m`` to ``end_m`` in the step that ended at ``t``,
    passed ``at_m``; None if it did not. Linear: with SUMO's default (Euler) update a vehicle moves
    at its new speed throughout the step, as SUMO's loops assume too."""
    if not start_m < at_m <= end_m:
        return None
    return t - step_s + step_s * (at_m - start_m) / (end_m - start_m)


def indication_of(letter: str) -> str:
    """``green`` (G, g, s), ``yellow`` (y, Y, o) or ``red`` (everything else) for a link's letter."""
    return "green" if letter in GREEN_STATES else "yellow" if letter in YELLOW_STATES else "red"


class _Advance(NamedTuple):
    tls_id: str
    controller_id: str
    channel: DetectorChannel


_STATE_COLUMNS = ("signal_id", "controller_id", "t", "ts", "program_id", "phase_index", "state")
_ARRIVAL_COLUMNS = (
    *("signal_id", "tls_id", "channel", "phase", "lane", "vehicle_id", "crossed_at", "speed_mps"),
    *("link_index", "distance_m", "arrival_at"),
)


class SignalTruth:
    """SUMO's own view of the signals, to score the event log and the lake's measures against.

    - every change of each signal's state string, with the program and phase that showed it, at
      the time SUMO put it in force (the start of the step whose vehicles saw it);
    - every vehicle whose front crosses the position of an advance channel's loop, from the
      vehicles' lane positions each step (never from the loops), with the link it will take at
      the signal, its free-flow arrival at the stop bar (``distance_m / speed_mps`` later, as the
      Purdue Coordination Diagram projects it) and what its link showed then, resolved at the end.

    A vehicle moving along an edge is checked against the loops of the lane it moved on (SUMO
    moves vehicles before it changes their lanes), which for one coming out of a junction is the
    lane its internal lane leads to (:meth:`find_feeders`; the vehicles on those are followed as
    if on that lane, at negative positions). One that came from elsewhere (a network without
    internal lanes) is checked against its new lane as if it had moved along it at its speed; one
    inserted this step did not move. A vehicle beyond every loop of its edge is not looked at again
    while it stays there.
    """

    def __init__(
        self,
        configuration: SignalConfiguration,
        tls_ids: Iterable[str],
        *,
        day: date,
        step_s: float,
        lane_edge: Callable[[str], str],
    ) -> None:
        self.day, self.step_s = day, step_s
        self.changes: dict[str, tuple[list[float], list[str]]] = {}
        self.advance: dict[str, dict[str, list[_Advance]]] = {}  # edge -> lane -> loops on it
        for tls_id in tls_ids:
            config = configuration.signals[tls_id]
            self.changes[tls_id] = ([], [])
            for channel in config.detectors:
                if channel.kind == "advance":
                    lanes = self.advance.setdefault(lane_edge(channel.lane), {})
                    lanes.setdefault(channel.lane, []).append(_Advance(tls_id, config.controller_id, channel))
        self.controllers = {tls_id: configuration.signals[tls_id].controller_id for tls_id in self.changes}
        self.beyond = {
            edge: max(a.channel.position_m for loops in lanes.values() for a in loops)
            for edge, lanes in self.advance.items()
        }
        self.passed: dict[str, set[str]] = {edge: set() for edge in self.advance}
        #: Internal lanes that lead to a lane with loops: (its edge, the lane, metres to its start).
        self.feeders: dict[str, tuple[str, str, float]] = {}
        self.previous: dict[str, tuple[str, str, float]] = {}  # vehicle -> (edge, lane, position)
        self.states: dict[str, list[Any]] = {name: [] for name in _STATE_COLUMNS}
        self.arrivals: dict[str, list[Any]] = {name: [] for name in _ARRIVAL_COLUMNS}

    def find_feeders(self, sim: Any) -> None:
        """Find the internal lanes (inside junctions) from which vehicles reach a lane with loops."""
        internal = [lane for lane in sim.lane.getIDList() if lane.startswith(":")]
        following = {lane: [link[0] for link in sim.lane.getLinks(lane)] for lane in internal}
        lanes = {lane: edge for edge, on_edge in self.advance.items() for lane in on_edge}
        for start in internal:
            lane, distance = start, 0.0
            while lane in following and len(following[lane]) == 1:
                distance += sim.lane.getLength(lane)
                lane = following[lane][0]
            if lane in lanes:
                self.feeders[start] = (lanes[lane], lane, distance)

    def record_state(self, t: float, tls_id: str, observation: SignalObservation) -> None:
        times, states = self.changes[tls_id]
        if states and states[-1] == observation.state:
            return
        times.append(t)
        states.append(observation.state)
        row = (
            tls_id,
            self.controllers[tls_id],
            t,
            sim_time_to_utc(self.day, t),
            observation.program.program_id,
            observation.phase_index,
            observation.state,
        )
        for name, value in zip(_STATE_COLUMNS, row, strict=True):
            self.states[name].append(value)

    def track(self, sim: Any, t: float) -> None:
        """Find the crossings of the step that ended at ``t``."""
        vehicle = sim.vehicle
        departed = set(sim.simulation.getDepartedIDList())
        seen: dict[str, tuple[str, str, float]] = {}
        for edge, lanes in self.advance.items():
            on_edge = sim.edge.getLastStepVehicleIDs(edge)
            passed = self.passed[edge]
            passed.intersection_update(on_edge)
            for vehicle_id in on_edge:
                if vehicle_id in passed:
                    continue
                lane, position = vehicle.getLaneID(vehicle_id), vehicle.getLanePosition(vehicle_id)
                speed = vehicle.getSpeed(vehicle_id)
                before = self.previous.get(vehicle_id)
                if before is not None and before[0] == edge:
                    moved_on, start = before[1], before[2]
                else:
                    moved_on, start = (
                        lane,
                        position if vehicle_id in departed else position - speed * self.step_s,
                    )
                for advance in lanes.get(moved_on, ()):
                    at = crossing_time(t, self.step_s, start, position, advance.channel.position_m)
                    if at is not None:
                        self._cross(sim, vehicle_id, advance, at, speed)
                if position >= self.beyond[edge]:
                    passed.add(vehicle_id)
                else:
                    seen[vehicle_id] = (edge, lane, position)
        for feeder, (edge, lane, distance) in self.feeders.items():
            for vehicle_id in sim.lane.getLastStepVehicleIDs(feeder):
                seen[vehicle_id] = (edge, lane, vehicle.getLanePosition(vehicle_id) - distance)
        self.previous = seen

    def _cross(self, sim: Any, vehicle_id: str, advance: _Advance, at: float, speed: float) -> None:
        channel = advance.channel
        link = next((i for tls, i, _, _ in sim.vehicle.getNextTLS(vehicle_id) if tls == advance.tls_id), None)
        row = (
            advance.controller_id,
            advance.tls_id,
            channel.channel,
            channel.phase,
            channel.lane,
            vehicle_id,
            at,
            speed,
            link,
            channel.distance_m,
            at + channel.distance_m / channel.speed_mps,
        )
        for name, value in zip(_ARRIVAL_COLUMNS, row, strict=True):
            self.arrivals[name].append(value)

    def indication_at(self, tls_id: str, link: int | None, at: float, observed_until: float) -> str | None:
        """What ``link`` of ``tls_id`` showed at ``at``; None for no link or after the run."""
        times, states = self.changes[tls_id]
        i = bisect.bisect_right(times, at) - 1
        if link is None or at > observed_until or i < 0:
            return None
        return indication_of(states[i][link])

    def write(self, out_dir: Path, observed_until: float) -> tuple[Path, Path]:
        """Both truths as Parquet: (signal states, arrivals)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        utc = pa.timestamp("us", tz="UTC")
        states = pa.table(
            {
                **self.states,
                "ts": pa.array(self.states["ts"], utc),
                "phase_index": pa.array(self.states["phase_index"], pa.int32()),
            }
        )
        arrivals = self.arrivals
        indications = [
            self.indication_at(tls_id, link, at, observed_until)
            for tls_id, link, at in zip(
                arrivals["tls_id"], arrivals["link_index"], arrivals["arrival_at"], strict=True
            )
        ]
        table = pa.table(
            {
                **arrivals,
                "channel": pa.array(arrivals["channel"], pa.int32()),
                "phase": pa.array(arrivals["phase"], pa.int32()),
                "link_index": pa.array(arrivals["link_index"], pa.int32()),
                "crossed_ts": pa.array([sim_time_to_utc(self.day, t) for t in arrivals["crossed_at"]], utc),
                "arrival_ts": pa.array([sim_time_to_utc(self.day, t) for t in arrivals["arrival_at"]], utc),
                "indication_at_arrival": pa.array(indications, pa.string()),
            }
        )
        paths = out_dir / TRUTH_SIGNAL_STATES_FILE, out_dir / TRUTH_ARRIVALS_FILE
        pq.write_table(states, paths[0])
        pq.write_table(table, paths[1])
        return paths


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwinProgress:
    """A progress report: simulated time and what was sent so far."""

    sim_time: float
    begin: float
    end: float
    at: datetime
    counts: dict[str, int]
    vehicles: int

    def __str__(self) -> str:
        counts = " · ".join(f"{topic.split('.')[1]} {n:,}" for topic, n in self.counts.items())
        return (
            f"sim {self.sim_time - self.begin:,.0f}/{self.end - self.begin:,.0f} s "
            f"({utc_timestamp(self.at)}) · {counts} · vehicles {self.vehicles:,}"
        )


@dataclass(frozen=True)
class TwinSummary:
    scenario: str
    seed: int
    #: The UTC day that simulated second 0 falls on.
    day: date
    begin: float
    end: float
    simulated_s: float
    wall_s: float
    counts: dict[str, int]
    detectors: int
    vehicles: int
    probes: int
    out_dir: Path
    detector_file: Path
    ground_truth: Path
    ground_truth_lanes: Path
    ground_truth_probes: Path
    #: Every change of each signal's state string, and every crossing of an advance loop's position.
    ground_truth_signal_states: Path
    ground_truth_arrivals: Path
    #: The signal configuration's loops beyond the stop-bar ones (advance loops), as SUMO ran them.
    channel_loop_file: Path
    #: How many signals log events.
    signals: int = 0
    incident: IncidentLog | None = None
    emergency: EmergencyLog | None = None
    station_id: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``--json``."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "day": self.day.isoformat(),
            "window": [self.begin, self.end],
            "simulated_s": self.simulated_s,
            "wall_s": round(self.wall_s, 3),
            "counts": dict(self.counts),
            "total": self.total,
            "detectors": self.detectors,
            "vehicles": self.vehicles,
            "probes": self.probes,
            "station_id": self.station_id,
            "out_dir": str(self.out_dir),
            "detector_file": str(self.detector_file),
            "ground_truth": str(self.ground_truth),
            "ground_truth_lanes": str(self.ground_truth_lanes),
            "ground_truth_probes": str(self.ground_truth_probes),
            "ground_truth_signal_states": str(self.ground_truth_signal_states),
            "ground_truth_arrivals": str(self.ground_truth_arrivals),
            "channel_loop_file": str(self.channel_loop_file),
            "signals": self.signals,
            "incident": None if self.incident is None else self.incident.to_dict(),
            "emergency": None if self.emergency is None else self.emergency.to_dict(),
            "warnings": list(self.warnings),
        }


def write_truth_additional(path: Path) -> Path:
    """The ground-truth meandata: SUMO's edge speeds and flows per 15 min, lane counts per minute."""
    root = element(None, "additional", {})
    element(root, "edgeData", {"id": "truth", "period": TRUTH_EDGE_PERIOD_S, "file": TRUTH_EDGES_FILE})
    element(root, "laneData", {"id": "truth_lanes", "period": TRUTH_LANE_PERIOD_S, "file": TRUTH_LANES_FILE})
    comment = "generated by citybrain (sim.twin): ground truth for scoring the fused link state"
    return write_atomic(path, render(root, comment=comment, indent="  "), durable=False)


def _safe_id(text: str) -> str:
    return NOT_ID_CHAR.sub("_", text)[:64]


def _check_options(
    seed: int,
    speed: float | None,
    probe_share: float,
    probe_interval_s: int,
    gps_noise_m: float,
    detector_period_s: int,
    weather_interval_s: int,
) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise TwinError(f"seed must be a non-negative integer, got {seed!r}")
    if speed is not None and not (speed > 0 and math.isfinite(speed)):
        raise TwinError(f"speed must be a positive number of simulated seconds per second, got {speed!r}")
    if not 0.0 <= probe_share <= 1.0:
        raise TwinError(f"probe_share must lie in [0, 1], got {probe_share!r}")
    if int(probe_interval_s) != probe_interval_s or probe_interval_s < 1:
        raise TwinError(f"probe_interval_s must be a whole number of seconds >= 1, got {probe_interval_s!r}")
    if not 0.0 <= gps_noise_m <= 1000.0:
        raise TwinError(f"gps_noise_m must lie in [0, 1000], got {gps_noise_m!r}")
    if int(detector_period_s) != detector_period_s or not 1 <= detector_period_s <= 3600:
        raise TwinError(f"detector_period_s must be whole seconds in [1, 3600], got {detector_period_s!r}")
    if int(weather_interval_s) != weather_interval_s or weather_interval_s < 1:
        raise TwinError(
            f"weather_interval_s must be a whole number of seconds >= 1, got {weather_interval_s!r}"
        )


def _on_whole_second(t: float) -> bool:
    return abs(t - round(t)) < 1e-6


def _reporter(progress: Any) -> Callable[[TwinProgress], None] | None:
    """A rich Console (anything with ``log``) gets a line; a callable gets the :class:`TwinProgress`."""
    if progress is None:
        return None
    if hasattr(progress, "log"):
        return lambda report: progress.log(str(report))
    if callable(progress):
        return progress
    raise TwinError(f"progress must be a rich Console or a callable, got {type(progress).__name__}")


def run_twin(
    settings: Settings | None,
    scenario: Scenario | str,
    *,
    out_dir: str | Path,
    seed: int = 1,
    speed: float | None = None,
    probe_share: float = 0.10,
    probe_interval_s: int = 5,
    gps_noise_m: float = 5.0,
    detector_period_s: int = 60,
    weather_interval_s: int = 600,
    incident: bool = True,
    emergency: bool | tuple[str, str] = False,
    until: float | None = None,
    day: str | date = "2026-11-28",
    sink: Sink | None = None,
    progress: Any = None,
    on_step: Callable[[Any, float], None] | None = None,
) -> TwinSummary:
    """Run ``scenario`` in libsumo and publish detector, probe, weather and incident records.

    ``scenario`` is a :class:`Scenario` or a name for :func:`sim.scenarios.resolve` (``resco/cologne1``,
    an own scenario, a ``.sumocfg``). ``speed`` None runs as fast as possible; ``X`` keeps to X
    simulated seconds per wall second. ``until`` ends the run at that simulation time (seconds, like
    the scenario's own begin/end) instead of the scenario's end. ``sink(topic, record)`` receives
    every record, validated; without one they go to Kafka with a :class:`RecordProducer` for
    ``settings`` (flushed and closed at the end). ``progress`` is a rich Console (a line every
    :data:`PROGRESS_EVERY_S` simulated seconds) or a callable given a :class:`TwinProgress`.
    ``on_step(sim, t)`` is called after every simulation step with the running libsumo module:
    the field adapter's hook, which applies approved plans to the twin's signals as it runs.
    """
    _check_options(
        seed, speed, probe_share, probe_interval_s, gps_noise_m, detector_period_s, weather_interval_s
    )
    probe_interval_s, detector_period_s = int(probe_interval_s), int(detector_period_s)
    weather_interval_s = int(weather_interval_s)
    the_day = parse_day(day)
    report = _reporter(progress)
    if sink is None and settings is None:
        raise TwinError("without a sink the twin sends to Kafka, and needs settings")
    if isinstance(scenario, str):
        if settings is None:
            from core.settings import Settings

            settings = Settings()
        scenario = resolve(scenario, settings.sim_dir / "build")
    begin = float(scenario.begin)
    end = float(scenario.end if until is None else until)
    if not end > begin:
        raise TwinError(f"the run must end after it begins ({begin:g} s), got until={until!r}")

    ensure_sumo_home()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    net = read_sumolib(scenario.net_file)
    approaches = approach_lanes(net)
    detector_file = write_detectors(
        approaches,
        out_dir / DETECTORS_ADDITIONAL,
        period_s=detector_period_s,
        output_file=E1_OUTPUT_FILE,
        source=Path(scenario.net_file).name,
    )
    truth_file = write_truth_additional(out_dir / TRUTH_ADDITIONAL)
    configuration = of_scenario(scenario, None if settings is None else settings.signal_config)
    stop_bar = {approach.detector_id for approach in approaches}
    channel_loop_file = write_channel_loops(
        [
            d
            for signal in configuration.signals.values()
            for d in signal.detectors
            if d.detector_id not in stop_bar
        ],
        out_dir / CHANNEL_LOOPS_ADDITIONAL,
        period_s=detector_period_s,
        output_file=CHANNEL_LOOPS_OUTPUT_FILE,
    )
    geo = Geo(net)

    twin = _Twin(
        scenario=scenario,
        net=net,
        geo=geo,
        approaches=approaches,
        configuration=configuration,
        day=the_day,
        begin=begin,
        end=end,
        seed=seed,
        probe_share=probe_share,
        probe_interval_s=probe_interval_s,
        gps_noise_m=gps_noise_m,
        detector_period_s=detector_period_s,
        weather_interval_s=weather_interval_s,
        incident=incident,
        emergency=emergency,
        report=report,
        speed=speed,
        on_step=on_step,
    )
    additionals = [
        *map(str, scenario.additional_files),
        str(detector_file),
        str(channel_loop_file),
        str(truth_file),
    ]
    arguments = [
        sumo_binary("sumo"),
        "-c",
        str(scenario.sumocfg),
        *run_options(begin, end, seed, additionals),
    ]
    producer = None
    if sink is None:
        from streaming.producer import RecordProducer

        producer = RecordProducer(settings, validate=True)  # connects now: no broker, no run
        sink = producer.send

    failed = True
    try:
        twin.run(arguments, sink)
        failed = False
    finally:
        if producer is not None:
            if failed:
                with contextlib.suppress(Exception):  # the run's own error is the one to see
                    producer.close(timeout_s=5)
            else:
                producer.close()
    signal_states, arrivals = twin.signal_truth.write(out_dir, twin.now)
    return TwinSummary(
        scenario=scenario.name,
        seed=seed,
        day=the_day,
        begin=begin,
        end=end,
        simulated_s=twin.now - begin,
        wall_s=twin.wall_s,
        counts=dict(twin.counts),
        detectors=len(approaches),
        vehicles=twin.vehicles,
        probes=twin.probe_vehicles,
        out_dir=out_dir,
        detector_file=detector_file,
        ground_truth=out_dir / TRUTH_EDGES_FILE,
        ground_truth_lanes=out_dir / TRUTH_LANES_FILE,
        ground_truth_probes=twin.write_probe_truth(out_dir / TRUTH_PROBES_FILE),
        ground_truth_signal_states=signal_states,
        ground_truth_arrivals=arrivals,
        channel_loop_file=channel_loop_file,
        signals=len(twin.tls_ids),
        incident=twin.incident_log,
        emergency=None if twin.emergency is None else twin.emergency.log,
        station_id=twin.station_id,
        warnings=tuple(twin.warnings),
    )


class _Twin:
    """One run's state; :func:`run_twin` builds it and calls :meth:`run` once."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        net: sumolib.net.Net,
        geo: Geo,
        approaches: list[Approach],
        configuration: SignalConfiguration,
        day: date,
        begin: float,
        end: float,
        seed: int,
        probe_share: float,
        probe_interval_s: int,
        gps_noise_m: float,
        detector_period_s: int,
        weather_interval_s: int,
        incident: bool,
        emergency: bool | tuple[str, str],
        report: Callable[[TwinProgress], None] | None,
        speed: float | None,
        on_step: Callable[[Any, float], None] | None = None,
    ) -> None:
        self.scenario, self.net, self.geo, self.approaches = scenario, net, geo, approaches
        self.day, self.begin, self.end, self.seed = day, begin, end, seed
        self.probe_share, self.probe_interval_s, self.gps_noise_m = probe_share, probe_interval_s, gps_noise_m
        self.detector_period_s, self.weather_interval_s = detector_period_s, weather_interval_s
        self.report, self.speed, self.on_step = report, speed, on_step
        self.deliver: Sink | None = None
        self.counts: Counter[str] = Counter({topic: 0 for topic in INPUT_TOPICS})
        self.contracts = {topic: contract(topic) for topic in INPUT_TOPICS}
        self.now = begin
        self.wall_s = 0.0
        self.vehicles = 0
        self.probe_vehicles = 0
        self.warnings: list[str] = []
        self.noise = random.Random(f"{seed}:gps")
        self.salt = f"{seed}:{day.isoformat()}"
        self.occupied: Counter[str] = Counter()  # detector id -> percent-seconds this interval
        self.probes: dict[str, tuple[str, int]] = {}  # vehicle id -> (pseudonym, phase), in the network
        self.probe_truth: dict[str, list[Any]] = {"probe_id": [], "ts": [], "edge_id": [], "lane_id": []}
        short = scenario.name.removeprefix("resco/").rsplit("/", 1)[-1].removesuffix(".sumocfg")
        self.short_name = _safe_id(short)
        self.station_id = f"twin_{self.short_name}"
        self.weather = WeatherModel(seed)
        self.incident_log: IncidentLog | None = None
        self._plan_incident(incident)
        self.emergency: EmergencyTrip | None = None
        self._plan_emergency(emergency)
        self.configuration = configuration
        self.tls_ids = sorted(configuration.signals)
        self.programs: dict[str, ProgramInfo] = {}  # what each signal runs
        self.event_shapes: set[tuple[str, int, int]] = set()  # (signal, code, parameter) validated
        self.event_log = EventLog(configuration, self.tls_ids, day=day)
        self.signal_truth = SignalTruth(
            configuration,
            self.tls_ids,
            day=day,
            step_s=1.0,  # until the run reads SUMO's step length
            lane_edge=lambda lane: net.getLane(lane).getEdge().getID(),
        )

    # -- incident planning ---------------------------------------------------------------------

    def _plan_incident(self, wanted: bool) -> None:
        self.incident_start = self.incident_end = math.inf
        self.candidates: list[str] = []
        self.lane_load: Counter[str] = Counter()
        window = self.end - self.begin
        if not wanted:
            return
        if window < INCIDENT_MIN_WINDOW_S:
            self.warnings.append(f"no incident: the window ({window:g} s) is under {INCIDENT_MIN_WINDOW_S} s")
            return
        self.candidates = closable_lanes(self.net)
        if not self.candidates:
            self.warnings.append(
                "no incident: the network has no lane that can close without stranding traffic"
            )
            return
        self.incident_start = float(round(self.begin + window * INCIDENT_AT))
        self.incident_end = self.incident_start + float(round(min(INCIDENT_DURATION_S, window * INCIDENT_AT)))

    def _plan_emergency(self, wanted: bool | tuple[str, str]) -> None:
        if wanted is False:
            return
        window = self.end - self.begin
        if window < INCIDENT_MIN_WINDOW_S:
            self.warnings.append(
                f"no emergency: the window ({window:g} s) is under {INCIDENT_MIN_WINDOW_S} s"
            )
            return
        if wanted is True:
            drawn = draw_dispatches(self.scenario, 1, self.seed, min_signals=1)
            if not drawn:
                self.warnings.append("no emergency: no route between two edges of the network")
                return
            wanted = (drawn[0].origin, drawn[0].destination)
        for edge in wanted:
            if not self.net.hasEdge(edge):
                raise TwinError(f"emergency route: the network has no edge {edge!r}")
        origin, destination = wanted
        log = EmergencyLog(
            dispatch_id=f"twin_{self.short_name}_{self.day:%Y%m%d}_s{self.seed}_ev1",
            vehicle_id="twin_ambulance_1",
            origin=origin,
            destination=destination,
            dispatched_s=float(round(self.begin + window * EMERGENCY_AT)),
        )
        self.emergency = EmergencyTrip(log, self.probe_interval_s)

    # -- emitting ------------------------------------------------------------------------------

    def emit(self, topic: str, record: dict[str, Any]) -> None:
        self.contracts[topic].validate(record)
        self.deliver(topic, record)
        self.counts[topic] += 1

    def emit_signal_event(self, record: dict[str, Any]) -> None:
        """:meth:`emit` for the event log, validating the first record of each signal, code and
        parameter only: the others differ from it in ``ts`` alone, which :func:`utc_timestamp`
        writes for every record, and a full validation (~35 µs here) would double the twin's time."""
        shape = (record["signal_id"], record["event_code"], record["event_param"])
        if shape not in self.event_shapes:
            self.contracts[SIGNAL_EVENT_TOPIC].validate(record)
            self.event_shapes.add(shape)
        self.deliver(SIGNAL_EVENT_TOPIC, record)
        self.counts[SIGNAL_EVENT_TOPIC] += 1

    def utc(self, t: float) -> datetime:
        return sim_time_to_utc(self.day, t)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, arguments: list[str], deliver: Sink) -> None:
        self.deliver = deliver
        sim = import_libsumo()

        try:
            sim.start(arguments)
        except sim.TraCIException as exc:
            raise TwinError(f"SUMO refused {self.scenario.sumocfg}: {exc}") from None
        started = time.perf_counter()
        next_report = self.begin + PROGRESS_EVERY_S
        reported_at = None
        try:
            self.now = sim.simulation.getTime()
            self.observe_weather(self.now)
            step_s = sim.simulation.getDeltaT()
            self.event_log.step_s = self.signal_truth.step_s = step_s
            self.signal_truth.find_feeders(sim)
            while self.now < self.end - 1e-9:
                sim.simulationStep()
                self.now = t = sim.simulation.getTime()
                self.track_vehicles(sim)
                self.accumulate_occupancy(sim, step_s)
                self.observe_signals(sim, t, step_s)
                self.signal_truth.track(sim, t)
                whole = _on_whole_second(t)
                elapsed = round(t - self.begin)
                if whole and elapsed > 0 and elapsed % self.detector_period_s == 0:
                    self.read_detectors(sim, t)
                if whole:
                    self.read_probes(sim, t)
                self.step_incident(sim, t)
                if self.emergency is not None:
                    self.step_emergency(sim, t)
                if self.on_step is not None:
                    self.on_step(sim, t)
                if whole and elapsed % self.weather_interval_s == 0:
                    self.observe_weather(t)
                if self.report and t >= next_report:
                    next_report += PROGRESS_EVERY_S
                    reported_at = t
                    self.report(self.progress())
                if self.speed is not None:
                    lag = (t - self.begin) / self.speed - (time.perf_counter() - started)
                    if lag > 0:
                        time.sleep(lag)
        finally:
            self.wall_s = time.perf_counter() - started
            sim.close()
        if self.report and reported_at != self.now:
            self.report(self.progress())

    def progress(self) -> TwinProgress:
        return TwinProgress(
            self.now, self.begin, self.end, self.utc(self.now), dict(self.counts), self.vehicles
        )

    # -- feeds ---------------------------------------------------------------------------------

    def track_vehicles(self, sim: Any) -> None:
        for vehicle_id in sim.simulation.getDepartedIDList():
            self.vehicles += 1
            if is_probe(vehicle_id, self.seed, self.probe_share):
                self.probe_vehicles += 1
                self.probes[vehicle_id] = (
                    probe_pseudonym(vehicle_id, self.salt),
                    probe_phase(vehicle_id, self.seed, self.probe_interval_s),
                )
        for vehicle_id in sim.simulation.getArrivedIDList():
            self.probes.pop(vehicle_id, None)

    def accumulate_occupancy(self, sim: Any, step_s: float) -> None:
        """Add this step's occupied time of every loop (percent × seconds)."""
        occupancy = sim.inductionloop.getLastStepOccupancy
        for approach in self.approaches:
            self.occupied[approach.detector_id] += occupancy(approach.detector_id) * step_s

    def read_detectors(self, sim: Any, t: float) -> None:
        """One record per loop for the interval that just ended.

        Count and mean speed are libsumo's last-interval values. Occupancy is the time average of
        the per-step occupancy instead: ``getLastIntervalOccupancy`` credits a vehicle's time on
        the loop only to the interval in which it leaves, so a queue standing on a stop-line loop
        reads 0 % (SUMO issues #3552, #6682); the average matches SUMO's own E1 output file.
        """
        loop = sim.inductionloop
        start = self.utc(t - self.detector_period_s)
        for approach in self.approaches:
            d = approach.detector_id
            self.emit(
                DETECTOR_TOPIC,
                detector_record(
                    detector_id=d,
                    intersection_id=approach.tls_id,
                    lane_id=approach.lane_id,
                    interval_start=start,
                    interval_s=self.detector_period_s,
                    count=loop.getLastIntervalVehicleNumber(d),
                    occupancy_pct=self.occupied.pop(d, 0.0) / self.detector_period_s,
                    mean_speed_mps=loop.getLastIntervalMeanSpeed(d),
                ),
            )

    def observe_signals(self, sim: Any, t: float, step_s: float) -> None:
        """Feed the event log what every signal shows and what its loops saw; keep the states.

        SUMO switches a signal at the beginning of a step, before vehicles move: what it shows
        after the step that ended at ``t`` is what it showed from ``t - step_s`` on, when the
        vehicles of that step saw it (and when SUMO counts the phase as begun).
        """
        light = sim.trafficlight
        since = t - step_s
        observations = {}
        for tls_id in self.tls_ids:
            index = light.getPhase(tls_id)
            program = self.programs.get(tls_id)
            if program is None or program.program_id != light.getProgram(tls_id):
                program = self.programs[tls_id] = running_program(sim, tls_id, t, index)
            observation = SignalObservation(
                light.getRedYellowGreenState(tls_id), program, index, light.getSpentDuration(tls_id)
            )
            self.signal_truth.record_state(since, tls_id, observation)
            observations[tls_id] = observation
        vehicle_data = sim.inductionloop.getVehicleData
        loops = {loop: data for loop in self.event_log.loops if (data := vehicle_data(loop))}
        for record in self.event_log.observe(since, observations, loops):
            self.emit_signal_event(record)

    def read_probes(self, sim: Any, t: float) -> None:
        second = round(t) % self.probe_interval_s
        due = sorted(v for v, (_, phase) in self.probes.items() if phase == second)
        if not due:
            return
        at = self.utc(t)
        sigma = self.gps_noise_m
        for vehicle_id in due:
            x, y = sim.vehicle.getPosition(vehicle_id)
            if sigma > 0:
                x += self.noise.gauss(0.0, sigma)
                y += self.noise.gauss(0.0, sigma)
            lon, lat = self.geo.lonlat(x, y)
            record = probe_record(
                probe_id=self.probes[vehicle_id][0],
                at=at,
                lat=lat,
                lon=lon,
                speed_mps=sim.vehicle.getSpeed(vehicle_id),
                angle_deg=sim.vehicle.getAngle(vehicle_id) + self.geo.grid_north_deg,
                accuracy_m=sigma,
            )
            self.emit(PROBE_TOPIC, record)
            truth = self.probe_truth
            truth["probe_id"].append(record["probe_id"])
            truth["ts"].append(at)
            truth["edge_id"].append(sim.vehicle.getRoadID(vehicle_id))
            truth["lane_id"].append(sim.vehicle.getLaneID(vehicle_id))

    def write_probe_truth(self, path: Path) -> Path:
        """Where every probe fix really was, to score map-matching against (Parquet)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {**self.probe_truth, "ts": pa.array(self.probe_truth["ts"], pa.timestamp("us", tz="UTC"))}
        pq.write_table(pa.table(columns), path)
        return path

    def observe_weather(self, t: float) -> None:
        at = self.utc(t)
        lon, lat = self.geo.centre_lonlat
        self.emit(
            WEATHER_TOPIC,
            weather_record(
                station_id=self.station_id, at=at, lat=lat, lon=lon, observation=self.weather.observe(at)
            ),
        )

    # -- the emergency dispatch ----------------------------------------------------------------

    def step_emergency(self, sim: Any, t: float) -> None:
        assert self.emergency is not None
        log = self.emergency.log
        try:
            sightings = self.emergency.step(sim, t)
        except NoEmergencyRoute as exc:
            raise TwinError(f"emergency route: {exc}") from None
        for seen in sightings:
            lon, lat = self.geo.lonlat(seen.x, seen.y)
            angle = None if seen.angle_deg is None else seen.angle_deg + self.geo.grid_north_deg
            self.emit(
                EMERGENCY_TOPIC,
                emergency_record(
                    dispatch_id=log.dispatch_id,
                    vehicle_id=log.vehicle_id,
                    kind=seen.kind,
                    at=self.utc(seen.t),
                    origin_edge=log.origin,
                    destination_edge=log.destination,
                    lat=float(lat),
                    lon=float(lon),
                    speed_mps=seen.speed_mps,
                    angle_deg=angle,
                ),
            )

    # -- the incident --------------------------------------------------------------------------

    def step_incident(self, sim: Any, t: float) -> None:
        if not self.candidates:
            return
        log = self.incident_log
        if log is None:
            if t < self.incident_start:
                if _on_whole_second(t) and round(t) % 5 == 0:  # how busy each candidate is
                    for lane_id in self.candidates:
                        self.lane_load[lane_id] += sim.lane.getLastStepVehicleNumber(lane_id)
                return
            self.close_lane(sim, t)
            return
        if log.end_s is not None:
            return
        if t >= self.incident_end:
            self.reopen_lane(sim, t)
            return
        exempt = set(log.vehicles_at_close)
        entered = [v for v in sim.lane.getLastStepVehicleIDs(log.lane_id) if v not in exempt]
        if entered:
            log.entered_while_closed = tuple(dict.fromkeys([*log.entered_while_closed, *entered]))

    def _incident_record(self, log: IncidentLog, status: str, at_s: float) -> dict[str, Any]:
        edge = self.net.getEdge(log.edge_id)
        description = (
            f"{log.kind}: lane {log.lane_id} of {edge.getLaneNumber()} on edge {log.edge_id} "
            f"{'closed' if status == 'active' else 'reopened'} (SUMO twin)"
        )
        return incident_record(
            incident_id=log.incident_id,
            at=self.utc(at_s),
            kind=log.kind,
            status=status,
            severity=INCIDENT_SEVERITY,
            lat=log.lat,
            lon=log.lon,
            edge_id=log.edge_id,
            lane_ids=[log.lane_id],
            start=self.utc(log.start_s),
            end=None if log.end_s is None else self.utc(log.end_s),
            description=description,
        )

    def close_lane(self, sim: Any, t: float) -> None:
        lane_id = max(self.candidates, key=lambda lane: (self.lane_load[lane], lane))
        lane = self.net.getLane(lane_id)
        edge = lane.getEdge()
        lon, lat = self.geo.lonlat(*lane_midpoint(lane))
        allowed_before = tuple(sim.lane.getAllowed(lane_id))
        sim.lane.setDisallowed(lane_id, ["all"])
        junction_prefix = f":{edge.getFromNode().getID()}_"
        at_close = []
        for vehicle_id in sim.vehicle.getIDList():
            on = sim.vehicle.getLaneID(vehicle_id)
            if on == lane_id or on.startswith(junction_prefix):
                at_close.append(vehicle_id)
        self.incident_log = IncidentLog(
            incident_id=f"twin_{self.short_name}_{self.day:%Y%m%d}_s{self.seed}_1",
            kind="crash",
            edge_id=edge.getID(),
            lane_id=lane_id,
            lat=lat,
            lon=lon,
            start_s=t,
            planned_end_s=self.incident_end,
            allowed_before=allowed_before,
            allowed_while_closed=tuple(sim.lane.getAllowed(lane_id)),
            vehicles_at_close=tuple(sorted(at_close)),
        )
        self.emit(INCIDENT_TOPIC, self._incident_record(self.incident_log, "active", t))

    def reopen_lane(self, sim: Any, t: float) -> None:
        log = self.incident_log
        assert log is not None
        sim.lane.setAllowed(log.lane_id, list(log.allowed_before))
        log.allowed_after = tuple(sim.lane.getAllowed(log.lane_id))
        log.end_s = t
        self.emit(INCIDENT_TOPIC, self._incident_record(log, "cleared", t))
