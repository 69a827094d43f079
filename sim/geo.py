"""A SUMO network's geography: its x/y metres to WGS84 and back, for arrays of points.

The twin turns vehicle positions into GPS fixes with it and the lake turns GPS fixes back into
network metres to map-match them, so both use one :class:`NetProjection`. It is a small
picklable value (no sumolib net inside), so Spark can ship it to its workers.

A projected network (RESCO's Cologne and Ingolstadt nets are UTM) converts through its own PROJ
parameters and ``netOffset``, as sumolib's ``convertXY2LonLat`` does for one point; one without a
projection is laid at :data:`DEFAULT_ANCHOR_LAT_LON` by an equirectangular projection on a sphere
(:data:`LOCAL_PLANE`): x and y are metres east and north of the anchor.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyproj
    import sumolib.net

#: Where a network without a geographic projection (grid4x4, arterial4x4) is placed: Cologne.
DEFAULT_ANCHOR_LAT_LON = (50.9375, 6.9603)
_EARTH_RADIUS_M = 6_371_008.8
#: PROJ parameters of the plane an unprojected network lies on, true to scale along the anchor's
#: parallel and meridian.
LOCAL_PLANE = (
    f"+proj=eqc +lat_ts={DEFAULT_ANCHOR_LAT_LON[0]} +lat_0={DEFAULT_ANCHOR_LAT_LON[0]} "
    f"+lon_0={DEFAULT_ANCHOR_LAT_LON[1]} +R={_EARTH_RADIUS_M} +units=m +no_defs"
)


@dataclass(frozen=True)
class NetProjection:
    """x/y ↔ lon/lat for one network, and the angle between its grid north and true north."""

    #: The net's PROJ parameters (``<location projParameter=...>``); None for an unprojected net.
    proj_parameters: str | None
    #: The net's ``netOffset``: network x/y = projected x/y + offset.
    offset: tuple[float, float]
    #: Centre of the network's bounding box, in network x/y.
    centre_xy: tuple[float, float]

    @classmethod
    def of(cls, net: sumolib.net.Net) -> NetProjection:
        (xmin, ymin), (xmax, ymax) = net.getBBoxXY()
        # a hand-written net may have no <location> at all: unprojected
        parameters = net._location.get("projParameter", "!")  # noqa: SLF001
        parameters = None if parameters == "!" else parameters
        dx, dy = net.getLocationOffset() if parameters else (0.0, 0.0)
        return cls(parameters, (float(dx), float(dy)), ((xmin + xmax) / 2.0, (ymin + ymax) / 2.0))

    @property
    def projected(self) -> bool:
        return self.proj_parameters is not None

    def lonlat(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 longitude and latitude of network points."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        lon, lat = self._proj(x - self.offset[0], y - self.offset[1], inverse=True)
        return np.asarray(lon), np.asarray(lat)

    def xy(self, lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Network x/y (metres) of WGS84 points: the inverse of :meth:`lonlat`."""
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        x, y = self._proj(lon, lat)
        return np.asarray(x) + self.offset[0], np.asarray(y) + self.offset[1]

    @property
    def _proj(self) -> pyproj.Proj:
        return _proj(self.proj_parameters or LOCAL_PLANE)

    @functools.cached_property
    def grid_north_deg(self) -> float:
        """Add to a SUMO angle (clockwise from grid north) to get a heading from true north."""
        (lon0,), (lat0,) = self.lonlat([self.centre_xy[0]], [self.centre_xy[1]])
        (lon1,), (lat1,) = self.lonlat([self.centre_xy[0]], [self.centre_xy[1] + 100.0])
        return math.degrees(math.atan2((lon1 - lon0) * math.cos(math.radians(lat0)), lat1 - lat0))


@functools.cache
def _proj(parameters: str) -> pyproj.Proj:
    import pyproj

    return pyproj.Proj(projparams=parameters)
