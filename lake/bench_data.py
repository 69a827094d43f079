"""Bronze at a mid-size city's volume for the lake benchmark, shaped like the sensor twin's output.

``citybrain bench lake`` needs 2,000 detectors every 60 s and 500 probe vehicles every 5 s —
about 2.9 M detector rows and 8.6 M probe points a day — which no SUMO run here produces in
useful time. :func:`generate_bronze` makes it directly and lands it exactly as the ingest does
(:mod:`streaming.bronze`: the bronze schema, one file per topic, partition 0 and offset range
per event hour, provenance columns), located on a real network (``resco/ingolstadt21``):

- detectors: one loop on every signalised approach lane (the twin's ids), then loops on the
  other passenger lanes (further loops on a lane get a ``:k`` suffix) until there are enough;
  counts follow a daily profile (quiet nights, morning and evening peaks, flatter weekends),
  speeds fall with congestion, occupancy follows count and speed; a few readings go missing,
  a few detectors fail for an hour or two, a few get stuck repeating one reading;
- probes: vehicles that drive all the time, each a random walk over the lanes' connections at
  the lane's speed slowed by congestion, waiting at some red lights, reporting every 5 s a fix
  with GPS noise, true-north heading and a pseudonym that changes with each trip and each day;
- weather: one station at the network's centre every 10 minutes (the twin's weather model);
- incidents: a few a day on multi-lane edges, reported and later cleared.

Everything is numpy over whole hours (no Python loop per record); the probe walk loops over
5-second steps but moves all vehicles at once. The output is a pure function of the seed, the
first day and the sizes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.detectors import VEHICLE_CLASS, approach_lanes, contract_id, detector_id
from sim.geo import NetProjection
from sim.network import read_sumolib
from sim.twin import STANDING_MPS, WeatherModel, probe_pseudonym
from streaming.bronze import bronze_file, bronze_schema, write_durably

if TYPE_CHECKING:
    import sumolib.net


BENCH_NETWORK = "resco/ingolstadt21"
DETECTOR_TOPIC = "traffic.detector.v1"
PROBE_TOPIC = "operator.probe.v1"
WEATHER_TOPIC = "public.weather.v1"
INCIDENT_TOPIC = "public.incident.v1"
BENCH_TOPICS = (DETECTOR_TOPIC, PROBE_TOPIC, WEATHER_TOPIC, INCIDENT_TOPIC)

DETECTOR_INTERVAL_S = 60
PROBE_INTERVAL_S = 5
WEATHER_INTERVAL_S = 600
#: Who the generated records say they come from (probe provider, detector source, incident source).
PROVIDER = "bench"
DETECTOR_SOURCE = "loop"
#: The ingest's Kafka partition; one partition keeps offsets in one increasing sequence per topic.
PARTITION = 0
HOUR_S = 3600
DAY_S = 86400

# Detector model. Peak flows are per lane and hour; a loop near a stop line sees vehicles slow
# down, an upstream loop sees them nearer free flow. Occupancy is count × an effective length /
# (speed × interval): a car and the loop (about 7 m) upstream, but about 20 m at a stop line, where
# cars also stand on the loop through the red (the lake's own site calibration,
# CITYBRAIN_LAKE_DETECTOR_EFFECTIVE_LENGTH_M, is 20 m for the twin's stop-line loops).
_PEAK_FLOW_VPH = {"stop_line": 480.0, "other": 320.0}
_SPEED_SHARE = {"stop_line": 0.62, "other": 0.88}
_EFFECTIVE_LENGTH_M = {"stop_line": 20.0, "other": 7.0}
_MISSING_SHARE = 0.004
_OUTAGE_CHANCE_PER_DAY = 0.02
_STUCK_CHANCE_PER_DAY = 0.005

# Probe model. σ of the GPS error per axis is half the accuracy radius the fix reports.
_ACCURACY_M = (3.0, 8.0)
_RED_LIGHT_CHANCE = 0.45
_RED_WAIT_S = (5.0, 50.0)
#: Shortest lane the walk uses: SUMO nets have 0.1 m lanes, and a walk must always move on.
_MIN_LANE_M = 0.5
#: Broker delay after the instant a record is complete (interval end, fix time), in ms.
_PROBE_DELAY_MS = (300, 5_000)
_DETECTOR_DELAY_MS = (500, 10_000)

_INCIDENTS_PER_DAY = 3


# -- time --------------------------------------------------------------------------------------


def day_start_s(day: date) -> int:
    """Seconds since the epoch at 00:00Z of ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def demand(seconds: np.ndarray, weekend: np.ndarray | bool = False) -> np.ndarray:
    """Traffic demand as a share of the peak, in (0, 1], at instants given as seconds since the epoch.

    A weekday has a quiet night (about 5% of the peak), a sharp morning peak near 07:45, a broad
    midday plateau and a longer evening peak near 17:15; a weekend day has no commuter peaks but a
    broad midday hump at about 60%. Local time is taken as UTC (the benchmark needs a shape, not
    a time zone).
    """
    hour = (np.asarray(seconds, dtype=np.float64) % DAY_S) / HOUR_S
    morning = np.exp(-0.5 * ((hour - 7.75) / 1.1) ** 2)
    evening = np.exp(-0.5 * ((hour - 17.25) / 1.5) ** 2)
    midday = 0.55 * np.exp(-0.5 * ((hour - 12.75) / 3.2) ** 2)
    weekday = np.maximum.reduce([morning, evening, midday])
    weekend_shape = 0.6 * np.exp(-0.5 * ((hour - 14.0) / 3.8) ** 2)
    shape = np.where(weekend, weekend_shape, weekday)
    return 0.05 + 0.95 * shape


