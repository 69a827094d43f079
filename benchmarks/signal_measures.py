"""Signal performance measures at scale: the lake's Spark job beside the same functions in pandas.

The corridor's sensor twin logs its seven signals for ``--minutes`` (seed 1); the log is copied to
``--signals`` signals (ids ``<tls>_<k>``, each configured as its original) so the volume is a
city's, landed in bronze as the ingest writes it and fused to ``silver.signal_events``. Then, in
one process and in turns over ``--rounds``, the gold measures (``gold.signal_cycles`` and
``gold.approach_measures_15min``) are computed by the lake's Spark job (``applyInPandas`` per
signal) and by the same pure functions called one signal after another in pandas; each one's best
round counts. ``spark_over_pandas`` is what Spark's shuffle and Arrow transfer cost over the
functions themselves on this machine; ``events_per_s`` what each path sustains, and so how much of a
city's day one core measures. Both paths must give the same rows.

Prints one JSON object and writes it to ``benchmarks/results/signal_measures.json``; progress goes to
stderr. Usage: python benchmarks/signal_measures.py [--minutes 60] [--signals 140] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, and its lake.py would hide the lake package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

RESULTS = Path(__file__).resolve().parent / "results" / "signal_measures.json"
TOPIC = "traffic.signal_event.v1"
SEED, DAY = 1, "2026-11-28"


def _twin_log(settings: Any, minutes: int) -> tuple[list[dict[str, Any]], float]:
    from sim.scenarios import resolve
    from sim.twin import run_twin

    scenario = resolve("corridor", settings.sim_dir / "build")
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    run_twin(
        settings,
        scenario,
        out_dir=settings.var_dir / "twin",
        sink=lambda topic, record: records.append(record) if topic == TOPIC else None,
        until=scenario.begin + minutes * 60,
        day=DAY,
        seed=SEED,
    )
    return records, time.perf_counter() - started


def _copies(records: list[dict[str, Any]], configuration: Any, signals: int) -> tuple[list, dict[str, Any]]:
    """The log of ``signals`` signals: each twin signal's log again under ``<id>_<k>``."""
    from sim.signal_config import SignalConfiguration

    originals = configuration.by_controller()
    per_copy = -(-signals // len(originals))
    copied, configs = [], {}
    for k in range(per_copy):
        for controller, signal in originals.items():
            if len(configs) == signals:
                break
            name = f"{controller}_{k}"
            configs[name] = dataclasses.replace(signal, signal_id=name, controller_id=name)
            copied += [{**r, "signal_id": name} for r in records if r["signal_id"] == controller]
    return copied, SignalConfiguration(configuration.network, configs).by_controller()


def _land(lake: Path, records: list[dict[str, Any]]) -> None:
    from schemas import contract
    from streaming.bronze import Row, plan_files, to_table, write_durably

    key = contract(TOPIC).key_of
    rows = []
    for offset, record in enumerate(records):
        arrived = datetime.fromisoformat(record["ts"].replace("Z", "+00:00")) + timedelta(seconds=2)
        rows.append(Row(record, offset, int(arrived.timestamp() * 1000), key(record)))
    for path, group in plan_files(lake, TOPIC, 0, rows).items():
        write_durably(to_table(TOPIC, 0, group), path)


def _pandas(events: Any, signals: dict, start: datetime, end: datetime) -> tuple[int, int]:
    from lake import signal_measures as measures

    cycles = approach = 0
    for signal_id, mine in events.groupby("signal_id", sort=True):
        mine = mine.sort_values(["ts", "event_code", "event_param"], kind="stable")
        found = measures.signal_cycles(mine, signals[signal_id])
        cycles += int(((found["cycle_end"] >= start) & (found["cycle_end"] < end)).sum())
        approach += len(measures.approach_measures(mine, signals[signal_id], start, end))
    return cycles, approach


def _spark(spark: Any, lake: Path, signals: dict, start: datetime, end: datetime) -> tuple[int, int]:
    from lake import signal_gold

    return (
        signal_gold.signal_cycles(spark, lake, signals, start, end).count(),
        signal_gold.approach_measures(spark, lake, signals, start, end).count(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="minutes of the corridor's morning")
    parser.add_argument("--signals", type=int, default=140, help="signals the log is copied to")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.minutes < 30 or args.signals < 7 or args.rounds < 1:
        parser.error("expected --minutes of at least 30, --signals of at least 7, --rounds of at least 1")

    from core.settings import Settings
    from core.spark import spark_session
    from lake.delta import read_partitions
    from lake.jobs import fuse
    from lake.tables import SLOT, TABLES, ceil_to, floor_to
    from sim.signal_config import configuration

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="citybrain-signal-bench-") as folder:
        settings = Settings(var_dir=Path(folder) / "var", lake_network="corridor", spark_shuffle_partitions=4)
        say(f"the corridor twin, {args.minutes} minutes")
        records, twin_s = _twin_log(settings, args.minutes)
        log, signals = _copies(records, configuration(settings), args.signals)
        say(f"{len(records):,} events of 7 signals → {len(log):,} of {len(signals)}; landing in bronze")
        _land(settings.lake_path, log)
        moments = sorted(r["ts"] for r in log)
        first = ceil_to(datetime.fromisoformat(moments[0].replace("Z", "+00:00")), SLOT)
        last = floor_to(datetime.fromisoformat(moments[-1].replace("Z", "+00:00")), SLOT) + SLOT
        start, end = first + SLOT, last  # whole quarter hours, each with its lookback in the log
        spark = spark_session(settings)
        fuse(settings, start - SLOT, end, layers=("silver",), spark=spark)
        events = read_partitions(settings.lake_path, TABLES["silver.signal_events"]).to_pandas()
        measured = events[(events["ts"] >= start - timedelta(minutes=15)) & (events["ts"] < end)]
        say(f"measuring {start:%H:%M}–{end:%H:%M}Z: {len(measured):,} events, Spark and pandas in turns")
        _spark(spark, settings.lake_path, signals, start, end)  # warm: the JVM's code, the workers
        timings: dict[str, list[float]] = {"spark": [], "pandas": []}
        rows: dict[str, tuple[int, int]] = {}
        for round_ in range(args.rounds):
            for name in ("spark", "pandas"):
                began = time.perf_counter()
                if name == "spark":
                    rows[name] = _spark(spark, settings.lake_path, signals, start, end)
                else:
                    rows[name] = _pandas(measured, signals, start, end)
                timings[name].append(time.perf_counter() - began)
                say(f"round {round_ + 1}: {name} {timings[name][-1]:.2f} s")
        spark.stop()
    best = {name: min(values) for name, values in timings.items()}
    result = {
        "signals": len(signals),
        "window": [start.isoformat(), end.isoformat()],
        "events": len(measured),
        "twin": {"minutes": args.minutes, "events": len(records), "wall_s": round(twin_s, 2)},
        "rows": {"signal_cycles": rows["pandas"][0], "approach_measures": rows["pandas"][1]},
        "same_rows": rows["spark"] == rows["pandas"],
        "seconds": {name: round(value, 3) for name, value in best.items()},
        "rounds": {name: [round(v, 3) for v in values] for name, values in timings.items()},
        "events_per_s": {name: round(len(measured) / value) for name, value in best.items()},
        "spark_over_pandas": round(best["spark"] / best["pandas"], 2),
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
