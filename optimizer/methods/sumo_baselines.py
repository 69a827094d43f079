"""SUMO's own signal-timing tools as baselines: ``sumo-webster`` and ``sumo-coordinator``.

SUMO ships two tools that time signals from a route file, and a plan of ours is only worth
something if it beats them too:

- ``tlsCycleAdaptation.py`` re-times every signal's own program by Webster's formula (cycle and
  green splits from critical flow ratios, one hour of demand from ``--begin``; yellow phases
  set to its default 4 s). Its output is a complete ``<tlLogic>`` per signal with flow, which
  :func:`optimizer.plans.sumo_programs.parse_tls` reads as it is.
- ``tlsCoordinator.py`` keeps the programs and sets only offsets, pairing consecutive signals
  along the routes driven (green-wave offsets from free-flow travel times). Its output is
  ``<tlLogic id programID offset/>`` without phases, i.e. "this program, with this offset";
  :func:`coordinated_plan` puts those offsets on the network's own programs. A network with a
  single signal has no pairs: the tool writes no signal and the plan is the network's own.

Both run as they ship: default options, our interpreter (``sys.executable``), SUMO's own
``tools/`` folder. Neither tool routes trips or expands flows, and a RESCO scenario has both,
so the route file they get is SUMO's own ``--vehroute-output`` of one plain run over the
scenario's window (:func:`vehicle_routes`): every vehicle with the route it drove — the same
run, seed and options as :mod:`optimizer.demand.own_routes`, so duarouter is not needed. The route file
and each tool's output are cached under a work folder, keyed by the scenario's files, window
and seed (:func:`optimizer.demand.own_routes.cache_key`) and by the tool and SUMO as installed, behind a
lock so that the seed processes of one evaluation run each tool once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from core.errors import CitybrainError
from core.files import existing, produce_once
from optimizer.demand.own_routes import DEMAND_SEED, cache_key
from optimizer.plans.model import NetworkPlan, PlanError, SignalPlan
from optimizer.plans.sumo_programs import parse_tls, read_net_programs
from sim.scenarios import Scenario
from sim.sumo_home import ensure_sumo_home, run_options, sumo_binary

WEBSTER_METHOD = "sumo-webster"
COORDINATOR_METHOD = "sumo-coordinator"
WEBSTER_TOOL = "tlsCycleAdaptation.py"
COORDINATOR_TOOL = "tlsCoordinator.py"
#: The programID our coordinated plans run under, so the network's own program "0" stays as it is.
COORDINATOR_PROGRAM_ID = "sumo-coordinator"
#: Bumped when a cached file's content or meaning changes, so old files are not read as new ones.
CACHE_FORMAT = 1
#: Both the routing run and the tools take seconds on RESCO's largest scenario; this only stops a hang.
RUN_TIMEOUT_S = 900
#: How much of a failing program's stderr goes into the error.
_STDERR_CHARS = 1500


class SumoToolError(CitybrainError, RuntimeError):
    """A SUMO tool (or the run giving it routes) failed or wrote what cannot be read; the
    message names the scenario and the tool and carries the end of its stderr."""


def tool_path(name: str) -> Path:
    """A script of the installed SUMO's ``tools/`` folder."""
    path = ensure_sumo_home() / "tools" / name
    if not path.is_file():
        raise SumoToolError(f"{name} is not in the installed SUMO ({path.parent})")
    return path


def webster_command(net_file: Path, route_file: Path, begin: float, out_file: Path) -> list[str]:
    """``tlsCycleAdaptation.py -n NET -r ROUTES -b BEGIN -o OUT``, every other option its default.

    ``--begin`` is given because the tool otherwise takes the first departure (or, over more
    than an hour, the peak hour) as the start of the hour it sizes the signals for.
    """
    return [
        sys.executable, str(tool_path(WEBSTER_TOOL)),
        "-n", str(net_file), "-r", str(route_file), "-b", _seconds(begin), "-o", str(out_file),
    ]  # fmt: skip


def coordinator_command(net_file: Path, route_file: Path, out_file: Path) -> list[str]:
    """``tlsCoordinator.py -n NET -r ROUTES -o OUT``: the network's own programs are coordinated
    (no ``-a`` replacement programs), every other option its default."""
    return [
        sys.executable, str(tool_path(COORDINATOR_TOOL)),
        "-n", str(net_file), "-r", str(route_file), "-o", str(out_file),
    ]  # fmt: skip


