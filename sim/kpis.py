"""KPIs from SUMO's trip info, chosen by name from a registry, and their summary over seeds.

Each KPI is a :class:`Kpi`: a name, a unit, its definition and a function of one run's
:class:`RunOutput` (``tripinfo-output`` with ``write-unfinished``, so vehicles still driving at
the end count too, as in RESCO's evaluation, and SUMO's statistic output). Ours are below; a
researcher adds one with :func:`register` in a module named in ``CITYBRAIN_CONTROLLER_MODULES``
or declared under the ``citybrain.kpis`` entry-point group (see :mod:`sim.plugins`).

Over seeds each KPI becomes mean, sample standard deviation and the 95% confidence interval of
the mean (Student's t, :func:`t_interval95`), the shape ``{"mean": …, "std": …, "ci95": [lo, hi]}``.
"""

from __future__ import annotations

import math
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scipy import stats

from core.errors import CitybrainError
from sim.plugins import Registry

#: The entry-point group through which installed packages add KPIs.
ENTRY_POINT_GROUP = "citybrain.kpis"


class TripInfoError(CitybrainError, ValueError):
    """A trip info or statistics file that cannot be read; the message names it."""


class UnknownKpi(CitybrainError, KeyError):
    def __str__(self) -> str:
        return f"no KPI {self.args[0]!r}; known: {', '.join(sorted(registry()))}"


@dataclass(frozen=True)
class RunOutput:
    """One run's outputs as the KPIs read them: each vehicle's trip info attributes and, where
    the emissions device ran, its emissions attributes (SUMO's text, as written)."""

    trips: Sequence[Mapping[str, str]]
    emissions: Sequence[Mapping[str, str]]
    statistics_file: Path | None = None

    def values(self, attribute: str) -> list[float]:
        """Each vehicle's ``attribute`` as a number (0 where SUMO left it out)."""
        return [float(trip.get(attribute, 0)) for trip in self.trips]


@dataclass(frozen=True)
class Kpi:
    """A network KPI of one run; ``compute`` gives None where the run cannot say (no emissions)."""

    name: str
    unit: str
    definition: str
    compute: Callable[[RunOutput], float | None]


KPIS: Registry[Kpi] = Registry(ENTRY_POINT_GROUP, UnknownKpi)


def register(name: str, unit: str, definition: str) -> Callable[[Callable[[RunOutput], float | None]], Kpi]:
    """Decorator adding a function of a :class:`RunOutput` to the registry as KPI ``name``."""

    def add(compute: Callable[[RunOutput], float | None]) -> Kpi:
        KPIS[name] = Kpi(name, unit, definition, compute)
        return KPIS[name]

    return add


def registry() -> dict[str, Kpi]:
    """Every KPI by name, in the order registered: ours, the installed packages' and the
    configured modules'."""
    return KPIS.loaded()


def kpi(name: str) -> Kpi:
    return KPIS.named(name)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


#: RESCO's delay charges vehicles for waiting to enter the network as well as for driving slower
#: than free flow.
@register("resco_delay", "s", "mean of timeLoss + departDelay per vehicle")
def _resco_delay(run: RunOutput) -> float:
    return _mean([a + b for a, b in zip(run.values("timeLoss"), run.values("departDelay"), strict=True)])


@register("mean_delay", "s", "mean timeLoss per vehicle")
def _mean_delay(run: RunOutput) -> float:
    return _mean(run.values("timeLoss"))


@register("travel_time", "s", "mean duration per vehicle")
def _travel_time(run: RunOutput) -> float:
    return _mean(run.values("duration"))


@register("waiting_time", "s", "mean waitingTime per vehicle (time below 0.1 m/s)")
def _waiting_time(run: RunOutput) -> float:
    return _mean(run.values("waitingTime"))


@register("stops", "stops", "mean waitingCount per vehicle")
def _stops(run: RunOutput) -> float:
    return _mean(run.values("waitingCount"))


@register("throughput", "veh", "vehicles that arrived")
def _throughput(run: RunOutput) -> float:
    return float(sum(1 for trip in run.trips if float(trip.get("arrival", -1)) >= 0))


@register("vehicles", "veh", "vehicles in the trip info")
def _vehicles(run: RunOutput) -> float:
    return float(len(run.trips))


@register("teleports", "teleports", "total teleports, from SUMO's statistic output")
def _teleports(run: RunOutput) -> float:
    return float(teleports(run.statistics_file)) if run.statistics_file else 0.0


@register("co2", "g", "mean CO2 per vehicle, when the emissions device ran")
def _co2(run: RunOutput) -> float | None:
    if not run.emissions:
        return None
    return _mean([float(emissions.get("CO2_abs", 0)) / 1000 for emissions in run.emissions])  # mg → g


