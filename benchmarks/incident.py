"""Incident re-planning: delay under a lane closure with the current plan and with the plan the
watch proposes for it, and the time from the incident's confirmation to the proposal, on the
corridor and RESCO's ingolstadt7.

Prints one JSON object (the same as ``citybrain bench incident --json``), writes it to
``benchmarks/results/incident.json`` and the plot to ``benchmarks/results/incident.png``; progress
goes to stderr.
Usage: python -m benchmarks.incident [--seeds 10] [--budget-s 120] [--scenarios a,b] [--workers N]
"""

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from core.settings import Settings
from optimizer.incidents.benchmark import BUDGET_S, run_incident_benchmark
from optimizer.incidents.plots import plot_incident
from sim.scenarios import resolve

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = "corridor,resco/ingolstadt7"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget-s", type=float, default=BUDGET_S)
    parser.add_argument("--scenarios", default=SCENARIOS)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    settings = Settings()
    scenarios = [resolve(name, settings.sim_dir / "build") for name in args.scenarios.split(",") if name]
    result = run_incident_benchmark(
        scenarios,
        seeds=args.seeds,
        budget_s=args.budget_s,
        workers=args.workers,
        log=Console(stderr=True).log,
    )
    result["plot"] = str(plot_incident(result, RESULTS / "incident.png").relative_to(RESULTS.parent.parent))
    (RESULTS / "incident.json").write_text(json.dumps(result, indent=1) + "\n")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