def _seconds(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else repr(float(t))


def _stamp(path: Path) -> list[object]:
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def _key(scenario: Scenario, seed: int, *tools: str) -> str:
    """:func:`optimizer.demand.own_routes.cache_key` plus the SUMO and tool files as installed, so an upgraded
    SUMO (whose routing or tools may differ) never reads an old result."""
    installed = [_stamp(Path(sumo_binary("sumo"))), *(_stamp(tool_path(t)) for t in tools)]
    content = {"format": CACHE_FORMAT, "demand": cache_key(scenario, seed), "installed": installed}
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _cache_file(kind: str, scenario: Scenario, work_dir: Path, seed: int, suffix: str, *tools: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario.name)[-60:]
    slug = re.sub(r"-{2,}", "-", slug).strip("_.-")  # the tools write our paths into an XML comment
    key = _key(scenario, seed, *tools)
    # absolute: the tools run inside the work folder, where a relative one would mean another place
    return Path(work_dir).resolve() / f"{kind}-{slug}-{scenario.begin}-{scenario.end}-{key}{suffix}"


def run_tool(command: list[str], what: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a SUMO binary or tool; a failure or a hang becomes a :class:`SumoToolError` naming ``what``."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise SumoToolError(f"{what} took longer than {RUN_TIMEOUT_S} s") from None
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip())[-_STDERR_CHARS:]
        raise SumoToolError(f"{what} failed (exit status {result.returncode}): {detail}")
    return result


def vehicle_routes(scenario: Scenario, work_dir: Path, *, seed: int = DEMAND_SEED) -> Path:
    """SUMO's vehroute output of one plain run over the scenario's window: every vehicle that
    departed, with the route it drove (unfinished ones too), as a route file SUMO's tools read.

    The run is :mod:`optimizer.demand.own_routes`'s (its seed, options and unfinished vehicles), plus
    ``--vehroute-output.last-route``: a rerouted vehicle is written with its last route alone,
    not a ``routeDistribution``, which ``tlsCycleAdaptation.py`` cannot read. Cached.
    """
    if scenario.end <= scenario.begin:
        raise SumoToolError(f"scenario {scenario.name}: empty window {scenario.begin}–{scenario.end}")

    path = _cache_file("vehroutes", scenario, work_dir, seed, ".xml")

    def produce(out: Path) -> Path:
        additional = [str(p) for p in scenario.additional_files]
        options = run_options(scenario.begin, scenario.end, seed, additional)
        if not additional:
            options = options[:-2]  # SUMO refuses an empty --additional-files list
        command = [
            sumo_binary("sumo"), "-c", str(scenario.sumocfg), *options,
            "--vehroute-output", str(out),
            "--vehroute-output.write-unfinished", "true",
            "--vehroute-output.last-route", "true",
        ]  # fmt: skip
        run_tool(command, f"scenario {scenario.name}: the routing run (sumo --vehroute-output)", out.parent)
        return path

    return produce_once(path, produce, existing)


def _tool_output(
    scenario: Scenario, work_dir: Path, seed: int, tool: str, command: Callable[[Path, Path], list[str]]
) -> Path:
    """The tool's output file for the scenario, cached; what it printed is kept beside it (``.log``)."""
    routes = vehicle_routes(scenario, work_dir, seed=seed)
    kind = WEBSTER_METHOD if tool == WEBSTER_TOOL else COORDINATOR_METHOD
    path = _cache_file(kind, scenario, work_dir, seed, ".add.xml", tool)

    def produce(out: Path) -> Path:
        # relative names: the tools copy them into their output's header comment (see _tool_text)
        result = run_tool(
            command(Path(os.path.relpath(routes, out.parent)), Path(out.name)),
            f"scenario {scenario.name}: {tool}",
            out.parent,
        )
        if not out.is_file():
            raise SumoToolError(f"scenario {scenario.name}: {tool} wrote no output: {result.stdout[-500:]}")
        path.with_name(f"{path.name}.log").write_text(result.stdout + result.stderr, encoding="utf-8")
        return path

    return produce_once(path, produce, existing)


def sumo_webster_plan(scenario: Scenario, work_dir: Path, *, seed: int = DEMAND_SEED) -> NetworkPlan:
    """``tlsCycleAdaptation.py`` on the scenario's driven routes, as a plan (method ``sumo-webster``).

    Signals without flow in the hour are not in the tool's output, so not in the plan: they
    keep their own program. The tool's programID (``a``) is kept.
    """
    path = _tool_output(
        scenario, work_dir, seed, WEBSTER_TOOL,
        lambda routes, out: webster_command(scenario.net_file, routes, scenario.begin, out),
    )  # fmt: skip
    try:
        return NetworkPlan(parse_tls(_tool_text(path), str(path)), method=WEBSTER_METHOD)
    except PlanError as exc:
        raise SumoToolError(f"scenario {scenario.name}: cannot read {WEBSTER_TOOL}'s plans: {exc}") from None


def sumo_coordinator_plan(scenario: Scenario, work_dir: Path, *, seed: int = DEMAND_SEED) -> NetworkPlan:
    """``tlsCoordinator.py`` on the scenario's driven routes: the network's own programs with the
    tool's offsets (method ``sumo-coordinator``); see :func:`coordinated_plan`."""
    path = _tool_output(
        scenario, work_dir, seed, COORDINATOR_TOOL,
        lambda routes, out: coordinator_command(scenario.net_file, routes, out),
    )  # fmt: skip
    try:
        offsets = parse_offsets(_tool_text(path), str(path))
        return coordinated_plan(read_net_programs(scenario.net_file, scenario.additional_files), offsets)
    except PlanError as exc:
        raise SumoToolError(
            f"scenario {scenario.name}: cannot use {COORDINATOR_TOOL}'s offsets: {exc}"
        ) from None


def _tool_text(path: Path) -> str:
    """A tool's output without its comments. Both tools open the file with a comment that lists
    their options, paths included, and a path holding ``--`` (a legal file name) makes that
    comment, and so the file, invalid XML (SUMO refuses it too). Our own files are named without
    ``--`` and given to the tools relative to the work folder; the network's path is the user's."""
    return re.sub(r"<!--.*?-->", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)


def parse_offsets(text: str, source: str = "<text>") -> dict[str, tuple[str, float]]:
    """``tlsCoordinator.py``'s output: for each signal, the program it coordinated and its offset."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise PlanError(f"{source} is not valid XML: {exc}") from None
    offsets: dict[str, tuple[str, float]] = {}
    for element in root.iter("tlLogic"):
        tls_id, program_id, offset = element.get("id"), element.get("programID"), element.get("offset")
        if not tls_id or program_id is None or offset is None:
            raise PlanError(f"{source}: a tlLogic without id, programID or offset")
        if tls_id in offsets:
            raise PlanError(f"{source}: signal {tls_id} has two offsets")
        try:
            offsets[tls_id] = (program_id, float(offset))
        except ValueError:
            raise PlanError(f"{source}: signal {tls_id}: offset={offset!r} is not a number") from None
    return offsets


def coordinated_plan(
    programs: tuple[SignalPlan, ...] | list[SignalPlan], offsets: dict[str, tuple[str, float]]
) -> NetworkPlan:
    """The programs the coordinator named, each with its offset, as one plan.

    The offset is taken modulo the cycle: the tool writes a start time that may be negative or
    beyond the cycle, and SUMO (like :func:`optimizer.plans.sumo_programs.cycle_position`) runs a program
    at ``(t - offset) mod cycle``, so this is the same schedule, written within the cycle.
    Signals the tool did not coordinate are left out and keep their own program.
    """
    by_id = {(p.tls_id, p.program_id): p for p in programs}
    signals = []
    for tls_id, (program_id, offset) in sorted(offsets.items()):
        program = by_id.get((tls_id, program_id))
        if program is None:
            raise PlanError(f"the network has no program {program_id!r} for signal {tls_id}")
        signals.append(
            SignalPlan(
                tls_id=tls_id,
                phases=program.phases,
                offset_s=round(offset % program.phase_sum_s, 6),
                program_id=COORDINATOR_PROGRAM_ID,
                kind=program.kind,
            )
        )
    return NetworkPlan(tuple(signals), method=COORDINATOR_METHOD)
