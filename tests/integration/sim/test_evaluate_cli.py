"""`citybrain evaluate` as a user runs it: three controllers, two seeds, JSON and a plot."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

CONTROLLERS = ["fixed", "max-pressure", "actuated"]
SUMMARY = {"mean", "std", "ci95"}
DIFFERENCE = {"mean", "std", "ci95", "p_value", "significant"}


def test_evaluate_compares_three_controllers_over_the_same_seeds_and_draws_them(tmp_path):
    plot = tmp_path / "compare.png"
    env = {"CITYBRAIN_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "evaluate", "--scenario", "resco/cologne1",
         "--controllers", ",".join(CONTROLLERS), "--seeds", "2", "--minutes", "10", "--json",
         "--plot", str(plot)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)  # one JSON object, nothing else on stdout
    assert report["scenario"] == "resco/cologne1" and report["seeds"] == [1, 2]
    assert report["window"] == [25200, 25800] and report["baseline"] == "fixed"
    assert list(report["controllers"]) == CONTROLLERS
    for name, entry in report["controllers"].items():
        kpis = entry["kpis"]
        assert {"resco_delay", "travel_time", "waiting_time", "throughput", "stops"} <= set(kpis), name
        for summary in kpis.values():
            assert set(summary) == SUMMARY
            assert summary["ci95"][0] <= summary["mean"] <= summary["ci95"][1]
        assert kpis["resco_delay"]["mean"] > 0 and kpis["throughput"]["mean"] > 100
        assert [run["seed"] for run in entry["runs"]] == [1, 2]
    assert "difference" not in report["controllers"]["fixed"]
    for name in CONTROLLERS[1:]:
        difference = report["controllers"][name]["difference"]["resco_delay"]
        assert set(difference) == DIFFERENCE and 0 <= difference["p_value"] <= 1
        runs = report["controllers"][name]["runs"]
        base = report["controllers"]["fixed"]["runs"]
        paired = sum(r["resco_delay"] - b["resco_delay"] for r, b in zip(runs, base, strict=True)) / 2
        assert difference["mean"] == pytest.approx(paired)
    assert report["plot"] == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 30_000


def test_evaluate_refuses_an_unknown_controller_in_one_line(tmp_path):
    env = {"CITYBRAIN_VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "evaluate", "--scenario", "resco/cologne1",
         "--controllers", "fixed,nope", "--seeds", "2"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "unknown 'nope'; known: actuated, actuated-policy, adaptive, coordinated, emergency-priority, fixed"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
