"""The researchers' page works as written: the example controller registers from its file and
runs beside a baseline in `citybrain evaluate`, in the runner's seed processes too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.plugins import BadPlugin as BadControllerModule
from sim.plugins import load_plugins

ROOT = Path(__file__).resolve().parents[3]


def test_the_example_controller_is_compared_with_fixed(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CITYBRAIN_VAR_DIR": str(tmp_path / "var"),
           "CITYBRAIN_CONTROLLER_MODULES": "examples/longest_queue.py"}  # fmt: skip
    command = ["evaluate", "--scenario", "resco/cologne1", "--controllers", "fixed,longest-queue",
               "--seeds", "2", "--minutes", "10", "--json"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "citybrain.cli", *command], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    controllers = json.loads(result.stdout)["controllers"]
    assert controllers["longest-queue"]["kpis"]["resco_delay"]["mean"] > 0
    assert "resco_delay" in controllers["longest-queue"]["difference"]


def test_the_example_is_about_thirty_lines_of_code():
    lines = (ROOT / "examples" / "longest_queue.py").read_text().splitlines()
    code = [line for line in lines if line.strip() and not line.strip().startswith("#")]
    assert len(code) <= 40


def test_a_module_that_cannot_be_imported_is_named(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(BadControllerModule, match=r"cannot import .*broken.py.*boom"):
        load_plugins([str(broken)])
    with pytest.raises(BadControllerModule, match="no_such_module"):
        load_plugins(["no_such_module"])
