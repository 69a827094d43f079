"""Map-matching on a hand-made network: distance decides, heading separates the directions."""

from __future__ import annotations

import numpy as np

from lake.mapmatch import angle_difference, match
from lake.network import NetworkIndex
from sim.geo import NetProjection

# A two-way street along x (eastbound at y=-2, westbound at y=+2) and a northbound street at x=100.
INDEX = NetworkIndex(
    name="test",
    projection=NetProjection(None, (0.0, 0.0), (50.0, 50.0)),
    lane_ids=("east_0", "west_0", "north_0"),
    lane_edges=("east", "west", "north"),
    segments=np.array([[0, -2, 100, -2], [100, 2, 0, 2], [100, 0, 100, 100]], dtype=float),
    segment_lane=np.array([0, 1, 2], dtype=np.int32),
    movements=(),
    fingerprint="test-index",
)


def edges(found):
    return [INDEX.lane_edges[i] if i >= 0 else None for i in found.lane]


def test_heading_picks_the_carriageway_and_distance_the_street():
    x = np.array([50.0, 50.0, 99.0, 50.0, 50.0])
    y = np.array([1.0, -1.0, 60.0, 80.0, 0.5])
    heading = np.array([90.0, 270.0, 0.0, 90.0, np.nan])  # east, west, north, east, standing
    found = match(INDEX, x, y, heading, max_distance_m=20, heading_tolerance_deg=45)
    # Eastbound at y=+1 is nearer the westbound lane but goes east; a standing fix takes the nearest.
    assert edges(found) == ["east", "west", "north", None, "west"]
    np.testing.assert_allclose(found.distance_m[:3], [3.0, 3.0, 1.0])
    assert np.isnan(found.distance_m[3])


def test_nothing_matches_beyond_the_distance_or_against_the_heading():
    found = match(
        INDEX,
        np.array([50.0]),
        np.array([-2.0]),
        np.array([180.0]),
        max_distance_m=5,
        heading_tolerance_deg=45,
    )
    assert edges(found) == [None]
    assert (
        edges(
            match(INDEX, np.array([]), np.array([]), np.array([]), max_distance_m=5, heading_tolerance_deg=45)
        )
        == []
    )


def test_angle_difference_wraps_around_north():
    np.testing.assert_allclose(
        angle_difference(np.array([350.0, 10.0, 90.0]), np.array([10.0, 350.0, 270.0])), [20, 20, 180]
    )
