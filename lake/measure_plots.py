"""Signal performance measures drawn as ATSPM draws them, and a signal's before/after comparison.

Everything here reads ``silver.signal_events`` through its Delta log with delta-rs
(:mod:`lake.delta`; no Spark session: a plot or a comparison is one signal over a few hours, a
console request or a terminal command) and measures with the pure functions of
:mod:`lake.signal_measures`, so a plot shows exactly what gold holds. Events are read from
:data:`MARGIN` before the period to as long after it: the cycle running when the period starts
began earlier, and without its begin green the first arrivals could not be placed; the one
running when it ends closes later, and its arrivals would be left out.

Each plot function writes a PNG (matplotlib, Agg backend) and returns the data it drew, so a
test asserts numbers instead of comparing images:

- ``pcd``, the Purdue Coordination Diagram: x the time of day, y the time in cycle; per cycle the
  green band (green start to yellow start, counted from the start of red), the yellow band above
  it, red below; every arrival a dot at its time in cycle; one panel per phase, titled with the
  percent of arrivals on green;
- ``split-monitor``: per phase, each cycle's green, yellow and red clearance, the green coloured
  by what ended it (gap out, max out, force off);
- ``split-failure``: per phase, each cycle's green and red occupancy ratios (GOR, ROR5), the
  failed cycles marked, and failures per quarter hour;
- ``approach-delay``: per phase, delay per vehicle each quarter hour;
- ``arrivals-on-red``: per phase, percent of arrivals on red each quarter hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from core.errors import CitybrainError
from lake import signal_measures as measures
from lake.delta import Lake, read_partitions
from lake.tables import SLOT, TABLES, ceil_to, floor_to
from sim.signal_config import SignalConfig, SignalConfiguration

EVENTS = TABLES["silver.signal_events"]
#: Events are read from this long before a period to this long after it, so its first and last
#: cycles are whole.
MARGIN = timedelta(minutes=15)
MEASURES = ("pcd", "split-monitor", "split-failure", "approach-delay", "arrivals-on-red")
#: The phases drawn when none is chosen: the through phases of the main street, as ATSPM does.
DEFAULT_PHASES = (2, 6)
BAND_COLOURS = {"green": "#2ca02c", "yellow": "#f2c200", "red": "#d62728"}


class MeasureError(CitybrainError, ValueError):
    """A signal, period or phase that cannot be measured; the message says which and why."""


def find_signal(configuration: SignalConfiguration, name: str) -> SignalConfig:
    """The signal called ``name`` by its controller id or its SUMO tls id."""
    signal = configuration.by_controller().get(name) or configuration.signals.get(name)
    if signal is None:
        known = sorted(configuration.signals)
        shown = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
        raise MeasureError(
            f"no signal {name!r} in the {configuration.network} signal configuration; it has {shown}"
        )
    return signal


def read_events(lake: Lake, signal: SignalConfig, start: datetime, end: datetime) -> pd.DataFrame:
    """The signal's events (under its controller id, as the lake keeps them) from
    ``silver.signal_events``, in time order, from :data:`MARGIN` before the quarter hour holding
    ``start`` to :data:`MARGIN` after the end of the quarter hour holding ``end``: whole quarter
    hours, as the approach measures are counted in (which read no event after their quarter hour),
    and whole cycles at both ends. Raises :class:`MeasureError` when the period itself has none."""
    if end <= start:
        raise MeasureError(
            f"the period ends ({end:%Y-%m-%d %H:%M}Z) before it starts ({start:%Y-%m-%d %H:%M}Z)"
        )
    first, last = floor_to(start, SLOT) - MARGIN, ceil_to(end, SLOT) + MARGIN
    events = read_partitions(
        lake, EVENTS, EVENTS.partition_values(first, last), columns=EVENTS.arrow_schema().names
    )
    frame = events.filter(pc.equal(events["signal_id"], signal.controller_id)).to_pandas()
    frame = frame[(frame["ts"] >= pd.Timestamp(first)) & (frame["ts"] < pd.Timestamp(last))]
    if not ((frame["ts"] >= pd.Timestamp(start)) & (frame["ts"] < pd.Timestamp(end))).any():
        raise MeasureError(
            f"no events of signal {signal.controller_id} from {start:%Y-%m-%d %H:%M}Z to "
            f"{end:%Y-%m-%d %H:%M}Z in {EVENTS.name}"
        )
    return frame.sort_values(["ts", "event_code", "event_param"], kind="stable").reset_index(drop=True)


def chosen_phases(signal: SignalConfig, phase: int | None) -> tuple[int, ...]:
    """``phase`` when given (and the signal has it), else the main street's through phases."""
    numbers = [p.number for p in signal.phases]
    if phase is not None:
        if phase not in numbers:
            raise MeasureError(f"signal {signal.signal_id} has no phase {phase}; its phases are {numbers}")
        return (phase,)
    return tuple(n for n in DEFAULT_PHASES if n in numbers) or tuple(numbers[:1])


