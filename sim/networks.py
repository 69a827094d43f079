"""The project's own SUMO scenarios: plain-XML sources under ``sim/sumo_networks/<name>/``.

The repository keeps SUMO *source* files (nodes, edges, connections, signal programs, demand)
rather than built ``.net.xml`` files: they are short enough to review line by line, and the
network is rebuilt by the installed netconvert, so it always matches the SUMO that runs it.
A scenario folder holds ``scenario.json`` (name, description, simulation window, location)
and ``<name>.nod.xml``, ``<name>.edg.xml`` and ``<name>.rou.xml``; ``<name>.typ.xml``,
``<name>.con.xml`` and ``<name>.tll.xml`` are optional (without them netconvert derives
types, connections and signal programs itself).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from core.errors import CitybrainError
from core.files import atomic_path, file_lock
from sim.sumo_home import ensure_sumo_home, sumo_binary
from sim.xml_files import element, render

OWN_NETWORKS_DIR = Path(__file__).resolve().parent / "sumo_networks"

SCENARIO_FILE = "scenario.json"

#: netconvert input option per plain-XML kind, and whether a scenario must provide it.
NETCONVERT_INPUTS: dict[str, tuple[str, bool]] = {
    "nod": ("--node-files", True),
    "edg": ("--edge-files", True),
    "typ": ("--type-files", False),
    "con": ("--connection-files", False),
    "tll": ("--tllogic-files", False),
}

#: The header comment netconvert writes: build time and the absolute input paths.
_GENERATED_HEADER = re.compile(r"<!-- generated on .*?-->\s*", re.DOTALL)


class NetworkBuildError(CitybrainError):
    """A scenario cannot be built: a source file is missing or malformed, or netconvert failed.
    The message names the file and quotes netconvert's error lines."""


def own_scenarios() -> list[str]:
    """Names of the own scenarios: the folders of ``OWN_NETWORKS_DIR`` with a ``scenario.json``."""
    return sorted(p.parent.name for p in OWN_NETWORKS_DIR.glob(f"*/{SCENARIO_FILE}"))


def load_scenario_meta(name: str, source_dir: Path | None = None) -> dict[str, Any]:
    """The scenario's ``scenario.json``, checked: the window is what SUMO gets as begin/end,
    so a typo there would silently simulate the wrong hours."""
    path = (source_dir or OWN_NETWORKS_DIR / name) / SCENARIO_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NetworkBuildError(f"scenario {name!r} has no {path}") from None
    except json.JSONDecodeError as exc:
        raise NetworkBuildError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise NetworkBuildError(f"{path} must hold a JSON object")
    missing = [key for key in ("name", "description", "begin", "end", "location") if key not in meta]
    if missing:
        raise NetworkBuildError(f"{path} lacks {', '.join(missing)}")
    if meta["name"] != name:
        raise NetworkBuildError(f"{path} names the scenario {meta['name']!r}, expected {name!r}")
    begin, end = meta["begin"], meta["end"]
    if not all(type(t) is int for t in (begin, end)) or begin >= end:
        raise NetworkBuildError(
            f"{path}: begin and end must be whole seconds, begin < end; got {begin!r}, {end!r}"
        )
    return meta


