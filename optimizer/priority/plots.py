"""The priority benchmark as a picture: each dispatch's trip without and with priority, per scenario.

One panel per scenario: a dispatch is a point at (trip obeying the signals, trip with priority);
points below the diagonal are trips priority shortened, and the dashed line is the goal (30%
shorter). Drawn on a bare Agg figure, as :mod:`sim.plots` does, so it works anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from optimizer.priority.benchmark import REDUCTION_GOAL

_COLOUR = "#0072B2"  # Okabe–Ito blue, as sim.plots


def plot_priority(result: Mapping[str, Any], path: Path) -> Path:
    """Draw a :func:`~optimizer.priority.benchmark.run_priority_benchmark` result to ``path`` (PNG)."""
    scenarios = result["scenarios"]
    figure = Figure(figsize=(4.2 * max(len(scenarios), 1), 4.4), layout="constrained")
    for index, (name, row) in enumerate(scenarios.items()):
        axes = figure.add_subplot(1, max(len(scenarios), 1), index + 1)
        runs = [r for r in row["runs"] if r["baseline_s"] is not None and r["priority_s"] is not None]
        top = max([r["baseline_s"] for r in runs] + [r["priority_s"] for r in runs] + [1.0]) * 1.05
        axes.plot([0, top], [0, top], color="#7f7f7f", linewidth=1, label="no change")
        axes.plot([0, top], [0, top * (1 - REDUCTION_GOAL)], color="#7f7f7f", linestyle="--", linewidth=1,
                  label=f"{REDUCTION_GOAL:.0%} shorter (goal)")  # fmt: skip
        axes.scatter([r["baseline_s"] for r in runs], [r["priority_s"] for r in runs], color=_COLOUR, s=18)
        reduction = row["reduction"]
        change = row["others_delay_change"]
        subtitle = "" if reduction is None else f"mean trip {reduction:.0%} shorter"
        if change is not None:
            subtitle += f", others' delay {change:+.1%}"
        axes.set_title(f"{name}\n{subtitle}", fontsize=9)
        axes.set_xlim(0, top)
        axes.set_ylim(0, top)
        axes.set_xlabel("trip obeying the signals (s)")
        axes.set_ylabel("trip with priority (s)")
        axes.legend(fontsize=7, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure).print_png(str(path))
    return path
