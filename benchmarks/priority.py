"""Emergency-vehicle priority: each dispatch's trip with and without it, the cost to other traffic,
and the safety rules checked on every step, on the corridor, cologne8 and ingolstadt21.

Prints one JSON object (the same as ``citybrain bench priority --json``), writes it to
``benchmarks/results/priority.json`` and the plot to ``benchmarks/results/priority.png``; progress
goes to stderr.
Usage: python benchmarks/priority.py [--dispatches 20] [--seed 17] [--scenarios a,b] [--workers N]
"""

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from core.settings import Settings
from optimizer.priority.benchmark import run_priority_benchmark
from optimizer.priority.plots import plot_priority
from sim.scenarios import resolve

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = "corridor,resco/cologne8,resco/ingolstadt21"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispatches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--scenarios", default=SCENARIOS)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    settings = Settings()
    scenarios = [resolve(name, settings.sim_dir / "build") for name in args.scenarios.split(",") if name]
    result = run_priority_benchmark(
        settings,
        scenarios,
        dispatches=args.dispatches,
        seed=args.seed,
        workers=args.workers,
        log=Console(stderr=True).log,
    )
    result["plot"] = str(plot_priority(result, RESULTS / "priority.png").relative_to(RESULTS.parent.parent))
    (RESULTS / "priority.json").write_text(json.dumps(result, indent=1) + "\n")
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
