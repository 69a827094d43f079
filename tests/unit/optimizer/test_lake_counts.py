"""Lake demand without SUMO: the period's checks, gold rows as counts, SUMO's data files, the fit."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lake.tables import TABLES
from optimizer.demand.lake_counts import (
    CountFit,
    CountInterval,
    LakeDemandError,
    check_period,
    edge_count_xml,
    geh,
    gold_counts,
    pinned_versions,
    read_fit,
    read_gold_counts,
    sim_seconds,
    sumocfg_xml,
    turn_count_xml,
)
from sim.scenarios import Scenario, from_sumocfg
from sim.twin import sim_time_to_utc
from tests.lake_rows import write_rows

T0 = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
Q = timedelta(minutes=15)


def turn(from_edge: str, to_edge: str, vph: float, start: datetime = T0) -> dict:
    return {"from_edge": from_edge, "to_edge": to_edge, "window_start": start, "volume_vph": vph}


def link(edge: str, vph: float | None, start: datetime = T0) -> dict:
    return {"edge_id": edge, "window_start": start, "flow_vph": vph}


# --- the period ---------------------------------------------------------------------------------


def test_a_period_on_quarter_hours_is_returned_in_utc():
    plus_one = datetime(2026, 11, 28, 7, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    start, end = check_period(plus_one, plus_one + Q)
    assert start == datetime(2026, 11, 28, 7, 30, tzinfo=UTC) and start.utcoffset() == timedelta(0)
    assert end - start == Q


@pytest.mark.parametrize(
    ("start", "end", "complaint"),
    [
        (T0.replace(tzinfo=None), T0 + Q, "start 2026-11-28T06:30:00 has no time zone"),
        (T0, (T0 + Q).replace(tzinfo=None), "end 2026-11-28T06:45:00 has no time zone"),
        (T0 + timedelta(minutes=5), T0 + Q, "is not on a quarter hour"),
        (T0, T0 + timedelta(minutes=20), "is not on a quarter hour"),
        (T0, T0, "must be after start"),
        (T0 + Q, T0, "must be after start"),
    ],
)
def test_a_naive_misaligned_or_empty_period_is_refused(start, end, complaint):
    with pytest.raises(LakeDemandError, match=complaint):
        check_period(start, end)


def test_simulation_time_is_seconds_since_midnight_utc_as_the_twin_maps_it():
    assert sim_seconds(T0, T0.date()) == 23400
    assert sim_time_to_utc(T0.date(), sim_seconds(T0 + Q, T0.date())) == T0 + Q
    # a period past midnight keeps counting from the start's day
    assert sim_seconds(datetime(2026, 11, 29, 0, 15, tzinfo=UTC), T0.date()) == 86400 + 900


# --- gold rows as counts ------------------------------------------------------------------------


def test_gold_rows_become_whole_vehicles_per_quarter_hour():
    turns = [
        turn("a", "b", 402.0),  # 100.5 vehicles: rounded, not truncated as routeSampler would
        turn("a", "c", 19.0),  # 4.75
        turn("a", "b", 402.0, T0 + Q),
        turn("a", "b", 999.0, T0 - Q),  # before the period
        turn("a", "b", 999.0, T0 + 2 * Q),  # at its end
    ]
    links = [
        link("a", 421.0),  # its turns are counted: no edge count
        link("x", 130.0),  # 32.5 → 32 (ties to even)
        link("y", None),  # no usable detector: no count, not a zero
        link("z", math.nan),
        link("x", 0.0, T0 + Q),  # a zero count is a count
    ]
    intervals = gold_counts(turns, links, T0, T0 + 2 * Q)
    assert intervals == [
        CountInterval(23400, 24300, turns={("a", "b"): 100, ("a", "c"): 5}, edges={"x": 32}),
        CountInterval(24300, 25200, turns={("a", "b"): 100}, edges={"x": 0}),
    ]


def test_movements_listed_twice_in_a_window_are_added_up():
    intervals = gold_counts([turn("a", "b", 40.0), turn("a", "b", 40.0)], [], T0, T0 + Q)
    assert intervals[0].turns == {("a", "b"): 20}


def test_a_quarter_hour_without_gold_is_an_empty_interval():
    intervals = gold_counts([turn("a", "b", 40.0, T0 + Q)], [], T0, T0 + 2 * Q)
    assert intervals[0] == CountInterval(23400, 24300) and intervals[1].turns == {("a", "b"): 10}


# --- SUMO's data files --------------------------------------------------------------------------

INTERVALS = [
    CountInterval(23400, 24300, turns={("a", "b"): 100, ("a&", "c"): 5}, edges={"x": 32}),
    CountInterval(24300, 25200, turns={("a", "b"): 90}),
]


def test_turn_counts_are_an_edge_relation_data_file_with_one_interval_per_quarter_hour():
    assert turn_count_xml(INTERVALS) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- turn counts from gold.turning_movements_15min, vehicles per interval -->\n"
        "<data>\n"
        '    <interval id="23400" begin="23400" end="24300">\n'
        '        <edgeRelation from="a" to="b" count="100"/>\n'
        '        <edgeRelation from="a&amp;" to="c" count="5"/>\n'
        "    </interval>\n"
        '    <interval id="24300" begin="24300" end="25200">\n'
        '        <edgeRelation from="a" to="b" count="90"/>\n'
        "    </interval>\n"
        "</data>\n"
    )


def test_edge_counts_are_an_edge_data_file_of_entered_vehicles_leaving_out_empty_intervals():
    assert edge_count_xml(INTERVALS) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- edge counts from gold.link_state_15min flows, vehicles per interval -->\n"
        "<data>\n"
        '    <interval id="23400" begin="23400" end="24300">\n'
        '        <edge id="x" entered="32"/>\n'
        "    </interval>\n"
        "</data>\n"
    )


def test_no_counts_of_a_kind_is_no_file():
    assert edge_count_xml([CountInterval(0, 900, turns={("a", "b"): 1})]) is None
    assert turn_count_xml([CountInterval(0, 900, edges={"x": 1})]) is None


def test_sumolib_reads_the_data_files_as_route_sampler_does(tmp_path):
    import sumolib

    path = tmp_path / "turns.dat.xml"
    path.write_text(turn_count_xml(INTERVALS))
    read = [
        (i.begin, [(r.attr_from, r.to, r.count) for r in i.edgeRelation])
        for i in sumolib.xml.parse(str(path), "interval", heterogeneous=True)
    ]
    assert read == [("23400", [("a", "b", "100"), ("a&", "c", "5")]), ("24300", [("a", "b", "90")])]


# --- reading the lake ---------------------------------------------------------------------------


def test_the_period_is_read_from_its_gold_partitions(tmp_path):
    write_rows(tmp_path, "gold.turning_movements_15min", [turn("a", "b", 40.0), turn("a", "b", 80.0, T0 + Q)])
    write_rows(tmp_path, "gold.link_state_15min", [link("x", 8.0, T0 + Q)])
    torn = TABLES["gold.link_state_15min"].path(tmp_path) / "date=2026-11-28" / "slot=0645" / "part-9.parquet"
    torn.write_bytes(b"half a file")  # a killed job's file that no commit names: not part of the table
    assert read_gold_counts(tmp_path, T0 + Q, T0 + 2 * Q) == [
        CountInterval(24300, 25200, turns={("a", "b"): 20}, edges={"x": 2})
    ]


def test_the_counts_are_read_as_of_the_versions_given(tmp_path):
    write_rows(tmp_path, "gold.turning_movements_15min", [turn("a", "b", 40.0)])
    write_rows(tmp_path, "gold.link_state_15min", [link("x", 8.0)])
    first = pinned_versions(tmp_path)
    assert first == {"gold.link_state_15min": 0, "gold.turning_movements_15min": 0}
    write_rows(tmp_path, "gold.turning_movements_15min", [turn("a", "b", 400.0)])  # a later fuse
    assert read_gold_counts(tmp_path, T0, T0 + Q, first)[0].turns == {("a", "b"): 10}
    assert read_gold_counts(tmp_path, T0, T0 + Q)[0].turns == {("a", "b"): 100}
    with pytest.raises(LakeDemandError, match="has no version 7"):
        read_gold_counts(tmp_path, T0, T0 + Q, {**first, "gold.turning_movements_15min": 7})


def test_quarter_hours_without_gold_are_named(tmp_path):
    write_rows(tmp_path, "gold.turning_movements_15min", [turn("a", "b", 40.0, T0 + Q)])
    with pytest.raises(LakeDemandError) as raised:
        read_gold_counts(tmp_path, T0, T0 + 3 * Q)
    message = str(raised.value)
    assert "2 of the 3 quarter hours" in message
    assert "2026-11-28 06:30Z, 2026-11-28 07:00Z" in message and "06:45Z" not in message
    assert "gold.turning_movements_15min" in message and "citybrain lake fuse" in message


def test_an_empty_lake_names_every_quarter_hour(tmp_path):
    with pytest.raises(LakeDemandError, match="2 of the 2 quarter hours"):
        read_gold_counts(tmp_path, T0, T0 + 2 * Q)


# --- the configuration and the fit --------------------------------------------------------------


def test_the_configuration_runs_the_network_with_the_sampled_routes_over_the_window(tmp_path):
    net, detectors = tmp_path / "net" / "city.net.xml", tmp_path / "net" / "detectors.add.xml"
    net.parent.mkdir()
    net.touch()
    detectors.touch()
    base = Scenario("corridor", tmp_path / "x.sumocfg", net, 0, 1, "own", (detectors,))
    sumocfg = tmp_path / "lake" / "lake.sumocfg"
    sumocfg.parent.mkdir()
    sumocfg.write_text(sumocfg_xml(base, 23400, 26100))
    scenario = from_sumocfg(sumocfg, "lake/corridor/x", "lake")
    assert (scenario.net_file, scenario.additional_files) == (net, (detectors,))
    assert (scenario.begin, scenario.end) == (23400, 26100)
    assert '<route-files value="routes.rou.xml"/>' in sumocfg.read_text()


MISMATCH = """<?xml version="1.0" encoding="UTF-8"?>
<data>
    <interval id="deficit" begin="23400.0" end="24300.0">
        <edgeRelation from="a" to="b" measuredCount="100" deficit="0" GEH="0.00"/>
        <edgeRelation from="a" to="c" measuredCount="100" deficit="25" GEH="5.35"/>
        <edge id="x" measuredCount="10" deficit="-2" GEH="1.21"/>
    </interval>
    <interval id="deficit" begin="24300.0" end="25200.0">
        <edgeRelation from="a" to="b" measuredCount="0" deficit="0" GEH="0.00"/>
    </interval>
