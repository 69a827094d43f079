"""Ingest throughput against a plain kafka-python poll loop over the same records, in one run.

Prints one JSON object (the same as ``citybrain bench ingest --json``); progress goes to stderr.
Usage: python benchmarks/ingest.py [--records N] [--invalid-fraction F] [--rounds R] [--workers W]
                                  [--broker tansu|kafka] [--processes 1,2]
"""

import argparse
import json
import sys

from rich.console import Console

from streaming.benchmark import run_ingest_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--invalid-fraction", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument(
        "--processes",
        type=lambda text: tuple(sorted({int(part) for part in text.split(",") if part})),
        default=(1, 2),
        help="ingest processes in one consumer group to compare, e.g. 1,2 ('' for none)",
    )
    args = parser.parse_args()
    result = run_ingest_benchmark(
        args.records,
        args.invalid_fraction,
        rounds=args.rounds,
        workers=args.workers,
        broker_kind=args.broker,
        processes=args.processes,
        progress=Console(stderr=True),
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
