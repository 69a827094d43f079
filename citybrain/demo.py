"""``citybrain demo``: the whole loop, end to end, on one machine — data in, a plan out, approved,
applied to the signals, and measured.

It runs in its own corner (``var/demo``, its own embedded broker and database) so it never
mixes with a real lake. A sample feed sends records, some broken on purpose; the corridor's
SUMO sensor twin streams detectors, probes, weather and an incident to Kafka with the field
service on its signals (:mod:`citybrain.closed_loop`), and pauses at 07:45. The ingest lands
everything in bronze and dead-letters the rest; Spark fuses the morning so far (bronze → silver
→ gold); the optimizer samples routes from gold's counts of the last quarter hour, searches a
coordinated plan (a small budget), evaluates it against the corridor's current programs on
unseen seeds and proposes it (plan store and ``control.plan.proposed.v1``, as the
``citybrain_optimize`` DAG does). An operator approves it — by script with ``--headless``, or a
person in the console, whose address and login are printed — and the twin runs on: the field
applies the plan at each signal's next cycle boundary and answers on ``control.plan.applied.v1``,
which the plan store follows. The rest is ingested and fused, the lake is scored against the
twin's ground truth (probe fixes on their true edge; the fused speed's error beside each
source's alone), and delay on the plan's approaches is measured before and after it took
effect, from gold and from SUMO's own measures; one signal's controller event log gives its
signal performance measures and Purdue Coordination Diagrams before and after.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer
from rich.console import Console

from citybrain import closed_loop
from core.database import open_database
from core.settings import Settings
from optimizer.proposing.pipeline import BASELINE, METHOD
from schemas import INPUT_TOPICS
from sim.scenarios import resolve
from sim.twin import parse_day, sim_time_to_utc
from streaming import admin, broker
from streaming.bronze import read_topic
from streaming.connection import connect
from streaming.deadletter import read_dead_letters
from streaming.ingest import Ingest
from streaming.producer import RecordProducer
from streaming.sample_feed import generate

DEMO_SCENARIO = "corridor"
#: The signal whose event-log measures and coordination diagrams the demo shows: the corridor's
#: busiest junction, the arterial crossing Jinqiao Avenue.
DEMO_SIGNAL = "J4"
#: Thirty days: how late a replayed record may reach Kafka and still be fused.
REPLAY_WATERMARK_S = 30 * 86_400
#: The optimizer stage: search wall time and evaluation seeds. A budget this small scores the
#: current programs and the starting plans (Webster, green wave) and runs a CMA-ES generation
#: only if one fits; on the corridor's first quarter hour a 60 s search found plans with 37–41 %
#: less delay than the current programs (paired p ≤ 0.002 over 3 seeds). Kept short so
#: `make demo` and its test stay quick.
OPTIMIZER_BUDGET_S = 20.0
OPTIMIZER_SEEDS = 3


@dataclass(frozen=True)
class Interactive:
    """A person decides: the console serves the demo at ``host:port`` and the twin waits up to
    ``decide_within_s`` for the plan's approval or rejection; ``show(summary)`` is called when
    the loop has closed, and the console serves on until Ctrl-C."""

    host: str
    port: int
    decide_within_s: float
    show: Callable[[dict[str, Any]], None]


def run_demo(
    settings: Settings,
    records: int,
    invalid_fraction: float,
    progress: Console,
    interactive: Interactive | None = None,
) -> dict[str, Any]:
    """The whole loop in ``var/demo`` (see the module); the summary, with the keys of
    ``citybrain demo --json``."""
    demo_dir = settings.var_dir / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo = _lake_settings(
        settings.model_copy(
            update={"var_dir": demo_dir, "lake_uri": None, "kafka_bootstrap": None, "database_url": None}
        )
    )
    with progress.status("starting the embedded Kafka-protocol broker"):
        state = broker.start(demo)
        admin.ensure_topics(demo)
    progress.log(f"broker up at {state.bootstrap}")
    engine = open_database(demo)  # migrated here, before the twin's process opens it too
    twin = closed_loop.FieldTwin(demo, DEMO_SCENARIO, (closed_loop.DECIDE_AT,), closed_loop.RUN_UNTIL)
    console = None
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
        twin.start()
        progress.log(
            f"sensor twin with the field on its signals: {scenario.name} from {_clock(scenario.begin)} "
            f"to {_clock(closed_loop.RUN_UNTIL)}, waiting at {_clock(closed_loop.DECIDE_AT)} for a decision"
        )
        streamed = twin.wait_paused()
        consumed = ingest(demo, records + sum(streamed.values()), progress)
        before = twin_window(demo, scenario.begin, closed_loop.DECIDE_AT)
        fused = fuse_window(demo, before, progress)
        decision_window = (before[1] - closed_loop.WINDOW, before[1])
        optimizer = optimize_fused_window(demo, decision_window, progress)
        plan_id = optimizer["plan_id"] if optimizer["outcome"] == "published" else None
        state_now = optimizer["outcome"]
        login = closed_loop.demo_operator(engine)
        if interactive is not None:
            console = closed_loop.start_console(demo, interactive.host, interactive.port)
        if plan_id is not None and interactive is None:
            state_now = closed_loop.approve_by_script(demo, engine, plan_id, login)
            progress.log(f"plan {plan_id} {state_now} by {login.name} (scripted: --headless)")
        elif plan_id is not None and interactive is not None:
            state_now = _decided_in_console(engine, plan_id, login, interactive, progress)
        twin.resume()
        with progress.status("the twin runs on: the field applies what was approved"):
            ran = twin.result()
        summary_of_twin = ran["twin"]
        if state_now == "approved":
            with progress.status("the plan store follows the field's answers"):
                state_now = closed_loop.follow_until_settled(demo, engine, plan_id)
        progress.log(f"field: {ran['outcomes']}; plan {plan_id}: {state_now}")
        total = records + summary_of_twin["total"]
        ingest(demo, total - consumed, progress, consumed=consumed)
        for topic, count in summary_of_twin["counts"].items():
            sent[topic] += count
            valid[topic] += count
        after = twin_window(demo, closed_loop.DECIDE_AT, closed_loop.RUN_UNTIL)
        fused_after = fuse_window(demo, after, progress)
        lake = score_on_truth(demo, summary_of_twin, progress)
        lake["fuse"] = fused
        lake["fuse_after"] = fused_after
        measured = _measure(demo, engine, plan_id, state_now, summary_of_twin, progress)
        summary = {
            "records": total,
            "plan_id": plan_id,
            "state": state_now,
            "predicted_delay_before": optimizer["delay"][BASELINE] if "delay" in optimizer else None,
            "predicted_delay_after": optimizer["delay"][METHOD] if "delay" in optimizer else None,
            **measured,
            "field": {"outcomes": ran["outcomes"], "answers": ran["answers"]},
            "lake": str(demo.lake_path.resolve()),
            **landed(demo, sent, valid),
            "twin": summary_of_twin,
            "lake_stage": lake,
            "optimizer_stage": optimizer,
        }
        if interactive is not None:
            interactive.show(summary)
            progress.log(
                f"the console serves on at http://{interactive.host}:{interactive.port}/ "
                f"(log in as {login.name} / {login.password}); Ctrl-C stops the demo"
            )
            while console is not None and console.poll() is None:
                time.sleep(1.0)
        return summary
    finally:
        twin.stop()
        if console is not None:
            console.terminate()
            console.wait(10)
        broker.stop(demo)


def _clock(t: float) -> str:
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"


def _decided_in_console(
    engine: Any, plan_id: str, login: closed_loop.Login, interactive: Interactive, progress: Console
) -> str:
    url = f"http://{interactive.host}:{interactive.port}/plans/{plan_id}"
    progress.log(
        f"console: {url} — log in as {login.name} / {login.password} and approve (or reject) the plan; "
        f"the simulated city waits up to {interactive.decide_within_s / 60:.0f} minutes"
    )
    decided = closed_loop.wait_for_decision(engine, plan_id, interactive.decide_within_s)
    late = " (nobody decided in time)" if decided == "proposed" else ""
    progress.log(f"plan {plan_id}: {decided}{late}")
    return decided


def ingest(demo: Settings, expected: int, progress: Console, consumed: int = 0) -> int:
    """Land ``expected`` more records from the demo's broker (bronze or dead letters); the
    number landed so far."""
    with progress.status("ingesting into bronze (joining the consumer group takes a few seconds)"):
        run = Ingest(demo, group="citybrain-demo")
        counters = run.run(stop_when=lambda c: c.consumed >= expected, handle_signals=False)
        elapsed = (run.drained_at or 0.0) - (run.first_record_at or 0.0)
    rate = counters.handled / elapsed if elapsed > 0 else 0.0
    progress.log(
        f"ingest: landed {counters.landed:,}, dead-lettered {counters.dead_lettered:,} "
        f"({rate:,.0f} records/s)"
    )
    return consumed + counters.consumed


def landed(demo: Settings, sent: Counter[str], valid: Counter[str]) -> dict[str, Any]:
    """What was sent beside what landed in bronze and in the dead-letter topics, per topic."""
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
    return {
        "topics": topics,
        "landed": sum(row["bronze_rows"] for row in topics.values()),
        "dead_lettered": sum(row["dlq"] for row in topics.values()),
        "sample_dead_letter_reasons": [reason for topic in INPUT_TOPICS for _, reason, _ in dead[topic]][:5],
    }


def _measure(
    demo: Settings, engine: Any, plan_id: str | None, state: str, twin: dict[str, Any], progress: Console
) -> dict[str, Any]:
    """Delay before and after on the plan's approaches, when the plan took effect."""
    from field import applications
    from field.watch import approaches_of
    from sim.network import for_scenario

    def nothing(why: str) -> dict[str, Any]:
        return {
            "delay_before": None,
            "delay_after": None,
            "truth": None,
            "windows": None,
            "signal_measures": None,
            "unmeasured": why,
        }

    if plan_id is None or state != "applied":
        return nothing(f"no plan was applied (the plan's state: {state})")
    applied = [a for a in applications.of_plan(engine, plan_id) if a.effective_at is not None]
    effective_at = max(a.effective_at for a in applied)
    before, after = closed_loop.measure_windows(max(a.settled_at for a in applied))
    if after + closed_loop.WINDOW > twin_window(demo, closed_loop.DECIDE_AT, closed_loop.RUN_UNTIL)[1]:
        return nothing(f"the plan's transition ended at {after:%H:%M}Z: no whole quarter hour after it")
    by_signal = approaches_of(for_scenario(resolve(DEMO_SCENARIO, demo.sim_dir / "build")))
    approaches = tuple(approach for a in applied for approach in by_signal.get(a.tls_id, ()))
    with progress.status("the same twin run without the plan, for SUMO's truth of what it changed"):
        without = closed_loop.run_without_plan(demo, DEMO_SCENARIO, demo.sim_dir / "without-plan")
    found = closed_loop.measure(
        demo.lake_path, Path(twin["out_dir"]), without, twin["day"], approaches, before, after
    )
    return {
        **found,
        "effective_at": effective_at.isoformat(),
        "signal_measures": signal_performance(demo, before, after, progress),
    }


