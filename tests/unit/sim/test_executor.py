"""The executor's choice by settings, trials as values, and failures that name their trial.

Nothing here starts a worker or SUMO: process pools are created on first use, and an unknown
controller fails before SUMO starts.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import MappingProxyType

import pytest

from core.errors import CitybrainError
from core.settings import Settings
from sim import executor
from sim.executor import ExecutorError, LocalExecutor, Trial, open_executor, simulate
from sim.scenarios import Scenario, ScenarioError

NOWHERE = Path("/nonexistent")
SCENARIO = Scenario("test/nowhere", NOWHERE / "x.sumocfg", NOWHERE / "x.net.xml", 0, 60, "file")


class FakeSpark(executor.Executor):
    """Stands in for the Spark executor so that choosing it starts no Spark session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = 8

    def map(self, trials, on_done=None):
        raise AssertionError("not called")

    def close(self) -> None:
        pass


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "SparkExecutor", FakeSpark)


@pytest.mark.parametrize(
    ("kind", "master", "expected"),
    [
        ("local", "spark://cluster:7077", LocalExecutor),
        ("spark", "local[*]", FakeSpark),
        ("auto", "local[*]", LocalExecutor),
        ("auto", "local[4]", LocalExecutor),
        ("auto", "spark://cluster:7077", FakeSpark),
        ("auto", "k8s://https://api:6443", FakeSpark),
    ],
)
def test_the_settings_choose_the_executor(no_spark, kind, master, expected):
    settings = Settings(optimizer_executor=kind, spark_master=master)
    with open_executor(settings) as chosen:
        assert type(chosen) is expected
        if expected is FakeSpark:
            assert chosen.settings is settings


def test_local_workers_come_from_the_argument_then_the_settings_then_the_cores():
    settings = Settings(optimizer_executor="local", optimizer_workers=3)
    assert open_executor(settings, workers=5).workers == 5
    assert open_executor(settings).workers == 3
    assert open_executor(Settings(optimizer_executor="local")).workers == (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutor(0)


def test_an_empty_batch_needs_no_worker():
    with LocalExecutor(2) as local:
        assert local.map([]) == []
        assert local._pool is None


def test_a_trial_is_a_picklable_value_whatever_mapping_its_options_came_in():
    options = {"min_green": 7}
    trial = Trial(SCENARIO, "max-pressure", 3, MappingProxyType(options))
    options["min_green"] = 99  # the caller's later change does not reach the trial
    assert pickle.loads(pickle.dumps(trial)) == trial
    assert trial.options == {"min_green": 7}


def test_a_label_names_scenario_controller_seed_and_options():
    assert Trial(SCENARIO, "fixed", 4).label == "test/nowhere with fixed on seed 4"
    assert Trial(SCENARIO, "max-pressure", 1, {"min_green": 7}).label == (
        'test/nowhere with max-pressure on seed 1 (options {"min_green": 7})'
    )
    long = Trial(SCENARIO, "plan", 1, {"phases": list(range(500))}).label
    assert len(long) < 250 and long.endswith("…)")


def test_a_failing_trial_raises_an_executor_error_naming_it():
    trial = Trial(SCENARIO, "no-such-controller", 7)
    with pytest.raises(ExecutorError) as caught:
        simulate(trial)
    message = str(caught.value)
    assert message.startswith(
        "trial test/nowhere with no-such-controller on seed 7 failed: UnknownController"
    )
    assert "known: " in message and "fixed" in message
    assert isinstance(caught.value, CitybrainError) and isinstance(caught.value, RuntimeError)


def test_a_bug_keeps_its_traceback_across_the_process_boundary():
    def buggy() -> None:
        raise ZeroDivisionError("division by zero")

    trial = Trial(SCENARIO, "fixed", 1)
    try:
        buggy()
    except ZeroDivisionError as exc:
        message = executor._message_for_parent(trial, exc)
    assert message.startswith("trial test/nowhere with fixed on seed 1 failed: ZeroDivisionError")
    assert "in buggy" in message  # the traceback, which a user's error would not carry
    assert "Traceback" not in executor._message_for_parent(trial, ScenarioError("no such file"))