def _is_weekend(seconds: np.ndarray) -> np.ndarray:
    days = np.asarray(seconds, dtype=np.int64) // DAY_S
    return (days + 3) % 7 >= 5  # 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays


def _rng(seed: int, *parts: int | str) -> np.random.Generator:
    """An independent generator for one part of the output, so each part is deterministic alone."""
    words = [seed, *(int.from_bytes(hashlib.blake2b(str(p).encode(), digest_size=4).digest()) for p in parts)]
    return np.random.default_rng(np.random.SeedSequence(words))


# -- the network as arrays ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BenchNet:
    """The passenger lanes of a SUMO network as arrays the generator can index all at once.

    Lane ``i`` has id ``lane_ids[i]``; its shape is the run of segments ``seg_lane == i``, laid end
    to end on one axis (``lane_start[i]`` is where the lane begins on it), so that a position
    ``s`` metres along lane ``i`` is found with one ``searchsorted`` for any number of vehicles.
    Lengths are those of the shapes (what the vehicles really drive), at least ``_MIN_LANE_M``.
    """

    net: Any
    lane_ids: tuple[str, ...]
    edge_ids: tuple[str, ...]
    length: np.ndarray
    speed: np.ndarray
    #: The traffic light at the lane's end (SUMO id), or None.
    tls: tuple[str | None, ...]
    #: The node the lane's edge ends at (SUMO id).
    to_node: tuple[str, ...]
    lane_start: np.ndarray
    seg_start: np.ndarray
    seg_x: np.ndarray
    seg_y: np.ndarray
    seg_ux: np.ndarray
    seg_uy: np.ndarray
    seg_lane: np.ndarray
    #: The lanes a vehicle may go on to from lane ``i``: ``next_lanes[next_at[i]:next_at[i + 1]]``.
    next_at: np.ndarray
    next_lanes: np.ndarray
    #: Lanes no connection leads into: where a vehicle that left the network re-enters it.
    sources: np.ndarray
    projection: NetProjection

    @property
    def lane_count(self) -> int:
        return len(self.lane_ids)

    @property
    def stop_line(self) -> np.ndarray:
        return np.array([t is not None for t in self.tls])

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Network x/y (metres) to WGS84 lon/lat for whole arrays at once.

        sumolib's ``convertXY2LonLat`` does one point per call; the eight million fixes of a day
        go through the same projection as arrays (:class:`sim.geo.NetProjection`).
        """
        return self.projection.lonlat(x, y)

    def locate(self, lane: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y and the segment index of the points ``s`` metres along lanes ``lane``."""
        along = self.lane_start[lane] + np.clip(s, 0.0, self.length[lane] * (1.0 - 1e-9))
        segment = np.searchsorted(self.seg_start, along, side="right") - 1
        into = along - self.seg_start[segment]
        return (
            self.seg_x[segment] + self.seg_ux[segment] * into,
            self.seg_y[segment] + self.seg_uy[segment] * into,
            segment,
        )

    def heading_deg(self, segment: np.ndarray) -> np.ndarray:
        """Direction of travel along ``segment``, clockwise from true north, in [0, 360)."""
        grid = np.degrees(np.arctan2(self.seg_ux[segment], self.seg_uy[segment]))
        # One convergence angle for the whole net, as the twin uses: across a city-sized UTM net
        # it changes by a few hundredths of a degree, far below the heading noise of a GPS.
        return (grid + self.projection.grid_north_deg) % 360.0


