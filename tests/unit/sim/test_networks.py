"""The own scenarios build with netconvert, and the corridor is the network its design says."""

from __future__ import annotations

import difflib
import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import sumolib

from sim import networks
from sim.networks import NetworkBuildError, build_network, load_scenario_meta, own_scenarios
from sim.sumo_home import sumo_binary

GOLDEN_PROGRAMS = Path(__file__).parent / "golden" / "corridor_programs" / "expected.txt"

ARTERIAL = "Changning Avenue"
CYCLE_S = 120
YELLOW_S = 3
ALL_RED_S = 2
HEFEI_LON_LAT = (117.227, 31.820)


@pytest.fixture(scope="module")
def corridor_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_network("corridor", tmp_path_factory.mktemp("corridor"))


@pytest.fixture(scope="module")
def corridor_net(corridor_cfg: Path) -> sumolib.net.Net:
    return sumolib.net.readNet(str(corridor_cfg.with_name("corridor.net.xml")), withPrograms=True)


def tls_program_dump(net_file: Path) -> str:
    """Every tlLogic of a built network as normalised text: the program, its phases, and the
    lanes each signal index controls (so a reordering of signal groups shows up too)."""
    root = ET.parse(net_file).getroot()
    links: dict[str, list[tuple[int, str]]] = {}
    for c in root.iter("connection"):
        if c.get("tl"):
            link = f"{c.get('from')}_{c.get('fromLane')} -> {c.get('to')}_{c.get('toLane')}"
            links.setdefault(c.get("tl"), []).append((int(c.get("linkIndex")), link))
    lines = []
    for logic in sorted(root.iter("tlLogic"), key=lambda e: e.get("id")):
        tl_id = logic.get("id")
        lines.append(
            f"tlLogic {tl_id} type={logic.get('type')} programID={logic.get('programID')} "
            f"offset={logic.get('offset')}"
        )
        lines += [f"  phase {float(p.get('duration')):g} {p.get('state')}" for p in logic.iter("phase")]
        lines += [f"  link {index} {link}" for index, link in sorted(links.get(tl_id, []))]
    return "\n".join(lines) + "\n"


def test_own_scenarios_lists_the_corridor_with_its_window() -> None:
    assert "corridor" in own_scenarios()
    meta = load_scenario_meta("corridor")
    assert (meta["begin"], meta["end"]) == (23400, 34200)  # 06:30-09:30
    assert "Hefei" in meta["location"]


def test_sumocfg_names_the_built_files_and_the_window(corridor_cfg: Path) -> None:
    root = ET.parse(corridor_cfg).getroot()
    assert root.find("input/net-file").get("value") == "corridor.net.xml"
    assert root.find("input/route-files").get("value") == "corridor.rou.xml"
    assert (root.find("time/begin").get("value"), root.find("time/end").get("value")) == ("23400", "34200")
    assert (corridor_cfg.parent / "corridor.rou.xml").read_bytes() == (
        networks.OWN_NETWORKS_DIR / "corridor" / "corridor.rou.xml"
    ).read_bytes()


def test_corridor_has_at_least_six_signalised_junctions(corridor_net: sumolib.net.Net) -> None:
    signalised = [n for n in corridor_net.getNodes() if n.getType() == "traffic_light"]
    assert len(signalised) >= 6
    assert len(corridor_net.getTrafficLights()) == len(signalised)


def test_arterial_has_three_lanes_and_a_left_turn_bay_at_every_signal(corridor_net: sumolib.net.Net) -> None:
    arterial = [e for e in corridor_net.getEdges() if e.getName() == ARTERIAL]
    assert arterial and all(e.getLaneNumber() >= 3 for e in arterial)
    approaches = [e for e in arterial if e.getToNode().getType() == "traffic_light"]
    assert len(approaches) == 2 * len(corridor_net.getTrafficLights())
    for edge in approaches:
        bay = edge.getLanes()[-1]
        assert edge.getLaneNumber() == 4, edge.getID()
        assert {c.getDirection() for c in bay.getOutgoing()} == {"l"}, (
            f"{edge.getID()}: bay lane is not left-only"
        )


def test_programs_have_the_designed_cycle_and_clearance(corridor_net: sumolib.net.Net) -> None:
    for tls in corridor_net.getTrafficLights():
        (program,) = tls.getPrograms().values()
        phases = program.getPhases()
        assert sum(p.duration for p in phases) == CYCLE_S, tls.getID()
        for i, phase in enumerate(phases):
            if "y" in phase.state:
                assert phase.duration == YELLOW_S, (tls.getID(), i)
                after = phases[(i + 1) % len(phases)]
                assert set(after.state) == {"r"} and after.duration == ALL_RED_S, (tls.getID(), i)
        assert any("y" in p.state for p in phases), tls.getID()


def test_arterial_lefts_are_protected(corridor_net: sumolib.net.Net) -> None:
    """Each arterial left turn gets a phase in which it has priority ('G'), not only a
    yielding green ('g') across oncoming traffic."""
    checked = 0
    for tls in corridor_net.getTrafficLights():
        (program,) = tls.getPrograms().values()
        for from_lane, to_lane, index in tls.getConnections():
            connections = from_lane.getEdge().getConnections(to_lane.getEdge())
            is_left = any(c.getDirection() == "l" for c in connections if c.getFromLane() == from_lane)
            if is_left and from_lane.getEdge().getName() == ARTERIAL:
                assert any(p.state[index] == "G" for p in program.getPhases()), (tls.getID(), index)
                checked += 1
    assert checked == 2 * len(corridor_net.getTrafficLights())


