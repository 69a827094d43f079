"""The network map's layers as one GeoJSON FeatureCollection (``GET /api/network``).

:func:`network_geojson` draws the lake's network (``settings.lake_network``, resolved as
:mod:`lake.network` resolves it) from the road-network model (:mod:`sim.network`), in WGS84, with
the state of one quarter hour of the lake on it. The collection is valid RFC 7946 GeoJSON; each
feature's ``layer`` property says which of three layers it belongs to:

- ``edges``: every normal edge a car may use, as a LineString (the centre of its car lanes), with
  its id, street name (when the model has one), car lanes, speed limit and length, and from
  ``gold.link_state_15min`` for the quarter hour shown: flow, fused speed, its confidence, the
  incidents on it and a level of service (:func:`level_of_service`). An edge gold has no row for
  carries nulls.
- ``signals``: each traffic light as a Point at the centre of the junctions it controls, with its
  SUMO id and its contract ``intersection_id`` (as gold and plans name it), and the delay on its
  approaches in the quarter hour estimated from gold's fused speeds
  (:func:`lake.approach.approach_delay`).
- ``incidents``: the incidents active in the quarter hour, as Points at their reported position,
  chosen as :mod:`lake.gold` chooses them for the link state: the latest report of each incident
  before the quarter hour's end (looking back :data:`lake.gold.INCIDENT_LOOKBACK`), with status
  reported, confirmed or active, started before the quarter hour's end and not ended before its
  start.

Foreign members of the collection: ``network``, ``slot`` (the quarter hour shown, ISO 8601 UTC, or
null when the lake has none at or before the time asked), ``slots`` (the quarter hours gold has in
the day up to its newest, for the time slider) and ``los_thresholds``.

The static part (geometry, ids, limits) is built once per network model with geopandas and kept;
a request only reads one gold partition and the incident partitions of the day before it, through
the tables' Delta logs with delta-rs (:mod:`lake.delta`: a partition's folder may also hold files
a rewrite replaced; no Spark session for a web request), each at the version it found newest.
:func:`network_document` keeps the finished answer per version of those tables, so the route
serves it without building it again.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from console.answers import Document
from core.errors import CitybrainError
from core.settings import Settings
from lake.approach import approach_delay
from lake.delta import filled_partitions, read_partitions, table_version
from lake.gold import INCIDENT_LOOKBACK
from lake.location import TableLocation, tables_location
from lake.tables import DAY, SLOT, TABLES, Table, floor_to, partition_of
from sim.detectors import VEHICLE_CLASS, contract_id
from sim.network import Network, load
from sim.scenarios import ScenarioError, resolve

LINK_STATE = TABLES["gold.link_state_15min"]
INCIDENTS = TABLES["silver.incidents"]
#: Columns of the link state put on an edge (``speed_mps`` is the fused speed).
LINK_COLUMNS = ("flow_vph", "speed_mps", "confidence", "incident_ids", "incident_severity")
#: Columns of an incident report read for the map.
INCIDENT_COLUMNS = (
    "incident_id", "ts", "kind", "status", "severity", "lat", "lon", "edge_id", "start", "end", "description",
)  # fmt: skip
#: Statuses of an incident that still affects traffic, as :mod:`lake.gold` counts them.
ACTIVE_STATUSES = frozenset({"reported", "confirmed", "active"})
#: Decimal places of the coordinates: 1e-6 degrees is about 0.1 m.
COORDINATE_DECIMALS = 6
#: How long after its log folder last changed a table's version is read from the log on every
#: request: a commit landing within the same tick of the file system's clock leaves the folder's
#: modification time as it was (see :func:`_version`).
SETTLE_NS = 2_000_000_000

#: Level of service of an urban street by its travel speed as a percentage of the base free-flow
#: speed: Highway Capacity Manual, 6th edition (2016), Exhibit 18-1 (urban street segments,
#: motorized vehicle mode): A > 80 %, B > 67-80 %, C > 50-67 %, D > 40-50 %, E > 30-40 %,
#: F <= 30 %. (HCM 2010's Exhibit 17-2 had A above 85 %.) The HCM also gives F whenever demand
#: exceeds capacity; the lake has no capacity, so only the speed counts here. Two proxies: the
#: edge's speed limit stands for the base free-flow speed (the HCM's base free-flow speed is
#: usually somewhat above the limit, so these letters lean a little to the better side), and
#: gold's fused speed (detector spot speeds and probe speeds on the edge) for the segment's
#: travel speed including its delay at the signal.
LOS_THRESHOLDS: tuple[tuple[str, float], ...] = (
    ("A", 80.0),
    ("B", 67.0),
    ("C", 50.0),
    ("D", 40.0),
    ("E", 30.0),
)


class NetworkLayersError(CitybrainError, ValueError):
    """A lake network the map cannot be drawn for: unknown name or unreadable network."""


def level_of_service(speed_mps: float | None, speed_limit_mps: float | None) -> str | None:
    """``A``-``F`` for a speed on an edge with this limit (see :data:`LOS_THRESHOLDS`); None when
    either is unknown or the limit is not positive."""
    if speed_mps is None or speed_limit_mps is None or not speed_limit_mps > 0 or math.isnan(speed_mps):
        return None
    percent = 100.0 * speed_mps / speed_limit_mps
    for letter, above in LOS_THRESHOLDS:
        if percent > above:
            return letter
    return "F"


def network_geojson(settings: Settings, at: datetime | None = None) -> dict[str, Any]:
    """The map's layers for the quarter hour of gold at or before ``at`` (default: the newest);
    see the module. A naive ``at`` is taken as UTC. Raises :class:`NetworkLayersError` for an
    unknown ``settings.lake_network``."""
    return _collection(_sources(settings, at))


def network_document(settings: Settings, at: datetime | None = None) -> Document:
    """:func:`network_geojson` as finished JSON bytes (:class:`console.answers.Document`), built
    once per state of what it is drawn from: the network model and the versions of the tables
    read. A request that finds them unchanged only stats the tables' log folders."""
    return _document(_sources(settings, at))


