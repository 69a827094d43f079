"""The signals an incident plan re-times: those near the closed road.

A closure moves the queue back from the closed edge and the diverted traffic onto the roads
around it; the signals that meet both are the ones within a short distance of the edge. The
distance is from each junction the signal controls to the nearest point of the edge's lanes, in
network metres; the nearest ``limit`` within ``radius_m`` are chosen (nearest first), so a plan
for an incident in a dense grid stays small enough to search in minutes.
"""

from __future__ import annotations

from shapely.geometry import LineString, MultiLineString, Point

from optimizer.incidents.model import IncidentError
from sim.network import Network


def signal_distances(network: Network, edge_id: str) -> dict[str, float]:
    """Each signal's distance (m) from the edge ``edge_id``."""
    edge = network.edges.get(edge_id)
    if edge is None:
        raise IncidentError(f"the network {network.path} has no edge {edge_id!r}")
    shapes = [network.lanes[lane].shape for lane in edge.lanes if len(network.lanes[lane].shape) >= 2]
    road = MultiLineString([LineString(shape) for shape in shapes])
    distances = {}
    for tls_id, signal in network.signals.items():
        positions = {
            network.junctions[network.edges[c.from_edge].to_node].position
            for c in signal.connections
            if c.from_edge in network.edges and network.edges[c.from_edge].to_node in network.junctions
        }
        points = [Point(p) for p in positions if p is not None]
        if points:
            distances[tls_id] = min(road.distance(point) for point in points)
    return distances


def nearby_signals(network: Network, edge_id: str, radius_m: float, limit: int) -> tuple[str, ...]:
    """The signals within ``radius_m`` of the edge, nearest first, at most ``limit``."""
    distances = signal_distances(network, edge_id)
    near = sorted((d, tls_id) for tls_id, d in distances.items() if d <= radius_m)
    return tuple(tls_id for _, tls_id in near[:limit])