@dataclass
class Figure:
    """What a plot drew: per phase the rows of its panel, and for the PCD the arrivals per band."""

    measure: str
    signal_id: str
    start: datetime
    end: datetime
    path: Path
    phases: tuple[int, ...]
    panels: dict[int, pd.DataFrame] = field(default_factory=dict)
    arrivals_by_band: dict[int, dict[str, int]] = field(default_factory=dict)
    percent_on_green: dict[int, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "signal_id": self.signal_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "path": str(self.path),
            "phases": list(self.phases),
            "rows": {str(p): len(frame) for p, frame in self.panels.items()},
            "arrivals_by_band": {str(p): bands for p, bands in self.arrivals_by_band.items()},
            "percent_on_green": {str(p): v for p, v in self.percent_on_green.items()},
        }


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _phases_figure(phases: Sequence[int], title: str):  # noqa: ANN202 - matplotlib's Figure and Axes
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(len(phases), 1, figsize=(12, 3.6 * len(phases)), squeeze=False, sharex=True)
    figure.suptitle(title)
    return figure, [row[0] for row in axes]


def _save(figure: Any, path: Path) -> Path:
    from matplotlib import pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


# -- per-cycle data ------------------------------------------------------------------------------


def _of_phase(cycles: pd.DataFrame, phase: int) -> pd.DataFrame:
    """One phase's rows of :func:`lake.signal_measures.pcd_cycles` (the cycles gold counts, so a
    plot shows exactly what the tables sum)."""
    return cycles[cycles["phase"] == phase].reset_index(drop=True)


def _within(frame: pd.DataFrame, column: str, start: datetime, end: datetime) -> pd.DataFrame:
    moments = frame[column]
    return frame[(moments >= pd.Timestamp(start)) & (moments < pd.Timestamp(end))].reset_index(drop=True)


def _quarters(events: pd.DataFrame, signal: SignalConfig, start: datetime, end: datetime) -> pd.DataFrame:
    """``gold.approach_measures_15min``'s rows for the quarter hours that [start, end) touches."""
    return measures.approach_measures(events, signal, floor_to(start, SLOT), ceil_to(end, SLOT))


# -- plots ---------------------------------------------------------------------------------------


def plot_measure(
    measure: str,
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phase: int | None = None,
) -> Figure:
    """Draw ``measure`` (one of :data:`MEASURES`) of ``signal`` over [start, end) to ``path``."""
    draw = {
        "pcd": plot_pcd,
        "split-monitor": plot_split_monitor,
        "split-failure": plot_split_failure,
        "approach-delay": plot_approach_delay,
        "arrivals-on-red": plot_arrivals_on_red,
    }.get(measure)
    if draw is None:
        raise MeasureError(f"no measure {measure!r}; the measures are {', '.join(MEASURES)}")
    return draw(events, signal, start, end, path, chosen_phases(signal, phase))


