"""What the lake needs to know of the road network, taken from the network model (:mod:`sim.network`).

The lake locates everything on SUMO edges: probe fixes by map-matching to lane geometry, detector
readings through their lane, incidents by their reported edge or position. :class:`NetworkIndex`
holds that as plain arrays and tuples, not a sumolib object, so that Spark can ship it to its
workers in a closure; each worker then builds its spatial index once (:mod:`lake.mapmatch`).
Lane and intersection ids pass through :func:`sim.detectors.contract_id`, as the twin's records do.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.detectors import VEHICLE_CLASS, contract_id
from sim.geo import NetProjection
from sim.network import load


@dataclass(frozen=True)
class Movement:
    """One way through a signalised intersection: from an approach lane onto an outgoing edge."""

    intersection_id: str
    from_lane: str
    from_edge: str
    to_edge: str


@dataclass(frozen=True, eq=False)
class NetworkIndex:
    """Lane geometry (as straight segments), lane → edge, and the signalised movements of a net."""

    name: str
    projection: NetProjection
    #: SUMO lane ids of the lanes probes are matched to (normal lanes that cars may use), sorted.
    lane_ids: tuple[str, ...]
    #: The edge of each lane in :attr:`lane_ids`.
    lane_edges: tuple[str, ...]
    #: Every segment of every lane shape: start and end x/y (network metres) and its lane's index.
    segments: np.ndarray  # float64, shape (n, 4)
    segment_lane: np.ndarray  # int32, shape (n,)
    movements: tuple[Movement, ...]
    #: Identifies the geometry, so a worker's spatial index is built once per network.
    fingerprint: str

    @functools.cached_property
    def edge_of_contract_lane(self) -> dict[str, str]:
        """Contract lane id (as detector records carry it) → SUMO edge id."""
        return {contract_id(lane): edge for lane, edge in zip(self.lane_ids, self.lane_edges, strict=True)}

    @property
    def edge_ids(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.lane_edges)))


def build_index(name: str, net_file: str | Path) -> NetworkIndex:
    """Index the lanes and signalised movements of ``net_file``'s network model."""
    net = load(net_file)
    lane_ids, lane_edges, segments, segment_lane = [], [], [], []
    for edge in sorted(net.normal_edges(), key=lambda e: e.id):
        for lane in (net.lanes[lane_id] for lane_id in edge.lanes):
            if not lane.allows(VEHICLE_CLASS) or len(lane.shape) < 2:
                continue
            shape = np.asarray(lane.shape, dtype=float)
            index = len(lane_ids)
            lane_ids.append(lane.id)
            lane_edges.append(edge.id)
            segments.append(np.hstack([shape[:-1], shape[1:]]))
            segment_lane.append(np.full(len(shape) - 1, index, dtype=np.int32))
    movements = sorted(
        {
            Movement(contract_id(tls_id), contract_id(c.from_lane), c.from_edge, c.to_edge)
            for tls_id, signal in net.signals.items()
            for c in signal.connections
            if not c.from_lane.startswith(":")
            and net.lanes[c.from_lane].allows(VEHICLE_CLASS)
            and net.lanes[c.to_lane].allows(VEHICLE_CLASS)
        },
        key=lambda m: (m.intersection_id, m.from_lane, m.to_edge),
    )
    all_segments = np.vstack(segments) if segments else np.empty((0, 4))
    digest = hashlib.sha1(all_segments.tobytes())
    digest.update("\n".join(lane_ids).encode())
    return NetworkIndex(
        name=name,
        projection=net.projection,
        lane_ids=tuple(lane_ids),
        lane_edges=tuple(lane_edges),
        segments=all_segments,
        segment_lane=np.concatenate(segment_lane) if segment_lane else np.empty(0, dtype=np.int32),
        movements=tuple(movements),
        fingerprint=digest.hexdigest(),
    )


@functools.cache
def network_index(name: str, build_dir: Path) -> NetworkIndex:
    """The index of scenario ``name`` (``corridor``, ``resco/ingolstadt21``, a .sumocfg), cached."""
    from sim.scenarios import resolve

    return build_index(name, resolve(name, build_dir).net_file)
