"""The comparison plot of an evaluation: one panel per key KPI, a bar per controller.

Drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: no global state and no display needed, so it works in a CLI, a DAG task or a
test process alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: The KPIs drawn, with axis labels that carry their unit and which way is better.
KEY_KPIS: dict[str, str] = {
    "resco_delay": "RESCO delay (s/veh) ↓",
    "travel_time": "travel time (s/veh) ↓",
    "waiting_time": "waiting time (s/veh) ↓",
    "throughput": "throughput (veh) ↑",
    "stops": "stops (per veh) ↓",
}

#: Colour-blind-safe (Okabe–Ito); the baseline always gets the grey.
_BASELINE_COLOUR = "#7f7f7f"
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")


def plot_comparison(result: Mapping[str, Any], path: Path, kpi_labels: Mapping[str, str] = KEY_KPIS) -> Path:
    """Draw an :func:`sim.evaluate.evaluate` result to ``path`` (PNG) and return the path.

    Each bar is a controller's mean over seeds with its 95% CI as the error bar; a ``*``
    above a bar marks a significant paired difference to the baseline (the first, grey bar).
    """
    names: Sequence[str] = list(result["controllers"])
    panels = [kpi for kpi in kpi_labels if all(kpi in result["controllers"][n]["kpis"] for n in names)]
    columns = min(3, len(panels)) or 1
    rows = -(-len(panels) // columns) or 1
    width = max(4.2, 0.9 * len(names) + 1.6)
    figure = Figure(figsize=(width * columns, 3.6 * rows + 0.8), layout="constrained")
    FigureCanvasAgg(figure)
    colours = [_BASELINE_COLOUR, *(_COLOURS[i % len(_COLOURS)] for i in range(len(names) - 1))]
    for index, kpi in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        means, lows, highs = [], [], []
        for name in names:
            summary = result["controllers"][name]["kpis"][kpi]
            low, high = summary["ci95"]
            means.append(summary["mean"])
            lows.append(summary["mean"] - low)
            highs.append(high - summary["mean"])
        positions = range(len(names))
        axes.bar(positions, means, color=colours, yerr=[lows, highs], capsize=5, ecolor="#222222", width=0.65)
        axes.set_xticks(list(positions), names, rotation=20 if len(names) > 3 else 0, ha="center")
        axes.set_title(kpi_labels[kpi], fontsize=11)
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
        top = max(m + h for m, h in zip(means, highs, strict=True)) or 1.0
        for position, name, mean, high in zip(positions, names, means, highs, strict=True):
            difference = result["controllers"][name].get("difference", {}).get(kpi)
            mark = " *" if difference and difference["significant"] else ""
            axes.annotate(
                f"{mean:,.1f}{mark}",
                (position, mean + high),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=9,
            )
        axes.set_ylim(0, top * 1.15)
    window = result.get("window", [0, 0])
    seeds = result.get("seeds", [])
    figure.suptitle(
        f"{result.get('scenario', '')} · {(window[1] - window[0]) / 60:g} min from {window[0]} s · "
        f"{len(seeds)} seeds, the same for every controller",
        fontsize=12,
    )
    key = (
        f"bars: mean over seeds\nwhiskers: 95% CI of the mean\n* : significant paired difference\n"
        f"    to {names[0]} (t-test, p < {result.get('alpha', 0.05)})"
    )
    if len(panels) < rows * columns:  # a spare panel: the key goes there, out of the way
        spare = figure.add_subplot(rows, columns, len(panels) + 1)
        spare.axis("off")
        spare.text(0.05, 0.5, key, va="center", ha="left", fontsize=11, linespacing=1.6)
    else:
        figure.text(0.01, 0.0, key.replace("\n", " · "), fontsize=9, va="bottom")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