def read_run(tripinfo: Path, statistics_file: Path | None = None) -> RunOutput:
    """One run's trip info (and the path of its statistic output), read once for every KPI."""
    trips, emissions = [], []
    try:
        for _event, element in ET.iterparse(tripinfo, events=("end",)):
            if element.tag != "tripinfo":
                continue
            trips.append(dict(element.attrib))
            found = element.find("emissions")
            if found is not None:
                emissions.append(dict(found.attrib))
            element.clear()
    except (ET.ParseError, FileNotFoundError) as exc:
        raise TripInfoError(f"cannot read trip info {tripinfo}: {exc}") from None
    return RunOutput(trips, emissions, statistics_file)


def trip_kpis(
    tripinfo: Path, statistics_file: Path | None = None, names: Sequence[str] | None = None
) -> dict[str, float]:
    """The KPIs ``names`` (every registered one by default) of one run, from its trip info and
    statistic output; a KPI the run cannot give is left out."""
    chosen = [kpi(name) for name in names] if names is not None else list(registry().values())
    run = read_run(tripinfo, statistics_file)
    values = {k.name: k.compute(run) for k in chosen}
    return {name: value for name, value in values.items() if value is not None}


def teleports(statistics_file: Path) -> int:
    """Total teleports of a run, from SUMO's ``--statistic-output``."""
    try:
        root = ET.parse(statistics_file).getroot()
    except (ET.ParseError, FileNotFoundError) as exc:
        raise TripInfoError(f"cannot read statistics {statistics_file}: {exc}") from None
    element = root.find("teleports")
    return int(element.get("total", 0)) if element is not None else 0


#: Student's t quantile of a two-sided 95% interval.
_T_QUANTILE_95 = 0.975


def t_interval95(mean: float, std: float, n: int) -> list[float]:
    """The 95% confidence interval of a mean of ``n`` samples with sample standard deviation
    ``std`` (Student's t with n − 1 degrees of freedom); the one every summary and difference uses."""
    half = float(stats.t.ppf(_T_QUANTILE_95, n - 1)) * std / math.sqrt(n)
    return [mean - half, mean + half]


def summarise(values: Iterable[float]) -> dict[str, float | list[float]]:
    """Mean, sample standard deviation and 95% CI of the mean (t-distribution) of one KPI."""
    sample = list(values)
    mean = statistics.fmean(sample)
    if len(sample) < 2:
        return {"mean": mean, "std": 0.0, "ci95": [mean, mean]}
    std = statistics.stdev(sample)
    return {"mean": mean, "std": std, "ci95": t_interval95(mean, std, len(sample))}


def summarise_runs(runs: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float | list[float]]]:
    """Each registered KPI present in every run, summarised over the runs."""
    runs = list(runs)
    names = [name for name in registry() if all(name in run for run in runs)]
    return {name: summarise(run[name] for run in runs) for name in names}


def intersection_kpis(
    lane_data: Path, approaches: Mapping[str, str], window_s: float
) -> dict[str, dict[str, float]]:
    """Per signalised intersection, from a ``laneData`` output covering the whole window:

    - ``approach_delay``: time lost on its approach lanes per vehicle entering them (s/veh);
    - ``queue``: vehicles standing on its approach lanes, on average over the window
      (total waiting seconds / window length).

    ``approaches`` maps each approach lane id to its traffic light id.
    """
    time_loss: dict[str, float] = {tls: 0.0 for tls in approaches.values()}
    waiting = dict(time_loss)
    entered = dict(time_loss)
    try:
        for _event, element in ET.iterparse(lane_data, events=("end",)):
            if element.tag == "lane" and element.get("id") in approaches:
                tls = approaches[element.get("id")]
                time_loss[tls] += float(element.get("timeLoss", 0))
                waiting[tls] += float(element.get("waitingTime", 0))
                entered[tls] += float(element.get("entered", 0))
            if element.tag == "interval":
                element.clear()
    except (ET.ParseError, FileNotFoundError) as exc:
        raise TripInfoError(f"cannot read lane data {lane_data}: {exc}") from None
    return {
        tls: {
            "approach_delay": time_loss[tls] / entered[tls] if entered[tls] else 0.0,
            "queue": waiting[tls] / window_s if window_s else 0.0,
        }
        for tls in sorted(time_loss)
    }


def summarise_intersections(runs: Iterable[Mapping[str, Mapping[str, float]]]) -> dict[str, dict]:
    """Each intersection's KPIs summarised over runs, like :func:`summarise_runs`."""
    runs = list(runs)
    return {
        tls: {name: summarise(run[tls][name] for run in runs) for name in runs[0][tls]} for tls in runs[0]
    }
