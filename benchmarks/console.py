"""The operator console under load: C clients on loopback against the plan list and the map.

Prints one JSON object (the same as ``citybrain bench console --json``) and writes it to
``benchmarks/results/console.json`` (``--results PATH`` elsewhere); the file is replaced only when
the run completes. Progress goes to stderr.
Usage: python benchmarks/console.py [--clients C] [--seconds S] [--plans N] [--server-workers W]
       [--results PATH]
"""

import argparse
import json
import sys
from pathlib import Path


def _unshadow_the_console_package() -> None:
    """Run as a script, this file's folder comes first on ``sys.path``, and this file, being
    called ``console.py``, would hide the ``console`` package it benchmarks; take the folder off."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def main() -> None:
    _unshadow_the_console_package()
    from rich.console import Console

    from console.benchmark import (
        DEFAULT_PLANS,
        DEFAULT_SERVER_WORKERS,
        RESULTS_FILE,
        run_console_benchmark,
        write_results,
    )
    from core.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--plans", type=int, default=DEFAULT_PLANS)
    parser.add_argument("--server-workers", type=int, default=DEFAULT_SERVER_WORKERS)
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_FILE,
        help=f"where to write the figures (default {RESULTS_FILE})",
    )
    args = parser.parse_args()
    result = run_console_benchmark(
        Settings(),
        clients=args.clients,
        seconds=args.seconds,
        plans=args.plans,
        server_workers=args.server_workers,
        progress=Console(stderr=True),
    )
    write_results(result, args.results)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