def bench_network(net: sumolib.net.Net) -> BenchNet:
    """Arrays of ``net``'s non-internal lanes that admit passenger cars, in lane-id order."""
    lanes = sorted(
        (lane for edge in net.getEdges() if edge.getFunction() != "internal" for lane in edge.getLanes()),
        key=lambda lane: lane.getID(),
    )
    lanes = [lane for lane in lanes if lane.allows(VEHICLE_CLASS)]
    index = {lane.getID(): i for i, lane in enumerate(lanes)}
    tls_of = {a.lane_id: a.tls_id for a in approach_lanes(net)}

    lengths, starts = [], []
    seg_start, seg_x, seg_y, seg_ux, seg_uy, seg_lane = [], [], [], [], [], []
    axis = 0.0
    for i, lane in enumerate(lanes):
        shape = np.asarray(lane.getShape(), dtype=np.float64)
        steps = np.diff(shape, axis=0)
        seg_len = np.hypot(steps[:, 0], steps[:, 1])
        keep = seg_len > 1e-6
        if not keep.any():  # a lane whose shape is one point: give it a half-metre stub to drive
            shape = np.vstack([shape[:1], shape[:1] + [0.0, _MIN_LANE_M]])
            steps, seg_len, keep = shape[1:] - shape[:1], np.array([_MIN_LANE_M]), np.array([True])
        steps, seg_len, origin = steps[keep], seg_len[keep], shape[:-1][keep]
        total = float(seg_len.sum())
        if total < _MIN_LANE_M:  # stretch the last segment (≤ 0.5 m past the shape): walks must move on
            seg_len[-1] += _MIN_LANE_M - total
            total = _MIN_LANE_M
        unit = steps / np.hypot(steps[:, 0], steps[:, 1])[:, None]
        starts.append(axis)
        lengths.append(total)
        seg_start.append(axis + np.concatenate([[0.0], np.cumsum(seg_len)[:-1]]))
        seg_x.append(origin[:, 0])
        seg_y.append(origin[:, 1])
        seg_ux.append(unit[:, 0])
        seg_uy.append(unit[:, 1])
        seg_lane.append(np.full(len(seg_len), i, dtype=np.int32))
        axis += total

    next_at, next_lanes, has_incoming = [0], [], np.zeros(len(lanes), dtype=bool)
    for lane in lanes:
        onward = [c for c in lane.getOutgoing() if c.getToLane().getID() in index]
        straight_on = [c for c in onward if c.getDirection() not in ("t", "T")]
        targets = sorted({index[c.getToLane().getID()] for c in (straight_on or onward)})
        next_lanes.extend(targets)
        has_incoming[targets] = True
        next_at.append(len(next_lanes))
    sources = np.flatnonzero(~has_incoming)
    if len(sources) == 0:
        sources = np.arange(len(lanes))

    return BenchNet(
        net=net,
        lane_ids=tuple(lane.getID() for lane in lanes),
        edge_ids=tuple(lane.getEdge().getID() for lane in lanes),
        length=np.asarray(lengths),
        speed=np.asarray([float(lane.getSpeed()) for lane in lanes]),
        tls=tuple(tls_of.get(lane.getID()) for lane in lanes),
        to_node=tuple(lane.getEdge().getToNode().getID() for lane in lanes),
        lane_start=np.asarray(starts),
        seg_start=np.concatenate(seg_start),
        seg_x=np.concatenate(seg_x),
        seg_y=np.concatenate(seg_y),
        seg_ux=np.concatenate(seg_ux),
        seg_uy=np.concatenate(seg_uy),
        seg_lane=np.concatenate(seg_lane),
        next_at=np.asarray(next_at, dtype=np.int64),
        next_lanes=np.asarray(next_lanes, dtype=np.int64),
        sources=sources,
        projection=NetProjection.of(net),
    )


def load_bench_network(name: str = BENCH_NETWORK, build_dir: Path | None = None) -> BenchNet:
    """The scenario ``name``'s network as a :class:`BenchNet` (own scenarios build into ``build_dir``)."""
    from sim.scenarios import resolve

    scenario = resolve(name, build_dir or Path("var") / "sim")
    return bench_network(read_sumolib(scenario.net_file))


# -- detectors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorSites:
    """The benchmark's detectors: contract ids, where they sit, and their lane in the :class:`BenchNet`."""

    detector_ids: tuple[str, ...]
    intersection_ids: tuple[str, ...]
    lane_ids: tuple[str, ...]
    lane_index: np.ndarray
    #: Whether the loop is the stop-line loop of a signalised approach (the twin's own detectors).
    stop_line: np.ndarray

    def __len__(self) -> int:
        return len(self.detector_ids)


def detector_sites(bench: BenchNet, count: int) -> DetectorSites:
    """``count`` detectors: the twin's stop-line loops first, then more loops on the other lanes.

    Round 0 puts a loop on every signalised approach lane (ids as :func:`sim.detectors.detector_id`
    makes them, so they match the twin's), then on every other passenger lane; round ``k`` puts a
    ``k``-th upstream loop (``e1_<lane>:k``) on every lane again, until there are ``count``. The
    intersection is the lane's traffic light, or else the node its edge ends at.
    """
    if count < 1:
        raise ValueError(f"detectors must be at least 1, got {count}")
    stop_line = bench.stop_line
    order = sorted(range(bench.lane_count), key=lambda i: (not stop_line[i], detector_id(bench.lane_ids[i])))
    ids, intersections, lane_ids, lane_index, at_stop = [], [], [], [], []
    round_ = 0
    while len(ids) < count:
        for i in order:
            if len(ids) == count:
                break
            lane = bench.lane_ids[i]
            ids.append(detector_id(lane) if round_ == 0 else contract_id(f"e1_{lane}:{round_}"))
            intersections.append(contract_id(bench.tls[i] or bench.to_node[i]))
            lane_ids.append(contract_id(lane))
            lane_index.append(i)
            at_stop.append(round_ == 0 and bool(stop_line[i]))
        round_ += 1
    return DetectorSites(
        detector_ids=tuple(ids),
        intersection_ids=tuple(intersections),
        lane_ids=tuple(lane_ids),
        lane_index=np.asarray(lane_index, dtype=np.int64),
        stop_line=np.asarray(at_stop, dtype=bool),
    )