def signal_performance(
    demo: Settings, before: datetime, after: datetime, progress: Console
) -> dict[str, Any]:
    """:data:`DEMO_SIGNAL`'s measures from its event log (through Kafka and the lake) in the two
    windows, and its Purdue Coordination Diagram in each, drawn to the demo's folder."""
    from lake.measure_plots import compare, find_signal, plot_measure, read_events
    from sim.signal_config import configuration

    signal = find_signal(configuration(demo, DEMO_SCENARIO), DEMO_SIGNAL)
    periods = {"before": (before, before + closed_loop.WINDOW), "after": (after, after + closed_loop.WINDOW)}
    events = {name: read_events(demo.lake_path, signal, *period) for name, period in periods.items()}
    diagrams = {}
    for name, period in periods.items():
        path = demo.var_dir / f"pcd_{DEMO_SIGNAL}_{name}.png"
        figure = plot_measure("pcd", events[name], signal, *period, path)
        diagrams[name] = {"path": str(path), "percent_on_green": figure.percent_on_green}
    found = compare(events["before"], events["after"], signal, periods["before"], periods["after"])
    on_green = {name: diagram["percent_on_green"] for name, diagram in diagrams.items()}
    progress.log(f"signal {DEMO_SIGNAL}: arrivals on green by phase {on_green}; diagrams in {demo.var_dir}")
    return {"signal": DEMO_SIGNAL, "pcd": diagrams, "phases": found.to_dict()["phases"]}


