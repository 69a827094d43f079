"""Emergency-vehicle priority measured: each dispatch run on one seed with and without it.

For every scenario, ``dispatches`` emergency trips are drawn from a seeded generator: an
origin and a destination edge whose fastest route crosses at least ``min_signals`` signals
(the routes with the most signals found, where the network has none that long) and a dispatch
time in the window, early enough for the trip to end inside it. Each dispatch is simulated
three times on the same seed — the vehicle obeying the signals, then with priority, then
obeying the signals but dispatched one second later — as
:class:`~optimizer.priority.controller.EmergencyPriority` runs, through the executor (one
process per run). The third run is the noise control: a congested network without teleporting
(RESCO's ingolstadt21) can tip into gridlock or out of it on any small change, and how much the
other traffic's delay moves for a one-second shift is the yardstick for how much of the
priority run's change is the priority's doing. Compared, per scenario:

- the vehicle's travel time from dispatch to arrival (mean and 95% CI of each, the reduction
  of the mean, and the mean and CI of the paired per-dispatch reductions);
- the signals it crossed and how many of them it crossed without stopping;
- the other traffic's mean delay (timeLoss) over the window: its change with priority (of the
  mean over dispatches, and the median of the per-dispatch changes) beside the same for the
  shifted baseline;
- the safety violations found on every simulated step of every signal (in every run), and the
  preemptions with their time from request to green.

The goals are those of issue 17: a reduction of at least 30% and under 5% more delay for the
other traffic, with no violation.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from sim.dispatches import Dispatch, draw_dispatches
from sim.executor import Trial, open_executor
from sim.kpis import summarise
from sim.scenarios import Scenario

#: The goals the report checks: at least this much shorter a trip, at most this much more delay
#: for the rest of the traffic.
REDUCTION_GOAL = 0.30
OTHERS_DELAY_GOAL = 0.05
#: Hangzhou's reported figure for comparison: 7 km through 21 signals, about 30 → 14 minutes.
HANGZHOU = {"route_km": 7, "signals": 21, "before_min": 30, "after_min": 14, "reduction": 1 - 14 / 30}


#: The runs of one dispatch: the vehicle obeying the signals, with priority, and obeying the
#: signals again but dispatched one second later (the noise control).
MODES = {
    "baseline": {"preempt": False},
    "priority": {"preempt": True},
    "shifted": {"preempt": False, "shift_s": 1.0},
}


@dataclass(frozen=True)
class DispatchRuns:
    dispatch: Dispatch
    runs: dict[str, dict[str, Any]]  # by mode

    def trip(self, mode: str) -> dict[str, Any]:
        return self.runs[mode]["controller"]

    def others_delay(self, mode: str) -> float:
        """The run's mean delay per vehicle without the emergency vehicle's own."""
        run = self.runs[mode]
        vehicles, mean, own = run["vehicles"], run["mean_delay"], self.trip(mode)["time_loss_s"]
        return (vehicles * mean - own) / (vehicles - 1) if vehicles > 1 else mean


def _relative(before: float, after: float) -> float | None:
    return None if before == 0 else (after - before) / before


def _crossed(runs: Sequence[DispatchRuns], mode: str) -> dict[str, int]:
    total = sum(r.trip(mode)["signals_crossed"] for r in runs)
    stopped = sum(r.trip(mode)["signals_stopped_at"] for r in runs)
    return {"crossed": total, "without_stopping": total - stopped}


def _others(runs: Sequence[DispatchRuns], mode: str) -> dict[str, Any]:
    """The other traffic's delay in ``mode`` against the baseline: per-dispatch mean, the change
    of the mean and the median of the per-dispatch changes."""
    base = [r.others_delay("baseline") for r in runs]
    other = [r.others_delay(mode) for r in runs]
    changes = [c for b, o in zip(base, other, strict=True) if (c := _relative(b, o)) is not None]
    return {
        "delay_s": summarise(other),
        "change": _relative(statistics.fmean(base), statistics.fmean(other)),
        "median_change": statistics.median(changes) if changes else None,
    }


def _scenario_figures(runs: Sequence[DispatchRuns]) -> dict[str, Any]:
    arrived = [
        r for r in runs if all(r.trip(m)["travel_time_s"] is not None for m in ("baseline", "priority"))
    ]
    base_times = [r.trip("baseline")["travel_time_s"] for r in arrived]
    prio_times = [r.trip("priority")["travel_time_s"] for r in arrived]
    reductions = [1 - p / b for b, p in zip(base_times, prio_times, strict=True) if b > 0]
    preemptions = [e for r in runs for e in r.trip("priority")["preemptions"]]
    to_green = [e["green_at"] - e["requested_at"] for e in preemptions if e["green_at"] is not None]
    reduction = 1 - statistics.fmean(prio_times) / statistics.fmean(base_times) if base_times else None
    priority_cost, noise = _others(runs, "priority"), _others(runs, "shifted")
    violations = {mode: sum(len(r.trip(mode)["violations"]) for r in runs) for mode in MODES}
    return {
        "dispatches": len(runs),
        "arrived_both": len(arrived),
        "not_arrived": {mode: sum(r.trip(mode)["travel_time_s"] is None for r in runs) for mode in MODES},
        "route_signals_mean": statistics.fmean(r.dispatch.signals for r in runs),
        "travel_time_s": {
            "baseline": summarise(base_times) if base_times else None,
            "priority": summarise(prio_times) if prio_times else None,
        },
        "reduction": reduction,
        "paired_reduction": summarise(reductions) if reductions else None,
        "signals": {"baseline": _crossed(runs, "baseline"), "priority": _crossed(runs, "priority")},
        "others_delay_s": {
            "baseline": summarise([r.others_delay("baseline") for r in runs]),
            "priority": priority_cost["delay_s"],
            "shifted": noise["delay_s"],
        },
        "others_delay_change": priority_cost["change"],
        "others_delay_median_change": priority_cost["median_change"],
        "others_delay_noise": noise["change"],
        "others_delay_noise_median": noise["median_change"],
        "preemptions": len(preemptions),
        "until_green_s": summarise(to_green) if to_green else None,
        "checked_steps": sum(r.trip(mode)["checked_steps"] for r in runs for mode in MODES),
        "violations": violations,
        "violation_examples": [v for r in runs for v in r.trip("priority")["violations"]][:5],
        "goals": {
            "reduction_at_least_30pct": reduction is not None and reduction >= REDUCTION_GOAL,
            "others_delay_under_5pct_more": priority_cost["change"] is not None
            and priority_cost["change"] < OTHERS_DELAY_GOAL,
            "zero_violations": violations["priority"] == 0,
        },
        "runs": [
            {
                "origin": r.dispatch.origin,
                "destination": r.dispatch.destination,
                "depart": r.dispatch.depart,
                "seed": r.dispatch.seed,
                "route_signals": r.dispatch.signals,
                **{f"{mode}_s": r.trip(mode)["travel_time_s"] for mode in MODES},
                **{f"{mode}_stops": r.trip(mode)["signals_stopped_at"] for mode in ("baseline", "priority")},
                **{f"others_delay_{mode}_s": r.others_delay(mode) for mode in MODES},
            }
            for r in runs
        ],
    }


def run_priority_benchmark(
    settings: Settings,
    scenarios: Sequence[Scenario],
    dispatches: int = 20,
    seed: int = 17,
    min_signals: int = 4,
    workers: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The figures for each scenario (see the module's docstring), keyed by scenario name."""
    result: dict[str, Any] = {"hangzhou": HANGZHOU, "dispatches": dispatches, "seed": seed, "scenarios": {}}
    with (
        open_executor(settings, workers) as executor,
        tempfile.TemporaryDirectory(prefix="citybrain-priority-") as out,
    ):
        for scenario in scenarios:
            drawn = draw_dispatches(scenario, dispatches, seed, min_signals)
            trials = [
                Trial(
                    scenario,
                    "emergency-priority",
                    d.seed,
                    {
                        "origin": d.origin,
                        "destination": d.destination,
                        "depart": d.depart + options.get("shift_s", 0.0),
                        "preempt": options["preempt"],
                    },
                    out_dir=Path(out) / mode,
                )
                for d in drawn
                for mode, options in MODES.items()
            ]
            finished = itertools.count(1)

            def progress(_: int, name: str = scenario.name, total: int = len(trials)) -> None:
                log(f"{name}: {next(finished)}/{total} runs")  # noqa: B023 - used before the loop moves on

            runs = iter(executor.map(trials, progress))
            grouped = [DispatchRuns(d, {mode: next(runs) for mode in MODES}) for d in drawn]
            result["scenarios"][scenario.name] = _scenario_figures(grouped)
    return result
