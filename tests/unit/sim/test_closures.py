"""Lane and road closures: the checks that refuse a closure the network does not have, the
rerouter file SUMO reads, and the incident scenario written beside the original — read back as
XML, no simulation (the integration tests run one)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sim.closures import (
    CLOSURE_FILE,
    REROUTING_PERIOD_S,
    SUMOCFG_FILE,
    UPSTREAM_EDGES,
    Closure,
    ClosureError,
    check_closure,
    closable_lanes,
    closure_xml,
    incident_scenario,
    lanes_entered,
    sumo_lane_ids,
    upstream_edges,
    with_window,
)
from sim.network import read_sumolib
from sim.scenarios import Scenario, from_sumocfg, resco, resolve

# The corridor runs west to east J1..J7; J3w_J3 enters J3 from the west (4 lanes), fed by
# J2_J3w, which J2's three other approaches feed, which the edges from N2, S2 and J1 feed.
EDGE = "J3w_J3"
UPSTREAM = ["J3w_J3", "J2_J3w", "J2n_J2", "J2s_J2", "J2w_J2", "N2_J2n", "S2_J2s", "J1_J2w"]


@pytest.fixture(scope="module")
def corridor(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return resolve("corridor", tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def net(corridor: Scenario):
    return read_sumolib(corridor.net_file)


def closure(edge_id: str = EDGE, lane_ids: tuple[str, ...] = ("J3w_J3_1",), begin=100.0, end=400.0):
    return Closure(edge_id, lane_ids, begin, end)


def read(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


# -- the closure and its checks --------------------------------------------------------------


def test_a_closure_without_lanes_closes_the_whole_edge_and_says_so():
    assert closure(lane_ids=()).whole_edge
    assert closure(lane_ids=()).label() == "edge J3w_J3 closed 100–400 s"
    assert not closure().whole_edge
    assert closure(lane_ids=("J3w_J3_1", "J3w_J3_2")).label() == "lane(s) J3w_J3_1, J3w_J3_2 closed 100–400 s"


def test_a_closure_of_the_network_s_own_lanes_passes(net):
    check_closure(net, closure())
    check_closure(net, closure(lane_ids=()))
    check_closure(net, closure(lane_ids=("J3w_J3_0", "J3w_J3_3")))


def test_an_unknown_edge_is_refused_by_name(net):
    with pytest.raises(ClosureError, match="no edge 'nowhere'"):
        check_closure(net, closure("nowhere", ()))


def test_a_lane_of_another_edge_is_refused_naming_the_lane_and_the_edge_s_own(net):
    with pytest.raises(ClosureError, match="J2w_J2_1") as caught:
        check_closure(net, closure(lane_ids=("J3w_J3_1", "J2w_J2_1")))
    message = str(caught.value)
    assert "edge J3w_J3" in message and "J3w_J3_0" in message  # what it could have named
    assert message.endswith("not ['J2w_J2_1']")  # the valid lane is not blamed


@pytest.mark.parametrize(("begin", "end"), [(400.0, 400.0), (400.0, 100.0)])
def test_a_closure_that_does_not_end_after_it_begins_is_refused(net, begin, end):
    with pytest.raises(ClosureError, match="must end after it begins"):
        check_closure(net, closure(begin=begin, end=end))


def test_closure_xml_checks_before_it_writes(net):
    """A bad closure never becomes a file SUMO would reject half-way through a run."""
    with pytest.raises(ClosureError):
        closure_xml(net, closure("nowhere", ()))


# -- where drivers learn of it ---------------------------------------------------------------


def test_upstream_edges_are_the_edge_and_its_feeders_nearest_first(net):
    assert upstream_edges(net, EDGE) == UPSTREAM
    assert upstream_edges(net, EDGE, depth=0) == [EDGE]
    assert upstream_edges(net, EDGE, depth=1) == ["J3w_J3", "J2_J3w"]


def test_upstream_edges_stop_at_the_network_s_boundary(net):
    assert upstream_edges(net, "N2_J2n") == ["N2_J2n"]  # fed by nothing
    found = upstream_edges(net, EDGE, depth=UPSTREAM_EDGES + 5)
    assert len(found) == len(set(found))  # no edge twice, however far back
    assert not any(edge.startswith(":") for edge in found)  # no internal edges


# -- the rerouter file -----------------------------------------------------------------------


def test_closure_xml_closes_each_lane_on_every_edge_that_leads_to_it(net):
    root = ET.fromstring(closure_xml(net, closure(lane_ids=("J3w_J3_1", "J3w_J3_2"))))
    assert root.tag == "additional"
    (rerouter,) = root.findall("rerouter")
    assert rerouter.get("edges", "").split() == UPSTREAM
    (interval,) = rerouter.findall("interval")
    assert (interval.get("begin"), interval.get("end")) == ("100", "400")
    lanes = interval.findall("closingLaneReroute")
    assert [(c.get("id"), c.get("disallow")) for c in lanes] == [("J3w_J3_1", "all"), ("J3w_J3_2", "all")]
    assert interval.findall("closingReroute") == []


def test_closure_xml_closes_the_whole_edge_when_no_lane_is_named(net):
    root = ET.fromstring(closure_xml(net, closure(lane_ids=(), begin=30.5, end=90.0)))
    interval = root.find("rerouter/interval")
    assert interval is not None
    assert (interval.get("begin"), interval.get("end")) == ("30.5", "90")
    assert [(c.get("id"), c.get("disallow")) for c in interval.findall("closingReroute")] == [(EDGE, "all")]
    assert interval.findall("closingLaneReroute") == []


# -- the incident scenario -------------------------------------------------------------------


def test_incident_scenario_is_written_beside_the_original_with_absolute_paths(corridor, net, tmp_path):
    original = corridor.sumocfg.read_bytes()
    folder = tmp_path / "incident"
    scenario = incident_scenario(corridor, closure(), folder)

    assert corridor.sumocfg.read_bytes() == original  # the city's scenario is untouched
    assert scenario.sumocfg == (folder / SUMOCFG_FILE).resolve()
    assert (scenario.begin, scenario.end) == (corridor.begin, corridor.end)
    assert scenario.name == "corridor+incident"
    assert scenario.net_file == corridor.net_file
    closure_file = (folder / CLOSURE_FILE).resolve()
    assert closure_file in scenario.additional_files
    assert closure_file.read_text(encoding="utf-8") == closure_xml(net, closure())

    root = read(scenario.sumocfg)
    inputs = root.find("input")
    assert inputs is not None
    for option in inputs:
        for part in option.get("value", "").split(","):
            assert Path(part).is_absolute() and Path(part).exists(), (option.tag, part)
    assert inputs.find("net-file").get("value") == str(corridor.net_file)
    assert inputs.find("route-files").get("value") == str(corridor.sumocfg.parent / "corridor.rou.xml")
    assert Path(inputs.find("additional-files").get("value")) == closure_file
    assert root.find("routing/device.rerouting.probability").get("value") == "1"
    assert root.find("routing/device.rerouting.period").get("value") == str(REROUTING_PERIOD_S)


def test_incident_scenario_keeps_the_original_s_additional_files_and_overrides_its_rerouting(
    corridor, tmp_path
):
    """A scenario with its own detectors keeps them; its rerouting settings give way to the
    incident's (one option each, not two)."""
    build = corridor.sumocfg.parent
    (build / "extra.add.xml").write_text("<additional/>\n", encoding="utf-8")
    sumocfg = build / "with-extra.sumocfg"
    sumocfg.write_text(
        """<configuration>
    <input>
        <net-file value="corridor.net.xml"/>
        <route-files value="corridor.rou.xml"/>
        <additional-files value="extra.add.xml"/>
    </input>
    <time><begin value="23400"/><end value="34200"/></time>
    <routing><device.rerouting.probability value="0.25"/></routing>
</configuration>
""",
        encoding="utf-8",
    )
    original = sumocfg.read_bytes()
    scenario = incident_scenario(from_sumocfg(sumocfg, "extra"), closure(), tmp_path / "incident", "named")

    assert sumocfg.read_bytes() == original
    assert scenario.name == "named"
    assert scenario.additional_files == (
        (build / "extra.add.xml").resolve(),
        (tmp_path / "incident" / CLOSURE_FILE).resolve(),
    )
    root = read(scenario.sumocfg)
    assert [e.get("value") for e in root.iter("device.rerouting.probability")] == ["1"]
    assert [e.get("value") for e in root.iter("device.rerouting.period")] == [str(REROUTING_PERIOD_S)]