@dataclass(frozen=True)
class _DetectorDay:
    """What happens to the detectors on one day: outages, stuck stretches and their frozen reading."""

    outage_from: np.ndarray  # minute of the day, or -1
    outage_to: np.ndarray
    stuck_from: np.ndarray
    stuck_to: np.ndarray
    stuck_count: np.ndarray
    stuck_occupancy: np.ndarray
    stuck_speed: np.ndarray


class DetectorModel:
    """Readings of :class:`DetectorSites` per hour, from per-detector traits and per-day events."""

    def __init__(self, bench: BenchNet, sites: DetectorSites, seed: int) -> None:
        self.bench, self.sites, self.seed = bench, sites, seed
        rng = _rng(seed, "detector-traits")
        n = len(sites)
        kind_flow = np.where(sites.stop_line, _PEAK_FLOW_VPH["stop_line"], _PEAK_FLOW_VPH["other"])
        self.peak_flow = kind_flow * np.exp(rng.normal(0.0, 0.35, n))
        self.sensitivity = rng.uniform(0.15, 0.6, n)
        share = np.where(sites.stop_line, _SPEED_SHARE["stop_line"], _SPEED_SHARE["other"])
        self.free_speed = bench.speed[sites.lane_index] * share
        self.effective_length = np.where(
            sites.stop_line, _EFFECTIVE_LENGTH_M["stop_line"], _EFFECTIVE_LENGTH_M["other"]
        )
        self._days: dict[int, _DetectorDay] = {}

    def _day(self, day_index: int) -> _DetectorDay:
        """The day's events; only the current day is kept, since hours are asked for in order."""
        if day_index not in self._days:
            rng = _rng(self.seed, "detector-day", day_index)
            n = len(self.sites)
            minutes = DAY_S // 60
            out = rng.random(n) < _OUTAGE_CHANCE_PER_DAY
            out_len = rng.integers(30, 180, n)
            out_from = np.where(out, rng.integers(0, minutes - 180, n), -1)
            stuck = rng.random(n) < _STUCK_CHANCE_PER_DAY
            stuck_len = rng.integers(60, 240, n)
            stuck_from = np.where(stuck, rng.integers(0, minutes - 240, n), -1)
            speed = np.round(self.free_speed * rng.uniform(0.5, 1.0, n), 2)
            count = rng.integers(1, 9, n)
            occupancy = np.round(
                np.clip(count * self.effective_length / (np.maximum(speed, 1.0) * 60), 0, 0.98), 4
            )
            self._days = {
                day_index: _DetectorDay(
                    outage_from=out_from,
                    outage_to=np.where(out, out_from + out_len, -1),
                    stuck_from=stuck_from,
                    stuck_to=np.where(stuck, stuck_from + stuck_len, -1),
                    stuck_count=count,
                    stuck_occupancy=occupancy,
                    stuck_speed=speed,
                )
            }
        return self._days[day_index]

    def hour(self, hour_start: int) -> dict[str, np.ndarray]:
        """The readings whose interval starts in the hour from ``hour_start`` (epoch seconds).

        Columns: ``detector`` (site index), ``ts`` (interval start, s), ``count``, ``occupancy``,
        ``speed`` (NaN when null); rows in time order, then site order.
        """
        n = len(self.sites)
        day_index = hour_start // DAY_S
        events = self._day(day_index)
        rng = _rng(self.seed, "detector-hour", hour_start)
        per_hour = HOUR_S // DETECTOR_INTERVAL_S
        starts = hour_start + DETECTOR_INTERVAL_S * np.arange(per_hour)
        share = demand(starts + DETECTOR_INTERVAL_S / 2, _is_weekend(starts))  # (T,)
        expected = share[:, None] * self.peak_flow[None, :] * DETECTOR_INTERVAL_S / HOUR_S  # (T, n)
        count = rng.poisson(expected)
        slowdown = 1.0 - share[:, None] ** 2 * self.sensitivity[None, :]
        speed = self.free_speed[None, :] * slowdown * np.exp(rng.normal(0.0, 0.08, (per_hour, n)))
        speed = np.round(np.clip(speed, 0.5, 100.0), 2)
        occupancy = (
            count
            * self.effective_length[None, :]
            / (speed * DETECTOR_INTERVAL_S)
            * np.exp(rng.normal(0, 0.1, count.shape))
        )
        occupancy = np.round(np.clip(occupancy, 0.0, 0.98), 4)
        speed = np.where(count > 0, speed, np.nan)

        minute = ((starts - day_index * DAY_S) // 60)[:, None]
        stuck = (minute >= events.stuck_from[None, :]) & (minute < events.stuck_to[None, :])
        count = np.where(stuck, events.stuck_count[None, :], count)
        occupancy = np.where(stuck, events.stuck_occupancy[None, :], occupancy)
        speed = np.where(stuck, events.stuck_speed[None, :], speed)
        present = ~((minute >= events.outage_from[None, :]) & (minute < events.outage_to[None, :]))
        present &= rng.random(count.shape) >= _MISSING_SHARE

        rows = np.nonzero(present)
        return {
            "detector": rows[1],
            "ts": starts[rows[0]],
            "count": count[rows],
            "occupancy": occupancy[rows],
            "speed": speed[rows],
        }


# -- probes ------------------------------------------------------------------------------------


@dataclass
class ProbeHour:
    """One hour of probe fixes, in step order then vehicle order, with the truth behind them."""

    vehicle: np.ndarray
    trip: np.ndarray
    ts: np.ndarray  # epoch seconds of the fix
    lane: np.ndarray  # BenchNet lane index the vehicle was on
    segment: np.ndarray
    x: np.ndarray  # true position, network metres
    y: np.ndarray
    speed: np.ndarray  # true speed, m/s
    heading: np.ndarray  # true-north degrees; NaN while standing
    accuracy: np.ndarray
    lon: np.ndarray  # reported (noisy) position
    lat: np.ndarray
    reported_speed: np.ndarray


class ProbeFleet:
    """``vehicles`` probe vehicles that drive without pause, each a random walk over the lanes.

    Each 5-second step moves every vehicle ``speed × 5`` metres along its lane; one that runs past
    the lane's end goes on to a random lane its lane connects to (turnarounds only where nothing
    else is possible), or, at a dead end, re-enters the network on a lane nothing leads into as a
    new trip. At a traffic light it stops at the stop line for a red now and then. Speed is the
    lane's limit times a per-vehicle factor, slowed by the same demand curve as the detectors.
    """

    def __init__(self, bench: BenchNet, vehicles: int, seed: int, start_s: int) -> None:
        if vehicles < 1:
            raise ValueError(f"probes must be at least 1, got {vehicles}")
        self.bench, self.seed, self.n = bench, seed, vehicles
        self.rng = _rng(seed, "probe-walk")
        weights = bench.length / bench.length.sum()
        self.lane = self.rng.choice(bench.lane_count, size=vehicles, p=weights)
        self.s = self.rng.random(vehicles) * bench.length[self.lane]
        self.factor = self.rng.uniform(0.7, 1.05, vehicles)
        self.phase = self.rng.integers(0, PROBE_INTERVAL_S, vehicles)
        self.trip = np.zeros(vehicles, dtype=np.int64)
        self.wait = np.zeros(vehicles)
        self.cleared = np.zeros(vehicles, dtype=bool)  # waited at this lane's light already
        self.stop_line = bench.stop_line
        self.out_degree = np.diff(bench.next_at)
        self.now = start_s

    def _move_on(self, who: np.ndarray) -> None:
        """Vehicles ``who`` have run past their lane's end: stop at a red, or take the next lane."""
        bench, rng = self.bench, self.rng
        while len(who):
            lane = self.lane[who]
            self.s[who] -= bench.length[lane]
            red = self.stop_line[lane] & ~self.cleared[who] & (rng.random(len(who)) < _RED_LIGHT_CHANCE)
            stopped = who[red]
            self.s[stopped] = np.maximum(bench.length[self.lane[stopped]] - 0.5, 0.0)
            self.wait[stopped] = rng.uniform(*_RED_WAIT_S, len(stopped))
            self.cleared[stopped] = True
            going = who[~red]
            degree = self.out_degree[self.lane[going]]
            dead_end = degree == 0
            pick = bench.next_at[self.lane[going]] + (rng.random(len(going)) * np.maximum(degree, 1)).astype(
                np.int64
            )
            onward = bench.next_lanes[np.minimum(pick, len(bench.next_lanes) - 1)]
            new_trip = going[dead_end]
            onward[dead_end] = rng.choice(bench.sources, size=int(dead_end.sum()))
            self.lane[going] = onward
            self.s[new_trip] = 0.0
            self.trip[new_trip] += 1
            self.cleared[going] = False
            who = going[self.s[going] >= bench.length[self.lane[going]]]

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance 5 s; return each vehicle's lane, position along it, speed and trip number now."""
        bench, rng = self.bench, self.rng
        share = demand(np.array([self.now]), _is_weekend(np.array([self.now])))[0]
        waiting = self.wait > 0
        self.wait = np.maximum(self.wait - PROBE_INTERVAL_S, 0.0)
        speed = bench.speed[self.lane] * self.factor * (1.0 - 0.45 * share**2)
        speed *= np.exp(rng.normal(0.0, 0.1, self.n))
        speed = np.where(waiting, 0.0, np.maximum(speed, 1.0))
        self.s += speed * PROBE_INTERVAL_S
        over = np.flatnonzero(self.s >= bench.length[self.lane])
        if len(over):
            self._move_on(over)
            speed[self.wait > 0] = 0.0  # came to a red light during this step and stands there
        self.now += PROBE_INTERVAL_S
        return self.lane.copy(), self.s.copy(), speed, self.trip.copy()

    def hour(self, hour_start: int) -> ProbeHour:
        """The fixes of the hour from ``hour_start``: one per vehicle per 5 s, at each vehicle's phase."""
        if hour_start != self.now:
            raise ValueError(f"the walk is at {self.now}, not at {hour_start}: hours must follow each other")
        steps = HOUR_S // PROBE_INTERVAL_S
        lanes, along, speeds, trips = zip(*(self.step() for _ in range(steps)), strict=True)
        lane, s, speed, trip = (np.concatenate(part) for part in (lanes, along, speeds, trips))
        vehicle = np.tile(np.arange(self.n), steps)
        ts = hour_start + np.repeat(np.arange(steps), self.n) * PROBE_INTERVAL_S + self.phase[vehicle]
        x, y, segment = self.bench.locate(lane, s)
        heading = np.where(speed >= STANDING_MPS, self.bench.heading_deg(segment), np.nan)

        noise = _rng(self.seed, "probe-noise", hour_start)
        accuracy = np.round(noise.uniform(*_ACCURACY_M, len(x)), 1)
        sigma = accuracy / 2.0
        lon, lat = self.bench.lonlat(
            x + noise.normal(0.0, 1.0, len(x)) * sigma, y + noise.normal(0.0, 1.0, len(x)) * sigma
        )
        reported = np.round(np.clip(speed * np.exp(noise.normal(0.0, 0.03, len(x))), 0.0, 100.0), 2)
        return ProbeHour(
            vehicle=vehicle,
            trip=trip,
            ts=ts,
            lane=lane,
            segment=segment,
            x=x,
            y=y,
            speed=speed,
            heading=heading,
            accuracy=accuracy,
            lon=lon,
            lat=lat,
            reported_speed=reported,
        )


# -- bronze tables -------------------------------------------------------------------------------


def _timestamps_us(seconds: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(seconds, dtype=np.int64) * 1_000_000, pa.timestamp("us", tz="UTC"))


def _provenance(first_offset: int, arrival_ms: np.ndarray, keys: pa.Array) -> list[pa.Array]:
    n = len(arrival_ms)
    return [
        pa.array(np.full(n, PARTITION, dtype=np.int32)),
        pa.array(first_offset + np.arange(n, dtype=np.int64)),
        pa.array(np.asarray(arrival_ms, dtype=np.int64), pa.timestamp("ms", tz="UTC")),
        pc.cast(keys, pa.binary()),
    ]


def detector_table(
    sites: DetectorSites, rows: dict[str, np.ndarray], first_offset: int, seed: int
) -> pa.Table:
    """Readings as a bronze table, in the order they reach the broker (interval end plus a delay)."""
    n = len(rows["ts"])
    hour_start = int(rows["ts"].min()) if n else 0
    delay = _rng(seed, "detector-delay", hour_start).integers(*_DETECTOR_DELAY_MS, n)
    arrival = (rows["ts"] + DETECTOR_INTERVAL_S) * 1000 + delay
    order = np.argsort(arrival, kind="stable")
    detector = pa.array(rows["detector"][order])
    ids = pa.array(sites.detector_ids).take(detector)
    speed = rows["speed"][order]
    columns = [
        pa.array(np.ones(n, dtype=np.int64)),
        _timestamps_us(rows["ts"][order]),
        ids,
        pa.array(sites.intersection_ids).take(detector),
        pa.array(sites.lane_ids).take(detector),
        pa.array(np.full(n, DETECTOR_INTERVAL_S, dtype=np.int64)),
        pa.array(rows["count"][order].astype(np.int64)),
        pa.array(rows["occupancy"][order]),
        pa.array(speed, mask=np.isnan(speed)),
        pa.repeat(DETECTOR_SOURCE, n),
        pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string())),
        *_provenance(first_offset, arrival[order], ids),
    ]
    return pa.Table.from_arrays(columns, schema=bronze_schema(DETECTOR_TOPIC))


