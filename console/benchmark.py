"""The console under load: C clients on loopback against the plan list and the map, for a bounded time.

:func:`run_console_benchmark` builds a throwaway project in a temporary folder — a database holding
:data:`DEFAULT_PLANS` plans stored through the plan store's own functions (on the map's network,
in every state an operator meets) and a viewer, and a lake with a day of gold link state for every
edge of the network plus a few active incidents — then serves it with uvicorn in separate
processes (``server_workers`` of them, sharing one listening socket bound on a free loopback port
before they start), so the load generator does not share the server's GIL. Each client logs in
with its own session (successful logins are not rate limited: only failures count against an
account or address). For ``seconds`` the clients send ``GET /api/me`` (the baseline: the floor
of a logged-in request on this machine at this moment), then for ``seconds`` more ``GET /api/plans``
and ``GET /api/network`` alternately, one request at a time, the even clients starting with the
plans and the odd ones with the map: half the requests go to each route. Each accepts gzip, as a
browser does, and reads every answer's body whole; none sends ``If-None-Match``, so every answer
is a full 200 (a browser revalidating would get cheaper 304s). Before the clock starts each
client fetches every route once (not counted), so the figures are the steady state, not the first
build of the map's geometry. A non-2xx answer or an exception is an error.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.files import write_atomic

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from core.settings import Settings
    from lake.delta import Lake

RESULTS_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "console.json"
#: The lake benchmark's city (ingolstadt21: 21 signals, over 800 edges on the map).
BENCH_NETWORK = "resco/ingolstadt21"
#: Some weeks of proposals: a plan every few hours, more than one page of the list (100).
DEFAULT_PLANS = 300
ROUTES = ("/api/plans", "/api/network")
#: Measured first, by the same clients for as long: who is logged in, the lightest route that
#: checks a session (one indexed query, a two-field answer) — the floor of what any page's request
#: costs on this machine at this moment. The routes' p95 over its p95 is the figure that a busy or
#: quiet machine moves least.
BASELINE = ("/api/me",)
VIEWER = "bench-viewer"
PASSWORD = "bench console password"
#: The day of gold the map shows (its newest quarter hour is the map's default).
DAY_START = datetime(2026, 3, 2, tzinfo=UTC)
SLOT = timedelta(minutes=15)
#: Plan states by share of the stored plans, newest first: most are old and decided.
STATE_CYCLE = ("proposed", "approved", "rejected", "superseded", "approved", "applied")
START_TIMEOUT_S = 60.0
#: As the README says to serve it on a two-core machine: ``citybrain console --workers 2``.
DEFAULT_SERVER_WORKERS = 2

Progress = Callable[[str], None]


def _reporter(progress: Any) -> Progress:
    """A rich Console (its ``print``), a plain callable, or nothing."""
    if progress is None:
        return lambda message: None
    if hasattr(progress, "print"):
        return lambda message: progress.print(message, markup=False, highlight=False)
    return progress


# -- the throwaway project --------------------------------------------------------------------


def seed_plans(engine: Engine, count: int, network: str = BENCH_NETWORK) -> dict[str, int]:
    """Store ``count`` plans on ``network`` with the plan store's functions: each one to four of its
    signals' own programs, a three-hour window every three hours back from :data:`DAY_START`, in
    the states of :data:`STATE_CYCLE`. Returns how many plans each state holds."""
    from optimizer.plans.model import Evaluation, KpiEstimate, NetworkPlan
    from optimizer.plans.sumo_programs import read_net_programs
    from optimizer.proposing import store
    from sim.scenarios import resco

    scenario = resco(network.removeprefix("resco/"))
    programs = read_net_programs(scenario.net_file)
    states: dict[str, int] = {}
    for i in range(count):
        size = 1 + i % 4
        signals = tuple(programs[(i * 5 + k) % len(programs)] for k in range(size))
        signals = tuple({s.tls_id: s for s in signals}.values())
        valid_from = DAY_START - timedelta(hours=3 * i)
        baseline, delay = 40.0 + i % 7, 30.0 + i % 5
        plan = NetworkPlan(
            signals=signals,
            method=("coordinated", "webster", "max-pressure")[i % 3],
            valid_from=valid_from,
            valid_to=valid_from + timedelta(hours=3),
            evaluation=Evaluation(
                scenario=network,
                seeds=(1, 2, 3, 4, 5),
                baseline={"resco_delay": KpiEstimate(baseline, 1.0, (baseline - 1.2, baseline + 1.2))},
                plan={"resco_delay": KpiEstimate(delay, 1.0, (delay - 1.2, delay + 1.2))},
                baseline_method="fixed",
            ),
        )
        assert plan.plan_id is not None
        store.save_proposal(engine, plan, plan.to_records(ts=valid_from))
        store.mark_published(engine, plan.plan_id)
        state = STATE_CYCLE[i % len(STATE_CYCLE)] if i >= 10 else "proposed"
        if state in ("approved", "applied"):
            store.set_status(engine, plan.plan_id, "approved", "bench-operator")
        if state not in ("proposed", "approved"):
            store.set_status(engine, plan.plan_id, state, "optimizer")
        states[state] = states.get(state, 0) + 1
    return states


def _commit(lake: Lake, name: str, rows: list[dict[str, Any]]) -> None:
    """``rows`` in the quarter hours of their ``window_start``, committed to table ``name`` in one
    Delta commit as a lake job commits an interval (:func:`lake.delta.write_partitions`), so the
    map reads them as it reads the jobs' output."""
    import pyarrow as pa

    from lake.delta import full_schema, write_partitions
    from lake.tables import TABLES, partition_of

    placed = []
    for row in rows:
        day, slot = partition_of(row["window_start"])
        placed.append({**row, "date": day, "slot": slot})
    table = TABLES[name]
    schema = full_schema(table)
    columns = {f.name: [row.get(f.name) for row in placed] for f in schema}
    partitions = {(row["date"], row["slot"]) for row in placed}
    write_partitions(lake, table, pa.table(columns, schema=schema), partitions)


