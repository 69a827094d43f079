"""Demand from the lake: SUMO routes that reproduce the gold counts of a period, by routeSampler.

RESCO and user scenarios bring their own routes (:mod:`optimizer.demand.own_routes`); the city itself has
only what the lake measured. For a period [start, end) this module turns the gold tables into a
scenario on the network the lake maps onto (``settings.lake_network``):

1. **Counts.** ``gold.turning_movements_15min`` gives vehicles per movement (from edge → to edge)
   and ``gold.link_state_15min`` vehicles per edge, both as hourly rates per 15 minutes. Each
   becomes a count of vehicles in its quarter hour (``vph / 4``, rounded to whole vehicles here,
   because routeSampler truncates counts with ``int()`` and would lose half a vehicle per
   location on average). Turn counts go into an ``edgeRelation`` file, link flows into an
   ``edgeData`` file (attribute ``entered``), one ``<interval>`` per quarter hour. An edge whose
   turn counts are already in the interval gets no edge count: its turns add up to the same
   detectors' flow, and counting it twice would only weigh it double in the fit. A link without a
   flow (no usable detector) is no count at all, not a zero.
2. **Candidate routes.** ``randomTrips.py --route-file`` draws trips between the network's
   *fringe* edges only (``--fringe-factor max``) and routes them with duarouter, with a small
   random disturbance of edge weights so that near-equal alternatives (parallel streets) appear.
   Fringe only, because the network is a cut-out of the city: traffic enters and leaves through
   its boundary. Measured on the corridor twin, candidates that may start and end on any edge let
   routeSampler hit every count exactly, but with 1.7 times the vehicles the twin really had
   (fringe only: 0.87 times), most of them appearing just upstream of one detector and vanishing
   behind it; that breaks the platoons signal coordination is about. ``findAllRoutes.py`` was
   not used: it enumerates every loop-free path (explosive on a grid) and ignores lane
   permissions. The candidates depend on the network alone and are cached per network.
3. **Sampling.** ``routeSampler.py`` draws routes for each interval until the counts are met,
   never overshooting one, then ``--optimize full`` re-chooses how often each route is used by a
   linear program minimising the total deviation from the counts. On the corridor twin that
   halved the deviation (5 % of the vehicles counted instead of 11 %) for slightly fewer
   locations within GEH 5 (92 % instead of 94 %) and fewer distinct routes. What the fringe
   routes cannot meet are stop-line counts that disagree within a quarter hour (a platoon
   counted upstream reaches the next signal in the next interval; a queue builds between two
   detectors): that is the fit reported.
4. **Scenario.** A ``.sumocfg`` with the network (and its own additional files: signal programs,
   detectors), the sampled routes and the window. Simulation time is **seconds since 00:00 UTC of
   the start's day**, as the sensor twin maps it (:func:`sim.twin.sim_time_to_utc`): the corridor
   twin's 06:30Z is 23400 s here as in the twin, so a signal program's time of day and any
   comparison with the twin line up. The network starts empty at ``start``: choose an earlier
   start for a warm-up.

The fit of the routes to the counts (routeSampler's ``--mismatch-output``) comes back as a
:class:`CountFit` and is logged. Everything is cached under the caller's folder, keyed by content:
the counts as written, the network file, the tools as installed and the options. A rerun on the
same lake reuses the routes; parallel callers take a lock, so the sampling happens once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import CitybrainError
from core.files import atomic_dir, existing, file_lock, produce_once
from core.settings import Settings
from lake.delta import NoSuchVersion, filled_slots, read_partitions, table_versions
from lake.jobs import BadInterval, check_interval
from lake.location import tables_location
from lake.tables import DEMAND_TABLES, SLOT, TABLES, Table, latest_period
from optimizer.demand.own_routes import DEMAND_SEED
from optimizer.methods.sumo_baselines import SumoToolError, run_tool, tool_path
from sim.network import load
from sim.scenarios import LAKE_PREFIX, Scenario, from_sumocfg, resolve
from sim.sumo_home import sumo_binary
from sim.xml_files import element, render

log = logging.getLogger(__name__)

#: Bumped when a cached file's content or meaning changes, so old files are not read as new ones.
CACHE_FORMAT = 1
TURNS_TABLE, LINKS_TABLE = (TABLES[name] for name in DEMAND_TABLES)
#: Trips drawn for the candidate routes: each pair of the corridor's 16 × 16 fringe edges is drawn
#: about 40 times, and RESCO's largest excerpt (ingolstadt21) gets over 3000 distinct routes;
#: randomTrips and duarouter take a few seconds for them.
CANDIDATE_TRIPS = 10_000
#: Edge weights are disturbed by a factor in [1, this) per trip, so that routes other than the
#: single fastest one appear between the same two edges, but no long detours.
RANDOM_ROUTING_FACTOR = 1.5
#: Candidate trips and their routes are for cars; the lake's counts are of all vehicles.
VEHICLE_CLASS = "passenger"
#: How the sampled vehicles enter, as the corridor's own demand does: on the best lane at full speed.
VEHICLE_ATTRIBUTES = 'departLane="best" departSpeed="max"'
#: A location fits when its GEH (on hourly flows) is below this: the usual calibration criterion.
GEH_OK = 5.0
TURNS_FILE = "turns.dat.xml"
EDGES_FILE = "edges.dat.xml"
ROUTES_FILE = "routes.rou.xml"
MISMATCH_FILE = "mismatch.xml"
SUMOCFG_FILE = "lake.sumocfg"
SAMPLER_LOG = "routeSampler.log"
RANDOM_TRIPS_TOOL = "randomTrips.py"
ROUTE_SAMPLER_TOOL = "routeSampler.py"


class LakeDemandError(CitybrainError, ValueError):
    """A period the lake cannot give demand for: misaligned, empty, or without gold counts."""


@dataclass(frozen=True)
class CountInterval:
    """The counts of one quarter hour, in vehicles, with its bounds in simulation seconds."""

    begin: int
    end: int
    #: Vehicles per movement (from edge, to edge).
    turns: dict[tuple[str, str], int] = field(default_factory=dict)
    #: Vehicles per edge, for edges none of whose turns are counted.
    edges: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CountFit:
    """How well the sampled routes reproduce the counts they were sampled for.

    A location is one counted edge or movement in one interval. ``deviation`` is the sum over
    locations of |sampled − measured| vehicles; GEH is taken on hourly flows, as routeSampler does.
    """

    locations: int
    measured: int
    deviation: int
    geh_ok: int

    @property
    def deviation_share(self) -> float:
        """Total absolute deviation as a share of the vehicles counted."""
        return self.deviation / self.measured if self.measured else 0.0

    @property
    def geh_ok_share(self) -> float:
        """Share of locations with GEH below :data:`GEH_OK`."""
        return self.geh_ok / self.locations if self.locations else 1.0

    def __str__(self) -> str:
        return (
            f"{self.locations} counting locations, {self.measured} vehicles counted, deviation "
            f"{self.deviation} ({self.deviation_share:.1%}), GEH<{GEH_OK:g} at {self.geh_ok_share:.1%}"
        )


@dataclass(frozen=True)
class LakeDemand:
    """A scenario whose demand was sampled from the lake, how well it fits, its cache folder, and
    the version of each gold table the counts were read from (for the plan's record)."""

    scenario: Scenario
    fit: CountFit
    folder: Path
    versions: dict[str, int]


def lake_scenario(settings: Settings, start: datetime, end: datetime, out_dir: Path) -> Scenario:
    """The scenario of the lake network with demand sampled from gold for [start, end); see
    :func:`lake_demand` for the fit of its routes to the counts."""
    return lake_demand(settings, start, end, out_dir).scenario


def lake_demand(
    settings: Settings,
    start: datetime,
    end: datetime,
    out_dir: Path,
    *,
    region: tuple[str, Path] | None = None,
    versions: Mapping[str, int] | None = None,
) -> LakeDemand:
    """Routes sampled to reproduce gold's counts for [start, end) (aware datetimes on quarter
    hours), as a scenario on ``settings.lake_network``, cached under ``out_dir`` (see the module).

    ``region`` (a name and a network cut out of the lake network, :mod:`optimizer.search.regions`)
    samples for that cut alone: the counts on its edges, its own fringe as where traffic enters
    and leaves — the region's boundary flows are what the lake counted there. The lake network's
    additional files stay out: they name lanes the cut may not have.

    ``versions`` reads the gold tables as of those versions (regions read what the whole network
    read); by default, their newest.
    """
    start, end = check_period(start, end)
    versions = dict(versions) if versions is not None else pinned_versions(tables_location(settings))
    intervals = read_gold_counts(tables_location(settings), start, end, versions)
    base = resolve(settings.lake_network, settings.sim_dir / "build")
    label = _network_label(settings.lake_network)
    if region is not None:
        name, net_file = region
        base = replace(base, name=f"{base.name}/{name}", net_file=Path(net_file), additional_files=())
        intervals = within(intervals, edge_ids(net_file))
        if not any(interval.turns or interval.edges for interval in intervals):
            raise LakeDemandError(f"{name}: the lake has no counts on the edges of {net_file}")
        label = f"{label}/{name}"
    out_dir = Path(out_dir).resolve()  # absolute: the tools run inside the work folder
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = {TURNS_FILE: turn_count_xml(intervals), EDGES_FILE: edge_count_xml(intervals)}
    counts = {name: text for name, text in texts.items() if text is not None}
    candidates = candidate_routes(base.net_file, out_dir)
    key = _digest(
        {
            "format": CACHE_FORMAT,
            "counts": {name: hashlib.sha1(text.encode()).hexdigest() for name, text in counts.items()},
            "candidates": candidates.name,
            "net": str(base.net_file),
            "additional": [str(p) for p in base.additional_files],
            "tool": _stamp(tool_path(ROUTE_SAMPLER_TOOL)),
            "options": [DEMAND_SEED, VEHICLE_ATTRIBUTES, "optimize full"],
        }
    )
    folder = out_dir / f"lake-{_slug(label)}-{_compact(start)}-{_compact(end)}-{key}"
    if not (folder / SUMOCFG_FILE).is_file():
        with file_lock(folder):
            if not (folder / SUMOCFG_FILE).is_file():  # another process may have sampled it meanwhile
                _sample(folder, counts, candidates, base, intervals[0].begin, intervals[-1].end)
    name = f"{LAKE_PREFIX}{label}/{_compact(start)}-{_compact(end)}"
    scenario = from_sumocfg(folder / SUMOCFG_FILE, name, "lake")
    fit = read_fit(folder / MISMATCH_FILE)
    log.info("lake demand %s: %s (gold versions %s)", name, fit, versions)
    return LakeDemand(scenario, fit, folder, versions)


def latest_demand(settings: Settings, out_dir: Path, longest: timedelta = timedelta(hours=1)) -> LakeDemand:
    """:func:`lake_demand` for the lake's newest consecutive fused quarter hours (at most
    ``longest``): the city as it was most recently counted, which is what an incident that
    happens now is planned on."""
    period = latest_period(filled_slots(tables_location(settings), DEMAND_TABLES), None, longest)
    if period is None:
        raise LakeDemandError(f"the lake at {tables_location(settings).root} has no fused gold counts")
    return lake_demand(settings, *period, out_dir)


def check_period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``start`` and ``end`` in UTC: time-zone aware, on the lake's quarter hours, start first."""
    for name, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None:
            raise LakeDemandError(f"{name} {moment.isoformat()} has no time zone; the lake's time is UTC")
    try:
        return check_interval(start, end)
    except BadInterval as exc:
        raise LakeDemandError(f"lake demand: {exc}") from None


def sim_seconds(moment: datetime, day: date) -> int:
    """Simulation time of ``moment``: whole seconds since 00:00 UTC of ``day`` (the twin's mapping)."""
    return round((moment - datetime(day.year, day.month, day.day, tzinfo=UTC)).total_seconds())


def pinned_versions(lake: Path) -> dict[str, int]:
    """The newest version of each gold table demand is read from (a table never written has none)."""
    versions = table_versions(lake, (TURNS_TABLE.name, LINKS_TABLE.name))
    return {name: version for name, version in versions.items() if version is not None}


def read_gold_counts(
    lake: Path, start: datetime, end: datetime, versions: Mapping[str, int] | None = None
) -> list[CountInterval]:
    """The counts of every quarter hour of [start, end) from the gold partitions of the period, as
    of ``versions`` of the tables (default: their newest).

    Raises :class:`LakeDemandError` naming the quarter hours without any count: routes sampled
    without them would be a period with no traffic, not the city's.
    """
    versions = versions if versions is not None else pinned_versions(lake)
    turns = _read_partitions(
        lake, TURNS_TABLE, start, end, ["from_edge", "to_edge", "window_start", "volume_vph"], versions
    )
    links = _read_partitions(lake, LINKS_TABLE, start, end, ["edge_id", "window_start", "flow_vph"], versions)
    intervals = gold_counts(turns, links, start, end)
    missing = [
        start + i * SLOT for i, interval in enumerate(intervals) if not interval.turns and not interval.edges
    ]
    if missing:
        slots = ", ".join(f"{moment:%Y-%m-%d %H:%M}Z" for moment in missing)
        raise LakeDemandError(
            f"the lake at {lake} has no gold counts ({TURNS_TABLE.name} volumes or {LINKS_TABLE.name} "
            f"flows) for {len(missing)} of the {len(intervals)} quarter hours of "
            f"{start.isoformat()} – {end.isoformat()}: {slots}. Fuse them first "
            f"(citybrain lake fuse --start ... --end ...)."
        )
    return intervals


def _read_partitions(
    lake: Path, table: Table, start: datetime, end: datetime, columns: list[str], versions: Mapping[str, int]
) -> list[dict]:
    """The rows of ``table``'s partitions for [start, end) at its version in ``versions`` (none
    when it has no version there), read through its Delta log with delta-rs (no Spark needed)."""
    if table.name not in versions:
        return []
    try:
        rows = read_partitions(
            lake, table, table.partition_values(start, end), columns=columns, version=versions[table.name]
        )
    except NoSuchVersion as error:
        raise LakeDemandError(str(error)) from None
    return rows.to_pylist()


def gold_counts(
    turns: Iterable[Mapping[str, Any]], links: Iterable[Mapping[str, Any]], start: datetime, end: datetime
) -> list[CountInterval]:
    """Gold rows (turning movements; link state) as whole vehicles per quarter hour of [start, end).

    Rows outside the period are ignored. The result has one interval per quarter hour, empty
    where gold has nothing; see the module for the rounding and which edges get an edge count.
    """
    hours = SLOT.total_seconds() / 3600
    slots = [start + i * SLOT for i in range(round((end - start) / SLOT))]
    turn_vph: dict[datetime, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for row in turns:
        if start <= row["window_start"] < end:
            turn_vph[row["window_start"]][(row["from_edge"], row["to_edge"])] += row["volume_vph"]
    edge_vph: dict[datetime, dict[str, float]] = defaultdict(dict)
    for row in links:
        if (
            start <= row["window_start"] < end
            and row["flow_vph"] is not None
            and not math.isnan(row["flow_vph"])
        ):
            edge_vph[row["window_start"]][row["edge_id"]] = row["flow_vph"]
    day = start.astimezone(UTC).date()
    intervals = []
    for slot in slots:
        counted = {from_edge for from_edge, _to in turn_vph.get(slot, {})}
        begin = sim_seconds(slot, day)
        intervals.append(
            CountInterval(
                begin=begin,
                end=begin + round(SLOT.total_seconds()),
                turns={m: round(v * hours) for m, v in sorted(turn_vph.get(slot, {}).items())},
                edges={
                    e: round(v * hours) for e, v in sorted(edge_vph.get(slot, {}).items()) if e not in counted
                },
            )
        )
    return intervals


def edge_ids(net_file: Path) -> set[str]:
    """The ids of a network's edges (not its junctions' internal ones)."""
    return {edge.id for edge in load(net_file).edges.values() if edge.function != "internal"}


def within(intervals: list[CountInterval], edges: set[str]) -> list[CountInterval]:
    """The counts a network with only ``edges`` can be fitted to: movements with both ends in it,
    edge counts on it. Intervals keep their bounds even when nothing of them is left."""
    return [
        replace(
            interval,
            turns={(a, b): n for (a, b), n in interval.turns.items() if a in edges and b in edges},
            edges={edge: n for edge, n in interval.edges.items() if edge in edges},
        )
        for interval in intervals
    ]


def turn_count_xml(intervals: list[CountInterval]) -> str | None:
    """The turn counts as SUMO's edgeRelation data file (``count`` attribute), or None if there are none."""
    return _data_xml(
        intervals,
        "turn counts from gold.turning_movements_15min, vehicles per interval",
        lambda i: [("edgeRelation", {"from": a, "to": b, "count": n}) for (a, b), n in i.turns.items()],
    )


def edge_count_xml(intervals: list[CountInterval]) -> str | None:
    """The edge counts as SUMO's edgeData file (``entered`` attribute), or None if there are none."""
    return _data_xml(
        intervals,
        "edge counts from gold.link_state_15min flows, vehicles per interval",
        lambda i: [("edge", {"id": e, "entered": n}) for e, n in i.edges.items()],
    )


def _data_xml(
    intervals: list[CountInterval],
    what: str,
    elements_of: Callable[[CountInterval], list[tuple[str, Mapping[str, str | int]]]],
) -> str | None:
    root = element(None, "data", {})
    for interval in intervals:
        children = elements_of(interval)
        if children:
            bounds = {"id": interval.begin, "begin": interval.begin, "end": interval.end}
            parent = element(root, "interval", bounds)
            for tag, attributes in children:
                element(parent, tag, attributes)
    if len(root) == 0:
        return None
    return render(root, comment=what)


def candidate_routes(net_file: Path, out_dir: Path) -> Path:
    """Routes between the network's fringe edges (``randomTrips.py --route-file``), cached in
    ``out_dir`` by the network's content and the tools as installed."""
    key = _digest(
        {
            "format": CACHE_FORMAT,
            "net": hashlib.sha1(Path(net_file).read_bytes()).hexdigest(),
            "tools": [_stamp(tool_path(RANDOM_TRIPS_TOOL)), _stamp(Path(sumo_binary("duarouter")))],
            "options": [CANDIDATE_TRIPS, RANDOM_ROUTING_FACTOR, VEHICLE_CLASS, DEMAND_SEED],
        }
    )
    path = out_dir / f"candidates-{_slug(Path(net_file).stem)}-{key}.rou.xml"

    def produce(staging: Path) -> Path:
        with tempfile.TemporaryDirectory(prefix=".candidates-", dir=out_dir) as tmp:
            command = [
                sys.executable, str(tool_path(RANDOM_TRIPS_TOOL)),
                "--net-file", str(net_file),
                "--output-trip-file", "trips.xml",
                "--route-file", "routes.rou.xml",
                "--fringe-factor", "max",
                "--vehicle-class", VEHICLE_CLASS,
                "--edge-permission", VEHICLE_CLASS,
                "--random-routing-factor", str(RANDOM_ROUTING_FACTOR),
                "--seed", str(DEMAND_SEED),
                "--begin", "0", "--end", str(CANDIDATE_TRIPS), "--period", "1",
            ]  # fmt: skip
            run_tool(command, f"{RANDOM_TRIPS_TOOL} on {net_file}", Path(tmp))
            routes = Path(tmp) / "routes.rou.xml"
            if not routes.is_file() or "<route " not in routes.read_text(encoding="utf-8"):
                raise LakeDemandError(
                    f"{RANDOM_TRIPS_TOOL} found no route between the fringe edges of {net_file}: "
                    "lake demand needs a network that traffic can enter and leave"
                )
            os.replace(routes, staging)
        return path

    return produce_once(path, produce, existing)


def _sample(
    folder: Path, counts: dict[str, str], candidates: Path, base: Scenario, begin: int, end: int
) -> None:
    """Write the count files, run routeSampler and write the configuration, in a staging folder
    that is renamed into place whole, so a reader never sees half a scenario."""
    with atomic_dir(folder) as staging:
        _sample_into(staging, folder, counts, candidates, base, begin, end)


def _sample_into(
    staging: Path,
    folder: Path,
    counts: dict[str, str],
    candidates: Path,
    base: Scenario,
    begin: int,
    end: int,
) -> None:
    for name, text in counts.items():
        (staging / name).write_text(text, encoding="utf-8")
    inputs = {
        TURNS_FILE: ["--turn-files", TURNS_FILE, "--turn-attribute", "count"],
        EDGES_FILE: ["--edgedata-files", EDGES_FILE, "--edgedata-attribute", "entered"],
    }
    # relative names: routeSampler copies its options into its outputs' header comment
    command = [
        sys.executable, str(tool_path(ROUTE_SAMPLER_TOOL)),
        "--route-files", os.path.relpath(candidates, staging),
        *(option for name in counts for option in inputs[name]),
        "--begin", str(begin), "--end", str(end), "--interval", str(round(SLOT.total_seconds())),
        "--attributes", VEHICLE_ATTRIBUTES,
        "--optimize", "full",
        "--seed", str(DEMAND_SEED),
        "--output-file", ROUTES_FILE,
        "--mismatch-output", MISMATCH_FILE,
    ]  # fmt: skip
    result = run_tool(command, f"{ROUTE_SAMPLER_TOOL} for {folder.name}", staging)
    (staging / SAMPLER_LOG).write_text(result.stdout + result.stderr, encoding="utf-8")
    (staging / SUMOCFG_FILE).write_text(sumocfg_xml(base, begin, end), encoding="utf-8")


def sumocfg_xml(base: Scenario, begin: int, end: int) -> str:
    """A configuration running ``base``'s network and additional files with the sampled routes."""
    additional = ",".join(str(p) for p in base.additional_files)
    root = element(None, "configuration", {})
    inputs = element(root, "input", {})
    element(inputs, "net-file", {"value": str(base.net_file)})
    element(inputs, "route-files", {"value": ROUTES_FILE})
    if additional:
        element(inputs, "additional-files", {"value": additional})
    time = element(root, "time", {})
    element(time, "begin", {"value": begin})
    element(time, "end", {"value": end})
    return render(root)


def read_fit(mismatch_file: Path) -> CountFit:
    """:class:`CountFit` from routeSampler's ``--mismatch-output``: per location and interval the
    measured count and the deficit (measured − sampled; negative for an overshoot)."""
    try:
        root = ET.parse(mismatch_file).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SumoToolError(
            f"cannot read {ROUTE_SAMPLER_TOOL}'s mismatch output {mismatch_file}: {exc}"
        ) from None
    locations = measured = deviation = geh_ok = 0
    for interval in root.iter("interval"):
        per_hour = 3600 / (float(interval.get("end", 0)) - float(interval.get("begin", 0)))
        for location in interval:
            if location.get("measuredCount") is None:
                continue  # a turning ratio, not a count (we write none)
            count, deficit = int(float(location.get("measuredCount"))), int(float(location.get("deficit")))
            locations += 1
            measured += count
            deviation += abs(deficit)
            geh_ok += geh(count * per_hour, (count - deficit) * per_hour) < GEH_OK
    return CountFit(locations, measured, deviation, geh_ok)


def geh(measured: float, modelled: float) -> float:
    """The GEH statistic of two hourly flows: sqrt(2 (m − c)² / (m + c)), 0 when both are 0."""
    total = measured + modelled
    return math.sqrt(2 * (modelled - measured) ** 2 / total) if total > 0 else 0.0


def _digest(content: object) -> str:
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _stamp(path: Path) -> list[object]:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def _compact(moment: datetime) -> str:
    return f"{moment:%Y%m%dT%H%M}Z"


def _network_label(network: str) -> str:
    """``corridor``, ``resco/cologne1``, or a configuration file's stem."""
    return Path(network).stem if network.endswith(".sumocfg") else network


def _slug(text: str) -> str:
    """A file-name part without ``--`` (the tools write our paths into an XML comment)."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", _network_label(text)).strip("_.") or "network"