def build_network(name: str, out_dir: Path, source_dir: Path | None = None) -> Path:
    """Build scenario ``name`` into ``out_dir`` and return its ``<name>.sumocfg``.

    ``out_dir`` receives ``<name>.net.xml`` (netconvert's output), a copy of the demand
    ``<name>.rou.xml`` (so the folder runs on its own, e.g. on a worker) and the
    configuration naming both with the scenario's window. Nothing is rebuilt while every
    output is newer than every source file. The same sources give byte-identical outputs.
    ``source_dir`` replaces ``OWN_NETWORKS_DIR / name`` (tests build edited copies).
    """
    source_dir = source_dir or OWN_NETWORKS_DIR / name
    meta = load_scenario_meta(name, source_dir)
    inputs = _netconvert_inputs(name, source_dir)
    demand = _existing(source_dir / f"{name}.rou.xml")
    net_file, route_file, sumocfg = (
        out_dir / f"{name}{suffix}" for suffix in (".net.xml", ".rou.xml", ".sumocfg")
    )
    sources = [source_dir / SCENARIO_FILE, demand, *inputs.values()]
    outputs = [net_file, route_file, sumocfg]
    if _up_to_date(outputs, sources):
        return sumocfg
    _check_well_formed(demand)
    with file_lock(sumocfg):  # parallel workers build once
        if _up_to_date(outputs, sources):
            return sumocfg
        # Each output is staged and renamed into place, configuration last (the staging contexts
        # close in reverse): a failed build leaves no half-written output that looks newer than
        # its sources, and a concurrent reader never sees a partial file.
        with contextlib.ExitStack() as stack:
            staged = [stack.enter_context(atomic_path(p, durable=False)) for p in reversed(outputs)]
            staged_cfg, staged_routes, staged_net = staged
            _netconvert(inputs, staged_net)
            shutil.copyfile(demand, staged_routes)
            _write_sumocfg(staged_cfg, net_file.name, route_file.name, meta["begin"], meta["end"])
    return sumocfg


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise NetworkBuildError(f"missing source file {path}")
    return path


def _netconvert_inputs(name: str, source_dir: Path) -> dict[str, Path]:
    """netconvert option -> source file, for the kinds present; required kinds must be."""
    inputs = {}
    for kind, (option, required) in NETCONVERT_INPUTS.items():
        path = source_dir / f"{name}.{kind}.xml"
        if required or path.exists():
            inputs[option] = _existing(path)
    return inputs


def _up_to_date(outputs: list[Path], sources: list[Path]) -> bool:
    if not all(p.exists() for p in outputs):
        return False
    return min(p.stat().st_mtime_ns for p in outputs) > max(p.stat().st_mtime_ns for p in sources)


def _check_well_formed(path: Path) -> None:
    """netconvert never reads the demand, so a broken route file would surface only when
    SUMO starts; parse it here to fail at build time with the file's name."""
    try:
        ET.parse(path)
    except ET.ParseError as exc:
        raise NetworkBuildError(f"{path} is not well-formed XML: {exc}") from None


def _netconvert(inputs: dict[str, Path], net_file: Path) -> None:
    command = [sumo_binary("netconvert"), *(arg for opt, p in inputs.items() for arg in (opt, str(p)))]
    # U-turns would appear at every dead end of the modelled area; where a scenario wants
    # one, its connection file says so.
    command += ["--no-turnarounds", "--output-file", str(net_file)]
    ensure_sumo_home()  # also points SUMO's PROJ at its proj.db, inherited by netconvert
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not net_file.exists():
        files = ", ".join(str(p) for p in inputs.values())
        raise NetworkBuildError(
            f"netconvert failed (exit status {result.returncode}) on {files}:\n"
            f"{_error_lines(result.stderr + result.stdout)}"
        )
    # The header records the build time and absolute paths; without it, equal sources give
    # equal bytes (reproducible builds, meaningful diffs of built networks).
    text = net_file.read_text(encoding="utf-8")
    net_file.write_text(_GENERATED_HEADER.sub("", text, count=1), encoding="utf-8")


def _error_lines(output: str) -> str:
    """netconvert's ``Error:`` lines with their indented continuations (file, line/column)."""
    quoted: list[str] = []
    in_error = False
    for line in output.splitlines():
        if line.startswith("Error:"):
            in_error = True
        elif not line.startswith((" ", "\t")) or not line.strip():
            in_error = False
        if in_error:
            quoted.append(f"  {line}")
    return "\n".join(quoted) or "\n".join(f"  {line}" for line in output.strip().splitlines()[-10:])


def _write_sumocfg(path: Path, net_file: str, route_file: str, begin: int, end: int) -> None:
    root = element(None, "configuration", {})
    inputs = element(root, "input", {})
    element(inputs, "net-file", {"value": net_file})
    element(inputs, "route-files", {"value": route_file})
    time = element(root, "time", {})
    element(time, "begin", {"value": begin})
    element(time, "end", {"value": end})
    path.write_text(render(root), encoding="utf-8")