def seed_lake(settings: Settings) -> dict[str, int]:
    """A day of gold link state on every edge of the map's network (96 quarter hours, speeds that
    dip in the peaks; one commit, as a day's backfill) and three incidents active in the newest
    quarter hour. Returns the counts."""
    from console.network_layers import _network, static_layers
    from lake.location import tables_location

    lake = tables_location(settings)
    edges = [f["properties"] for f in static_layers(_network(settings)).edges]
    slots = [DAY_START + SLOT * k for k in range(96)]
    rows = []
    for k, slot in enumerate(slots):
        peak = 0.5 + 0.5 * abs(math.cos(math.pi * k / 48))
        for n, edge in enumerate(edges):
            limit = edge["speed_limit_mps"] or 13.9
            incident = ["bench-1"] if n == 0 and k == len(slots) - 1 else []
            rows.append(
                {
                    "edge_id": edge["id"],
                    "window_start": slot,
                    "window_end": slot + SLOT,
                    "flow_vph": 200.0 + (n * 37 + k * 11) % 900,
                    "detector_samples": 15,
                    "probe_samples": n % 5,
                    "speed_mps": limit * peak * (0.6 + 0.4 * ((n * 13) % 10) / 10),
                    "confidence": 0.5 + (n % 5) / 10,
                    "incident_ids": incident,
                    "incident_severity": 2 if incident else None,
                }
            )
    _commit(lake, "gold.link_state_15min", rows)
    newest = slots[-1]
    reports = [
        {
            "incident_id": f"bench-{i}",
            "ts": newest - timedelta(minutes=20 * i),
            "kind": "crash",
            "status": "active",
            "severity": 2,
            "lat": 48.76 + 0.002 * i,
            "lon": 11.42 + 0.002 * i,
            "edge_id": edges[i]["id"],
            "lane_ids": [],
            "start": newest - timedelta(minutes=20 * i + 5),
            "end": None,
            "description": "two cars, one lane blocked",
            "source": "police",
            "located_by": "edge",
            "window_start": newest - timedelta(minutes=20 * i),
        }
        for i in range(1, 4)
    ]
    _commit(lake, "silver.incidents", reports)
    return {"edges": len(edges), "slots": len(slots), "incidents": len(reports)}


