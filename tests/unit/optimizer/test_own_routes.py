"""Movement flows from a scenario's own routes: counted from one plain SUMO run, cached."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import sumolib

from optimizer.demand import own_routes as demand
from optimizer.demand.own_routes import cache_path, count_movements, movement_flows
from sim.scenarios import resco

VEHROUTES = """<routes>
    <route id="shared" edges="a b c"/>
    <vehicle id="before" depart="99.00"><route edges="a b"/></vehicle>
    <vehicle id="plain" depart="100.00"><route edges="a b c"/></vehicle>
    <vehicle id="named" depart="150.00" route="shared"/>
    <vehicle id="rerouted" depart="160.00">
        <routeDistribution>
            <route replacedOnEdge="a" replacedAtTime="170" probability="0" edges="a x"/>
            <route edges="a b d"/>
        </routeDistribution>
    </vehicle>
    <vehicle id="after" depart="200.00"><route edges="a b"/></vehicle>
</routes>
"""


def test_count_movements_reads_every_kind_of_route_within_the_window(tmp_path):
    path = tmp_path / "vehroutes.xml"
    path.write_text(VEHROUTES)
    counts = count_movements(path, 100, 200)
    # plain, named and rerouted (its last route) depart in [100, 200); before and after do not
    assert counts == {("a", "b"): 3, ("b", "c"): 2, ("b", "d"): 1}


@pytest.fixture(scope="module")
def cologne1_10min():
    scenario = resco("cologne1")
    return dataclasses.replace(scenario, end=scenario.begin + 600)


def test_cologne1_flows_are_positive_on_real_edge_pairs_and_cached(cologne1_10min, tmp_path, monkeypatch):
    flows = movement_flows(cologne1_10min, tmp_path)
    assert flows and all(v > 0 for v in flows.values())
    net = sumolib.net.readNet(str(cologne1_10min.net_file))
    for from_edge, to_edge in flows:
        successors = {e.getID() for e in net.getEdge(from_edge).getOutgoing()}
        assert to_edge in successors, (from_edge, to_edge)
    # counts over 10 minutes, scaled to an hour: every flow is a multiple of 6 veh/h
    assert all(abs(v / 6 - round(v / 6)) < 1e-9 for v in flows.values())
    assert cache_path(cologne1_10min, tmp_path).is_file()

    def no_second_run(*_args, **_kwargs):
        raise AssertionError("the cached flows should have been used")

    monkeypatch.setattr(demand, "_run_demand", no_second_run)
    started = time.perf_counter()
    assert movement_flows(cologne1_10min, tmp_path) == flows
    assert time.perf_counter() - started < 0.5


def test_another_window_is_another_cache_entry(cologne1_10min, tmp_path):
    longer = dataclasses.replace(cologne1_10min, end=cologne1_10min.begin + 1200)
    assert cache_path(longer, tmp_path) != cache_path(cologne1_10min, tmp_path)
    assert cache_path(cologne1_10min, tmp_path).name.startswith("flows-resco_cologne1-25200-25800-")


def test_a_failing_demand_run_names_the_scenario(cologne1_10min, tmp_path):
    broken = dataclasses.replace(cologne1_10min, additional_files=(Path(tmp_path / "missing.add.xml"),))
    with pytest.raises(demand.DemandError, match="resco/cologne1"):
        movement_flows(broken, tmp_path)
