"""Emergency-vehicle priority in real SUMO runs of RESCO's cologne8, through the benchmark: each
dispatch runs with and without priority on one seed (and shifted by a second, the noise
control), every signal's every step is checked against the safety rules, and priority gets the
vehicle there sooner with fewer stops."""

from __future__ import annotations

import pytest

from core.settings import Settings
from optimizer.priority.benchmark import MODES, run_priority_benchmark
from schemas import contract
from sim.executor import Trial, simulate
from sim.scenarios import resolve

pytestmark = pytest.mark.integration

SCENARIO = "resco/cologne8"
DISPATCHES = 2


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    scenario = resolve(SCENARIO, tmp_path_factory.mktemp("build"))
    result = run_priority_benchmark(Settings(), [scenario], dispatches=DISPATCHES, seed=17, workers=2)
    return result["scenarios"][SCENARIO]


def test_a_drawn_dispatch_runs_without_options_and_logs_every_preemption_by_contract(tmp_path) -> None:
    """With no trip in its options the controller draws one from the seed; each preemption's
    requested, green and released records are valid ``control.preempt.v1`` records, in order."""
    scenario = resolve(SCENARIO, tmp_path / "build")
    run = simulate(Trial(scenario, "emergency-priority", 3))
    measured = run["controller"]
    assert measured["travel_time_s"] is not None and measured["violations"] == []
    log = measured["preemption_log"]
    assert log, "the drawn route crosses signals, so some were preempted"
    preempt = contract("control.preempt.v1")
    for record in log:
        preempt.validate(record)
    by_preemption: dict[str, list[str]] = {}
    for record in log:
        by_preemption.setdefault(record["preempt_id"], []).append(record["status"])
    for statuses in by_preemption.values():
        assert statuses in (["requested", "green", "released"], ["refused"]), statuses


def test_every_step_of_every_signal_is_checked_and_nothing_unsafe_shown(figures: dict) -> None:
    window_s, signals, runs = 3600, 8, len(MODES) * DISPATCHES
    assert figures["checked_steps"] == window_s * signals * runs
    assert figures["violations"] == dict.fromkeys(MODES, 0), figures["violation_examples"]


def test_priority_preempts_the_signals_on_the_route_and_saves_time(figures: dict) -> None:
    assert figures["arrived_both"] == DISPATCHES
    assert figures["preemptions"] >= figures["signals"]["priority"]["crossed"] // 2 > 0
    stopped = {mode: s["crossed"] - s["without_stopping"] for mode, s in figures["signals"].items()}
    assert stopped["priority"] <= stopped["baseline"]
    times = figures["travel_time_s"]
    assert times["priority"]["mean"] < times["baseline"]["mean"]
    for run in figures["runs"]:
        assert run["priority_s"] <= run["baseline_s"], run