def twin_window(demo: Settings, begin: float, end: float) -> tuple[datetime, datetime]:
    """[begin, end) of the twin's day (simulation seconds) in UTC, whole quarter hours."""
    from field.run import DAY
    from lake.tables import SLOT, floor_to

    day = parse_day(DAY)
    return floor_to(sim_time_to_utc(day, begin), SLOT), floor_to(sim_time_to_utc(day, end), SLOT)


def _lake_settings(demo: Settings) -> Settings:
    # The twin replays a simulated morning as fast as it can, so its records reach Kafka hours after
    # their event time; a replay is fused with a watermark that accepts them, as a backfill would be.
    return demo.model_copy(update={"lake_network": DEMO_SCENARIO, "lake_watermark_s": REPLAY_WATERMARK_S})


def fuse_window(demo: Settings, window: tuple[datetime, datetime], progress: Console) -> dict[str, Any]:
    """Fuse the quarter hours of ``window`` in Spark: bronze → silver → gold."""
    from lake.jobs import fuse

    start, end = window
    with progress.status(f"fusing {start:%H:%M}–{end:%H:%M}Z in Spark: bronze → silver → gold"):
        report = fuse(demo, start, end)
    # Spark's context takes over SIGINT (to cancel its jobs) and keeps it after it stops, when its
    # handler fails: Ctrl-C must stop the demo's later waits and clean up
    signal.signal(signal.SIGINT, signal.default_int_handler)
    progress.log(f"lake: fused {start:%H:%M}–{end:%H:%M}Z in {report.seconds:.1f} s")
    return report.to_dict()


