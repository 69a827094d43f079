"""`citybrain evaluate` with the webster controller, as a user runs it: a quarter hour of cologne1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_evaluate_reports_fixed_and_webster_on_cologne1(tmp_path):
    env = {"CITYBRAIN_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "evaluate", "--scenario", "resco/cologne1",
         "--controllers", "fixed,webster", "--seeds", "2", "--minutes", "15", "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert list(report["controllers"]) == ["fixed", "webster"] and report["window"] == [25200, 26100]
    for name, entry in report["controllers"].items():
        kpis = entry["kpis"]
        assert kpis["resco_delay"]["mean"] > 0 and kpis["throughput"]["mean"] > 100, name
        assert [run["seed"] for run in entry["runs"]] == [1, 2]
    assert "resco_delay" in report["controllers"]["webster"]["difference"]
    # both seeds' processes share one demand run, cached under the var folder
    cached = list((tmp_path / "var" / "sim" / "demand").glob("flows-*-25200-26100-*.json"))
    assert len(cached) == 1
