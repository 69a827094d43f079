"""The ``citybrain`` command line: every step of the data flow, each with ``--help`` and ``--json``."""

from __future__ import annotations

import io
import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.table import Table

from citybrain.console_commands import console, users_app
from citybrain.demo_command import demo
from citybrain.evaluate_command import evaluate
from citybrain.field_commands import field_app
from citybrain.incidents_commands import incidents_app
from citybrain.lake_commands import lake_app
from citybrain.measures_commands import measures_app
from citybrain.optimize_command import optimize
from citybrain.signals_commands import signals_app
from citybrain.sim_commands import sim_app
from citybrain.terminal import JsonFlag, UsageProblem, emit, err, settings
from core.errors import CitybrainError

app = typer.Typer(
    help="citybrain: live traffic data in, SUMO-proven signal plans out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
broker_app = typer.Typer(help="The Kafka broker: the embedded one, or report on an external one.")
ingest_app = typer.Typer(help="The ingest: input topics to the bronze lake, invalid records to .dlq.")
bench_app = typer.Typer(help="Benchmarks; each prints one JSON object with --json.")
app.add_typer(broker_app, name="broker")
app.add_typer(ingest_app, name="ingest")
app.add_typer(bench_app, name="bench")
app.add_typer(sim_app, name="sim")
app.add_typer(lake_app, name="lake")
app.add_typer(users_app, name="users")
app.add_typer(field_app, name="field")
app.add_typer(incidents_app, name="incidents")
app.add_typer(signals_app, name="signals")
app.add_typer(measures_app, name="measures")
app.command("console")(console)
app.command("demo")(demo)
app.command("evaluate")(evaluate)
app.command("optimize")(optimize)


# -- broker -------------------------------------------------------------------------------


class BrokerKind(StrEnum):
    tansu = "tansu"
    kafka = "kafka"


@broker_app.command("start")
def broker_start(
    partitions: Annotated[int | None, typer.Option(min=1, help="Partitions per topic created.")] = None,
    kind: Annotated[
        BrokerKind | None,
        typer.Option(
            help="tansu: embedded, memory only; kafka: Apache Kafka (KRaft), data in var/kafka. "
            "Default: CITYBRAIN_KAFKA_BROKER_KIND (tansu)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start a broker on this machine (unless CITYBRAIN_KAFKA_BOOTSTRAP names one) and create the topics."""
    from streaming import admin, broker

    s = settings()
    if s.embedded_broker:
        state = broker.start(s, kind.value if kind else None)
        bootstrap, started, started_kind = state.bootstrap, True, state.kind
    else:
        if kind is not None:
            raise UsageProblem(
                f"--kind {kind.value}: CITYBRAIN_KAFKA_BOOTSTRAP={s.kafka_bootstrap} names an external "
                "Kafka, so nothing is started here"
            )
        bootstrap, started, started_kind = s.kafka_bootstrap, False, None
    topics = admin.ensure_topics(s, partitions)
    where = {"tansu": "embedded Tansu broker", "kafka": "Apache Kafka broker"}.get(
        started_kind or "", "external Kafka (nothing started)"
    )
    emit(
        as_json,
        {"bootstrap": bootstrap, "embedded": started, "kind": started_kind, "topics": topics},
        f"{where} at [bold]{bootstrap}[/]; {len(topics)} topics ready",
    )


@broker_app.command("stop")
def broker_stop(as_json: JsonFlag = False) -> None:
    """Stop the broker started here. Tansu's records live in memory: what is not in bronze is gone;
    Apache Kafka keeps its data in var/kafka for the next start."""
    from streaming import broker

    s = settings()
    if not s.embedded_broker:
        raise UsageProblem(f"CITYBRAIN_KAFKA_BOOTSTRAP={s.kafka_bootstrap} is external: not ours to stop")
    stopped = broker.stop(s)
    emit(as_json, {"stopped": stopped}, "broker stopped" if stopped else "no embedded broker was running")


@broker_app.command("status")
def broker_status(as_json: JsonFlag = False) -> None:
    """Whether the broker answers, where, and its topics. Exit status 1 when it does not answer."""
    from streaming import broker, connection

    s = settings()
    state = broker.read_state(s) if s.embedded_broker else None
    bootstrap = s.kafka_bootstrap or (state.bootstrap if state else None)
    payload: dict[str, Any] = {"embedded": s.embedded_broker, "bootstrap": bootstrap, "reachable": False}
    if state:
        payload.update(pid=state.pid, started_at=state.started_at, log=state.log, kind=state.kind)
    if bootstrap:
        try:
            broker.wait_ready(bootstrap, s.kafka_connect_timeout_s, **connection.security_options(s))
            payload["reachable"] = True
        except connection.BrokerUnreachable as exc:
            payload["error"] = str(exc)
    text = (
        f"broker at [bold]{bootstrap}[/] is {'up' if payload['reachable'] else '[red]not answering[/]'}"
        if bootstrap
        else "no embedded broker running and CITYBRAIN_KAFKA_BOOTSTRAP unset"
    )
    emit(as_json, payload, text)
    if not payload["reachable"]:
        raise typer.Exit(1)


@app.command("topics")
def topics(
    partitions: Annotated[int | None, typer.Option(min=1, help="Partitions of topics created now.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create any missing contract topic and its .dlq twin; list all with their partitions."""
    from streaming import admin

    created = admin.ensure_topics(settings(), partitions)
    table = Table("topic", "partitions")
    for name, count in created.items():
        table.add_row(name, str(count))
    emit(as_json, {"topics": created}, table)


# -- produce ------------------------------------------------------------------------------


class ProduceFormat(StrEnum):
    jsonl = "jsonl"
    atspm_csv = "atspm-csv"


@app.command("produce")
def produce(
    source: Annotated[str, typer.Argument(help="The file to send, or - for standard input.")] = "-",
    topic: Annotated[
        str | None,
        typer.Option(
            help="Topic to produce to, e.g. traffic.detector.v1 (atspm-csv: traffic.signal_event.v1)."
        ),
    ] = None,
    file_format: Annotated[
        ProduceFormat,
        typer.Option(
            "--format",
            help="jsonl: contract records, one a line; atspm-csv: an ATSPM event-log export "
            "(SignalID,Timestamp,EventCode,EventParam) mapped through the signal configuration.",
        ),
    ] = ProduceFormat.jsonl,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate/--no-validate", help="jsonl: check each record against the topic's schema first."
        ),
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="atspm-csv: IANA zone of times written without one (default UTC), e.g. America/Denver."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Produce records, keyed by the contract's id field, with acks=all.

    With --format atspm-csv a row whose SignalID is no controller id of the signal configuration
    (CITYBRAIN_SIGNAL_CONFIG, else the one derived for CITYBRAIN_LAKE_NETWORK), or that breaks the
    contract, is not sent: the summary counts those by reason and the exit status is 1.
    """
    if file_format is ProduceFormat.atspm_csv:
        _produce_atspm(source, topic, timezone or "UTC", as_json)
        return
    from schemas import contract
    from streaming.producer import RecordProducer

    if topic is None:
        raise UsageProblem("produce: --topic is required with --format jsonl (the default)")
    if timezone is not None:
        raise UsageProblem("produce: --timezone applies to --format atspm-csv only")
    contract(topic)  # an unknown topic is refused before the file is opened
    stream = sys.stdin.buffer if source == "-" else _open(source, "rb")
    name = "stdin" if source == "-" else source
    with RecordProducer(settings(), validate=False) as producer:
        sent = producer.send_lines(topic, stream, validate=validate, source=name)
    emit(as_json, {"topic": topic, "sent": sent}, f"sent {sent} records to {topic}")


def _produce_atspm(source: str, topic: str | None, zone_name: str, as_json: bool) -> None:
    from sim.signal_config import configuration
    from streaming import atspm
    from streaming.producer import RecordProducer

    if topic not in (None, atspm.TOPIC):
        raise UsageProblem(f"produce: --format atspm-csv produces to {atspm.TOPIC}, not {topic}")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageProblem(
            f"--timezone {zone_name!r}: not an IANA time zone such as UTC or America/Denver"
        ) from None
    s = settings()
    controllers = set(configuration(s).by_controller())
    if source == "-":
        lines, name = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline=""), "stdin"
    else:
        lines, name = _open(source, "r", encoding="utf-8-sig", newline=""), source
    with RecordProducer(s, validate=False) as producer:
        report = atspm.produce(producer, lines, controllers=controllers, zone=zone, source=name)
    payload = report.to_dict()
    text = Table("rows", "sent", "refused", "reason", "first line", title=f"{name} → {atspm.TOPIC}")
    text.add_row(str(report.rows), str(report.sent), str(payload["refused"]), "", "")
    for reason, refused in payload["refused_by_reason"].items():
        text.add_row("", "", str(refused["rows"]), reason, str(refused["first_line"]))
    if report.unknown_signals:
        text.caption = "unknown SignalIDs: " + ", ".join(
            f"{signal} ({rows})" for signal, rows in report.unknown_signals.most_common(10)
        )
    emit(as_json, payload, text)
    if payload["refused"]:
        raise typer.Exit(1)


def _open(path: str, mode: str, **text: str):  # noqa: ANN202
    try:
        return open(path, mode, **text)  # noqa: SIM115 - closed when the process ends
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from None


# -- ingest -------------------------------------------------------------------------------


@ingest_app.command("run")
def ingest_run(
    group: Annotated[
        str | None, typer.Option(help="Consumer group (default CITYBRAIN_INGEST_GROUP).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Writer processes.")] = 1,
    until_idle: Annotated[
        float | None, typer.Option(min=0, help="Exit after this many seconds without new records.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Consume the four input topics into bronze Parquet until SIGTERM (or --until-idle)."""
    from streaming.ingest import Ingest

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    ingest = Ingest(settings(), group=group, workers=workers)
    counters = ingest.run(idle_exit_s=until_idle)
    payload = {
        "group": ingest.group,
        "consumed": counters.consumed,
        "landed": counters.landed,
        "dead_lettered": counters.dead_lettered,
        "batches": counters.batches,
        "files": counters.files,
    }
    emit(as_json, payload, " ".join(f"{k}={v}" for k, v in payload.items()))


@ingest_app.command("status")
def ingest_status(
    group: Annotated[
        str | None, typer.Option(help="Consumer group (default CITYBRAIN_INGEST_GROUP).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Counters of the last or running ingest, and the group's lag per topic from the broker."""
    from streaming.status import ingest_status as read_status

    s = settings()
    payload = read_status(s, group or s.ingest_group)
    table = Table("what", "value")
    for key in ("group", "running", "updated_at"):
        table.add_row(key, str(payload.get(key)))
    for key, value in payload.get("counters", {}).items():
        if key != "lag":
            table.add_row(key, str(value))
    for topic, lag in payload["lag"].items():
        table.add_row(f"lag {topic}", str(lag))
    emit(as_json, payload, table)


# -- bench --------------------------------------------------------------------------------


@bench_app.command("ingest")
def bench_ingest(
    records: Annotated[int, typer.Option(min=1, help="Records to produce and ingest.")] = 50_000,
    invalid_fraction: Annotated[float, typer.Option(min=0, max=1, help="Share of broken records.")] = 0.01,
    rounds: Annotated[
        int, typer.Option(min=1, help="Alternating plain/ingest rounds; the ratio is their median.")
    ] = 3,
    workers: Annotated[int, typer.Option(min=1, help="Writer processes of the ingest.")] = 1,
    broker_kind: Annotated[
        BrokerKind, typer.Option("--broker", help="The broker started for the run: tansu or kafka.")
    ] = BrokerKind.tansu,
    processes: Annotated[
        str, typer.Option(help="Ingest processes in one group to compare, comma-separated; '' for none.")
    ] = "1,2",
    as_json: JsonFlag = False,
) -> None:
    """Ingest throughput against a plain kafka-python poll loop over the same records, same run;
    and the rate of 1, 2, … ingest processes in one consumer group, with lost and duplicated."""
    from streaming.benchmark import run_ingest_benchmark

    try:
        counts = tuple(sorted({int(part) for part in processes.split(",") if part.strip()}))
    except ValueError:
        raise UsageProblem(f"--processes {processes!r}: expected whole numbers like 1,2") from None
    if any(count < 1 for count in counts):
        raise UsageProblem(f"--processes {processes!r}: each count must be 1 or more")
    result = run_ingest_benchmark(
        records,
        invalid_fraction,
        rounds=rounds,
        workers=workers,
        broker_kind=broker_kind.value,
        processes=counts,
        progress=err,
    )
    table = Table("figure", "value")
    for key, value in result.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    emit(as_json, result, table)


@bench_app.command("sim")
def bench_sim(
    scenario: Annotated[str, typer.Option(help="Scenario to run both ways.")] = "resco/grid4x4",
    controller: Annotated[str, typer.Option(help="Controller (one that acts every step).")] = "max-pressure",
    seeds: Annotated[int, typer.Option(min=2, help="Seeds for the 1-vs-2-process comparison.")] = 4,
    as_json: JsonFlag = False,
) -> None:
    """libsumo against TraCI (simulated s per wall s, ratio) and N seeds over 2 processes."""
    from sim.benchmark import run_sim_benchmark
    from sim.scenarios import resolve

    with err.status("running libsumo, TraCI, then the seeds serially and over 2 processes"):
        result = run_sim_benchmark(resolve(scenario, settings().sim_dir / "build"), controller, seeds)
    table = Table("figure", "value")
    for key, value in result.items():
        table.add_row(key, str(value))
    emit(as_json, result, table)


@bench_app.command("lake")
def bench_lake(
    days: Annotated[int, typer.Option(min=1, help="Days of data; fused as one day, then all of them.")] = 7,
    detectors: Annotated[int, typer.Option(min=1, help="Detectors reporting every 60 s.")] = 2000,
    probes: Annotated[int, typer.Option(min=1, help="Probe vehicles reporting every 5 s.")] = 500,
    regenerate: Annotated[
        bool, typer.Option(help="Generate the bronze again even if a kept one matches.")
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Instead: fuse one day on local[*] and on this Spark standalone master (spark://HOST:PORT), "
            "or on a master and two workers this command starts on loopback ('loopback'); the ratio.",
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            help="Also write the figures to this JSON file (benchmarks/results/lake.json; "
            "lake_cluster.json with --cluster)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fusion at a city's volume on ingolstadt21: rows/s, peak memory, 7-day/1-day scaling, vs DuckDB."""
    from lake.benchmark import compare_on_cluster, run_lake_benchmark, write_results

    if cluster is not None:
        result = compare_on_cluster(
            settings(), cluster, detectors=detectors, probes=probes, reuse_bronze=not regenerate, progress=err
        )
    else:
        result = run_lake_benchmark(
            settings(),
            days=days,
            detectors=detectors,
            probes=probes,
            reuse_bronze=not regenerate,
            progress=err,
        )
    if results is not None:
        write_results(result, results)
    table = Table("figure", "value")
    for key, value in result.items():
        if not isinstance(value, dict):
            table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    emit(as_json, result, table)


@bench_app.command("console")
def bench_console(
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients, each with its own session.")] = 50,
    seconds: Annotated[float, typer.Option(min=0.1, help="How long each phase's load runs.")] = 20.0,
    server_workers: Annotated[
        int, typer.Option(min=1, max=64, help="Server processes, as `citybrain console --workers`.")
    ] = 2,
    as_json: JsonFlag = False,
) -> None:
    """The console under load: clients on loopback against the plan list and the map (after a
    baseline phase on /api/me); p50/p95, errors."""
    from console.benchmark import run_console_benchmark

    result = run_console_benchmark(
        settings(), clients=clients, seconds=seconds, server_workers=server_workers, progress=err
    )
    table = Table("figure", "value")
    for key, value in result.items():
        if not isinstance(value, dict | list):
            table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else str(value))
    emit(as_json, result, table)


def _bench_arguments(scenarios: str, results: Path | None, plot: Path | None) -> list[str]:
    """A simulation benchmark's scenario names, its --results and --plot file names checked."""
    names = [n.strip() for n in scenarios.split(",") if n.strip()]
    if not names:
        raise UsageProblem("--scenarios: expected at least one scenario name")
    if results is not None and results.suffix.lower() != ".json":
        raise UsageProblem(f"--results {results}: expected a .json file name")
    if plot is not None and plot.suffix.lower() != ".png":
        raise UsageProblem(f"--plot {plot}: expected a .png file name")
    return names


def _write_results(path: Path | None, result: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


@bench_app.command("priority")
def bench_priority(
    scenarios: Annotated[
        str, typer.Option(help="Comma-separated scenarios to dispatch emergency vehicles in.")
    ] = "corridor,resco/cologne8,resco/ingolstadt21",
    dispatches: Annotated[
        int, typer.Option(min=2, help="Dispatches per scenario, each run with and without priority.")
    ] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the dispatches' routes, times and simulations.")] = 17,
    min_signals: Annotated[int, typer.Option(min=1, help="Signals a dispatch's route should cross.")] = 4,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes; default one per core.")] = None,
    results: Annotated[
        Path | None,
        typer.Option(help="Also write the figures to this JSON file (benchmarks/results/priority.json)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Draw each dispatch's trip with and without priority to this PNG.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """An emergency vehicle's trip with and without signal priority, the cost to other traffic,
    and the safety rules checked on every step."""
    from optimizer.priority.benchmark import run_priority_benchmark
    from sim.scenarios import resolve

    names = _bench_arguments(scenarios, results, plot)
    build = settings().sim_dir / "build"
    result = run_priority_benchmark(
        settings(),
        [resolve(name, build) for name in names],
        dispatches=dispatches,
        seed=seed,
        min_signals=min_signals,
        workers=workers,
        log=err.log,
    )
    if plot is not None:
        from optimizer.priority.plots import plot_priority

        result["plot"] = str(plot_priority(result, plot))
    _write_results(results, result)
    table = Table(
        "scenario",
        "trip without (s)",
        "with (s)",
        "reduction",
        "stops without/with",
        "others' delay",
        "violations",
    )
    for name, row in result["scenarios"].items():
        times = row["travel_time_s"]
        signals = row["signals"]
        table.add_row(
            name,
            f"{times['baseline']['mean']:.0f}" if times["baseline"] else "-",
            f"{times['priority']['mean']:.0f}" if times["priority"] else "-",
            f"{row['reduction']:.0%}" if row["reduction"] is not None else "-",
            f"{signals['baseline']['crossed'] - signals['baseline']['without_stopping']}"
            f"/{signals['priority']['crossed'] - signals['priority']['without_stopping']}",
            f"{row['others_delay_change']:+.1%}" if row["others_delay_change"] is not None else "-",
            str(row["violations"]["priority"]),
        )
    emit(as_json, result, table)


@bench_app.command("incident")
def bench_incident(
    scenarios: Annotated[
        str, typer.Option(help="Comma-separated scenarios to close a lane in.")
    ] = "corridor,resco/ingolstadt7",
    seeds: Annotated[int, typer.Option(min=2, help="Evaluation seeds 1..K under the closure.")] = 10,
    budget_s: Annotated[
        float, typer.Option(min=1, help="Search budget of the re-planning, in seconds.")
    ] = 120.0,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes; default one per core.")] = None,
    results: Annotated[
        Path | None,
        typer.Option(help="Also write the figures to this JSON file (benchmarks/results/incident.json)."),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Draw the delays to this PNG.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delay during a lane closure under the current plan and the re-planned one, and the time
    from the incident's confirmation to the proposal."""
    from optimizer.incidents.benchmark import run_incident_benchmark
    from sim.scenarios import resolve

    names = _bench_arguments(scenarios, results, plot)
    build = settings().sim_dir / "build"
    chosen = [resolve(name, build) for name in names]
    result = run_incident_benchmark(chosen, seeds=seeds, budget_s=budget_s, workers=workers, log=err.log)
    if plot is not None:
        from optimizer.incidents.plots import plot_incident

        result["plot"] = str(plot_incident(result, plot))
    _write_results(results, result)
    table = Table(
        "scenario", "closed", "current (s)", "incident plan (s)", "reduction", "proposal", "outcome"
    )
    for name, row in result["scenarios"].items():
        delay = row["delay"]
        table.add_row(
            name,
            ", ".join(row["closure"]["lane_ids"]),
            f"{delay['current_plan']['mean']:.1f}" if delay else "-",
            f"{delay['incident_plan']['mean']:.1f}" if delay else "-",
            f"{delay['reduction']:.0%}" if delay and delay["reduction"] is not None else "-",
            f"{row['proposal']['seconds']:.0f} s",
            row["proposal"]["outcome"],
        )
    emit(as_json, result, table)


@bench_app.command("resco")
def bench_resco(
    seeds: Annotated[int, typer.Option(min=2, help="Evaluation seeds 1..K for every controller.")] = 10,
    budget_minutes: Annotated[
        float, typer.Option(min=0.1, help="Search budget of each tuned method on each scenario.")
    ] = 3.0,
    scenarios: Annotated[
        str, typer.Option(help="Comma-separated RESCO scenario names; default all eight.")
    ] = "",
    minutes: Annotated[
        float | None, typer.Option(help="Simulate only this many minutes of each window (quick checks).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes; default one per core.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Draw the delays beside RESCO's best to this PNG.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every method on the RESCO scenarios beside RESCO's best published delay, with the targets."""
    from optimizer.resco_benchmark import plot_resco, run_resco_benchmark
    from sim.evaluate import shorten
    from sim.scenarios import RESCO_WINDOWS

    names = [n.strip() for n in scenarios.split(",") if n.strip()] or list(RESCO_WINDOWS)
    unknown = [n for n in names if n not in RESCO_WINDOWS]
    if unknown:
        raise UsageProblem(f"--scenarios: unknown {', '.join(unknown)}; known: {', '.join(RESCO_WINDOWS)}")
    if minutes is not None and minutes <= 0:
        raise UsageProblem(f"--minutes {minutes:g}: expected a positive number of minutes")
    if plot is not None and plot.suffix.lower() != ".png":
        raise UsageProblem(f"--plot {plot}: expected a .png file name")
    result = run_resco_benchmark(
        settings(),
        scenarios=names,
        seeds=seeds,
        budget_minutes=budget_minutes,
        workers=workers,
        shorten=lambda scenario: shorten(scenario, minutes),
        log=err.log,
    )
    if plot is not None:
        result["plot"] = str(plot_resco(result, plot))
    table = Table("scenario", *result["controllers"], "RESCO best", "targets met")
    for name, row in result["scenarios"].items():
        delays = [f"{row['controllers'][c]['resco_delay']['mean']:.2f}" for c in result["controllers"]]
        met = sum(row["targets"].values())
        table.add_row(name, *delays, f"{row['resco_best']:.2f}", f"{met}/{len(row['targets'])}")
    emit(as_json, result, table)


def main() -> None:
    """Entry point: failures a user can act on become one line on stderr and exit status 2."""
    try:
        app()
    except CitybrainError as exc:
        err.print(f"error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
