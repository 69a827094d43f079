"""`citybrain optimize` as a user runs it, and the tuned controllers by name: short budgets,
real SUMO runs, judged on seeds the search never saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.settings import Settings
from optimizer.methods.webster import inherited_waivers
from optimizer.plans.model import NetworkPlan
from optimizer.plans.safety import check, read_network
from optimizer.plans.sumo_programs import read_tls, render_tls
from optimizer.search.optimize import HOLDOUT_SEEDS, TRAIN_SEEDS, load, optimize
from sim.evaluate import evaluate, shorten
from sim.executor import Executor
from sim.scenarios import resco

pytestmark = pytest.mark.integration


def _env(var_dir) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_")}
    return env | {"CITYBRAIN_VAR_DIR": str(var_dir), "CITYBRAIN_OPTIMIZER_WORKERS": "2"}


def test_optimize_writes_a_safe_coordinated_plan_that_beats_fixed_on_unseen_seeds(tmp_path):
    out = tmp_path / "plans"
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "optimize", "--scenario", "resco/ingolstadt1",
         "--method", "coordinated", "--budget-minutes", "0.1", "--seeds", "3", "--minutes", "10",
         "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=600, env=_env(tmp_path / "var"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["scenario"] == "resco/ingolstadt1" and report["method"] == "coordinated"
    evaluation = report["evaluation"]
    assert evaluation["seeds"] == [1, 2, 3] and not set(evaluation["seeds"]) & set(TRAIN_SEEDS)
    fixed = evaluation["controllers"]["fixed"]["kpis"]["resco_delay"]["mean"]
    difference = evaluation["controllers"]["coordinated"]["difference"]["resco_delay"]
    assert difference["mean"] < -0.1 * fixed and difference["significant"], difference
    assert (
        report["search"]["evaluations"] > 2
        and report["search"]["best_delay"] <= report["search"]["start_delay"]
    )
    # the files: the JSON as printed, and a SUMO additional that round-trips and is safe
    assert (
        json.loads((out / "resco_ingolstadt1-coordinated.json").read_text())["signals"] == report["signals"]
    )
    signals = read_tls(out / "resco_ingolstadt1-coordinated.tls.add.xml")
    assert [s.tls_id for s in signals] == [s["tls_id"] for s in report["signals"]]
    network = read_network(resco("ingolstadt1").net_file)
    assert check(signals, network, inherited_waivers(network)) == []


def test_the_adaptive_controller_searches_once_then_runs_the_policy_tuned_for_its_scenario(
    tmp_path, monkeypatch
):
    """Nothing stored: ``adaptive`` searches with the settings' budget, stores it, and runs it."""
    settings = Settings(var_dir=tmp_path / "var", optimizer_budget_minutes=0.1)
    monkeypatch.setenv("CITYBRAIN_VAR_DIR", str(settings.var_dir))  # what the controller's prepare reads
    monkeypatch.setenv("CITYBRAIN_OPTIMIZER_BUDGET_MINUTES", "0.1")
    scenario = shorten(resco("cologne1"), 10)
    report = evaluate(scenario, ["fixed", "adaptive"], [1, 2, 3], tmp_path / "runs", workers=2)
    stored = load(settings, scenario, "adaptive")
    assert stored is not None and stored.policy is not None and stored.evaluations >= 3
    difference = report["controllers"]["adaptive"]["difference"]["resco_delay"]
    assert difference["mean"] < 0 and difference["significant"], difference


def test_optimize_refuses_bad_arguments_saying_what_it_expected(tmp_path):
    for arguments, message in [
        (["--method", "genetic"], "--method 'genetic': expected one of coordinated, adaptive"),
        (["--budget-minutes", "0"], "--budget-minutes 0: expected a positive number of minutes"),
        (["--seeds", "1"], "--seeds 1: expected at least 2"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "citybrain.cli", "optimize", "--scenario", "resco/cologne1", *arguments],
            capture_output=True, text=True, timeout=60, env=_env(tmp_path),
        )  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr


class _ScriptedDelays(Executor):
    """An executor that answers without simulating: the current programs 50 s on every seed; any
    other plan 40 s on the training seeds and ``holdout_delay`` on the held-out ones."""

    workers = 2

    def __init__(self, current_xml: str, holdout_delay: float) -> None:
        self.current_xml, self.holdout_delay = current_xml, holdout_delay

    def map(self, trials, on_done=None):
        def delay(trial):
            if trial.options["tls_xml"] == self.current_xml:
                return 50.0
            return self.holdout_delay if trial.seed in HOLDOUT_SEEDS else 40.0

        return [{"resco_delay": delay(trial)} for trial in trials]

    def close(self):
        pass


@pytest.mark.parametrize(("holdout_delay", "keeps_current"), [(60.0, True), (45.0, False)])
def test_a_plan_better_in_training_replaces_the_current_programs_only_if_held_out_seeds_agree(
    tmp_path, holdout_delay, keeps_current
):
    scenario = shorten(resco("ingolstadt1"), 10)
    network = read_network(scenario.net_file)
    current = NetworkPlan(signals=tuple(signal.program for signal in network.values()), method="fixed")
    executor = _ScriptedDelays(render_tls(current), holdout_delay)
    found = optimize(scenario, "coordinated", executor, budget_s=0.5, demand_dir=tmp_path)
    assert found.holdout == {"plan": holdout_delay, "current": 50.0}
    assert (found.plan == current) is keeps_current
    assert found.best_delay == (50.0 if keeps_current else 40.0)
