"""Every method on the eight RESCO scenarios beside RESCO's best published delay, in one run.

Prints one JSON object (the same as ``citybrain bench resco --json``), writes it to
``benchmarks/results/resco.json`` and the plot to ``benchmarks/results/resco.png`` (and, after
each scenario, what it has so far to ``resco.partial.json``); progress goes to stderr.
Usage: python benchmarks/resco.py [--seeds 10] [--budget-minutes 3] [--scenarios a,b]
"""

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from core.settings import Settings
from optimizer.resco_benchmark import plot_resco, run_resco_benchmark
from sim.scenarios import RESCO_WINDOWS

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget-minutes", type=float, default=3.0)
    parser.add_argument("--scenarios", default=",".join(RESCO_WINDOWS))
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    console = Console(stderr=True)

    def keep(partial: dict) -> None:
        (RESULTS / "resco.partial.json").write_text(json.dumps(partial, indent=1) + "\n")

    result = run_resco_benchmark(
        Settings(),
        scenarios=[name for name in args.scenarios.split(",") if name],
        seeds=args.seeds,
        budget_minutes=args.budget_minutes,
        workers=args.workers,
        log=console.log,
        on_scenario=keep,
    )
    result["plot"] = str(plot_resco(result, RESULTS / "resco.png").relative_to(RESULTS.parent.parent))
    (RESULTS / "resco.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "resco.partial.json").unlink(missing_ok=True)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