# -- the server -------------------------------------------------------------------------------


def serve(fd: int, settings_json: str) -> None:
    """A server process: uvicorn on the inherited listening socket ``fd`` (``python -c``)."""
    import uvicorn

    from console.app import create_app
    from core.settings import Settings

    app = create_app(Settings.model_validate_json(settings_json))
    sock = socket.socket(fileno=fd)
    # as ``citybrain console`` serves, its access log going nowhere
    config = uvicorn.Config(app, log_level="warning", server_header=False)
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class Servers:
    url: str
    processes: list[subprocess.Popen[bytes]]
    log: Path

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_servers(settings: Settings, workers: int, log: Path) -> Servers:
    """``workers`` uvicorn processes accepting on one loopback socket bound here, on a free port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    port = sock.getsockname()[1]
    code = f"from console.benchmark import serve; serve({sock.fileno()}, {settings.model_dump_json()!r})"
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with log.open("ab") as sink:
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=[sock.fileno()],
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env=env,
                cwd=root,
            )
            for _ in range(workers)
        ]
    sock.close()
    return Servers(f"http://127.0.0.1:{port}", processes, log)


def _wait_healthy(servers: Servers) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        dead = [p for p in servers.processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a console server exited ({dead[0].returncode}): {_tail(servers.log)}")
        try:
            if httpx.get(f"{servers.url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the console did not answer within {START_TIMEOUT_S:.0f} s: {_tail(servers.log)}"
            )
        time.sleep(0.1)


def _cpu_s(pids: list[int]) -> float | None:
    """User and system CPU seconds spent so far by the processes ``pids`` (Linux ``/proc``)."""
    try:
        ticks = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _tail(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text[-2000:] or "(nothing on its stderr)"


# -- the load ---------------------------------------------------------------------------------


@dataclass
class RouteFigures:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    bytes: int = 0


async def _load(
    url: str, clients: int, seconds: float, say: Progress, server_pids: list[int]
) -> tuple[dict[str, dict[str, RouteFigures]], dict[str, float], list[str], dict[str, float | None]]:
    """Log ``clients`` clients in, then run the baseline phase (:data:`BASELINE`) and the measured
    phase (:data:`ROUTES`) for ``seconds`` each; per phase, the figures per route and the elapsed
    time. The clients are aiohttp sessions of one connection each: a browser's keep-alive
    connection, its cookie jar, gzip accepted and bodies inflated and read whole."""
    import aiohttp

    samples: list[str] = []
    connector = {"limit": 1, "force_close": False}
    browsers = [
        aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(**connector),
            timeout=aiohttp.ClientTimeout(total=30),
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # loopback by IP address
            headers={"Accept-Encoding": "gzip"},
        )
        for _ in range(clients)
    ]
    try:
        say(f"console bench: logging in {clients} clients as {VIEWER}, one session each")
        for browser in browsers:  # one by one: argon2 is meant to be slow, the server would queue them
            async with browser.post("/api/login", json={"name": VIEWER, "password": PASSWORD}) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"login refused ({answer.status}): {(await answer.text())[:300]}")
        say("console bench: warming up (each client fetches every route once, not counted)")
        for route in (*BASELINE, *ROUTES):
            await asyncio.gather(*(_warm(browser, route) for browser in browsers))
        figures, elapsed = {}, {}
        for phase, routes in (("baseline", BASELINE), ("routes", ROUTES)):
            say(f"console bench: {clients} clients for {seconds:g} s against {', '.join(routes)}")
            server_cpu, own_cpu = _cpu_s(server_pids), time.process_time()
            figures[phase], elapsed[phase] = await _phase(browsers, routes, seconds, say, samples)
            server_after = _cpu_s(server_pids)
        cpu = {  # of the measured phase, the last
            "server": None if server_cpu is None or server_after is None else server_after - server_cpu,
            "load_generator": time.process_time() - own_cpu,
        }
    finally:
        await asyncio.gather(*(browser.close() for browser in browsers), return_exceptions=True)
    return figures, elapsed, samples, cpu


async def _phase(
    browsers: list[Any], routes: tuple[str, ...], seconds: float, say: Progress, samples: list[str]
) -> tuple[dict[str, RouteFigures], float]:
    """Every client sends ``routes`` in turn, one request at a time, for ``seconds``; client ``i``
    starts at route ``i`` (mod their count), so the routes share the requests evenly."""
    figures = {route: RouteFigures() for route in routes}
    started = time.perf_counter()
    stop_at = started + seconds

    async def client(index: int, browser: Any) -> None:
        turn = index
        while time.perf_counter() < stop_at:
            route = routes[turn % len(routes)]
            turn += 1
            out = figures[route]
            t0 = time.perf_counter()
            try:
                async with browser.get(route) as answer:
                    body = await answer.read()
                    elapsed = time.perf_counter() - t0
                    if not 200 <= answer.status < 300:
                        out.errors += 1
                        if len(samples) < 5:
                            samples.append(f"{route}: {answer.status} {body[:200]!r}")
                        continue
                out.bytes += len(body)
                out.latencies_s.append(elapsed)
            except Exception as exc:  # noqa: BLE001 - every failure counts, and is shown
                out.errors += 1
                if len(samples) < 5:
                    samples.append(f"{route}: {type(exc).__name__}: {exc}")

    async def report() -> None:
        while time.perf_counter() < stop_at:
            await asyncio.sleep(min(2.0, max(0.0, stop_at - time.perf_counter())))
            done = sum(len(f.latencies_s) + f.errors for f in figures.values())
            spent = time.perf_counter() - started
            say(f"console bench: {spent:4.1f}/{seconds:g} s, {done:,} requests ({done / spent:,.0f}/s)")

    reporter = asyncio.create_task(report())
    await asyncio.gather(*(client(i, b) for i, b in enumerate(browsers)))
    reporter.cancel()
    return figures, time.perf_counter() - started


async def _warm(browser: Any, route: str) -> None:
    async with browser.get(route) as answer:
        answer.raise_for_status()
        await answer.read()


def _ms(latencies_s: list[float], q: float) -> float | None:
    import numpy as np

    return round(float(np.percentile(latencies_s, q)) * 1000, 2) if latencies_s else None


def _merged(figures: dict[str, RouteFigures]) -> RouteFigures:
    return RouteFigures(
        [s for f in figures.values() for s in f.latencies_s],
        sum(f.errors for f in figures.values()),
        sum(f.bytes for f in figures.values()),
    )


def _route_summary(figures: RouteFigures, elapsed: float) -> dict[str, Any]:
    done = len(figures.latencies_s)
    return {
        "requests": done + figures.errors,
        "rps": round(done / elapsed, 1),
        "p50_ms": _ms(figures.latencies_s, 50),
        "p95_ms": _ms(figures.latencies_s, 95),
        "p99_ms": _ms(figures.latencies_s, 99),
        "max_ms": _ms(figures.latencies_s, 100),
        "errors": figures.errors,
        "mean_kb": round(figures.bytes / done / 1000, 1) if done else None,
    }


def run_console_benchmark(
    settings: Settings,
    clients: int = 50,
    seconds: float = 20.0,
    *,
    plans: int = DEFAULT_PLANS,
    network: str = BENCH_NETWORK,
    server_workers: int = DEFAULT_SERVER_WORKERS,
    progress: Any = None,
) -> dict[str, Any]:
    """Serve a throwaway console (see the module) and load it with ``clients`` clients for
    ``seconds``; returns the figures as one JSON-ready dict. ``settings`` gives everything but
    the var folder, the lake, the database and the map's network, which are the benchmark's own."""
    from console import users
    from core import database

    if clients < 1 or seconds <= 0 or server_workers < 1:
        raise ValueError(f"need clients >= 1, seconds > 0, server_workers >= 1; got {clients}, {seconds}")
    say = _reporter(progress)
    with tempfile.TemporaryDirectory(prefix="citybrain-console-bench-") as folder:
        root = Path(folder)
        bench = settings.model_copy(
            update={
                "var_dir": root / "var",
                "lake_uri": str(root / "lake"),
                "database_url": None,
                "lake_network": network,
            }
        )
        engine = database.open_database(bench)
        say(f"console bench: storing {plans} plans on {network} and a viewer in {root}")
        users.add(engine, VIEWER, users.VIEWER, PASSWORD, actor="bench")
        states = seed_plans(engine, plans, network)
        engine.dispose()
        say("console bench: writing a day of gold link state and incidents")
        lake = seed_lake(bench)
        servers = start_servers(bench, server_workers, root / "server.log")
        try:
            _wait_healthy(servers)
            say(f"console bench: {server_workers} server process(es) at {servers.url}")
            pids = [process.pid for process in servers.processes]
            try:
                figures, elapsed, samples, cpu = asyncio.run(_load(servers.url, clients, seconds, say, pids))
            except Exception as exc:
                exited = [p.returncode for p in servers.processes if p.poll() is not None]
                if exited:  # the cause is on the server's side: show it
                    raise RuntimeError(
                        f"a console server exited ({exited[0]}): {_tail(servers.log)}"
                    ) from exc
                raise
        finally:
            servers.stop()
    every, floor = _merged(figures["routes"]), _merged(figures["baseline"])
    total, baseline = _route_summary(every, elapsed["routes"]), _route_summary(floor, elapsed["baseline"])
    result = {
        "clients": clients,
        "rps": total["rps"],
        "p50_ms": total["p50_ms"],
        "p95_ms": total["p95_ms"],
        "errors": total["errors"] + baseline["errors"],
        "p99_ms": total["p99_ms"],
        "max_ms": total["max_ms"],
        "seconds": round(elapsed["routes"], 2),
        "requests": total["requests"],
        "server_workers": server_workers,
        "routes": {route: _route_summary(figures["routes"][route], elapsed["routes"]) for route in ROUTES},
        "baseline": {"route": BASELINE[0], **baseline},
        "p95_over_baseline": (
            round(total["p95_ms"] / baseline["p95_ms"], 2) if total["p95_ms"] and baseline["p95_ms"] else None
        ),
        # CPU seconds in the timed window: where the two cores went (the server's per request)
        "cpu_s": {name: None if value is None else round(value, 2) for name, value in cpu.items()},
        "server_cpu_ms_per_request": (
            round(cpu["server"] * 1000 / total["requests"], 2)
            if cpu["server"] and total["requests"]
            else None
        ),
        "mix": "each client alternates /api/plans and /api/network, one request at a time, gzip accepted",
        "sessions": "one per client (successful logins are not rate limited)",
        "plans": plans,
        "plan_states": states,
        "network": network,
        "map": lake,
        "cpus": os.cpu_count(),
    }
    if samples:
        result["error_samples"] = samples
    say(
        f"console bench: {result['requests']:,} requests, {result['rps']:,.0f}/s, "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms ({result['p95_over_baseline']}x "
        f"{BASELINE[0]}'s {baseline['p95_ms']} ms), {result['errors']} errors"
    )
    return result


def write_results(result: dict[str, Any], path: Path = RESULTS_FILE) -> Path:
    """Write a finished run's figures to ``path`` (indented JSON, whole or not at all)."""
    return write_atomic(Path(path), json.dumps(result, indent=1) + "\n")
