"""Optimisation methods by name: a plugin's method registered and searched through a scripted
executor, and an unknown name refused with the known ones listed — no SUMO."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.search import optimize as optimizing
from optimizer.search.optimize import TRAIN_SEEDS, Coordinated, UnknownMethod, optimize, registry
from sim.executor import Executor
from sim.plugins import load_plugins
from sim.scenarios import Scenario

SCENARIO = Scenario(
    "test/nowhere", Path("/nonexistent/x.sumocfg"), Path("/nonexistent/x.net.xml"), 0, 60, "file"
)

FIRST_START_PLUGIN = """
from optimizer.search.optimize import Method, register
from optimizer.search.cmaes import SearchResult


@register
class FixedOnly(Method):
    name = "test-fixed-only"

    def search(self, job):
        (value,) = job.score([("fixed", {})])
        return SearchResult({}, value, value, 1, 0, 0.0), {"family": "fixed"}
"""


class _SeedAsDelay(Executor):
    """Answers without simulating: each trial's delay is its seed."""

    workers = 2

    def __init__(self) -> None:
        self.trials = []

    def map(self, trials, on_done=None):
        self.trials += trials
        return [{"resco_delay": float(trial.seed)} for trial in trials]

    def close(self) -> None:
        pass


@pytest.fixture
def own_registry():
    """The method registry as it is, restored after the test."""
    saved = dict(optimizing.METHODS)
    yield
    optimizing.METHODS.clear()
    optimizing.METHODS.update(saved)


def test_ours_are_registered_in_their_order():
    assert list(registry())[:2] == ["coordinated", "adaptive"]
    assert isinstance(registry()["coordinated"], Coordinated)


def test_a_plugin_method_is_registered_and_chosen_by_name(tmp_path, own_registry):
    plugin = tmp_path / "fixed_only_method.py"
    plugin.write_text(FIRST_START_PLUGIN)
    load_plugins([str(plugin)])
    executor = _SeedAsDelay()
    found = optimize(SCENARIO, "test-fixed-only", executor, budget_s=1, demand_dir=tmp_path)
    assert found.method == "test-fixed-only" and found.family == "fixed"
    assert found.best_delay == pytest.approx(sum(TRAIN_SEEDS) / len(TRAIN_SEEDS))
    assert [(t.controller, t.seed) for t in executor.trials] == [("fixed", seed) for seed in TRAIN_SEEDS]


def test_an_unknown_method_is_refused_naming_the_known_ones(tmp_path):
    executor = _SeedAsDelay()
    with pytest.raises(UnknownMethod, match="no optimisation method 'genetic'; known: coordinated, adaptive"):
        optimize(SCENARIO, "genetic", executor, budget_s=1, demand_dir=tmp_path)
    assert executor.trials == []