@dataclass(frozen=True)
class Sources:
    """Everything a map answer is made of; equal sources give the same answer."""

    network: Network
    name: str
    lake: TableLocation
    slot: datetime | None
    slots: tuple[datetime, ...]
    #: The versions of gold's link state and silver's incidents read (None: no job wrote the
    #: table yet); a job's commit makes a new one.
    link_version: int | None
    incident_version: int | None


def _sources(settings: Settings, at: datetime | None) -> Sources:
    network = _network(settings)
    lake = tables_location(settings)
    link_version = _version(lake, LINK_STATE)
    filled = _filled_slots(lake, link_version)
    slot = _slot_at(filled, at)
    newest = filled[-1] if filled else None
    slots = tuple(s for s in filled if newest - DAY < s) if newest else ()
    incident_version = _version(lake, INCIDENTS) if slot else None
    return Sources(network, settings.lake_network, lake, slot, slots, link_version, incident_version)


#: A few quarter hours of a few networks: what the slider has been moved over lately.
@functools.lru_cache(maxsize=32)
def _document(sources: Sources) -> Document:
    return Document.of(orjson.dumps(_collection(sources)))


def _collection(sources: Sources) -> dict[str, Any]:
    static = static_layers(sources.network)
    slot = sources.slot
    links = _link_state(sources.lake, sources.link_version, slot) if slot else {}
    features: list[dict[str, Any]] = []
    for feature in static.edges:
        properties = feature["properties"]
        row = links.get(properties["id"])
        dynamic = {column: (row[column] if row else None) for column in LINK_COLUMNS}
        dynamic["incident_ids"] = dynamic["incident_ids"] or []
        dynamic["los"] = level_of_service(dynamic["speed_mps"], properties["speed_limit_mps"])
        features.append({**feature, "properties": {**properties, **dynamic}})
    limits = {f["properties"]["id"]: f["properties"] for f in static.edges}
    for feature in static.signals:
        approaches = [
            (limits[edge]["length_m"], limits[edge]["speed_limit_mps"], links.get(edge))
            for edge in static.approaches[feature["properties"]["id"]]
        ]
        features.append({**feature, "properties": {**feature["properties"], **approach_delay(approaches)}})
    if slot:
        features.extend(
            _incident_features(_incident_rows(sources.lake, sources.incident_version, slot), slot)
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "network": sources.name,
        "slot": _iso(slot) if slot else None,
        "slots": [_iso(s) for s in sources.slots],
        "los_thresholds": {letter: above for letter, above in LOS_THRESHOLDS},
    }


@dataclass(frozen=True)
class StaticLayers:
    """The GeoJSON features of a network that do not change with time, built once."""

    edges: tuple[dict[str, Any], ...]
    signals: tuple[dict[str, Any], ...]
    #: Each signal's incoming edges (those of its controlled links that are on the edge layer).
    approaches: Mapping[str, tuple[str, ...]]