def test_incident_scenario_in_a_relative_folder_names_its_closure_file_absolutely(
    corridor, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    scenario = incident_scenario(corridor, closure(), Path("incidents") / "one")
    closure_file = (tmp_path / "incidents" / "one" / CLOSURE_FILE).resolve()
    assert closure_file.is_file()
    assert closure_file in scenario.additional_files


def test_incident_scenario_refuses_a_closure_the_network_does_not_have(corridor, tmp_path):
    with pytest.raises(ClosureError):
        incident_scenario(corridor, closure("nowhere", ()), tmp_path / "incident")


# -- the window ------------------------------------------------------------------------------


def test_with_window_narrows_the_run_inside_the_scenario_s_window(corridor):
    narrowed = with_window(corridor, corridor.begin + 600, corridor.end - 600)
    assert (narrowed.begin, narrowed.end) == (corridor.begin + 600, corridor.end - 600)
    assert narrowed.sumocfg == corridor.sumocfg and narrowed.name == corridor.name
    assert with_window(corridor, corridor.begin, corridor.end) == corridor


@pytest.mark.parametrize(
    ("begin", "end"),
    [(-600, -60), (-60, 600), (600, 10**6), (600, 600), (900, 600)],
    ids=["before", "starts-early", "ends-late", "empty", "backwards"],
)
def test_with_window_refuses_a_window_outside_the_scenario_s(corridor, begin, end):
    """Offsets from the scenario's begin: a run outside its window would have no demand."""
    with pytest.raises(ClosureError, match=f"not inside corridor's {corridor.begin}–{corridor.end} s"):
        with_window(corridor, corridor.begin + begin, corridor.begin + end)


# -- which lane to close ---------------------------------------------------------------------


def test_lanes_entered_reads_each_lane_s_entered_count(tmp_path):
    lanes = tmp_path / "run.lanes.xml"
    lanes.write_text(
        """<?xml version="1.0" encoding="UTF-8"?>
<meandata>
    <interval begin="0.00" end="3600.00" id="citybrain">
        <edge id="a">
            <lane id="a_0" sampledSeconds="300" entered="10"/>
            <lane id="a_1" sampledSeconds="60" entered="2.5"/>
        </edge>
        <edge id="b">
            <lane id="b_0" sampledSeconds="0"/>
        </edge>
    </interval>
</meandata>
""",
        encoding="utf-8",
    )
    assert lanes_entered(lanes) == {"a_0": 10.0, "a_1": 2.5, "b_0": 0.0}


def test_a_lane_whose_turns_no_other_lane_serves_is_not_closable(net):
    candidates = closable_lanes(net)
    assert "J3w_J3_1" in candidates and "J3w_J3_0" not in candidates


def test_a_network_where_every_lane_is_the_only_one_for_a_turn_has_no_closable_lane():
    arterial = read_sumolib(resco("arterial4x4").net_file)
    assert closable_lanes(arterial) == []


# -- lanes of a report -----------------------------------------------------------------------


def test_sumo_lane_ids_keeps_the_edge_s_lanes_in_its_order(net):
    assert sumo_lane_ids(net, EDGE, ["J3w_J3_2", "J3w_J3_1"]) == ("J3w_J3_1", "J3w_J3_2")
    assert sumo_lane_ids(net, EDGE, ["J3w_J3_1", "J2w_J2_1"]) == ("J3w_J3_1",)  # another edge's: dropped


def test_sumo_lane_ids_of_all_lanes_or_none_is_a_whole_edge_closure(net):
    every = [f"{EDGE}_{i}" for i in range(4)]
    assert sumo_lane_ids(net, EDGE, every) == ()
    assert sumo_lane_ids(net, EDGE, []) == ()
    assert sumo_lane_ids(net, EDGE, ["J2w_J2_1"]) == ()  # none of this edge's
