"""Region by region: signals partitioned by the roads between them, each region cut out with
netconvert and searched on routes sampled from the lake's counts on its edges, the plans merged.

The corridor's seven signals lie 322–540 m apart along one arterial; RESCO's grid4x4 is a
regular grid of sixteen, built by an older SUMO (1.9) than the netconvert that cuts it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from optimizer.demand.lake_counts import LakeDemandError, lake_demand, lake_scenario
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.safety import enforce, read_network
from optimizer.plans.sumo_programs import render_tls
from optimizer.proposing.pipeline import optimize_by_region
from optimizer.search.regions import COUPLING_M, RegionError, _links, _signal_nodes, cut, partition
from sim.executor import open_executor
from sim.network import load
from sim.networks import build_network
from sim.runner import RunRequest, run
from sim.scenarios import from_sumocfg, resco

pytestmark = pytest.mark.integration

CORRIDOR = tuple(f"J{i}" for i in range(1, 8))


@pytest.fixture(scope="module")
def corridor_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return from_sumocfg(build_network("corridor", tmp_path_factory.mktemp("corridor"))).net_file


def test_adjacent_signals_are_linked_by_the_road_between_them_and_never_across_a_third(corridor_net):
    net = load(corridor_net)
    links = {(link.a, link.b): link for link in _links(net, _signal_nodes(net))}
    # along the arterial only: J1 reaches J3 only through J2, so they are not adjacent
    assert set(links) == {(f"J{i}", f"J{i + 1}") for i in range(1, 7)}
    assert all(300 < link.length < 600 for link in links.values())
    assert links["J1", "J2"].edges == ("J1_J2w", "J2w_J2")


def test_closest_signals_are_joined_first_within_the_size_limit(corridor_net):
    regions = partition(corridor_net, 4)
    # J3–J4 (540 m) is the longest link: cutting there leaves two regions within four signals
    assert [region.signals for region in regions] == [CORRIDOR[:3], CORRIDOR[3:]]
    assert [region.name for region in regions] == ["region-1", "region-2"]
    assert [r.signals for r in partition(corridor_net, 7)] == [CORRIDOR]
    assert [r.signals for r in partition(corridor_net, 1)] == [(s,) for s in CORRIDOR]
    with pytest.raises(RegionError, match="at least one signal, got max_signals=0"):
        partition(corridor_net, 0)


def test_signals_farther_apart_than_the_coupling_distance_are_never_joined(corridor_net, monkeypatch):
    assert COUPLING_M > 600  # by default the whole corridor is within reach
    monkeypatch.setattr("optimizer.search.regions.COUPLING_M", 345.0)  # only J5–J6 (322 m) is closer
    regions = partition(corridor_net, 7)
    assert [r.signals for r in regions] == [("J1",), ("J2",), ("J3",), ("J4",), ("J5", "J6"), ("J7",)]


def test_a_grid_splits_into_connected_regions_and_every_cut_keeps_its_signals_as_they_run(tmp_path):
    net_file = resco("grid4x4").net_file
    regions = partition(net_file, 4)
    assert sorted(s for r in regions for s in r.signals) == sorted(read_network(net_file))
    assert all(len(r.signals) <= 4 for r in regions) and len(regions) == 4
    city = read_network(net_file)
    for region in regions:
        own = read_network(cut(net_file, region, tmp_path))
        for tls_id in region.signals:
            assert own[tls_id].link_labels == city[tls_id].link_labels
            assert [p.state for p in own[tls_id].program.phases] == [
                p.state for p in city[tls_id].program.phases
            ]
        # a neighbour reached by a kept edge is left unsignalled: its own region times it
        assert not set(own) - set(region.signals)


def test_a_cut_that_would_change_a_signal_is_refused_by_name(corridor_net, tmp_path):
    region = partition(corridor_net, 4)[0]
    lacking = replace(region, edges=tuple(e for e in region.edges if e != "N1_J1"))  # J1's north approach
    with pytest.raises(RegionError, match=r"region-1: signal J1 in the cut network .* other links"):
        cut(corridor_net, lacking, tmp_path)


def test_regions_searched_on_their_own_lake_demand_merge_into_one_safe_plan_for_the_city(fused, tmp_path):
    """The corridor in two regions, each on routes sampled from the twin lake's counts on its
    edges, searched at once through one executor; the merged plan runs on the whole corridor."""
    settings = fused.reading(tmp_path / "var").model_copy(update={"optimizer_region_signals": 4})
    city = lake_scenario(settings, fused.start, fused.end, tmp_path / "demand")
    regions = partition(city.net_file, settings.optimizer_region_signals)
    assert len(regions) == 2
    with open_executor(settings, 2) as executor:
        merged, searched = optimize_by_region(
            settings, city, (fused.start, fused.end), regions, executor, budget_s=20
        )
    assert [region.name for region, _ in searched] == ["region-1", "region-2"]
    for region, search in searched:
        assert search.scenario == f"lake/corridor/{region.name}/20261128T0630Z-20261128T0715Z"
        assert search.evaluations > 0
    assert tuple(signal.tls_id for signal in merged.plan.signals) == CORRIDOR
    assert merged.evaluations == sum(search.evaluations for _, search in searched)
    network = read_network(city.net_file)
    enforce(merged.plan, network, inherited_waivers(network))  # safe in the city, not only in its regions
    kpis = run(
        RunRequest(
            city, "signal-plan", 1, tmp_path / "run", controller_options={"tls_xml": render_tls(merged.plan)}
        )
    )
    assert kpis["throughput"] > 0.8 * kpis["vehicles"] and kpis["teleports"] == 0


def test_a_region_without_counts_on_its_edges_names_itself(fused, tmp_path):
    settings = fused.reading(tmp_path / "var")
    net_file = tmp_path / "lonely.net.xml"
    net_file.write_text(
        '<net version="1.20"><edge id="nowhere" from="a" to="b">'
        '<lane id="nowhere_0" index="0" speed="13.89" length="100" shape="0,0 100,0"/></edge></net>'
    )
    with pytest.raises(LakeDemandError, match=r"region-9: the lake has no counts on the edges of"):
        lake_demand(settings, fused.start, fused.end, tmp_path / "demand", region=("region-9", net_file))
