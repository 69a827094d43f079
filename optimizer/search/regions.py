"""Regions of a city's signals, each optimized on its own cut of the network.

A coordinated search over a whole city is hopeless: its dimensions grow with the signals
(cologne8's 8 signals are 35) and every candidate simulates the whole city. Field practice
splits a city into sub-areas of a few to a dozen signals that are timed together; signals
far apart are independent anyway, because a platoon disperses within a couple of minutes of
travel (on cologne8, with signals 100–190 s apart, offsets changed nothing).

- :func:`partition` groups signals by the road distance between *adjacent* signals (a road
  from one to the other that crosses no third signal): the closest pairs are joined first,
  as long as a region stays within ``max_signals``, and signals more than
  :data:`COUPLING_M` apart are never joined (single-linkage clustering under a size limit).
- :func:`cut` writes a region's own network with netconvert: every edge entering or leaving
  its signals, and the roads joining its adjacent signals, so platoons between them are
  simulated. It checks that each signal keeps the city's links and program, so a region's plan
  fits the city's signal. Right of way may still differ: netconvert recomputes it, and for a
  network built by an older SUMO (the RESCO ones, 1.9) the cut's conflicts and yields at a
  junction are not the original's; the merged plan is checked against the city's network
  before it is proposed, and evaluated on the city's, so the cut only guides the search.

Demand for a region comes from the lake like the city's (:func:`optimizer.demand.lake_counts.lake_demand`
with the region's network): the gold counts on its edges, entering through its cut boundary,
are its boundary flows. :mod:`optimizer.proposing.pipeline` searches the regions concurrently, all their
candidates going through one executor (Spark tasks on a cluster), and merges the plans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from core.errors import CitybrainError
from core.files import atomic_path, file_lock
from optimizer.methods.sumo_baselines import run_tool
from optimizer.plans.safety import SignalNetwork, read_network
from sim.network import Network, load
from sim.sumo_home import ensure_sumo_home, sumo_binary

#: Road distance (m) beyond which two signals are never in one region: over two minutes of
#: travel at 50 km/h, where platoons have dispersed and an offset no longer matters.
COUPLING_M = 2000.0


class RegionError(CitybrainError, ValueError):
    """A partition or a cut that cannot be made; the message names the signal or the limit."""


@dataclass(frozen=True)
class Region:
    """Signals optimized together, and the edges their network keeps."""

    name: str
    signals: tuple[str, ...]
    edges: tuple[str, ...]
    #: Junctions of other regions' signals that the edges reach: unsignalled in the cut, since
    #: the cut keeps only some of their links (their own region times them).
    foreign: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Link:
    """Two adjacent signals, the road distance between them, and the edges of that road."""

    length: float
    a: str
    b: str
    edges: tuple[str, ...]


def partition(net_file: Path, max_signals: int) -> list[Region]:
    """The network's signals in regions of at most ``max_signals`` (see the module docstring),
    ordered and named by their first signal id."""
    if max_signals < 1:
        raise RegionError(f"a region holds at least one signal, got max_signals={max_signals}")
    net = load(net_file)
    signals = sorted(net.signals)
    if not signals:
        raise RegionError(f"{net_file} has no traffic lights to optimize")
    tls_of = _signal_nodes(net)
    members = {tls_id: {tls_id} for tls_id in signals}  # each signal's region, shared sets
    joined: list[_Link] = []
    for link in sorted(_links(net, tls_of), key=lambda link: (link.length, link.a, link.b)):
        first, second = members[link.a], members[link.b]
        if first is second:
            continue
        if len(first) + len(second) > max_signals:
            continue
        first |= second
        for tls_id in second:
            members[tls_id] = first
        joined.append(link)
    regions = []
    for number, group in enumerate(sorted({id(g): g for g in members.values()}.values(), key=min), 1):
        edges = set(_signal_edges(net, group))
        edges.update(e for link in joined if link.a in group for e in link.edges)
        ends = {node for e in edges for node in (net.edges[e].from_node, net.edges[e].to_node)}
        foreign = sorted(node for node in ends if node in tls_of and tls_of[node] not in group)
        regions.append(Region(f"region-{number}", tuple(sorted(group)), tuple(sorted(edges)), tuple(foreign)))
    return regions


def cut(net_file: Path, region: Region, out_dir: Path) -> Path:
    """The region's network (netconvert keeping the region's edges, its neighbours' junctions
    unsignalled), cached under ``out_dir`` by the city network's content and the choice;
    refused if a signal's links or program are not the city's."""
    ensure_sumo_home()
    net_file = Path(net_file).resolve()
    chosen = "\n".join((*region.edges, "unset:", *region.foreign)).encode()
    key = hashlib.sha1(net_file.read_bytes() + chosen).hexdigest()[:16]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{net_file.name.removesuffix('.net.xml')}-{region.name}-{key}.net.xml"
    with file_lock(path):
        if not path.is_file():
            _netconvert_cut(net_file, region, path, out_dir)
    city, own = read_network(net_file), read_network(path)
    for tls_id in region.signals:
        signal = own.get(tls_id)
        if signal is None or _as_run(signal) != _as_run(city[tls_id]):
            raise RegionError(
                f"{region.name}: signal {tls_id} in the cut network {path} has other links or another "
                "program than in the city, so a plan searched for it would not fit the city's signal"
            )
    return path


def _netconvert_cut(net_file: Path, region: Region, path: Path, out_dir: Path) -> None:
    """Write the region's network to ``path``, whole or not at all."""
    with atomic_path(path, durable=False) as staging:
        edges = staging.with_suffix(".edges.txt")
        edges.write_text("\n".join(region.edges) + "\n")
        command = [
            sumo_binary("netconvert"),
            "--sumo-net-file", str(net_file),
            "--keep-edges.input-file", str(edges),
            *(["--tls.unset", ",".join(region.foreign)] if region.foreign else []),
            "--output-file", str(staging),
        ]  # fmt: skip
        try:
            run_tool(command, f"netconvert cutting {region.name} out of {net_file}", out_dir)
        finally:
            edges.unlink()


