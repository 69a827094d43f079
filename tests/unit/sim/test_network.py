"""The road-network model: links, right of way, programs (also additional ones), pickling, projection."""

from __future__ import annotations

import pickle

import numpy as np
import pyproj
import pytest

from sim import network
from sim.geo import LOCAL_PLANE
from sim.scenarios import resco

ADDITIONAL = """<additional>
    <tlLogic id="{tls}" type="static" programID="{program}" offset="7">
        <phase duration="40" state="{green}"/>
        <phase duration="5" state="{yellow}" minDur="4" maxDur="6" name="clear"/>
    </tlLogic>
</additional>
"""


@pytest.fixture(scope="module")
def cologne1() -> network.Network:
    return network.load(resco("cologne1").net_file)


def test_signal_links_carry_lanes_and_right_of_way(cologne1):
    (signal,) = cologne1.signals.values()
    links = signal.links()
    assert sorted(links) == list(range(signal.link_count))
    first = links[0][0]
    assert first.tls_id == signal.id and first.from_lane in cologne1.lanes and first.to_lane in cologne1.lanes
    junction = cologne1.junctions[first.junction]
    assert 0 <= first.request < len(junction.foes) == len(junction.response)
    requests = [c.request for cs in links.values() for c in cs]
    assert any(junction.conflict(a, b) for a in requests for b in requests)


def test_loaded_once_per_file_and_picklable(cologne1):
    assert network.load(resco("cologne1").net_file) is cologne1
    copy = pickle.loads(pickle.dumps(cologne1))
    assert copy.signals == cologne1.signals and copy.edges == cologne1.edges
    assert copy.projection == cologne1.projection


def test_additional_programs_replace_the_nets_and_run(tmp_path, cologne1):
    (signal,) = cologne1.signals.values()
    assert signal.program is not None and signal.program.program_id == "0"
    n = signal.link_count
    green, yellow = "G" * n, "y" * n
    same = tmp_path / "same.add.xml"
    same.write_text(ADDITIONAL.format(tls=signal.id, program="0", green=green, yellow=yellow))
    replaced = network.load(resco("cologne1").net_file, [same]).signals[signal.id]
    assert [p.program_id for p in replaced.programs] == ["0"]
    assert replaced.program.offset == 7 and replaced.program.phases[1] == network.Phase(
        yellow, 5, 4, 6, "clear"
    )
    other = tmp_path / "other.add.xml"
    other.write_text(ADDITIONAL.format(tls=signal.id, program="mine", green=green, yellow=yellow))
    added = network.load(resco("cologne1").net_file, [other]).signals[signal.id]
    assert [p.program_id for p in added.programs] == ["0", "mine"] and added.program.source == str(other)
    unknown = tmp_path / "unknown.add.xml"
    unknown.write_text(ADDITIONAL.format(tls="nowhere", program="0", green=green, yellow=yellow))
    with pytest.raises(network.NetworkError, match="nowhere"):
        network.load(resco("cologne1").net_file, [unknown])


def test_no_resco_scenario_loads_other_programs():
    # measured: the RESCO configurations name no additional files, so they run their nets' programs
    from sim.scenarios import RESCO_WINDOWS

    assert all(resco(name).additional_files == () for name in RESCO_WINDOWS)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.net.xml"):
        network.load(tmp_path / "nowhere.net.xml")


def test_projection_agrees_with_pyproj():
    grid = network.load(resco("grid4x4").net_file).projection
    assert not grid.projected
    # 1 km east and north of the anchor on the local plane, as PROJ itself computes it
    expected = pyproj.Transformer.from_crs(pyproj.CRS(LOCAL_PLANE), "EPSG:4326", always_xy=True).transform(
        1000.0, 1000.0
    )
    np.testing.assert_allclose(np.ravel(grid.lonlat([1000.0], [1000.0])), expected, atol=1e-9)
    cologne = network.load(resco("cologne1").net_file).projection
    assert cologne.projected
    proj = pyproj.Proj(cologne.proj_parameters)
    x, y = 500.0, 300.0
    lon, lat = proj(x - cologne.offset[0], y - cologne.offset[1], inverse=True)
    np.testing.assert_allclose(np.ravel(cologne.lonlat([x], [y])), [lon, lat], atol=1e-9)