@dataclass(frozen=True)
class PcdPanel:
    """One phase of a Purdue Coordination Diagram: its PCD cycles in the period (red start, green
    start, yellow start, next red start) and its arrivals (time, time in cycle, indication)."""

    phase: int
    cycles: pd.DataFrame
    arrivals: pd.DataFrame

    @property
    def arrivals_by_band(self) -> dict[str, int]:
        return {band: int((self.arrivals["indication"] == band).sum()) for band in ("green", "yellow", "red")}

    @property
    def percent_on_green(self) -> float | None:
        return _percent(self.arrivals_by_band["green"], len(self.arrivals))

    def to_dict(self) -> dict[str, Any]:
        """As data for a chart: each cycle's start and its green, yellow and end in seconds from it;
        each arrival's time and its seconds into its cycle."""
        cycles = self.cycles

        def seconds(column: str) -> list[float]:
            return [round(s, 1) for s in (cycles[column] - cycles["cycle_start"]).dt.total_seconds()]

        return {
            "phase": self.phase,
            "cycles": {
                "start": [t.isoformat() for t in cycles["cycle_start"]],
                "green_s": seconds("green_start"),
                "yellow_s": seconds("yellow_start"),
                "end_s": seconds("cycle_end"),
            },
            "arrivals": {
                "at": [t.isoformat() for t in self.arrivals["arrival_at"]],
                "in_cycle_s": [round(s, 1) for s in self.arrivals["time_in_cycle_s"]],
                "indication": list(self.arrivals["indication"]),
            },
            "arrivals_by_band": self.arrivals_by_band,
            "percent_on_green": self.percent_on_green,
        }


def pcd_panels(
    events: pd.DataFrame, signal: SignalConfig, start: datetime, end: datetime, phases: Sequence[int]
) -> list[PcdPanel]:
    """The PCD of ``phases`` over [start, end): the cycles that overlap it, the arrivals in it."""
    found = measures.arrivals(events, signal)
    every_cycle = measures.pcd_cycles(events, signal)
    panels = []
    for number in phases:
        cycles = _of_phase(every_cycle, number)
        cycles = cycles[
            (cycles["cycle_end"] > pd.Timestamp(start)) & (cycles["cycle_start"] < pd.Timestamp(end))
        ].reset_index(drop=True)
        dots = _within(
            found[(found["phase"] == number) & found["time_in_cycle_s"].notna()], "arrival_at", start, end
        )
        panels.append(PcdPanel(number, cycles, dots))
    return panels


