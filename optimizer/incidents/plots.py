"""The incident benchmark as a picture: delay during the incident, per scenario.

One group of bars per scenario — the current programs without the closure, with it, and the
incident plan with it — each with its 95% confidence interval over the seeds, and the goal
(15% less than the current programs under the closure) as a dashed mark. Drawn on a bare Agg
figure, as :mod:`sim.plots` does, so it works anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from optimizer.incidents.benchmark import DELAY_GOAL

#: The bars, in order, with their labels and Okabe–Ito colours.
BARS = (
    ("without_incident", "no incident, current plan", "#999999"),
    ("current_plan", "incident, current plan", "#D55E00"),
    ("incident_plan", "incident, incident plan", "#0072B2"),
)


def plot_incident(result: Mapping[str, Any], path: Path) -> Path:
    """Draw a :func:`~optimizer.incidents.benchmark.run_incident_benchmark` result to ``path`` (PNG)."""
    rows = {name: row for name, row in result["scenarios"].items() if row["delay"] is not None}
    figure = Figure(figsize=(2.6 + 2.4 * max(len(rows), 1), 4.2), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    width = 0.26
    for offset, (key, label, colour) in enumerate(BARS):
        xs = [i + (offset - 1) * width for i in range(len(rows))]
        means = [row["delay"][key]["mean"] for row in rows.values()]
        errors = [
            [m - row["delay"][key]["ci95"][0] for m, row in zip(means, rows.values(), strict=True)],
            [row["delay"][key]["ci95"][1] - m for m, row in zip(means, rows.values(), strict=True)],
        ]
        axes.bar(xs, means, width, yerr=errors, capsize=3, color=colour, label=label)
    for i, row in enumerate(rows.values()):
        goal = row["delay"]["current_plan"]["mean"] * (1 - DELAY_GOAL)
        axes.plot(
            [i - 1.5 * width, i + 1.5 * width], [goal, goal], color="black", linestyle="--", linewidth=1
        )
    axes.set_xticks(range(len(rows)))
    axes.set_xticklabels(
        [f"{name}\n{row['delay']['reduction']:.0%} less, proposed in {row['proposal']['seconds']:.0f} s"
         for name, row in rows.items()],
        fontsize=8,
    )  # fmt: skip
    axes.set_ylabel("RESCO delay during the incident (s/vehicle)")
    axes.set_title(
        f"A lane closed for {result['incident_minutes']} minutes; dashed: the goal ({DELAY_GOAL:.0%} less)",
        fontsize=9,
    )
    axes.legend(fontsize=8, loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure).print_png(str(path))
    return path
