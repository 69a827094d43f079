"""The network projection: vectorised, equal to sumolib's per-point conversion, and invertible."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sim.geo import NetProjection
from sim.network import read_sumolib
from sim.scenarios import resco


@pytest.mark.parametrize("name", ["cologne1", "ingolstadt1", "grid4x4"])
def test_round_trip_and_agreement_with_sumolib(name):
    net = read_sumolib(resco(name).net_file)
    projection = pickle.loads(pickle.dumps(NetProjection.of(net)))  # Spark ships it to workers
    (xmin, ymin), (xmax, ymax) = net.getBBoxXY()
    rng = np.random.default_rng(1)
    x, y = rng.uniform(xmin, xmax, 50), rng.uniform(ymin, ymax, 50)
    lon, lat = projection.lonlat(x, y)
    if projection.projected:
        expected = np.array([net.convertXY2LonLat(float(a), float(b)) for a, b in zip(x, y, strict=True)])
        np.testing.assert_allclose(np.column_stack([lon, lat]), expected, atol=1e-9)
    back_x, back_y = projection.xy(lon, lat)
    np.testing.assert_allclose(back_x, x, atol=1e-3)
    np.testing.assert_allclose(back_y, y, atol=1e-3)
