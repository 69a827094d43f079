"""``citybrain demo``: the part of the data flow that exists today, end to end, on one machine.

It runs in its own corner (``var/demo``, its own embedded broker) so it never mixes with a
real lake. The SUMO sensor twin streams the default corridor (detectors, probes, weather,
an incident) to Kafka, a sample feed adds some broken records, the ingest lands everything
in bronze and dead-letters the rest, and the summary compares what was sent with what
landed where, gives a few of the refusal reasons, and the corridor's KPIs under its own
signal programs. The lake stage then fuses the twin's window in Spark (bronze → silver → gold)
and scores it against the twin's ground truth: probe fixes on their true edge, and the fused
speed's error beside each source's alone. The optimizer stage samples routes from the fused
gold counts of that window, searches a coordinated plan for them (a small budget), evaluates it
against the corridor's current programs on unseen seeds and proposes it: the plan store in
``var/demo`` and ``control.plan.proposed.v1`` on the demo's broker, as the
``citybrain_optimize`` DAG does (both run :func:`optimizer.proposing.pipeline.optimize_and_propose`).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaConsumer
from rich.console import Console

from core.settings import Settings
from schemas import INPUT_TOPICS
from sim.kpis import summarise_runs
from sim.runner import run_seeds
from sim.scenarios import resolve
from sim.twin import TwinSummary, parse_day, run_twin, sim_time_to_utc
from streaming import admin, broker
from streaming.bronze import read_topic
from streaming.connection import connect
from streaming.deadletter import read_dead_letters
from streaming.ingest import Ingest
from streaming.producer import RecordProducer
from streaming.sample_feed import generate

DEMO_SCENARIO = "corridor"
#: Thirty days: how late a replayed record may reach Kafka and still be fused.
REPLAY_WATERMARK_S = 30 * 86_400
#: The optimizer stage: search wall time and evaluation seeds. A budget this small scores the
#: current programs and the starting plans (Webster, green wave) and runs a CMA-ES generation
#: only if one fits; on the corridor's first quarter hour a 60 s search found plans with 37–41 %
#: less delay than the current programs (paired p ≤ 0.002 over 3 seeds). Kept short so
#: `make demo` and its test stay quick.
OPTIMIZER_BUDGET_S = 20.0
OPTIMIZER_SEEDS = 3


def run_demo(
    settings: Settings, records: int, invalid_fraction: float, progress: Console, twin_minutes: float = 15
) -> dict[str, Any]:
    demo_dir = settings.var_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo = settings.model_copy(
        update={"var_dir": demo_dir, "lake_uri": None, "kafka_bootstrap": None, "database_url": None}
    )
    with progress.status("starting the embedded Kafka-protocol broker"):
        state = broker.start(demo)
        admin.ensure_topics(demo)
    progress.log(f"broker up at {state.bootstrap}")
    try:
        sent: Counter[str] = Counter()
        valid: Counter[str] = Counter()
        with (
            progress.status(f"sending {records:,} sample-feed records"),
            RecordProducer(demo, validate=False) as producer,
        ):
            for record in generate(records, invalid_fraction):
                producer.send_raw(record.topic, record.key, record.value)
                sent[record.topic] += 1
                valid[record.topic] += record.valid
        progress.log(f"sent {records:,} records, {records - sum(valid.values()):,} of them broken on purpose")
        scenario = resolve(DEMO_SCENARIO, settings.sim_dir / "build")
        progress.log(f"sensor twin: {twin_minutes:g} simulated minutes of {scenario.name}")
        twin = run_twin(
            demo,
            scenario,
            out_dir=demo.sim_dir / "twin",
            until=scenario.begin + twin_minutes * 60,
            progress=progress,
        )
        for topic, count in twin.counts.items():
            sent[topic] += count
            valid[topic] += count
        records += twin.total
        with progress.status("ingesting into bronze (joining the consumer group takes a few seconds)"):
            ingest = Ingest(demo, group="citybrain-demo")
            counters = ingest.run(stop_when=lambda c: c.consumed >= records, handle_signals=False)
            elapsed = (ingest.drained_at or 0.0) - (ingest.first_record_at or 0.0)
        progress.log(f"ingest: landed {counters.landed:,}, dead-lettered {counters.dead_lettered:,}")
        reader = connect(demo, KafkaConsumer, enable_auto_commit=False)
        try:
            dead = {topic: read_dead_letters(reader, topic) for topic in INPUT_TOPICS}
        finally:
            reader.close()
        topics = {}
        for topic in INPUT_TOPICS:
            table = read_topic(demo.lake_path, topic)
            files = list((demo.lake_path / "bronze" / topic).rglob("*.parquet"))
            topics[topic] = {
                "sent": sent[topic],
                "valid_sent": valid[topic],
                "bronze_rows": table.num_rows,
                "bronze_files": len(files),
                "dlq": len(dead[topic]),
            }
        reasons = [reason for topic in INPUT_TOPICS for _, reason, _ in dead[topic]][:5]
        window = twin_window(twin, scenario.begin, twin_minutes)
        lake = fuse_twin_window(demo, twin, window, progress)
        optimizer = optimize_fused_window(demo, window, progress)
        with progress.status(f"simulating {scenario.name} under its own programs, 2 seeds"):
            kpi_window = dataclasses.replace(scenario, end=scenario.begin + 3600)
            runs = run_seeds(kpi_window, "fixed", [1, 2], demo.sim_dir / "runs", workers=2)
        return {
            "lake": str(demo.lake_path.resolve()),
            "topics": topics,
            "landed": counters.landed,
            "dead_lettered": counters.dead_lettered,
            "ingest_rate": counters.handled / elapsed if elapsed > 0 else 0.0,
            "sample_dead_letter_reasons": reasons,
            "twin": twin.to_dict(),
            "lake_stage": lake,
            "optimizer_stage": optimizer,
            "kpis": {"scenario": scenario.name, "window": [kpi_window.begin, kpi_window.end],
                     "controller": "fixed", "seeds": [1, 2], "kpis": summarise_runs(runs)},
        }  # fmt: skip
    finally:
        broker.stop(demo)


def twin_window(twin: TwinSummary, begin: float, minutes: float) -> tuple[datetime, datetime]:
    """The whole quarter hours the twin streamed, from ``begin`` (simulation seconds), in UTC."""
    from lake.tables import SLOT, floor_to

    start = sim_time_to_utc(parse_day(twin.day), begin)
    return start, floor_to(start + timedelta(minutes=minutes), SLOT)


def _lake_settings(demo: Settings) -> Settings:
    # The twin replays a simulated morning as fast as it can, so its records reach Kafka hours after
    # their event time; a replay is fused with a watermark that accepts them, as a backfill would be.
    return demo.model_copy(update={"lake_network": DEMO_SCENARIO, "lake_watermark_s": REPLAY_WATERMARK_S})


def fuse_twin_window(
    demo: Settings, twin: TwinSummary, window: tuple[datetime, datetime], progress: Console
) -> dict[str, Any]:
    """Fuse the quarter hours the twin streamed, then score map-matching and speeds on its truth."""
    from lake.jobs import fuse
    from lake.tables import TABLES
    from lake.truth import read_lake_table, score_map_matching, score_speeds

    start, end = window
    lake_settings = _lake_settings(demo)
    with progress.status("fusing the twin's window in Spark: bronze → silver → gold (Spark starts first)"):
        report = fuse(lake_settings, start, end)
    progress.log(f"lake: fused {start:%H:%M}–{end:%H:%M}Z in {report.seconds:.1f} s")
    matching = score_map_matching(demo.lake_path, twin.out_dir)
    speeds = score_speeds(demo.lake_path, twin.out_dir, twin.day)
    state = read_lake_table(demo.lake_path, TABLES["gold.link_state_15min"]).to_pylist()
    busiest = sorted((r for r in state if r["flow_vph"] is not None), key=lambda r: -r["flow_vph"])[:5]
    return {
        "fuse": report.to_dict(),
        "map_matching_accuracy": matching.accuracy,
        "speed_mape": {
            "fused": speeds.fused_mape,
            "detectors": speeds.detector_mape,
            "probes": speeds.probe_mape,
        },
        "speed_cells": speeds.cells,
        "busiest_edges": [
            {
                k: row[k]
                for k in ("edge_id", "window_start", "flow_vph", "speed_mps", "confidence", "probe_samples")
            }
            for row in busiest
        ],
    }


def optimize_fused_window(
    demo: Settings, window: tuple[datetime, datetime], progress: Console
) -> dict[str, Any]:
    """Demand from the fused window's gold → a coordinated plan → evaluated against the current
    programs → proposed to the demo's plan store and broker (:mod:`optimizer.proposing.pipeline`)."""
    from optimizer.demand.lake_counts import lake_demand
    from optimizer.proposing.pipeline import BASELINE, METHOD, optimize_and_propose
    from optimizer.proposing.propose import DEFAULT_KPI

    start, end = window
    lake_settings = _lake_settings(demo)
    with progress.status("optimizer: sampling routes that reproduce the fused gold counts") as status:
        found = lake_demand(lake_settings, start, end, demo.sim_dir / "lake_demand")
        progress.log(f"optimizer: demand {start:%H:%M}–{end:%H:%M}Z from gold, {found.fit}")
        result = optimize_and_propose(
            lake_settings,
            found.scenario,
            window,
            budget_s=OPTIMIZER_BUDGET_S,
            seeds=OPTIMIZER_SEEDS,
            on_step=lambda step: status.update(f"optimizer: {step}"),
        )
    summary = result.summary()
    controllers = result.evaluation["controllers"]
    difference = controllers[METHOD]["difference"][DEFAULT_KPI]
    fixed, coordinated = summary["delay"][BASELINE], summary["delay"][METHOD]
    search = summary["search"]
    progress.log(
        f"optimizer: searched {search['seconds']:.0f} s, {search['evaluations']} candidate plans; on seeds "
        f"1–{OPTIMIZER_SEEDS} RESCO delay {fixed:.2f} s under the current programs, {coordinated:.2f} s "
        f"coordinated ({difference['mean']:+.2f} s, {difference['mean'] / fixed:+.1%}, "
        f"paired p = {difference['p_value']:.2g})"
    )
    proposal = result.proposal
    progress.log(f"optimizer: plan {proposal.plan_id} {proposal.outcome}: {proposal.reason}")
    return {
        **summary,
        "period": [start.isoformat(), end.isoformat()],
        "fit": {"locations": found.fit.locations, "geh_ok_share": found.fit.geh_ok_share},
        "difference": {k: difference[k] for k in ("mean", "ci95", "p_value")},
        "published": proposal.published,
    }
