"""Our `fixed` controller (each RESCO scenario's own signal programs) beside RESCO's figures.

Prints one JSON object: per scenario the RESCO delay (mean, std, 95% CI over seeds) measured
here on SUMO 1.28, the fixed-time delay RESCO published (SUMO 1.9, RESCO's own fixed-time
programs), and the calibration figure measured when the project was specified.
Usage: python benchmarks/resco_fixed.py [--seeds 3] [--workers 2]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from core.settings import Settings
from sim.executor import open_executor
from sim.kpis import summarise
from sim.runner import run_seeds
from sim.scenarios import RESCO_WINDOWS, resco

#: Fixed-time average delay (s) in RESCO's published results table.
RESCO_PUBLISHED_FIXED = {
    "cologne1": 56.61,
    "cologne3": 46.35,
    "cologne8": 63.77,
    "ingolstadt1": 39.40,
    "ingolstadt7": 91.31,
    "ingolstadt21": 133.10,
}
#: The scenarios' own programs on SUMO 1.28, 3 seeds, as measured when the issue was filed.
CALIBRATION = {
    "cologne1": 43.95,
    "cologne3": 35.78,
    "cologne8": 49.0,
    "ingolstadt1": 29.29,
    "ingolstadt7": 85.85,
    "ingolstadt21": 171.6,
    "grid4x4": 91.5,
    "arterial4x4": 1240,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    console = Console(stderr=True)
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="citybrain-resco-") as tmp,
        open_executor(Settings(), args.workers) as executor,
    ):
        for name in RESCO_WINDOWS:
            started = time.perf_counter()
            runs = run_seeds(
                resco(name), "fixed", list(range(1, args.seeds + 1)), Path(tmp), executor=executor
            )
            delay = summarise(run["resco_delay"] for run in runs)
            results[name] = {
                "resco_delay": {k: round(v, 2) if isinstance(v, float) else [round(x, 2) for x in v]
                                for k, v in delay.items()},
                "teleports": sum(run["teleports"] for run in runs),
                "resco_published_fixed": RESCO_PUBLISHED_FIXED.get(name),
                "calibration": CALIBRATION[name],
                "vs_calibration": round(delay["mean"] / CALIBRATION[name] - 1, 3),
                "wall_s": round(time.perf_counter() - started, 1),
            }  # fmt: skip
            console.log(f"{name}: {delay['mean']:.2f} s (calibration {CALIBRATION[name]})")
    json.dump({"seeds": args.seeds, "controller": "fixed", "scenarios": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