def test_offsets_differ_so_the_signals_are_coordinated(corridor_net: sumolib.net.Net) -> None:
    offsets = [next(iter(t.getPrograms().values())).getOffset() for t in corridor_net.getTrafficLights()]
    assert len(set(offsets)) == len(offsets)


def test_network_is_geo_referenced_near_hefei(corridor_net: sumolib.net.Net) -> None:
    assert corridor_net.hasGeoProj()
    assert corridor_net.getGeoProj().crs.utm_zone == "50N"
    x0, y0, x1, y1 = corridor_net.getBoundary()
    lon, lat = corridor_net.convertXY2LonLat((x0 + x1) / 2, (y0 + y1) / 2)
    assert _distance_km((lon, lat), HEFEI_LON_LAT) < 20
    assert corridor_net.convertLonLat2XY(lon, lat) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2), abs=1e-3)


def test_signal_programs_match_golden(corridor_cfg: Path) -> None:
    dump = tls_program_dump(corridor_cfg.with_name("corridor.net.xml"))
    expected = GOLDEN_PROGRAMS.read_text()
    diff = "".join(
        difflib.unified_diff(expected.splitlines(True), dump.splitlines(True), "expected", "built")
    )
    assert dump == expected, f"signal programs changed; if intended, update {GOLDEN_PROGRAMS}:\n{diff}"


def test_build_is_skipped_when_up_to_date_and_reproducible(corridor_cfg: Path, tmp_path: Path) -> None:
    outputs = sorted(corridor_cfg.parent.iterdir())
    before = {p: p.stat().st_mtime_ns for p in outputs}
    assert build_network("corridor", corridor_cfg.parent) == corridor_cfg
    assert {p: p.stat().st_mtime_ns for p in outputs} == before

    build_network("corridor", tmp_path)
    for path in outputs:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_changed_source_triggers_rebuild(tmp_path: Path) -> None:
    source = _copy_corridor(tmp_path)
    cfg = build_network("corridor", tmp_path / "out", source_dir=source)
    net_file = cfg.with_name("corridor.net.xml")
    built = net_file.stat().st_mtime_ns
    tll = source / "corridor.tll.xml"
    tll.write_text(tll.read_text().replace('programID="0" offset="50"', 'programID="0" offset="55"'))
    build_network("corridor", tmp_path / "out", source_dir=source)
    assert net_file.stat().st_mtime_ns > built
    assert "tlLogic J2 type=static programID=0 offset=55" in tls_program_dump(net_file)


@pytest.mark.parametrize("broken", ["corridor.edg.xml", "corridor.tll.xml", "corridor.rou.xml"])
def test_malformed_source_is_named(tmp_path: Path, broken: str) -> None:
    source = _copy_corridor(tmp_path)
    path = source / broken
    path.write_text(path.read_text()[:-20])  # cut off the closing tags
    with pytest.raises(NetworkBuildError, match=broken.replace(".", r"\.")):
        build_network("corridor", tmp_path / "out", source_dir=source)
    out = tmp_path / "out"
    left = [p.name for p in out.iterdir() if p.suffix != ".lock"] if out.exists() else []
    assert not left, "a failed build left files behind"


def test_netconvert_errors_are_quoted(tmp_path: Path) -> None:
    source = _copy_corridor(tmp_path)
    con = source / "corridor.con.xml"
    con.write_text(con.read_text().replace('to="J1_N1"', 'to="J1_N9"', 1))
    with pytest.raises(NetworkBuildError, match=r"Error: .*'J1_N9' is not known"):
        build_network("corridor", tmp_path / "out", source_dir=source)


def test_missing_source_is_named(tmp_path: Path) -> None:
    source = _copy_corridor(tmp_path)
    (source / "corridor.nod.xml").unlink()
    with pytest.raises(NetworkBuildError, match=r"corridor\.nod\.xml"):
        build_network("corridor", tmp_path / "out", source_dir=source)


def test_short_run_inserts_vehicles_without_teleports(corridor_cfg: Path, tmp_path: Path) -> None:
    """Ten minutes from the window's start: demand is flowing and nothing jams."""
    stats = tmp_path / "stats.xml"
    command = [sumo_binary("sumo"), "-c", str(corridor_cfg), "--end", "24000", "--no-step-log"]
    command += ["--duration-log.statistics", "--statistic-output", str(stats)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    root = ET.parse(stats).getroot()
    vehicles, teleports = root.find("vehicles"), root.find("teleports")
    assert int(vehicles.get("inserted")) > 300
    assert int(vehicles.get("waiting")) == 0  # no insertion backlog at the edges of the area
    assert int(teleports.get("total")) == 0
    assert int(root.find("safety").get("collisions")) == 0


def _copy_corridor(tmp_path: Path) -> Path:
    return Path(shutil.copytree(networks.OWN_NETWORKS_DIR / "corridor", tmp_path / "corridor"))


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = (map(math.radians, p) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
