"""One way to name and load a scenario.

- ``resco/<name>``: the eight RESCO benchmark scenarios shipped inside the installed
  ``sumo-rl`` package (real Cologne and Ingolstadt excerpts, grid4x4, arterial4x4), each with
  the window RESCO evaluates. They are read from the package, never copied here
  (CC BY-NC-SA).
- ``<name>``: the project's own scenarios, SUMO source files under ``sim/sumo_networks/``,
  built with netconvert into the var folder on first use (:mod:`sim.networks`).
- ``path/to/x.sumocfg``: any SUMO configuration; the window is the file's begin/end.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from core.errors import CitybrainError
from sim.network import Network, NetworkError, load

#: RESCO's evaluation windows (simulation seconds).
RESCO_WINDOWS: dict[str, tuple[int, int]] = {
    "cologne1": (25200, 28800),
    "cologne3": (25200, 28800),
    "cologne8": (25200, 28800),
    "ingolstadt1": (57600, 61200),
    "ingolstadt7": (57600, 61200),
    "ingolstadt21": (57600, 61200),
    "grid4x4": (0, 3600),
    "arterial4x4": (0, 3600),
}


class ScenarioError(CitybrainError, ValueError):
    """An unknown scenario or a missing or malformed scenario file; the message names it."""


@dataclass(frozen=True)
class Scenario:
    name: str
    sumocfg: Path
    net_file: Path
    begin: int
    end: int
    source: str  # "resco", "own" or "file"
    additional_files: tuple[Path, ...] = ()

    def approaches(self) -> dict[str, str]:
        """Each lane entering a signalised junction, mapped to its traffic light id."""
        from sim.detectors import approach_lanes

        return {a.lane_id: a.tls_id for a in approach_lanes(self._network())}

    def signal_count(self) -> int:
        """Traffic-light controlled junctions of the network."""
        return len(self._network().signals)

    def _network(self) -> Network:
        try:
            return load(self.net_file)
        except NetworkError as exc:
            raise ScenarioError(str(exc)) from None


def resco_dir() -> Path:
    """The RESCO folder of the installed sumo-rl (found without importing it: its import
    needs SUMO_HOME)."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        raise ScenarioError("the RESCO scenarios come with the sumo-rl package, which is not installed")
    return Path(spec.submodule_search_locations[0]) / "nets" / "RESCO"


def _config_file_value(sumocfg: Path, section: str, option: str) -> str | None:
    try:
        root = ET.parse(sumocfg).getroot()
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {sumocfg}") from None
    except ET.ParseError as exc:
        raise ScenarioError(f"scenario file {sumocfg} is not valid XML: {exc}") from None
    element = root.find(f"{section}/{option}")
    return None if element is None else element.get("value")


def from_sumocfg(sumocfg: Path, name: str | None = None, source: str = "file") -> Scenario:
    """A scenario from a SUMO configuration: net file and window as the file states them."""
    sumocfg = sumocfg.resolve()
    net_value = _config_file_value(sumocfg, "input", "net-file")
    if not net_value:
        raise ScenarioError(f"scenario file {sumocfg} names no <net-file>")
    net_file = (sumocfg.parent / net_value).resolve()
    if not net_file.exists():
        raise ScenarioError(f"network {net_file} named by {sumocfg} does not exist")
    additional = _config_file_value(sumocfg, "input", "additional-files") or ""
    additional_files = tuple((sumocfg.parent / a).resolve() for a in re.split(r"[,\s]+", additional) if a)
    begin = float(_config_file_value(sumocfg, "time", "begin") or 0)
    end = _config_file_value(sumocfg, "time", "end")
    if end is None:
        raise ScenarioError(f"scenario file {sumocfg} has no <time><end>: the window must be explicit")
    return Scenario(
        name or str(sumocfg), sumocfg, net_file, int(begin), int(float(end)), source, additional_files
    )


def resco(name: str) -> Scenario:
    if name not in RESCO_WINDOWS:
        raise ScenarioError(f"no RESCO scenario {name!r}; known: {', '.join(RESCO_WINDOWS)}")
    sumocfg = resco_dir() / name / f"{name}.sumocfg"
    scenario = from_sumocfg(sumocfg, f"resco/{name}", "resco")
    begin, end = RESCO_WINDOWS[name]
    return dataclasses.replace(scenario, begin=begin, end=end)


def own(name: str, build_dir: Path) -> Scenario:
    from sim import networks

    if name not in networks.own_scenarios():
        raise ScenarioError(f"no scenario {name!r}; known: {', '.join(known_names())}")
    sumocfg = networks.build_network(name, build_dir / name)
    return from_sumocfg(sumocfg, name, "own")


def resolve(name: str, build_dir: Path) -> Scenario:
    """The scenario called ``name`` (``resco/<x>``, an own scenario, or a .sumocfg path)."""
    if name.startswith("resco/"):
        return resco(name.removeprefix("resco/"))
    if name.endswith(".sumocfg"):
        return from_sumocfg(Path(name))
    return own(name, build_dir)


#: The prefix of the scenarios the optimizer builds from the lake's counts (``lake/<network>/<window>``).
LAKE_PREFIX = "lake/"


def network_of(name: str, build_dir: Path) -> Scenario:
    """The scenario whose road network ``name`` runs on: for a scenario sampled from the lake's
    counts (``lake/<network>/<window>``, built by the optimizer, not resolvable by name) the
    network's own; otherwise ``name``'s. What re-checks a stored plan's safety, or draws its
    signals, needs the network, not the demand."""
    if name.startswith(LAKE_PREFIX) and name.count("/") >= 2:
        return resolve(name.removeprefix(LAKE_PREFIX).rpartition("/")[0], build_dir)
    return resolve(name, build_dir)


def known_names() -> list[str]:
    from sim import networks

    return [*networks.own_scenarios(), *(f"resco/{n}" for n in RESCO_WINDOWS)]


def all_scenarios(build_dir: Path) -> list[Scenario]:
    return [resolve(name, build_dir) for name in known_names()]