def score_on_truth(demo: Settings, twin: dict[str, Any], progress: Console) -> dict[str, Any]:
    """The lake scored against the twin's truth (probe fixes on their true edge; the fused speed's
    error beside each source's alone), and gold's busiest edges."""
    from lake.tables import TABLES
    from lake.truth import read_lake_table, score_map_matching, score_speeds

    truth_dir = Path(twin["out_dir"])
    matching = score_map_matching(demo.lake_path, truth_dir)
    speeds = score_speeds(demo.lake_path, truth_dir, twin["day"])
    state = read_lake_table(demo.lake_path, TABLES["gold.link_state_15min"]).to_pylist()
    busiest = sorted((r for r in state if r["flow_vph"] is not None), key=lambda r: -r["flow_vph"])[:5]
    progress.log(f"lake: {matching.accuracy:.1%} of probe fixes matched to their true edge")
    return {
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
    from optimizer.proposing.pipeline import optimize_and_propose
    from optimizer.proposing.propose import DEFAULT_KPI

    start, end = window
    with progress.status("optimizer: sampling routes that reproduce the fused gold counts") as status:
        found = lake_demand(demo, start, end, demo.sim_dir / "lake_demand")
        progress.log(f"optimizer: demand {start:%H:%M}–{end:%H:%M}Z from gold, {found.fit}")
        result = optimize_and_propose(
            demo,
            found.scenario,
            window,
            budget_s=OPTIMIZER_BUDGET_S,
            seeds=OPTIMIZER_SEEDS,
            lake_versions=found.versions,
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