def _as_run(signal: SignalNetwork) -> tuple[object, ...]:
    """A signal's links and its program as it runs: netconvert drops a static program's
    ``minDur``/``maxDur``, which SUMO ignores for it anyway."""
    program = signal.program
    timing = (
        None if program is None else (program.offset_s, [(p.state, p.duration_s) for p in program.phases])
    )
    return signal.link_labels, timing


def _signal_edges(net: Network, signals: Iterable[str]) -> Iterable[str]:
    """Every edge entering or leaving the signals' controlled links: a signal keeps all its links."""
    for tls_id in signals:
        for connection in net.signals[tls_id].connections:
            if not connection.pedestrian:
                yield connection.from_edge
                yield connection.to_edge


def _signal_nodes(net: Network) -> dict[str, str]:
    """Each signalised junction's id, mapped to the id of the signal controlling it."""
    return {
        net.edges[c.from_edge].to_node: tls_id
        for tls_id, signal in net.signals.items()
        for c in signal.connections
        if not c.pedestrian
    }


def _links(net: Network, tls_of: dict[str, str]) -> list[_Link]:
    """Adjacent signal pairs within :data:`COUPLING_M`, by the shortest road between them.

    Each signal's junctions (a clustered signal has several) become two graph nodes: one that
    roads enter and none leave, one that roads leave. A shortest path from a signal's leaving
    node therefore ends at the first signal it meets and never crosses one.
    """
    index: dict[tuple[str, str], int] = {}

    def node(key: tuple[str, str]) -> int:
        return index.setdefault(key, len(index))

    rows, cols, lengths, edge_at = [], [], [], {}
    for edge in net.normal_edges():
        start, end = edge.from_node, edge.to_node
        if start in tls_of and end in tls_of and tls_of[start] == tls_of[end]:
            continue  # inside one clustered signal
        source = node(("out", tls_of[start])) if start in tls_of else node(("node", start))
        target = node(("in", tls_of[end])) if end in tls_of else node(("node", end))
        previous = edge_at.get((source, target))
        if previous is None or edge.length < previous.length:
            edge_at[source, target] = edge
    for (source, target), edge in edge_at.items():
        rows.append(source)
        cols.append(target)
        lengths.append(edge.length)
    signals = sorted(set(tls_of.values()))
    sources = [node(("out", s)) for s in signals]
    targets = {node(("in", s)): s for s in signals}
    graph = csr_matrix((lengths, (rows, cols)), shape=(len(index), len(index)))
    distances, predecessors = dijkstra(graph, indices=sources, limit=COUPLING_M, return_predecessors=True)
    best: dict[tuple[str, str], _Link] = {}
    for row, signal in enumerate(signals):
        for target, other in targets.items():
            if other == signal or not np.isfinite(distances[row, target]):
                continue
            path, at = [], target
            while at != sources[row]:
                before = int(predecessors[row, at])
                path.append(edge_at[before, at].id)
                at = before
            a, b = sorted((signal, other))
            link = _Link(float(distances[row, target]), a, b, tuple(reversed(path)))
            if (a, b) not in best or link.length < best[a, b].length:
                best[a, b] = link
    return list(best.values())
