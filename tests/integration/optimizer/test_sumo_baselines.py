"""`citybrain evaluate` with SUMO's own tools as baselines, as a user runs it: a quarter hour of cologne1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

CONTROLLERS = ["fixed", "sumo-webster", "sumo-coordinator"]


def test_evaluate_reports_the_sumo_tool_baselines_on_cologne1(tmp_path):
    env = {"CITYBRAIN_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", "evaluate", "--scenario", "resco/cologne1",
         "--controllers", ",".join(CONTROLLERS), "--seeds", "2", "--minutes", "15", "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert list(report["controllers"]) == CONTROLLERS and report["window"] == [25200, 26100]
    for name, entry in report["controllers"].items():
        kpis = entry["kpis"]
        assert kpis["resco_delay"]["mean"] > 0 and kpis["throughput"]["mean"] > 100, name
        assert [run["seed"] for run in entry["runs"]] == [1, 2]
    delay = {name: entry["kpis"]["resco_delay"] for name, entry in report["controllers"].items()}
    assert "resco_delay" in report["controllers"]["sumo-webster"]["difference"]
    # tlsCycleAdaptation re-times the signal: the runs differ from the network's own program
    assert delay["sumo-webster"] != delay["fixed"]
    # cologne1 has a single signal: tlsCoordinator has no pair to coordinate, so the program is the own one
    assert delay["sumo-coordinator"] == delay["fixed"]
    # every seed process shares one routing run and one run of each tool, cached under the var folder
    demand = tmp_path / "var" / "sim" / "demand"
    for kind in ("vehroutes", "sumo-webster", "sumo-coordinator"):
        assert len(list(demand.glob(f"{kind}-*-25200-26100-*.xml"))) == 1, kind