@functools.lru_cache(maxsize=8)
def static_layers(network: Network) -> StaticLayers:
    """Edges and signals of ``network`` as GeoJSON features in WGS84, built with geopandas and
    kept per network model (:func:`sim.network.load` gives the same model while the file is
    unchanged, so an edited network is converted again)."""
    import geopandas as gpd
    import shapely

    projection = network.projection
    rows, shapes = [], []
    for edge in sorted(network.normal_edges(), key=lambda e: e.id):
        lanes = [network.lanes[lane] for lane in edge.lanes]
        car_lanes = [lane for lane in lanes if lane.allows(VEHICLE_CLASS) and len(lane.shape) >= 2]
        if not car_lanes:
            continue
        rows.append(
            {
                "layer": "edges",
                "id": edge.id,
                # the model carries no street name yet; shown once it does
                "name": edge.name or None,
                "lanes": len(car_lanes),
                "speed_limit_mps": edge.speed,
                "length_m": round(edge.length, 2),
            }
        )
        shapes.append(_centre_line(car_lanes))
    lines = _lonlat_lines(projection, shapes)
    edges = gpd.GeoDataFrame(rows, geometry=lines, crs="EPSG:4326")

    drawn = {row["id"] for row in rows}
    signal_rows, points, approaches = [], [], {}
    for tls_id, signal in network.signals.items():
        junctions = sorted({c.junction for c in signal.connections if c.junction} | {tls_id})
        positions = [
            network.junctions[j].position
            for j in junctions
            if j in network.junctions and network.junctions[j].position is not None
        ]
        if not positions:
            continue
        signal_rows.append({"layer": "signals", "id": tls_id, "intersection_id": contract_id(tls_id)})
        approaches[tls_id] = tuple(sorted({c.from_edge for c in signal.connections} & drawn))
        points.append(np.mean(np.asarray(positions, dtype=float), axis=0))
    xy = np.asarray(points, dtype=float).reshape(-1, 2)
    lon, lat = projection.lonlat(xy[:, 0], xy[:, 1])
    signals = gpd.GeoDataFrame(
        signal_rows,
        geometry=shapely.points(np.round(np.column_stack([lon, lat]), COORDINATE_DECIMALS)),
        crs="EPSG:4326",
    )
    return StaticLayers(_features(edges, "edges"), _features(signals, "signals"), approaches)


