"""KPIs from SUMO's trip info, and their summary over seeds.

Per run (``tripinfo-output`` with ``write-unfinished``, so vehicles still driving at the end
count too, as in RESCO's evaluation):

- ``resco_delay``: mean of ``timeLoss + departDelay`` per vehicle — RESCO's delay, which
  charges vehicles for waiting to enter the network as well as for driving slower than free flow;
- ``mean_delay``: mean ``timeLoss`` (s); ``travel_time``: mean ``duration`` (s);
  ``waiting_time``: mean ``waitingTime`` (s, time at < 0.1 m/s); ``stops``: mean ``waitingCount``;
- ``throughput``: vehicles that arrived; ``vehicles``: vehicles in the trip info;
- ``teleports``: from SUMO's statistic output; ``co2``: mean CO2 per vehicle (g), when the
  emissions device ran.

Over seeds each KPI becomes mean, sample standard deviation and the 95% confidence interval of
the mean (Student's t), the shape ``{"mean": …, "std": …, "ci95": [lo, hi]}``.
"""

from __future__ import annotations

import math
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

from scipy import stats

from core.errors import CitybrainError

KPI_NAMES = (
    "resco_delay",
    "mean_delay",
    "travel_time",
    "waiting_time",
    "stops",
    "throughput",
    "vehicles",
    "teleports",
    "co2",
)


class TripInfoError(CitybrainError, ValueError):
    """A trip info or statistics file that cannot be read; the message names it."""


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def trip_kpis(tripinfo: Path, statistics_file: Path | None = None) -> dict[str, float]:
    """The KPIs of one run from its trip info (and statistic output, for teleports)."""
    time_loss, depart_delay, duration, waiting, stops, co2 = [], [], [], [], [], []
    arrived = 0
    try:
        for _event, element in ET.iterparse(tripinfo, events=("end",)):
            if element.tag != "tripinfo":
                continue
            time_loss.append(float(element.get("timeLoss", 0)))
            depart_delay.append(float(element.get("departDelay", 0)))
            duration.append(float(element.get("duration", 0)))
            waiting.append(float(element.get("waitingTime", 0)))
            stops.append(float(element.get("waitingCount", 0)))
            if float(element.get("arrival", -1)) >= 0:
                arrived += 1
            emissions = element.find("emissions")
            if emissions is not None:
                co2.append(float(emissions.get("CO2_abs", 0)) / 1000)  # mg → g
            element.clear()
    except (ET.ParseError, FileNotFoundError) as exc:
        raise TripInfoError(f"cannot read trip info {tripinfo}: {exc}") from None
    kpis = {
        "resco_delay": _mean([a + b for a, b in zip(time_loss, depart_delay, strict=True)]),
        "mean_delay": _mean(time_loss),
        "travel_time": _mean(duration),
        "waiting_time": _mean(waiting),
        "stops": _mean(stops),
        "throughput": float(arrived),
        "vehicles": float(len(time_loss)),
        "teleports": float(teleports(statistics_file)) if statistics_file else 0.0,
    }
    if co2:
        kpis["co2"] = _mean(co2)
    return kpis


def teleports(statistics_file: Path) -> int:
    """Total teleports of a run, from SUMO's ``--statistic-output``."""
    try:
        root = ET.parse(statistics_file).getroot()
    except (ET.ParseError, FileNotFoundError) as exc:
        raise TripInfoError(f"cannot read statistics {statistics_file}: {exc}") from None
    element = root.find("teleports")
    return int(element.get("total", 0)) if element is not None else 0


def summarise(values: Iterable[float]) -> dict[str, float | list[float]]:
    """Mean, sample standard deviation and 95% CI of the mean (t-distribution) of one KPI."""
    sample = list(values)
    mean = statistics.fmean(sample)
    if len(sample) < 2:
        return {"mean": mean, "std": 0.0, "ci95": [mean, mean]}
    std = statistics.stdev(sample)
    half = stats.t.ppf(0.975, len(sample) - 1) * std / math.sqrt(len(sample))
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def summarise_runs(runs: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float | list[float]]]:
    """Each KPI present in every run, summarised over the runs."""
    runs = list(runs)
    names = [name for name in KPI_NAMES if all(name in run for run in runs)]
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
