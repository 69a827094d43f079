"""Movement flows from a scenario's own demand: vehicles per hour for each pair of consecutive edges.

A signal plan is sized from the flow of each movement (from edge → to edge) through each
junction. A scenario's route files come in several kinds — vehicles with explicit routes,
trips that SUMO routes on insertion, flows that SUMO expands (RESCO has all three) — and
reading each kind ourselves would mean re-implementing SUMO's routing. Instead the scenario
runs once in plain ``sumo`` over its window with ``--vehroute-output``: whatever the input,
SUMO writes the route every vehicle actually got, and each pair of consecutive edges in it is
one vehicle on that movement. Plain ``sumo`` is used rather than libsumo because libsumo allows
one simulation per process and the caller may be inside one (a controller at start).

The run uses the scenario's own programs and a fixed seed (:data:`DEMAND_SEED`) that the
evaluations do not use (they count from 1), so a plan sized from it is not tuned to the seeds
it is judged on. A vehicle counts when it departs within the window; vehicles still on the road
at the end count too (``--vehroute-output.write-unfinished``), since their movements were
demanded. Flows are the counts scaled to an hour of the window.

The result is cached as JSON under a given folder, keyed by the scenario's files (path, size
and modification time), window and seed, so every seed of an evaluation and every later call
reuse one run. Parallel callers (the runner's seed processes) take a lock, so the run happens
once.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from core.errors import CitybrainError
from core.files import produce_once
from sim.scenarios import Scenario
from sim.sumo_home import run_options, sumo_binary

#: The seed of the demand run: not one of the evaluation seeds (1, 2, …).
DEMAND_SEED = 0
#: Bumped when the cache's content or meaning changes, so old files are not read as new ones.
CACHE_FORMAT = 1
#: The demand run of the largest RESCO scenario takes seconds; this only stops a hung SUMO.
DEMAND_RUN_TIMEOUT_S = 900

Movement = tuple[str, str]


class DemandError(CitybrainError, RuntimeError):
    """The demand run failed or its output cannot be read; the message names the scenario."""


def _route_files(scenario: Scenario) -> list[Path]:
    """The route files the scenario's configuration names (they belong in the cache key)."""
    try:
        root = ET.parse(scenario.sumocfg).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DemandError(f"cannot read scenario file {scenario.sumocfg}: {exc}") from None
    element = root.find("input/route-files")
    value = "" if element is None else element.get("value", "")
    return [(scenario.sumocfg.parent / name).resolve() for name in re.split(r"[,\s]+", value) if name]


def cache_key(scenario: Scenario, seed: int = DEMAND_SEED) -> str:
    """A digest of everything the flows depend on: the scenario's files as they are now, the
    window and the seed. A changed route file gives a new key, so a stale cache is never read."""
    files = [scenario.sumocfg, scenario.net_file, *_route_files(scenario), *scenario.additional_files]
    stamps = []
    for path in files:
        try:
            stat = Path(path).stat()
        except FileNotFoundError:
            raise DemandError(f"scenario {scenario.name}: file {path} does not exist") from None
        stamps.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    content = {
        "format": CACHE_FORMAT,
        "files": stamps,
        "begin": scenario.begin,
        "end": scenario.end,
        "seed": seed,
    }
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(scenario: Scenario, out_dir: Path, seed: int = DEMAND_SEED) -> Path:
    """Where the flows of ``scenario`` are cached: a readable name plus :func:`cache_key`."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario.name).strip("_")[-60:]
    name = f"flows-{slug}-{scenario.begin}-{scenario.end}-{cache_key(scenario, seed)}.json"
    return Path(out_dir) / name


def movement_flows(scenario: Scenario, out_dir: Path, *, seed: int = DEMAND_SEED) -> dict[Movement, float]:
    """Vehicles per hour on each movement ``(from_edge, to_edge)`` over the scenario's window.

    Every pair of consecutive edges of a driven route is returned, signalised or not; callers
    pick the movements of the junctions they plan. Cached under ``out_dir`` (see the module).
    """

    def produce(staging: Path) -> dict[Movement, float]:
        flows = _run_demand(scenario, seed)
        records = [[a, b, v] for (a, b), v in sorted(flows.items())]
        payload = {"scenario": scenario.name, "window": [scenario.begin, scenario.end], "seed": seed}
        staging.write_text(json.dumps({**payload, "flows": records}), encoding="utf-8")
        return flows

    return produce_once(cache_path(scenario, out_dir, seed), produce, _read_cache)


def _read_cache(path: Path) -> dict[Movement, float] | None:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["flows"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None  # absent or torn (cannot happen through a rename, but costs one run at most)
    return {(a, b): float(v) for a, b, v in records}


def _run_demand(scenario: Scenario, seed: int) -> dict[Movement, float]:
    window_s = scenario.end - scenario.begin
    if window_s <= 0:
        raise DemandError(f"scenario {scenario.name}: empty window {scenario.begin}–{scenario.end}")
    with tempfile.TemporaryDirectory(prefix="citybrain-demand-") as tmp:
        routes = Path(tmp) / "vehroutes.xml"
        options = run_options(scenario.begin, scenario.end, seed, [str(p) for p in scenario.additional_files])
        if not scenario.additional_files:
            options = options[:-2]  # SUMO refuses an empty --additional-files list
        command = [
            sumo_binary("sumo"),
            "-c", str(scenario.sumocfg),
            *options,
            "--vehroute-output", str(routes),
            "--vehroute-output.write-unfinished", "true",
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=DEMAND_RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DemandError(
                f"scenario {scenario.name}: the demand run took longer than {DEMAND_RUN_TIMEOUT_S} s"
            ) from None
        if result.returncode != 0:
            raise DemandError(
                f"scenario {scenario.name}: sumo failed the demand run ({result.returncode}): "
                f"{result.stderr.strip()[-500:]}"
            )
        counts = count_movements(routes, scenario.begin, scenario.end)
    return {movement: n * 3600.0 / window_s for movement, n in counts.items()}


def count_movements(vehroute_file: Path, begin: float, end: float) -> Counter[Movement]:
    """Vehicles on each pair of consecutive edges, among those departing in ``[begin, end)``.

    Reads SUMO's vehroute output incrementally (large scenarios write tens of MB). A vehicle's
    route is the last one it had (rerouting writes the earlier ones first, with
    ``replacedOnEdge``); a vehicle that names a route by id gets the top-level route of that id.
    """
    counts: Counter[Movement] = Counter()
    named: dict[str, list[str]] = {}
    try:
        for _event, element in ET.iterparse(vehroute_file, events=("end",)):
            if element.tag == "route" and element.get("id") and element.get("edges"):
                named[element.get("id", "")] = element.get("edges", "").split()
            if element.tag != "vehicle":
                continue
            depart = _depart(element.get("depart"))
            if depart is not None and begin <= depart < end:
                edges = _vehicle_edges(element, named)
                counts.update(zip(edges, edges[1:], strict=False))
            element.clear()
    except (OSError, ET.ParseError) as exc:
        raise DemandError(f"cannot read vehicle routes {vehroute_file}: {exc}") from None
    return counts


def _depart(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None  # "triggered" and the like: not a departure within the window


def _vehicle_edges(element: ET.Element, named: dict[str, list[str]]) -> list[str]:
    routes = element.findall("route") or element.findall("routeDistribution/route")
    if routes:
        return routes[-1].get("edges", "").split()
    return named.get(element.get("route", ""), [])