def probe_table(
    hour: ProbeHour, pseudonyms: list[str], trip_key: np.ndarray, first_offset: int, seed: int
) -> pa.Table:
    """Fixes as a bronze table, in broker order (fix time plus a delay).

    ``trip_key`` gives each row's index into ``pseudonyms``, the ids of the hour's (vehicle, trip)s.
    """
    n = len(hour.ts)
    delay = _rng(seed, "probe-delay", int(hour.ts.min()) if n else 0).integers(*_PROBE_DELAY_MS, n)
    arrival = hour.ts * 1000 + delay
    order = np.argsort(arrival, kind="stable")
    ids = pa.array(pseudonyms).take(pa.array(trip_key[order]))
    heading = np.round(hour.heading[order], 1)
    heading = np.where(heading >= 360.0, 0.0, heading)
    columns = [
        pa.array(np.ones(n, dtype=np.int64)),
        _timestamps_us(hour.ts[order]),
        ids,
        pa.array(np.round(hour.lat[order], 7)),
        pa.array(np.round(hour.lon[order], 7)),
        pa.array(hour.reported_speed[order]),
        pa.array(heading, mask=np.isnan(heading)),
        pa.array(hour.accuracy[order]),
        pa.repeat(PROVIDER, n),
        *_provenance(first_offset, arrival[order], ids),
    ]
    return pa.Table.from_arrays(columns, schema=bronze_schema(PROBE_TOPIC))