def plot_pcd(
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phases: Sequence[int],
) -> Figure:
    """The Purdue Coordination Diagram: per cycle the green band from its green start to its yellow
    start and the yellow band to the cycle's end (all counted from the start of red, which is
    below the green), and every arrival a dot at its time in cycle, coloured by its indication."""
    figure = Figure("pcd", signal.controller_id, start, end, path, tuple(phases))
    canvas, axes = _phases_figure(phases, f"Purdue Coordination Diagram · signal {signal.controller_id}")
    for ax, panel in zip(axes, pcd_panels(events, signal, start, end, phases), strict=True):
        number, cycles, dots = panel.phase, panel.cycles, panel.arrivals
        figure.panels[number] = dots
        figure.arrivals_by_band[number] = panel.arrivals_by_band
        figure.percent_on_green[number] = panel.percent_on_green
        if len(cycles):
            # Steps from each cycle's start, the last one closed at its end.
            x = pd.concat([cycles["cycle_start"], cycles["cycle_end"].iloc[-1:]]).dt.tz_convert(None)
            green, yellow, length = (
                pd.concat([seconds, seconds.iloc[-1:]]).to_numpy()
                for seconds in (
                    (cycles[column] - cycles["cycle_start"]).dt.total_seconds()
                    for column in ("green_start", "yellow_start", "cycle_end")
                )
            )
            ax.fill_between(
                x, green, yellow, step="post", color=BAND_COLOURS["green"], alpha=0.35, label="green"
            )
            ax.fill_between(
                x, yellow, length, step="post", color=BAND_COLOURS["yellow"], alpha=0.35, label="yellow"
            )
            ax.step(x, length, where="post", color=BAND_COLOURS["red"], linewidth=0.8, label="cycle end")
        ax.scatter(
            dots["arrival_at"].dt.tz_convert(None),
            dots["time_in_cycle_s"],
            s=4,
            color="black",
            label="arrival",
        )
        share = figure.percent_on_green[number]
        ax.set_title(
            f"phase {number} {_phase_label(signal, number)} · {len(dots)} arrivals, "
            f"{'—' if share is None else f'{share:.1f}'} % on green"
        )
        ax.set_ylabel("time in cycle (s)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("time of day (UTC)")
    _save(canvas, path)
    return figure


def plot_split_monitor(
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phases: Sequence[int],
) -> Figure:
    """Each cycle's split (green + yellow + red clearance) per phase, coloured by what ended the
    green, with the green alone below it: max-outs pinned at the top mean the phase wants more."""
    figure = Figure("split-monitor", signal.controller_id, start, end, path, tuple(phases))
    cycles = measures.signal_cycles(events, signal)
    canvas, axes = _phases_figure(phases, f"Split monitor · signal {signal.controller_id}")
    colours = {"gap_out": "#2ca02c", "max_out": "#d62728", "force_off": "#1f77b4", "unknown": "#7f7f7f"}
    for ax, number in zip(axes, phases, strict=True):
        rows = _within(cycles[cycles["phase"] == number], "cycle_start", start, end)
        rows = rows.assign(split_s=rows["green_s"] + rows["yellow_s"] + rows["red_clearance_s"])
        figure.panels[number] = rows
        x = rows["cycle_start"].dt.tz_convert(None)
        ax.scatter(x, rows["green_s"], s=6, color="#bbbbbb", label="green")
        for cause, colour in colours.items():
            mine = rows["termination"] == cause
            if mine.any():
                ax.scatter(x[mine], rows["split_s"][mine], s=10, color=colour, label=cause.replace("_", " "))
        ax.set_title(f"phase {number} {_phase_label(signal, number)} · {len(rows)} cycles")
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("cycle start (UTC)")
    _save(canvas, path)
    return figure


def plot_split_failure(
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phases: Sequence[int],
) -> Figure:
    """GOR and ROR5 of each cycle per phase, the failed cycles (both above 0.79) ringed, and the
    failures per quarter hour as bars."""
    figure = Figure("split-failure", signal.controller_id, start, end, path, tuple(phases))
    quarters = _quarters(events, signal, start, end)
    every_cycle = measures.pcd_cycles(events, signal)
    canvas, axes = _phases_figure(phases, f"Split failures · signal {signal.controller_id}")
    for ax, number in zip(axes, phases, strict=True):
        rows = _within(_of_phase(every_cycle, number), "cycle_start", start, end)
        figure.panels[number] = rows
        x = rows["cycle_start"].dt.tz_convert(None)
        per_quarter = quarters[quarters["phase"] == number]
        bars = ax.twinx()
        bars.bar(
            per_quarter["window_start"].dt.tz_convert(None),
            per_quarter["split_failures"].fillna(0).astype(int),
            width=pd.Timedelta(minutes=14),
            align="edge",
            color="#d62728",
            alpha=0.2,
        )
        bars.set_ylabel("failures per 15 min")
        ax.set_zorder(bars.get_zorder() + 1)  # the cycles' points above the quarter hours' bars
        ax.patch.set_visible(False)
        ax.scatter(x, rows["green_occupancy_ratio"], s=8, color="#2ca02c", label="GOR")
        ax.scatter(x, rows["red_occupancy_ratio"], s=8, color="#d62728", label="ROR5")
        failed = rows["split_failure"].fillna(False).astype(bool)
        ax.scatter(
            x[failed],
            rows["green_occupancy_ratio"][failed],
            s=40,
            facecolors="none",
            edgecolors="black",
            label="split failure",
        )
        ax.axhline(measures.SPLIT_FAILURE_OCCUPANCY, color="black", linewidth=0.6, linestyle="--")
        ax.set_title(f"phase {number} {_phase_label(signal, number)} · {int(failed.sum())} split failures")
        ax.set_ylabel("occupancy ratio")
        ax.set_ylim(0, 1.05)
        ax.legend(loc="upper left", fontsize="small")
    axes[-1].set_xlabel("cycle start (UTC)")
    _save(canvas, path)
    return figure


def plot_approach_delay(
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phases: Sequence[int],
) -> Figure:
    """Delay per vehicle each quarter hour per phase (bars), with the volume (line)."""
    return _per_quarter(
        "approach-delay",
        "delay_per_vehicle_s",
        "delay per vehicle (s)",
        events,
        signal,
        start,
        end,
        path,
        phases,
    )


def plot_arrivals_on_red(
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phases: Sequence[int],
) -> Figure:
    """Percent of arrivals on red each quarter hour per phase (bars), with the volume (line)."""
    return _per_quarter(
        "arrivals-on-red", "percent_on_red", "arrivals on red (%)", events, signal, start, end, path, phases
    )


def _per_quarter(
    measure: str,
    column: str,
    label: str,
    events: pd.DataFrame,
    signal: SignalConfig,
    start: datetime,
    end: datetime,
    path: Path,
    phases: Sequence[int],
) -> Figure:
    figure = Figure(measure, signal.controller_id, start, end, path, tuple(phases))
    quarters = _quarters(events, signal, start, end)
    quarters = quarters.assign(
        percent_on_red=100.0 * quarters["arrivals_on_red"] / quarters["volume"].where(quarters["volume"] > 0)
    )
    canvas, axes = _phases_figure(phases, f"{label[0].upper()}{label[1:]} · signal {signal.controller_id}")
    for ax, number in zip(axes, phases, strict=True):
        rows = quarters[quarters["phase"] == number].reset_index(drop=True)
        figure.panels[number] = rows
        x = rows["window_start"].dt.tz_convert(None)
        ax.bar(x, rows[column].astype(float), width=pd.Timedelta(minutes=14), align="edge", color="#1f77b4")
        ax.set_ylabel(label)
        volume = ax.twinx()
        volume.plot(
            x + pd.Timedelta(minutes=7.5), rows["volume_vph"], color="black", marker="o", markersize=3
        )
        volume.set_ylabel("volume (veh/h)")
        ax.set_title(f"phase {number} {_phase_label(signal, number)}")
    axes[-1].set_xlabel("quarter hour (UTC)")
    _save(canvas, path)
    return figure


def _phase_label(signal: SignalConfig, number: int) -> str:
    group = signal.phase(number)
    return f"({group.direction} {group.movement})" if group.direction else f"({group.movement})"


# -- before and after ----------------------------------------------------------------------------

#: The measures compared, in the order shown: percentages and ratios over the whole period, counts
#: summed, delay per vehicle over all vehicles, cycle and green lengths averaged over phase cycles.
COMPARED = (
    "volume",
    "volume_vph",
    "percent_on_green",
    "percent_on_red",
    "green_ratio",
    "platoon_ratio",
    "green_occupancy_ratio",
    "red_occupancy_ratio",
    "split_failures",
    "delay_per_vehicle_s",
    "mean_cycle_s",
    "mean_green_s",
)


@dataclass(frozen=True)
class Compared:
    phase: int
    measure: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class Comparison:
    """A signal's measures per phase in two periods, and the change (after − before)."""

    signal_id: str
    before: tuple[datetime, datetime]
    after: tuple[datetime, datetime]
    rows: tuple[Compared, ...]

    def to_dict(self) -> dict[str, Any]:
        phases: dict[str, dict[str, dict[str, float | None]]] = {}
        for row in self.rows:
            phases.setdefault(str(row.phase), {})[row.measure] = {
                "before": row.before,
                "after": row.after,
                "change": row.change,
            }
        return {
            "signal_id": self.signal_id,
            "before": {"start": self.before[0].isoformat(), "end": self.before[1].isoformat()},
            "after": {"start": self.after[0].isoformat(), "end": self.after[1].isoformat()},
            "phases": phases,
        }


def period_measures(
    events: pd.DataFrame, signal: SignalConfig, start: datetime, end: datetime
) -> dict[int, dict[str, float | None]]:
    """Each phase's :data:`COMPARED` measures over [start, end), widened to whole quarter hours:
    the approach measures' quarter hours pooled (a ratio of sums, not a mean of ratios, so a quiet
    quarter hour weighs what its vehicles weigh), and the phase cycles that start in the period."""
    first, last = floor_to(start, SLOT), ceil_to(end, SLOT)
    quarters = measures.approach_measures(events, signal, first, last)
    cycles = _within(measures.signal_cycles(events, signal), "cycle_start", first, last)
    hours = (last - first).total_seconds() / 3600
    found: dict[int, dict[str, float | None]] = {}
    for group in signal.phases:
        rows = quarters[quarters["phase"] == group.number]
        mine = cycles[cycles["phase"] == group.number]
        volume = int(rows["volume"].sum())
        n = int(rows["cycles"].sum())
        measured = rows[rows["green_ratio"].notna() & (rows["green_ratio"] > 0)]
        cycle_s = float((measured["green_s"] / measured["green_ratio"]).sum())
        green_ratio = float(measured["green_s"].sum()) / cycle_s if cycle_s else None
        on_green = _ratio(100.0 * rows["arrivals_on_green"].sum(), volume)
        occupancy = rows[rows["green_occupancy_ratio"].notna()]
        found[group.number] = {
            "volume": float(volume),
            "volume_vph": volume / hours,
            "percent_on_green": on_green,
            "percent_on_red": _ratio(100.0 * rows["arrivals_on_red"].sum(), volume),
            "green_ratio": green_ratio,
            "platoon_ratio": on_green / 100 / green_ratio if on_green is not None and green_ratio else None,
            "green_occupancy_ratio": _ratio(
                (occupancy["green_occupancy_ratio"] * occupancy["cycles"]).sum(), occupancy["cycles"].sum()
            ),
            "red_occupancy_ratio": _ratio(
                (occupancy["red_occupancy_ratio"] * occupancy["cycles"]).sum(), occupancy["cycles"].sum()
            ),
            "split_failures": float(rows["split_failures"].sum())
            if n and rows["split_failures"].notna().any()
            else None,
            "delay_per_vehicle_s": _ratio(rows["approach_delay_s"].sum(), volume),
            "mean_cycle_s": float(mine["cycle_s"].mean()) if len(mine) else None,
            "mean_green_s": float(mine["green_s"].mean()) if len(mine) else None,
        }
    return found


def _ratio(part: float, whole: float) -> float | None:
    return float(part) / float(whole) if whole else None


def compare(
    before_events: pd.DataFrame,
    after_events: pd.DataFrame,
    signal: SignalConfig,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
) -> Comparison:
    """Every phase's :data:`COMPARED` measures before and after (each from its own events)."""
    first = period_measures(before_events, signal, *before)
    second = period_measures(after_events, signal, *after)
    rows = tuple(
        Compared(group.number, name, first[group.number][name], second[group.number][name])
        for group in signal.phases
        for name in COMPARED
    )
    return Comparison(signal.controller_id, before, after, rows)
