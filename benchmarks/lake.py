"""The lake at a mid-size city's volume: one day and seven days fused end to end, gold beside DuckDB.

Prints one JSON object (the same as ``citybrain bench lake --json``) and writes it to
``benchmarks/results/lake.json`` (``--results PATH`` elsewhere), the file the README's figures come
from; the file is replaced only when the run completes. Progress goes to stderr.
With ``--cluster loopback`` (or a ``spark://`` master) it instead fuses one day on ``local[*]`` and
on a Spark standalone cluster in the same process and writes ``benchmarks/results/lake_cluster.json``.
Usage: python benchmarks/lake.py [--days D] [--detectors N] [--probes P] [--seed S] [--regenerate]
       [--cluster loopback|spark://HOST:PORT] [--results PATH]
"""

import argparse
import json
import sys
from datetime import date
from pathlib import Path


def _unshadow_the_lake_package() -> None:
    """Run as a script, this file's folder comes first on ``sys.path``, and this file, being
    called ``lake.py``, would hide the ``lake`` package it benchmarks; take the folder off."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def main() -> None:
    _unshadow_the_lake_package()
    from rich.console import Console

    from core.settings import Settings
    from lake.benchmark import (
        CLUSTER_RESULTS_FILE,
        DEFAULT_START_DAY,
        RESULTS_FILE,
        compare_on_cluster,
        run_lake_benchmark,
        write_results,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--detectors", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start-day", type=date.fromisoformat, default=DEFAULT_START_DAY)
    parser.add_argument("--gold-repeats", type=int, default=2)
    parser.add_argument(
        "--regenerate", action="store_true", help="generate the bronze again even if a kept one matches"
    )
    parser.add_argument(
        "--cluster",
        help="fuse one day on local[*] and on this spark:// master, or on one started here ('loopback')",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help=f"where the figures go (default {RESULTS_FILE}; with --cluster {CLUSTER_RESULTS_FILE.name})",
    )
    args = parser.parse_args()
    if args.cluster:
        result = compare_on_cluster(
            Settings(),
            args.cluster,
            detectors=args.detectors,
            probes=args.probes,
            seed=args.seed,
            start_day=args.start_day,
            reuse_bronze=not args.regenerate,
            progress=Console(stderr=True),
        )
        write_results(result, args.results or CLUSTER_RESULTS_FILE)
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return
    result = run_lake_benchmark(
        Settings(),
        days=args.days,
        detectors=args.detectors,
        probes=args.probes,
        seed=args.seed,
        start_day=args.start_day,
        reuse_bronze=not args.regenerate,
        gold_repeats=args.gold_repeats,
        progress=Console(stderr=True),
    )
    write_results(result, args.results or RESULTS_FILE)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