def record_table(topic: str, records: list[tuple[int, dict[str, Any]]], first_offset: int) -> pa.Table:
    """A few records (arrival ms, record) as a bronze table, through the ingest's own conversion."""
    from schemas import contract
    from streaming.bronze import Row, to_table

    key_field = contract(topic).key_field
    ordered = sorted(records, key=lambda item: item[0])
    rows = [
        Row(record=record, offset=first_offset + i, timestamp_ms=arrival, key=str(record[key_field]).encode())
        for i, (arrival, record) in enumerate(ordered)
    ]
    return to_table(topic, PARTITION, rows)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def weather_records(
    bench: BenchNet, start_s: int, end_s: int, seed: int, network: str = BENCH_NETWORK
) -> list[tuple[int, dict[str, Any]]]:
    """One station at the network's centre, every 10 minutes: (arrival ms, record)."""
    from sim.twin import weather_record

    model = WeatherModel(seed=seed + 1)
    lon, lat = bench.lonlat(*([c] for c in bench.projection.centre_xy))
    station = contract_id(f"bench_wx_{network.rsplit('/', 1)[-1].removesuffix('.sumocfg')}")
    out = []
    first = -(-start_s // WEATHER_INTERVAL_S) * WEATHER_INTERVAL_S
    for t in range(first, end_s, WEATHER_INTERVAL_S):
        at = _utc(t)
        record = weather_record(
            station_id=station, at=at, lat=float(lat[0]), lon=float(lon[0]), observation=model.observe(at)
        )
        out.append(((t + 30) * 1000, record))
    return out


_INCIDENT_KINDS = ("crash", "breakdown", "hazard", "road_works")


def incident_records(
    bench: BenchNet, start_s: int, end_s: int, seed: int
) -> list[tuple[int, dict[str, Any]]]:
    """A few incidents a day on edges with two or more lanes, each reported, then cleared."""
    from sim.twin import incident_record

    by_edge: dict[str, list[int]] = {}
    for i, edge in enumerate(bench.edge_ids):
        by_edge.setdefault(edge, []).append(i)
    multi = sorted(edge for edge, lanes in by_edge.items() if len(lanes) >= 2)
    if not multi:
        return []
    out = []
    for day_start in range(start_s - start_s % DAY_S, end_s, DAY_S):
        rng = _rng(seed, "incidents", day_start)
        for number in range(_INCIDENTS_PER_DAY):
            edge = multi[int(rng.integers(len(multi)))]
            lane = by_edge[edge][int(rng.integers(len(by_edge[edge])))]
            begin = day_start + int(rng.integers(5 * HOUR_S, 20 * HOUR_S))
            end = begin + int(rng.integers(20 * 60, 90 * 60))
            x, y, _ = bench.locate(np.array([lane]), bench.length[[lane]] / 2.0)
            lon, lat = bench.lonlat(x, y)
            kind = _INCIDENT_KINDS[int(rng.integers(len(_INCIDENT_KINDS)))]
            common = {
                "incident_id": f"bench-{_utc(day_start):%Y%m%d}-{number}",
                "kind": kind,
                "severity": int(rng.integers(2, 4)),
                "lat": float(lat[0]),
                "lon": float(lon[0]),
                "edge_id": edge,
                "lane_ids": [bench.lane_ids[lane]],
                "start": _utc(begin),
                "description": f"{kind.replace('_', ' ')} on {edge}",
                "source": PROVIDER,
            }
            reported_at = begin + int(rng.integers(60, 300))
            for at, status, until in ((reported_at, "reported", end + 600), (end, "cleared", end)):
                if start_s <= at < end_s:
                    record = incident_record(at=_utc(at), status=status, end=_utc(until), **common)
                    out.append((at * 1000 + 1500, record))
    return out


# -- the generator -------------------------------------------------------------------------------


Progress = Callable[[str], None]


def progress_reporter(progress: Any) -> Progress:
    """A rich Console (its ``print``), a plain callable, or nothing."""
    if progress is None:
        return lambda message: None
    if hasattr(progress, "print"):
        return lambda message: progress.print(message, markup=False, highlight=False)
    return progress


@dataclass
class _Landing:
    """Where each topic's next offset is and what has been written."""

    lake: Path
    rows_per_file: int | None
    next_offset: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BENCH_TOPICS, 0))
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BENCH_TOPICS, 0))
    rows_per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0

    def land(self, topic: str, hour_start: int, table: pa.Table) -> None:
        """Write one event hour's rows of ``topic`` as the ingest would: per offset range, durably."""
        if table.num_rows == 0:
            return
        at = _utc(hour_start)
        day, hour = at.strftime("%Y-%m-%d"), at.strftime("%H")
        chunk = self.rows_per_file or table.num_rows
        for first in range(0, table.num_rows, chunk):
            part = table.slice(first, chunk)
            offsets = part.column("_offset")
            path = bronze_file(
                self.lake, topic, day, hour, PARTITION, pc.min(offsets).as_py(), pc.max(offsets).as_py()
            )
            write_durably(part, path)
            self.files += 1
            self.bytes += path.stat().st_size
        self.next_offset[topic] += table.num_rows
        self.rows[topic] += table.num_rows
        per_day = self.rows_per_day.setdefault(day, dict.fromkeys(BENCH_TOPICS, 0))
        per_day[topic] += table.num_rows


