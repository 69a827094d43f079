"""Tests for :mod:`sim.detectors`: golden files, a SUMO run, the contract's id pattern, placement.

Golden cases live in ``golden/detectors_<case>/``, one folder each, in the manner of sumolib's own
tests: the input and ``expected.add.xml``. The input is either plain SUMO sources
(``input.nod.xml`` + ``input.edg.xml``, built with netconvert here) or ``input.resco``, which names a
RESCO scenario read from the installed sumo-rl package. To accept a deliberate change of output,
run with ``CITYBRAIN_UPDATE_GOLDEN=1`` and review the diff of the expected files.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from schemas import contract
from sim.detectors import (
    DEFAULT_SETBACK_M,
    Approach,
    approach_lanes,
    detector_id,
    detector_position,
    generate_detectors,
    render_detectors,
    write_detectors,
)
from sim.network import read_sumolib
from sim.sumo_home import ensure_sumo_home, sumo_binary

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removeprefix("detectors_") for p in GOLDEN.glob("detectors_*") if p.is_dir())
UPDATE = os.environ.get("CITYBRAIN_UPDATE_GOLDEN") == "1"


def _resco_net(name: str) -> Path:
    """A RESCO net from the installed sumo-rl package, found without importing sumo_rl."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sumo-rl is not installed")
    path = Path(spec.submodule_search_locations[0]) / "nets" / "RESCO" / name / f"{name}.net.xml"
    if not path.is_file():
        pytest.skip(f"sumo-rl has no RESCO scenario {name} ({path})")
    return path


def _build_net(case_dir: Path, out_dir: Path) -> Path:
    ensure_sumo_home()
    net = out_dir / "input.net.xml"
    result = subprocess.run(
        [
            sumo_binary("netconvert"),
            "--node-files",
            str(case_dir / "input.nod.xml"),
            "--edge-files",
            str(case_dir / "input.edg.xml"),
            "--output-file",
            str(net),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return net


@pytest.fixture(scope="module")
def case_net(tmp_path_factory):
    """``case_net(case)``: the net file of a golden case (built once per module for source cases)."""
    built: dict[str, Path] = {}

    def get(case: str) -> Path:
        case_dir = GOLDEN / f"detectors_{case}"
        if (case_dir / "input.resco").is_file():
            lines = (case_dir / "input.resco").read_text(encoding="utf-8").splitlines()
            name = next(line.strip() for line in lines if line.strip() and not line.startswith("#"))
            return _resco_net(name)
        if case not in built:
            built[case] = _build_net(case_dir, tmp_path_factory.mktemp(case))
        return built[case]

    return get


@pytest.mark.parametrize("case", CASES)
def test_golden(case, case_net, tmp_path):
    expected_file = GOLDEN / f"detectors_{case}" / "expected.add.xml"
    out = generate_detectors(case_net(case), tmp_path / "detectors.add.xml")
    actual = out.read_text(encoding="utf-8")
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8", newline="\n")
    assert expected_file.is_file(), f"no {expected_file}; run with CITYBRAIN_UPDATE_GOLDEN=1 to create it"
    expected = expected_file.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), str(expected_file), "actual"
        )
    )
    assert actual == expected, f"generated detectors differ from the golden file:\n{diff}"


def test_cases_present():
    assert {"tiny", "cologne1"} <= set(CASES)


