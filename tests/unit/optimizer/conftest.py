"""Networks for the optimizer tests: RESCO nets from the installed sumo-rl, our corridor, and a
small crossing net built here with netconvert (the RESCO nets have no pedestrian crossings)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from sim.scenarios import resolve
from sim.sumo_home import ensure_sumo_home, sumo_binary

GOLDEN = Path(__file__).parent / "golden"
RESCO_NAMES = (
    "cologne1",
    "cologne3",
    "cologne8",
    "ingolstadt1",
    "ingolstadt7",
    "ingolstadt21",
    "grid4x4",
    "arterial4x4",
)


def resco_net(name: str) -> Path:
    """A RESCO net from the installed sumo-rl package, found without importing sumo_rl."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sumo-rl is not installed")
    path = Path(spec.submodule_search_locations[0]) / "nets" / "RESCO" / name / f"{name}.net.xml"
    if not path.is_file():
        pytest.skip(f"sumo-rl has no RESCO scenario {name}")
    return path


@pytest.fixture(scope="session")
def crossing_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signalised junction with sidewalks and a pedestrian crossing on every arm."""
    ensure_sumo_home()
    source = GOLDEN / "crossing"
    net = tmp_path_factory.mktemp("crossing") / "crossing.net.xml"
    command = [
        sumo_binary("netconvert"),
        "--node-files", str(source / "input.nod.xml"),
        "--edge-files", str(source / "input.edg.xml"),
        "--sidewalks.guess", "--crossings.guess", "--no-turnarounds",
        "--output-file", str(net),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return net


@pytest.fixture(scope="session")
def corridor_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve("corridor", tmp_path_factory.mktemp("build")).net_file