def generate_bronze(
    lake: Path,
    *,
    start_day: date,
    days: int = 1,
    detectors: int = 2000,
    probes: int = 500,
    seed: int = 0,
    hours: int | None = None,
    network: str = BENCH_NETWORK,
    build_dir: Path | None = None,
    rows_per_file: int | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Write ``days`` days (or the first ``hours`` hours) of bronze from 00:00Z of ``start_day``.

    Returns the rows per topic (in all and per day), files, bytes and seconds taken. Each topic's
    event hour lands as one file (or files of ``rows_per_file`` rows), partition 0, offsets
    counting up from 0 across the files, in the order the broker would have received the records
    within each hour. (A real ingest would interleave the offsets of the few records that arrive
    after the next hour began; no lake job depends on offset order across files.)
    ``progress`` is a rich Console or a callable taking a line of text.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    total_hours = days * 24 if hours is None else hours
    if not 1 <= total_hours <= days * 24:
        raise ValueError(f"hours must be between 1 and {days * 24}, got {hours}")
    say = progress_reporter(progress)
    started = time.perf_counter()
    bench = load_bench_network(network, build_dir)
    sites = detector_sites(bench, detectors)
    model = DetectorModel(bench, sites, seed)
    start_s = day_start_s(start_day)
    end_s = start_s + total_hours * HOUR_S
    fleet = ProbeFleet(bench, probes, seed, start_s)
    landing = _Landing(lake, rows_per_file)
    small: dict[str, dict[int, list[tuple[int, dict[str, Any]]]]] = {}
    for topic, records in (
        (WEATHER_TOPIC, weather_records(bench, start_s, end_s, seed, network)),
        (INCIDENT_TOPIC, incident_records(bench, start_s, end_s, seed)),
    ):
        by_hour = small.setdefault(topic, {})
        for arrival, record in records:
            event_s = int(datetime.fromisoformat(record["ts"]).timestamp())
            by_hour.setdefault(event_s - event_s % HOUR_S, []).append((arrival, record))
    say(
        f"bench lake: {len(sites):,} detectors, {probes:,} probes on {network} "
        f"({bench.lane_count:,} lanes), {total_hours} h from {start_day.isoformat()}"
    )
    for h in range(total_hours):
        hour_start = start_s + h * HOUR_S
        readings = model.hour(hour_start)
        landing.land(
            DETECTOR_TOPIC,
            hour_start,
            detector_table(sites, readings, landing.next_offset[DETECTOR_TOPIC], seed),
        )
        fixes = fleet.hour(hour_start)
        salt = f"bench:{seed}:{_utc(hour_start).date().isoformat()}"
        trip_ids, trip_key = np.unique(fixes.vehicle * (1 << 32) + fixes.trip, return_inverse=True)
        pseudonyms = [probe_pseudonym(f"{k >> 32}.{k & 0xFFFFFFFF}", salt) for k in trip_ids.tolist()]
        landing.land(
            PROBE_TOPIC,
            hour_start,
            probe_table(fixes, pseudonyms, trip_key, landing.next_offset[PROBE_TOPIC], seed),
        )
        for topic in (WEATHER_TOPIC, INCIDENT_TOPIC):
            records = small[topic].get(hour_start, [])
            if records:
                landing.land(topic, hour_start, record_table(topic, records, landing.next_offset[topic]))
        if (h + 1) % 6 == 0 or h + 1 == total_hours:
            say(
                f"bench lake: generated {h + 1}/{total_hours} h · "
                + " · ".join(f"{t.split('.')[1]} {n:,}" for t, n in landing.rows.items())
                + f" · {landing.bytes / 1e6:,.0f} MB · {time.perf_counter() - started:,.1f} s"
            )
    return {
        "network": network,
        "start_day": start_day.isoformat(),
        "days": days,
        "hours": total_hours,
        "detectors": len(sites),
        "probes": probes,
        "seed": seed,
        "rows": dict(landing.rows),
        "rows_per_day": landing.rows_per_day,
        "files": landing.files,
        "bytes": landing.bytes,
        "seconds": round(time.perf_counter() - started, 3),
    }


# -- the benchmark -------------------------------------------------------------------------------

#: Bump when the generator's output changes, so a kept bench lake is not reused with old data.
