"""The lake benchmark: a mid-size city's feeds on a real network, fused end to end, beside DuckDB.

:func:`run_lake_benchmark` generates (or reuses) the bronze of :mod:`lake.bench_data`, then times
``lake.jobs.fuse`` over one day and over all days, and the gold link-state SQL in Spark against
DuckDB on the same silver tables, with the peak memory of the whole process tree.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.files import write_atomic
from lake.bench_data import (
    BENCH_NETWORK,
    generate_bronze,
    progress_reporter,
)

if TYPE_CHECKING:
    from core.settings import Settings


GENERATOR_VERSION = 1
#: A monday: day one is a working day and a week holds a weekend.
DEFAULT_START_DAY = date(2026, 3, 2)
#: The file in a bench lake's root that marks it as one (and says what it holds).
BENCH_MANIFEST = ".citybrain-bench.json"


class PeakMemory:
    """The largest resident memory of this process and all its descendants, sampled in a thread.

    The lake's work happens in three kinds of process: this Python driver, the Spark JVM it
    starts, and the Python workers the JVM forks; their RSS is summed every ``interval_s``. Shared
    pages are counted once per process, so the sum is an upper bound. Peaks are kept per phase.
    """

    def __init__(self, interval_s: float = 0.5) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-peak-memory", daemon=True)
        self.phase = "start"
        self.peaks: dict[str, int] = {}

    def sample(self) -> int:
        import psutil

        total = 0
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), total)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def enter(self, phase: str) -> None:
        """Count what follows towards ``phase`` (the current memory counts towards it too)."""
        self.phase = phase
        self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def peak_mb(self, *phases: str) -> float:
        values = [self.peaks[p] for p in phases if p in self.peaks] or [0]
        return round(max(values) / 2**20, 1)


def prepare_bench_lake(lake: Path, wanted: dict[str, Any], reuse: bool) -> dict[str, Any] | None:
    """Make ``lake`` an empty bench lake, or keep its bronze when it holds exactly ``wanted``.

    Returns the kept generator summary, or None when the lake was emptied. Refuses to empty a
    folder that is not a bench lake (no manifest) and not empty: it could be someone's real lake.
    """
    manifest = lake / BENCH_MANIFEST
    if lake.exists() and any(lake.iterdir()) and not manifest.is_file():
        from core.errors import CitybrainError

        raise CitybrainError(
            f"{lake} is not empty and not a bench lake ({BENCH_MANIFEST} missing); not touching it"
        )
    if reuse and manifest.is_file():
        kept = json.loads(manifest.read_text(encoding="utf-8"))
        if kept.get("wanted") == wanted:
            for layer in ("silver", "gold"):
                shutil.rmtree(lake / layer, ignore_errors=True)
            for leftover in lake.iterdir():
                if leftover.name not in ("bronze", BENCH_MANIFEST):
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            return kept["summary"]
    if lake.exists():
        shutil.rmtree(lake)
    lake.mkdir(parents=True)
    return None


def duckdb_views(con: Any, lake: Path, start: datetime, end: datetime) -> None:
    """The views ``lake.gold.register_views`` makes in Spark, over the same silver partitions.

    Each view reads exactly the partitions Spark's ``read_table`` reads for the same window
    (incidents from a day before, weather from an hour before, as the gold job looks back), at the
    table's newest version, with partition values kept as text, and incidents' ``end`` renamed
    ``ends``. DuckDB cannot read Delta tables itself here (its ``delta`` extension cannot be
    installed), so each view scans an Arrow dataset of the files the table's log names, which
    delta-rs builds; DuckDB streams it, with its filters and projections pushed down.
    """
    from lake import gold
    from lake.delta import delta_table, empty, sql_predicate
    from lake.tables import TABLES

    windows = {
        "detector_readings": ("silver.detector_readings", start),
        "probe_points": ("silver.probe_points", start),
        "incidents": ("silver.incidents", start - gold.INCIDENT_LOOKBACK),
        "weather": ("silver.weather", start - gold.WEATHER_LOOKBACK),
    }
    for view, (name, since) in windows.items():
        table = TABLES[name]
        found = delta_table(lake, table)
        if found is None:
            rows = empty(table)
        else:
            chosen = sql_predicate(table, table.partition_values(since, end))
            rows = found.to_pyarrow_dataset(file_pruning_predicate=chosen)
        con.register(f"{view}_delta", rows)
        rename = ' RENAME ("end" AS ends)' if view == "incidents" else ""
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT *{rename} FROM {view}_delta")


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def compare_gold_engines(
    spark: Any, settings: Settings, start: datetime, end: datetime, *, repeats: int = 2, threads: int
) -> dict[str, Any]:
    """The link-state SQL over [start, end)'s silver, in Spark and in DuckDB; best of ``repeats``.

    Both run the same query text (in each engine's dialect) over the same views of the same files
    and are timed from the query to its last row: Spark writes to the ``noop`` sink (all work,
    no output), DuckDB materialises a temporary table. Views are made outside the timing.
    """
    import duckdb

    from lake import gold

    lake = settings.lake_path
    length = settings.lake_detector_effective_length_m
    con = duckdb.connect()
    con.execute(f"SET threads TO {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    gold.register_views(spark, lake, start, end)
    duckdb_views(con, lake, start, end)
    spark_sql, duckdb_sql = gold.link_state_sql(length, "spark"), gold.link_state_sql(length, "duckdb")

    def run_spark() -> None:
        spark.sql(spark_sql).write.format("noop").mode("overwrite").save()

    def run_duckdb() -> int:
        con.execute(f"CREATE OR REPLACE TEMP TABLE bench_link_state AS {duckdb_sql}")
        return con.execute("SELECT count(*) FROM bench_link_state").fetchone()[0]

    spark_times, duckdb_times, duckdb_rows = [], [], 0
    for _ in range(max(1, repeats)):
        spark_times.append(_timed(run_spark)[0])
        seconds, duckdb_rows = _timed(run_duckdb)
        duckdb_times.append(seconds)
    spark_rows = spark.sql(spark_sql).count()
    con.close()
    return {
        "spark_gold_s": round(min(spark_times), 3),
        "duckdb_gold_s": round(min(duckdb_times), 3),
        "vs_duckdb": round(min(spark_times) / min(duckdb_times), 3),
        "gold_runs_s": {
            "spark": [round(t, 3) for t in spark_times],
            "duckdb": [round(t, 3) for t in duckdb_times],
        },
        "gold_rows": {"spark": spark_rows, "duckdb": duckdb_rows},
        "duckdb_threads": int(threads),
    }


def _with_total(rows: dict[str, int]) -> dict[str, int]:
    return {**rows, "total": sum(rows.values())}


def bench_bronze(
    settings: Settings,
    lake_dir: Path | None,
    days: int,
    detectors: int,
    probes: int,
    seed: int,
    start_day: date,
    network: str,
    reuse: bool,
    progress: Any,
) -> tuple[Path, dict[str, Any], bool]:
    """The bench lake (``lake_dir`` or ``<var>/bench/lake``) emptied but for its bronze, which is
    generated unless the last run's matches: the lake, the generator's summary, whether reused."""
    lake = (lake_dir or settings.var_dir / "bench" / "lake").resolve()
    wanted = {
        "generator": GENERATOR_VERSION,
        "network": network,
        "start_day": start_day.isoformat(),
        "days": days,
        "detectors": detectors,
        "probes": probes,
        "seed": seed,
    }
    generated = prepare_bench_lake(lake, wanted, reuse)
    if generated is not None:
        progress_reporter(progress)(
            f"bench lake: reusing the bronze in {lake} ({generated['bytes'] / 1e6:,.0f} MB)"
        )
        return lake, generated, True
    generated = generate_bronze(
        lake,
        start_day=start_day,
        days=days,
        detectors=detectors,
        probes=probes,
        seed=seed,
        network=network,
        build_dir=settings.sim_dir / "build",
        progress=progress,
    )
    write_atomic(lake / BENCH_MANIFEST, json.dumps({"wanted": wanted, "summary": generated}), durable=False)
    return lake, generated, False


def run_lake_benchmark(
    settings: Settings,
    *,
    days: int = 7,
    detectors: int = 2000,
    probes: int = 500,
    seed: int = 0,
    start_day: date = DEFAULT_START_DAY,
    network: str = BENCH_NETWORK,
    lake_dir: Path | None = None,
    reuse_bronze: bool = True,
    gold_repeats: int = 2,
    progress: Any = None,
) -> dict[str, Any]:
    """Generate ``days`` days of city-sized bronze, fuse one day and all days, compare gold with DuckDB.

    The lake is ``lake_dir`` or ``<var>/bench/lake``; its bronze is kept and reused by the next run
    with the same sizes, seed and first day (``reuse_bronze=False`` regenerates it), while silver
    and gold are always made afresh. The Spark session is started, and a one-hour fuse run, before
    anything is timed, so ``one_day_s`` does not carry the JVM's start and warm-up. Returns the
    figures as one JSON-ready dict (see ``benchmarks/lake.py``).
    """
    from core.spark import spark_session
    from lake import jobs

    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    say = progress_reporter(progress)
    lake, generated, reused = bench_bronze(
        settings, lake_dir, days, detectors, probes, seed, start_day, network, reuse_bronze, progress
    )
    bench_settings = settings.model_copy(update={"lake_uri": str(lake), "lake_network": network})
    t0 = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    one_day_rows = _with_total(generated["rows_per_day"][start_day.isoformat()])
    all_rows = _with_total(generated["rows"])
    with PeakMemory() as memory:
        memory.enter("spark_start")
        say("bench lake: starting Spark and warming up on one hour")
        spark_start_s, spark = _timed(lambda: spark_session(bench_settings))
        memory.enter("warm_up")
        warm_up = jobs.fuse(bench_settings, t0, t0 + timedelta(hours=1), spark=spark)

        memory.enter("fuse_one_day")
        say("bench lake: fusing one day")
        one_day = jobs.fuse(bench_settings, t0, t0 + timedelta(days=1), spark=spark, progress=say)
        say(f"bench lake: one day in {one_day.seconds:,.1f} s")
        if days > 1:
            memory.enter("fuse_all_days")
            say(f"bench lake: fusing {days} days")
            all_days = jobs.fuse(bench_settings, t0, t0 + timedelta(days=days), spark=spark, progress=say)
            say(f"bench lake: {days} days in {all_days.seconds:,.1f} s")
        else:
            all_days = one_day

        memory.enter("gold_engines")
        say("bench lake: link-state SQL in Spark and in DuckDB")
        threads = spark.sparkContext.defaultParallelism
        engines = compare_gold_engines(
            spark, bench_settings, t0, t0 + timedelta(days=days), repeats=gold_repeats, threads=threads
        )
        memory.enter("end")

    fuse_phases = ("warm_up", "fuse_one_day", "fuse_all_days")
    return {
        "benchmark": "lake",
        "network": network,
        "days": days,
        "detectors": generated["detectors"],
        "probes": probes,
        "seed": seed,
        "start_day": start_day.isoformat(),
        "input_rows": {"one_day": one_day_rows, "all_days": all_rows},
        "rows_per_s": round(all_rows["total"] / all_days.seconds, 1),
        "rows_per_s_one_day": round(one_day_rows["total"] / one_day.seconds, 1),
        "one_day_s": round(one_day.seconds, 3),
        "all_days_s": round(all_days.seconds, 3),
        "seven_days_s": round(all_days.seconds, 3) if days == 7 else None,
        "scaling_ratio": round(all_days.seconds / one_day.seconds, 3),
        "scaling_limit": days + 0.5,
        "scaling_ok": all_days.seconds / one_day.seconds <= days + 0.5,
        "peak_memory_mb": memory.peak_mb(*fuse_phases),
        "peak_memory_mb_by_phase": {phase: memory.peak_mb(phase) for phase in memory.peaks},
        **engines,
        "spark_start_s": round(spark_start_s, 3),
        "warm_up_s": round(warm_up.seconds, 3),
        "generate_s": generated["seconds"],
        "generated_bytes": generated["bytes"],
        "generated_files": generated["files"],
        "bronze_reused": reused,
        "fuse_one_day": one_day.to_dict(),
        "fuse_all_days": all_days.to_dict(),
        "settings": {
            "spark_master": settings.spark_master,
            "spark_default_parallelism": threads,
            "spark_shuffle_partitions": settings.spark_shuffle_partitions,
            "spark_driver_memory": settings.spark_driver_memory,
            "cores": os.cpu_count(),
            "lake": str(lake),
        },
    }


def compare_masters(
    settings: Settings,
    cluster_master: str,
    *,
    detectors: int = 2000,
    probes: int = 500,
    seed: int = 0,
    start_day: date = DEFAULT_START_DAY,
    network: str = BENCH_NETWORK,
    lake_dir: Path | None = None,
    reuse_bronze: bool = True,
    progress: Any = None,
) -> dict[str, Any]:
    """The same fuse of one day's bench bronze on ``local[*]`` (the settings' master) and on
    ``cluster_master``, one after the other in this process: each with a session of its own,
    warmed up on one hour first, silver and gold emptied between them. The ratio is the
    cluster's time over local's; the rows each wrote must agree."""
    from core.spark import spark_session
    from lake import jobs

    say = progress_reporter(progress)
    t0 = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    runs: dict[str, dict[str, Any]] = {}
    for name, master in (("local", settings.spark_master), ("cluster", cluster_master)):
        lake, generated, _reused = bench_bronze(
            settings, lake_dir, 1, detectors, probes, seed, start_day, network, reuse_bronze, progress
        )
        bench_settings = settings.model_copy(
            update={"lake_uri": str(lake), "lake_network": network, "spark_master": master}
        )
        say(f"bench lake: {name} ({master}): starting Spark and warming up on one hour")
        spark = spark_session(bench_settings)
        try:
            threads = spark.sparkContext.defaultParallelism
            jobs.fuse(bench_settings, t0, t0 + timedelta(hours=1), spark=spark)
            fused = jobs.fuse(bench_settings, t0, t0 + timedelta(days=1), spark=spark, progress=say)
        finally:
            spark.stop()
        say(f"bench lake: {name}: one day in {fused.seconds:,.1f} s")
        rows = _with_total(generated["rows_per_day"][start_day.isoformat()])
        runs[name] = {
            "master": master,
            "default_parallelism": threads,
            "seconds": round(fused.seconds, 3),
            "rows_per_s": round(rows["total"] / fused.seconds, 1),
            "written_rows": fused.rows,
        }
    return {
        "benchmark": "lake_cluster",
        "network": network,
        "input_rows": rows,
        "detectors": detectors,
        "probes": probes,
        "seed": seed,
        "start_day": start_day.isoformat(),
        **{f"{name}_s": run["seconds"] for name, run in runs.items()},
        "cluster_vs_local": round(runs["cluster"]["seconds"] / runs["local"]["seconds"], 3),
        "same_rows": runs["cluster"]["written_rows"] == runs["local"]["written_rows"],
        "runs": runs,
        "cores": os.cpu_count(),
    }


#: ``--cluster loopback``: the cluster the bench starts on this machine, as the tests' one.
LOOPBACK = "loopback"


def compare_on_cluster(settings: Settings, cluster: str, **options: Any) -> dict[str, Any]:
    """:func:`compare_masters` against ``cluster``: a ``spark://`` master, or ``loopback`` for a
    master and two one-core workers started here for the run (``<var>/bench/spark-cluster``)."""
    from core.errors import CitybrainError
    from core.spark_cluster import loopback_cluster

    if cluster == LOOPBACK:
        with loopback_cluster(settings.var_dir / "bench" / "spark-cluster", workers=2, cores=1) as started:
            return compare_masters(settings, started.master, **options) | {
                "cluster": "loopback, 2 workers of 1 core"
            }
    if not cluster.startswith("spark://"):
        raise CitybrainError(f"--cluster must be a spark://HOST:PORT master or '{LOOPBACK}', got {cluster!r}")
    return compare_masters(settings, cluster, **options) | {"cluster": cluster}


#: Where the figures the README quotes are kept: ``benchmarks/results/lake.json`` in the checkout.
RESULTS_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "lake.json"
CLUSTER_RESULTS_FILE = RESULTS_FILE.with_name("lake_cluster.json")


def write_results(result: dict[str, Any], path: Path = RESULTS_FILE) -> Path:
    """Write a finished run's figures to ``path`` (indented JSON, whole or not at all, so a run
    that fails or is stopped leaves the last good results in place)."""
    return write_atomic(Path(path), json.dumps(result, indent=1) + "\n")
