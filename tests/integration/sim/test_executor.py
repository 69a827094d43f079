"""The executors running real SUMO trials: a local pool of two workers and Spark tasks.

Trials are five-minute cuts of resco/cologne1 (a fifth of a second each), so the time goes to
starting the workers, once for the module, and again after the test that kills one.
"""

from __future__ import annotations

import multiprocessing
import textwrap
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from core.settings import Settings
from sim.evaluate import shorten
from sim.executor import ExecutorError, LocalExecutor, SparkExecutor, Trial, simulate
from sim.scenarios import Scenario, resco

pytestmark = pytest.mark.integration

#: Controllers that fail the way SUMO or the machine can: the simulation's process dies
#: (a segfault, the OOM killer), or the worker it was forked from does.
CRASHING_CONTROLLERS = """
    import os
    import signal

    from sim.controllers import Controller, register


    @register
    class DiesMidRun(Controller):
        name = "test-dies"
        acts_each_step = False

        def start(self, sim):
            os.kill(os.getpid(), signal.SIGKILL)


    @register
    class KillsItsWorker(Controller):
        name = "test-kills-worker"
        acts_each_step = False

        def start(self, sim):
            os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture(scope="module")
def cologne1() -> Scenario:
    return shorten(resco("cologne1"), 5)


@pytest.fixture(scope="module")
def trials(cologne1: Scenario) -> list[Trial]:
    return [
        Trial(cologne1, "fixed", 1),
        Trial(cologne1, "max-pressure", 1, {"min_green_s": 10}),
        Trial(cologne1, "fixed", 2),
    ]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalExecutor]:
    """Two workers that also know the crashing controllers (a researcher's module, named in the
    settings as for any plugin)."""
    plugin = tmp_path_factory.mktemp("plugins") / "crashing_controllers.py"
    plugin.write_text(textwrap.dedent(CRASHING_CONTROLLERS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYBRAIN_CONTROLLER_MODULES", str(plugin))
        with LocalExecutor(workers=2) as executor:
            yield executor


@pytest.fixture(scope="module")
def reference(trials: list[Trial]) -> list[dict[str, float]]:
    """``simulate`` for each trial in a fresh interpreter of its own: the ground truth, since a
    second libsumo run in one process need not reproduce the first."""
    with ProcessPoolExecutor(
        2, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1
    ) as pool:
        return list(pool.map(simulate, trials))


def test_the_local_pool_returns_each_trials_kpis_in_order(local, trials, reference):
    finished: list[int] = []
    results = local.map(trials, on_done=finished.append)
    assert results == reference
    assert sorted(finished) == [0, 1, 2]
    assert "intersections" not in results[0] and results[0]["throughput"] > 0
    assert results[0] != results[2] and results[0] != results[1]  # seeds and controllers differ


def test_a_trial_repeated_on_reused_workers_reproduces_exactly(local, cologne1):
    # In one libsumo process about a third of such repeats differ; each forked run is fresh.
    trial = Trial(shorten(cologne1, 10), "fixed", 1)
    first, *repeats = local.map([trial] * 6)
    assert all(repeat == first for repeat in repeats)


def test_spark_tasks_give_the_same_kpis_as_the_local_pool(spark, tmp_path, trials, reference):
    executor = SparkExecutor(Settings(var_dir=tmp_path))
    assert executor.workers >= 1
    finished: list[int] = []
    assert executor.map(trials, on_done=finished.append) == reference
    assert sorted(finished) == [0, 1, 2]
    with pytest.raises(ExecutorError, match="trial resco/cologne1 with no-such-controller on seed 3 failed"):
        executor.map([Trial(trials[0].scenario, "no-such-controller", 3)])


def test_failures_name_their_trial_and_the_pool_keeps_working(local, trials, reference, tmp_path):
    cologne1 = trials[0].scenario
    with pytest.raises(ExecutorError, match=r"with no-such-controller on seed 5 failed: UnknownController"):
        local.map([trials[0], Trial(cologne1, "no-such-controller", 5)])

    missing = Scenario("test/missing", tmp_path / "missing.sumocfg", cologne1.net_file, 0, 60, "file")
    with pytest.raises(
        ExecutorError, match=r"trial test/missing with fixed on seed 1 failed: SimulationFailed"
    ):
        local.map([Trial(missing, "fixed", 1)])

    with pytest.raises(
        ExecutorError, match=r"with test-dies on seed 1 failed: its SUMO process died \(killed by SIGKILL\)"
    ):
        local.map([trials[0], Trial(cologne1, "test-dies", 1)])

    assert local.map(trials) == reference


def test_a_dead_worker_is_named_and_replaced(local, trials, reference):
    local.map(trials[:1])  # the pool is up, with its folder for the trials' outputs
    scratch = Path(local._scratch)
    with pytest.raises(
        ExecutorError, match=r"a worker process died .* among them resco/cologne1 with test-kills-worker"
    ):
        local.map([Trial(trials[0].scenario, "test-kills-worker", 1)])
    assert not scratch.exists()  # the outputs the killed worker left are removed with its pool
    assert local.map(trials) == reference