@pytest.mark.parametrize("case", ["tiny", "cologne1"])
def test_file_loads_in_sumo(case, case_net, tmp_path):
    net = case_net(case)
    additional = generate_detectors(net, tmp_path / "add" / "detectors.add.xml", output_file="e1.xml")
    command = [sumo_binary("sumo"), "-n", str(net), "-a", str(additional), "--end", "60", "--no-step-log"]
    routes = GOLDEN / f"detectors_{case}" / "input.rou.xml"
    if routes.is_file():
        command += ["-r", str(routes)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    # SUMO resolves file="e1.xml" next to the additional file and writes one interval per detector.
    assert not (tmp_path / "e1.xml").exists()
    intervals = ET.parse(tmp_path / "add" / "e1.xml").getroot().findall("interval")
    ids = {a.detector_id for a in approach_lanes(read_sumolib(net))}
    assert {i.get("id") for i in intervals} == ids
    assert all(float(i.get("begin")) == 0 and float(i.get("end")) == 60 for i in intervals)
    if routes.is_file():
        counted = {i.get("id"): int(i.get("nVehContrib")) for i in intervals}
        assert counted["e1_W2C_0"] + counted["e1_W2C_1"] > 0
        assert counted["e1_N2C_0"] > 0


@pytest.mark.parametrize("case", ["tiny", "cologne1"])
def test_detector_ids_match_the_contract(case, case_net):
    pattern = re.compile(contract("traffic.detector.v1").schema["properties"]["detector_id"]["pattern"])
    approaches = approach_lanes(read_sumolib(case_net(case)))
    assert approaches
    for approach in approaches:
        assert pattern.match(approach.detector_id), approach
        assert approach.detector_id == f"e1_{approach.lane_id}"  # SUMO ids fit as they are
    assert len({a.detector_id for a in approaches}) == len(approaches)


def test_odd_lane_ids_still_give_valid_distinct_ids():
    pattern = re.compile(contract("traffic.detector.v1").schema["properties"]["detector_id"]["pattern"])
    lanes = [
        "a b_0",
        "a&b_0",
        "a_b_0",
        "straße_0",
        "x" * 200 + "_0",
        "x" * 200 + "_1",
        "-4942389#0.5_1",
        ":C_0_0",
    ]
    ids = [detector_id(lane) for lane in lanes]
    assert all(pattern.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert ids[-2:] == ["e1_-4942389#0.5_1", "e1_:C_0_0"]
    assert detector_id("a b_0") == detector_id("a b_0")  # stable
    with pytest.raises(ValueError):
        detector_id("")


def _controlled_incoming_lanes(net_file: Path) -> set[str]:
    """Read straight from the net XML: the from-lanes of TLS-controlled connections, internal ones aside."""
    root = ET.parse(net_file).getroot()
    return {
        f"{c.get('from')}_{c.get('fromLane')}"
        for c in root.iter("connection")
        if c.get("tl") and not c.get("from").startswith(":")
    }


@pytest.mark.parametrize("case", ["tiny", "cologne1"])
def test_each_controlled_lane_appears_once(case, case_net):
    net_file = case_net(case)
    net = read_sumolib(net_file)
    approaches = approach_lanes(net)
    lane_ids = [a.lane_id for a in approaches]
    assert len(lane_ids) == len(set(lane_ids))
    expected = {
        lane for lane in _controlled_incoming_lanes(net_file) if net.getLane(lane).allows("passenger")
    }
    assert set(lane_ids) == expected
    tls_ids = {t.getID() for t in net.getTrafficLights()}
    assert all(a.tls_id in tls_ids for a in approaches)


def test_tiny_net_approaches(case_net):
    net_file = case_net("tiny")
    approaches = approach_lanes(read_sumolib(net_file))
    # Four arms, W2C with two lanes; S2C_0 is a bike lane under the signal and gets no detector.
    assert [a.lane_id for a in approaches] == ["E2C_0", "N2C_0", "S2C_1", "W2C_0", "W2C_1"]
    assert "S2C_0" in _controlled_incoming_lanes(net_file)
    assert {a.tls_id for a in approaches} == {"C"}


@pytest.mark.parametrize("case", ["tiny", "cologne1"])
def test_positions_lie_within_lanes_near_the_stop_line(case, case_net):
    net = read_sumolib(case_net(case))
    for a in approach_lanes(net):
        assert a.lane_length == net.getLane(a.lane_id).getLength()
        assert 0 <= a.position <= a.lane_length
        if a.lane_length >= 2 * DEFAULT_SETBACK_M:
            assert a.position == pytest.approx(a.lane_length - DEFAULT_SETBACK_M, abs=0.006)
        else:
            assert a.position == pytest.approx(a.lane_length / 2, abs=0.006)


def test_tiny_net_has_a_short_approach(case_net):
    approaches = approach_lanes(read_sumolib(case_net("tiny")))
    short = [a for a in approaches if a.lane_length < 2 * DEFAULT_SETBACK_M]
    assert [a.lane_id for a in short] == ["N2C_0"]  # so the middle-of-lane rule is exercised


def test_detector_position():
    assert detector_position(100.0) == 95.0
    assert detector_position(10.0) == 5.0
    assert detector_position(8.0) == 4.0  # short lane: the middle
    assert detector_position(0.2) == 0.1
    assert detector_position(0.0) == 0.0
    assert detector_position(41.485) <= 41.485
    assert detector_position(100.0, setback=20) == 80.0
    assert detector_position(100.0, setback=0) == 100.0
    with pytest.raises(ValueError):
        detector_position(-1.0)
    with pytest.raises(ValueError):
        detector_position(10.0, setback=-1)


def test_setback_is_passed_through(case_net, tmp_path):
    net_file = case_net("tiny")
    out = generate_detectors(net_file, tmp_path / "d.add.xml", setback=20, period_s=900)
    loops = {e.get("lane"): e.attrib for e in ET.parse(out).getroot().iter("inductionLoop")}
    length = read_sumolib(net_file).getLane("E2C_0").getLength()
    assert float(loops["E2C_0"]["pos"]) == pytest.approx(length - 20)
    assert {loop["period"] for loop in loops.values()} == {"900"}


def _approach(lane: str, pos: float = 12.345) -> Approach:
    return Approach(detector_id=detector_id(lane), tls_id="J", lane_id=lane, position=pos, lane_length=50.0)


def test_written_file_is_deterministic_and_sorted(tmp_path):
    approaches = [_approach("b_0", 12.0), _approach("a#1_1", 0.5), _approach("-a_0", 7.25)]
    first = write_detectors(
        approaches, tmp_path / "one" / "d.add.xml", period_s=300, output_file="out/e1.xml"
    )
    second = write_detectors(list(reversed(approaches)), tmp_path / "two.add.xml", period_s=300.0)
    text = first.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == '<?xml version="1.0" encoding="UTF-8"?>'
    assert lines[1].startswith("<!-- generated by citybrain") and lines[1].endswith("-->")
    assert lines[2] == "<additional>"
    assert lines[3:6] == [
        '  <inductionLoop id="e1_-a_0" lane="-a_0" pos="7.25" period="300" file="out/e1.xml"/>',
        '  <inductionLoop id="e1_a#1_1" lane="a#1_1" pos="0.50" period="300" file="out/e1.xml"/>',
        '  <inductionLoop id="e1_b_0" lane="b_0" pos="12.00" period="300" file="out/e1.xml"/>',
    ]
    assert lines[6:] == ["</additional>"]
    assert text.endswith("</additional>\n")
    assert second.read_text(encoding="utf-8") == text.replace("out/e1.xml", "e1.xml")
    assert ET.parse(first).getroot().tag == "additional"


def test_render_escapes_and_rejects_bad_arguments():
    text = render_detectors([_approach("a&b_0")], output_file="o&.xml", source="x--y.net.xml")
    root = ET.fromstring(text.encode("utf-8"))
    loop = root.find("inductionLoop")
    assert loop.get("lane") == "a&b_0" and loop.get("file") == "o&.xml"
    assert "x--y" not in text
    with pytest.raises(ValueError, match="period"):
        render_detectors([_approach("a_0")], period_s=0)
    with pytest.raises(ValueError, match="used twice"):
        render_detectors([_approach("a_0"), _approach("a_0")])


def test_missing_net_names_the_file(tmp_path):
    missing = tmp_path / "nowhere.net.xml"
    with pytest.raises(FileNotFoundError, match="nowhere.net.xml"):
        generate_detectors(missing, tmp_path / "d.add.xml")
    assert not (tmp_path / "d.add.xml").exists()


def test_unreadable_net_names_the_file(tmp_path):
    broken = tmp_path / "broken.net.xml"
    broken.write_text("<net><edge id=", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.net.xml"):
        generate_detectors(broken, tmp_path / "d.add.xml")


def test_net_without_traffic_lights_names_the_file(tmp_path):
    plain = tmp_path / "plain.net.xml"
    plain.write_text('<net version="1.20"></net>\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"plain\.net\.xml.*no traffic lights"):
        generate_detectors(plain, tmp_path / "d.add.xml")