def _centre_line(lanes: list) -> np.ndarray:
    """The middle of an edge's car lanes: their mean shape when they have the same number of
    points (as netconvert builds them), else the middle lane's (the centre for an odd count)."""
    shapes = [np.asarray(lane.shape, dtype=float) for lane in sorted(lanes, key=lambda lane: lane.index)]
    if len({len(shape) for shape in shapes}) == 1:
        return np.mean(np.stack(shapes), axis=0)
    return shapes[len(shapes) // 2]


def _lonlat_lines(projection, shapes: list[np.ndarray]) -> np.ndarray:
    """Shapely LineStrings in lon/lat of network x/y polylines, converted in one projection call."""
    import shapely

    if not shapes:
        return np.empty(0, dtype=object)
    xy = np.vstack(shapes)
    lon, lat = projection.lonlat(xy[:, 0], xy[:, 1])
    indices = np.repeat(np.arange(len(shapes)), [len(shape) for shape in shapes])
    return shapely.linestrings(np.round(np.column_stack([lon, lat]), COORDINATE_DECIMALS), indices=indices)


def _features(frame, layer: str) -> tuple[dict[str, Any], ...]:
    features = frame.to_geo_dict(drop_id=True)["features"]
    for feature in features:
        feature["id"] = f"{layer}/{feature['properties']['id']}"
    return tuple(features)


def _network(settings: Settings) -> Network:
    name = settings.lake_network
    try:
        return load(lake_net_file(name, settings.sim_dir / "build"))
    except ScenarioError as exc:
        raise NetworkLayersError(f"the lake network (CITYBRAIN_LAKE_NETWORK={name!r}): {exc}") from None
    except CitybrainError as exc:
        raise NetworkLayersError(f"the lake network {name!r} cannot be read: {exc}") from None


@functools.lru_cache(maxsize=16)
def lake_net_file(name: str, build_dir: Path) -> Path:
    """The net file of scenario ``name``, resolved (an own scenario built) once per process."""
    return resolve(name, build_dir).net_file


def _slot_at(filled: list[datetime], at: datetime | None) -> datetime | None:
    """The newest filled quarter hour starting at or before ``at`` (None: the newest of all)."""
    if at is None:
        return filled[-1] if filled else None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    moment = floor_to(at, SLOT)
    earlier = [s for s in filled if s <= moment]
    return earlier[-1] if earlier else None


def _version(lake: TableLocation, table: Table) -> int | None:
    """The table's newest version (:func:`lake.delta.table_version`), read from its log again only
    when the log's folder changed since (a commit adds a file to it) or changed lately (within
    :data:`SETTLE_NS`). Every request needs the versions, and reading a log takes milliseconds
    (tens of them for a long log without a checkpoint), a stat microseconds."""
    folder = lake.local_path(table)
    if folder is None:  # on object storage: no folder to watch, the log is read each time
        return table_version(lake, table)
    try:
        stat = os.stat(folder / "_delta_log")
    except (FileNotFoundError, NotADirectoryError):
        return None
    if time.time_ns() - stat.st_mtime_ns < SETTLE_NS:
        return table_version(lake, table)
    return _logged_version(lake, table.name, stat.st_ino, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _logged_version(lake: TableLocation, name: str, inode: int, mtime_ns: int) -> int | None:
    """:func:`lake.delta.table_version`, once per state (``inode``, ``mtime_ns``) of the log folder."""
    return table_version(lake, TABLES[name])


@functools.lru_cache(maxsize=8)
def _filled_slots(lake: TableLocation, version: int | None) -> tuple[datetime, ...]:
    """The quarter hours gold's link state has at ``version``, sorted, from its log: those of the
    version the map reads (:func:`lake.delta.filled_slots` gives the newest, which a job may have
    committed since)."""
    if version is None:
        return ()
    partitions = filled_partitions(lake, LINK_STATE, version)
    return tuple(
        sorted(datetime.strptime(day + slot, "%Y-%m-%d%H%M").replace(tzinfo=UTC) for day, slot in partitions)
    )


def _rows(
    lake: TableLocation,
    table: Table,
    version: int,
    partitions: list[tuple[str, ...]],
    columns: tuple[str, ...],
) -> tuple[dict[str, Any], ...]:
    """The rows of ``partitions`` of ``table`` at ``version`` (NaN read as null). The caches below
    keep them by version, so the rows are shared: never change them."""
    rows = read_partitions(lake, table, partitions, columns=columns, version=version).to_pylist()
    for row in rows:
        for column, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[column] = None
    return tuple(rows)


@functools.lru_cache(maxsize=16)
def _link_rows(lake: TableLocation, version: int, slot: datetime) -> tuple[dict[str, Any], ...]:
    """Gold's link state of quarter hour ``slot`` at ``version``: a row per edge (thousands), so
    only the few quarter hours being looked at are kept."""
    return _rows(lake, LINK_STATE, version, [partition_of(slot)], ("edge_id", *LINK_COLUMNS))


@functools.lru_cache(maxsize=64)
def _incident_rows(lake: TableLocation, version: int | None, slot: datetime) -> tuple[dict[str, Any], ...]:
    """Silver's incident reports of the lookback before quarter hour ``slot`` at ``version``: few,
    and kept apart from the link state, whose next version does not change them."""
    if version is None:
        return ()
    partitions = INCIDENTS.partition_values(slot - INCIDENT_LOOKBACK, slot + SLOT)
    return _rows(lake, INCIDENTS, version, partitions, INCIDENT_COLUMNS)


def _link_state(lake: TableLocation, version: int, slot: datetime) -> dict[str, Mapping[str, Any]]:
    """:func:`_link_rows` by edge id."""
    return {row["edge_id"]: row for row in _link_rows(lake, version, slot)}


def _incident_features(reports: tuple[dict[str, Any], ...], slot: datetime) -> list[dict[str, Any]]:
    """The incidents active in quarter hour ``slot`` as GeoJSON Points (see the module), from the
    incident ``reports`` of the lookback before it."""
    end = slot + SLOT
    latest: dict[str, dict[str, Any]] = {}
    for report in reports:
        if report["ts"] < end and (
            report["incident_id"] not in latest or report["ts"] > latest[report["incident_id"]]["ts"]
        ):
            latest[report["incident_id"]] = report
    features = []
    for incident_id, report in sorted(latest.items()):
        active = (
            report["status"] in ACTIVE_STATUSES
            and report["start"] < end
            and (report["end"] is None or report["end"] > slot)
        )
        if not active:
            continue
        features.append(
            {
                "type": "Feature",
                "id": f"incidents/{incident_id}",
                "geometry": {
                    "type": "Point",
                    "coordinates": [
                        round(report["lon"], COORDINATE_DECIMALS),
                        round(report["lat"], COORDINATE_DECIMALS),
                    ],
                },
                "properties": {
                    "layer": "incidents",
                    "id": incident_id,
                    "kind": report["kind"],
                    "status": report["status"],
                    "severity": report["severity"],
                    "edge_id": report["edge_id"],
                    "start": _iso(report["start"]),
                    "end": _iso(report["end"]) if report["end"] else None,
                    "description": report["description"],
                    "reported": _iso(report["ts"]),
                },
            }
        )
    return features


def _iso(moment: datetime) -> str:
    """``2026-11-28T07:15:00Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