</data>
"""


def test_the_fit_is_read_from_route_samplers_mismatch_output(tmp_path):
    path = tmp_path / "mismatch.xml"
    path.write_text(MISMATCH)
    fit = read_fit(path)
    assert fit == CountFit(locations=4, measured=210, deviation=27, geh_ok=3)
    assert fit.deviation_share == pytest.approx(27 / 210) and fit.geh_ok_share == 0.75
    assert str(fit) == "4 counting locations, 210 vehicles counted, deviation 27 (12.9%), GEH<5 at 75.0%"


def test_geh_is_taken_on_hourly_flows():
    assert geh(400, 300) == pytest.approx(math.sqrt(2 * 100**2 / 700))  # the 100 → 75 of a quarter hour
    assert geh(0, 0) == 0 and geh(50, 50) == 0


def test_odd_edge_ids_and_paths_read_back_unchanged(tmp_path):
    odd = 'a&b<c>"d'
    intervals = [CountInterval(0, 900, turns={(odd, "b"): 1}, edges={odd: 2})]
    (interval,) = ET.fromstring(turn_count_xml(intervals).encode("utf-8"))
    assert interval[0].get("from") == odd
    (interval,) = ET.fromstring(edge_count_xml(intervals).encode("utf-8"))
    assert interval[0].get("id") == odd
    net, additional = tmp_path / odd / "city.net.xml", tmp_path / odd / "d.add.xml"
    base = Scenario("corridor", tmp_path / "x.sumocfg", net, 0, 1, "own", (additional,))
    inputs = ET.fromstring(sumocfg_xml(base, 0, 900).encode("utf-8")).find("input")
    assert inputs.find("net-file").get("value") == str(net)
    assert inputs.find("additional-files").get("value") == str(additional)
