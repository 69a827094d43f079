"""Tests for :mod:`sim.xml_files` and the sim files written through it: layout, and escaping of
ids and paths holding ``&``, ``<`` and ``"`` (the file parses back to the very same value)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sim.detectors import Approach, detector_id, render_detectors
from sim.networks import _write_sumocfg
from sim.runner import RunRequest, _lane_data_file
from sim.scenarios import Scenario
from sim.twin import write_truth_additional
from sim.xml_files import element, render

#: What a path or id must survive: XML's special characters, both quotes, a tab.
ODD = "a&b<c>\"d'e\tf"


def test_render_writes_the_declaration_the_comment_and_one_indented_element_a_line():
    root = element(None, "additional", {})
    parent = element(root, "tlLogic", {"id": "x", "offset": 0})
    element(parent, "phase", {"duration": 31, "state": "Gr"})
    assert render(root, comment="made here", indent="  ") == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- made here -->\n"
        "<additional>\n"
        '  <tlLogic id="x" offset="0">\n'
        '    <phase duration="31" state="Gr"/>\n'
        "  </tlLogic>\n"
        "</additional>\n"
    )


def test_attributes_keep_their_order_and_an_empty_root_stays_open_and_closed():
    root = element(None, "additional", {})
    element(root, "e", {"z": 1, "a": 2, "m": 3})
    assert '<e z="1" a="2" m="3"/>' in render(root)
    assert render(element(None, "additional", {})).endswith("\n<additional>\n</additional>\n")


def test_odd_values_and_a_text_looking_like_an_empty_tag_read_back_unchanged():
    root = element(None, "data", {})
    element(root, "edge", {"id": ODD, "file": "x />y"})
    text = render(root)
    (edge,) = ET.fromstring(text.encode("utf-8"))
    assert edge.get("id") == ODD and edge.get("file") == "x />y"
    assert ET.canonicalize(text) == ET.canonicalize(text.replace("/>", " />"))


def test_bad_comments_and_comment_nodes_are_refused():
    with pytest.raises(ValueError, match="comment"):
        render(element(None, "a", {}), comment="x -- y")
    with pytest.raises(ValueError, match="comment"):
        render(element(None, "a", {}), comment="x\ny")
    root = element(None, "a", {})
    root.append(ET.Comment("inside"))
    with pytest.raises(ValueError, match="elements only"):
        render(root)


def test_detectors_with_an_odd_lane_and_output_file_read_back_unchanged():
    lane = f"{ODD}_0"
    approach = Approach(detector_id(lane), "J", lane, 1.0, 10.0)
    text = render_detectors([approach], output_file=f"out/{ODD}.xml", source=f"{ODD}.net.xml")
    (loop,) = ET.fromstring(text.encode("utf-8"))
    assert (loop.get("lane"), loop.get("file")) == (lane, f"out/{ODD}.xml")


def test_run_and_network_files_in_an_odd_folder_read_back_unchanged(tmp_path):
    folder = tmp_path / ODD
    folder.mkdir()
    scenario = Scenario("s", folder / "s.sumocfg", folder / "s.net.xml", 10, 70, "file")
    lane_data = _lane_data_file(RunRequest(scenario, "fixed", 1, folder))
    (element_,) = ET.parse(lane_data).getroot()
    assert element_.get("file") == f"{(folder / 's-fixed-seed1').resolve()}.lanes.xml"
    assert (element_.get("begin"), element_.get("end"), element_.get("period")) == ("10", "70", "60")

    sumocfg = folder / "s.sumocfg"
    _write_sumocfg(sumocfg, f"{ODD}.net.xml", f"{ODD}.rou.xml", 0, 3600)
    root = ET.parse(sumocfg).getroot()
    assert root.find("input/net-file").get("value") == f"{ODD}.net.xml"
    assert root.find("input/route-files").get("value") == f"{ODD}.rou.xml"
    assert root.find("time/end").get("value") == "3600"


def test_the_truth_additional_names_its_outputs(tmp_path: Path):
    root = ET.parse(write_truth_additional(tmp_path / "truth.add.xml")).getroot()
    assert [(e.tag, e.get("id")) for e in root] == [("edgeData", "truth"), ("laneData", "truth_lanes")]
