"""Map-matching GPS fixes to network lanes, vectorised over whole batches of points.

For each fix: the nearest lane segment within ``max_distance_m`` whose direction agrees with the
fix's heading to within ``heading_tolerance_deg`` (any direction when the vehicle stands and has
no heading). Candidates come from one shapely STRtree query for the whole batch
(``dwithin``), distances and bearings are numpy arrays, and the winner per point is the first of a
lexicographic sort — no Python loop per point. Heading is what separates the two directions of a
road and the approaches of a junction; distance separates everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lake.network import NetworkIndex

if TYPE_CHECKING:
    import shapely

#: Spatial indexes built on this worker, by network fingerprint.
_TREES: dict[str, tuple[shapely.STRtree, np.ndarray, np.ndarray]] = {}


@dataclass(frozen=True)
class Matches:
    """Per input point: the lane index into ``NetworkIndex.lane_ids`` (-1: none) and the distance."""

    lane: np.ndarray  # int64
    distance_m: np.ndarray  # float64, NaN where unmatched


def _tree(index: NetworkIndex) -> tuple[shapely.STRtree, np.ndarray, np.ndarray]:
    """The STRtree of the index's segments and each segment's bearing (clockwise from grid north)."""
    cached = _TREES.get(index.fingerprint)
    if cached is None:
        import shapely

        seg = index.segments
        lines = shapely.linestrings(np.stack([seg[:, 0:2], seg[:, 2:4]], axis=1))
        bearing = np.degrees(np.arctan2(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])) % 360.0
        cached = (shapely.STRtree(lines), lines, bearing)
        _TREES[index.fingerprint] = cached
    return cached


def angle_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest absolute difference between two angles in degrees, in [0, 180]."""
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def match(
    index: NetworkIndex,
    x: np.ndarray,
    y: np.ndarray,
    heading_deg: np.ndarray,
    *,
    max_distance_m: float,
    heading_tolerance_deg: float,
) -> Matches:
    """Match points given in network x/y with true-north headings (NaN: no heading) to lanes."""
    import shapely

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    lane = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    if n == 0 or len(index.segments) == 0:
        return Matches(lane, distance)
    tree, lines, bearing = _tree(index)
    points = shapely.points(x, y)
    point_idx, segment_idx = tree.query(points, predicate="dwithin", distance=max_distance_m)
    if len(point_idx) == 0:
        return Matches(lane, distance)
    grid_heading = np.asarray(heading_deg, dtype=float)[point_idx] - index.projection.grid_north_deg
    agrees = np.isnan(grid_heading) | (
        angle_difference(grid_heading, bearing[segment_idx]) <= heading_tolerance_deg
    )
    point_idx, segment_idx = point_idx[agrees], segment_idx[agrees]
    gaps = shapely.distance(points[point_idx], lines[segment_idx])
    # Nearest first per point; ties go to the lower segment index, so the result is deterministic.
    order = np.lexsort((segment_idx, gaps, point_idx))
    point_idx, segment_idx, gaps = point_idx[order], segment_idx[order], gaps[order]
    first = np.ones(len(point_idx), dtype=bool)
    first[1:] = point_idx[1:] != point_idx[:-1]
    lane[point_idx[first]] = index.segment_lane[segment_idx[first]]
    distance[point_idx[first]] = gaps[first]
    return Matches(lane, distance)
