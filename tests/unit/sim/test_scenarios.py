"""Scenario names: what a stored plan's scenario tells the console about its road network."""

from __future__ import annotations

import pytest

from core.errors import CitybrainError
from sim.scenarios import network_of


def test_a_scenario_sampled_from_the_lake_runs_on_its_networks_roads(tmp_path):
    for network in ("resco/cologne1", "resco/ingolstadt21"):
        found = network_of(f"lake/{network}/20261128T0730Z-20261128T0745Z", tmp_path)
        assert found.name == network
    assert network_of("resco/cologne1", tmp_path).name == "resco/cologne1"


def test_an_unknown_network_behind_a_lake_name_is_named_in_the_error(tmp_path):
    with pytest.raises(CitybrainError, match="atlantis"):
        network_of("lake/atlantis/20261128T0730Z-20261128T0745Z", tmp_path)
