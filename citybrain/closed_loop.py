"""The closed loop of ``citybrain demo``: the twin with the field on its signals, paused while
the city brain decides, then measured before and after the plan took effect.

The corridor's sensor twin runs with the field service applying approvals to its signals
(:func:`field.run.run_twin_field`) in a process of its own — as the field runs beside the lake
and the console, and because libsumo keeps one simulation per process while the optimizer forks
simulations of its own. At :data:`DECIDE_AT` the twin pauses (the simulated city waits, so the
result does not depend on the machine's speed) while the demo fuses what it streamed, optimizes
and proposes a plan; an operator approves it — a script with ``--headless``, or a person in the
console — and the twin runs on with the plan applied at its signals' next cycle boundary.

Delay is then measured over two equal windows of the peak, whose demand is the same (the
corridor's profile is flat from 07:30 to 08:30): the quarter hour before the decision and the
first whole quarter hour after the plan's transition, on the approaches of the plan's signals —
from gold's fused link state, as the console's map and the field's watcher read it, and from
SUMO's own edge measures beside it.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import CitybrainError
from core.settings import Settings

#: The corridor's decision point, 07:45 (simulation seconds): the quarter hour before it is the
#: peak's first, the "before" window.
DECIDE_AT = 27_900.0
#: The twin runs to 08:15: the plan takes effect at a cycle boundary after 07:45 and moves its
#: offsets over a few 120 s cycles, so 08:00–08:15 is the first whole quarter hour after it.
RUN_UNTIL = 29_700.0
#: The length of each measured window.
WINDOW = timedelta(minutes=15)
#: How long a child may take to reach the decision point or to finish (a slow machine, a cold cache).
CHILD_TIMEOUT_S = 1800.0
#: Plan states that end the wait for the field's answers.
SETTLED = frozenset({"applied", "refused", "failed", "rolled_back", "superseded"})


class LoopError(CitybrainError):
    """The loop could not run: the twin's process failed, or a part did not answer in time."""


def _field_twin_main(
    settings: Settings,
    scenario: str,
    pause_at: tuple[float, ...],
    until: float,
    paused_queue: Any,
    resume: Any,
    result_queue: Any,
) -> None:
    """The child process: the twin with the field service, paused at each of ``pause_at``."""
    from rich.console import Console

    from core.database import open_database
    from field.run import run_twin_field

    def paused(_t: float, counts: dict[str, int]) -> None:
        paused_queue.put(counts)
        resume.wait()
        resume.clear()

    answers: list[dict[str, Any]] = []
    try:
        summary, counts = run_twin_field(
            settings,
            open_database(settings),
            scenario,
            out_dir=settings.sim_dir / "twin",
            until=until,
            progress=Console(stderr=True),
            on_handled=lambda handled: answers.append(
                {
                    "plan_id": handled.plan_id,
                    "tls_id": handled.tls_id,
                    "outcome": handled.outcome,
                    "detail": handled.detail,
                }
            ),  # fmt: skip
            pause_at=pause_at,
            paused=paused,
        )
        result_queue.put({"twin": summary.to_dict(), "outcomes": counts.outcomes, "answers": answers})
    except BaseException as exc:  # the parent must hear of it, whatever it was
        result_queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


class FieldTwin:
    """The twin and its field service in a spawned child process: :meth:`wait_paused` until it
    holds at the next of ``pause_at``, :meth:`resume`, and :meth:`result` when it has finished."""

    def __init__(self, settings: Settings, scenario: str, pause_at: tuple[float, ...], until: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._paused, self._results, self._resume = context.Queue(), context.Queue(), context.Event()
        self._process = context.Process(
            target=_field_twin_main,
            args=(settings, scenario, pause_at, until, self._paused, self._resume, self._results),
            name="citybrain-field-twin",
        )

    def start(self) -> FieldTwin:
        self._process.start()
        return self

    def _wait(self, source: Any, what: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                return source.get(timeout=1.0)
            except queue.Empty:
                pass
            if not self._process.is_alive():
                try:
                    return self._results.get(timeout=1.0)
                except queue.Empty:
                    raise LoopError(
                        f"the twin's process ended (exit {self._process.exitcode}) before {what}"
                    ) from None
        raise LoopError(f"the twin did not reach {what} within {timeout_s:.0f} s")

    def wait_paused(self, timeout_s: float = CHILD_TIMEOUT_S) -> dict[str, int]:
        """The records the twin sent before it paused, per topic (flushed to Kafka)."""
        counts = self._wait(self._paused, "its pause", timeout_s)
        if "error" in counts:
            raise LoopError(f"the twin failed: {counts['error']}")
        return counts

    def resume(self) -> None:
        self._resume.set()

    def result(self, timeout_s: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
        """The twin's summary, the field's outcomes and its answers, once the run ended."""
        found = self._wait(self._results, "the end of its run", timeout_s)
        self._process.join(30)
        if "error" in found:
            raise LoopError(f"the twin failed: {found['error']}")
        return found

    def stop(self) -> None:
        """End the child however far it got (Ctrl-C, a failure elsewhere)."""
        self._resume.set()
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


# -- deciding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    name: str
    password: str


def demo_operator(engine: Any) -> Login:
    """An operator for the demo's own database, with a fresh random password."""
    from console import users

    login = Login("demo", secrets.token_urlsafe(12))
    users.add(engine, login.name, "operator", login.password, actor="citybrain demo")
    return login


def approve_by_script(settings: Settings, engine: Any, plan_id: str, login: Login) -> str:
    """Approve as the console does (safety re-check, audit, the approval published)."""
    from console import approval, users

    user = users.get(engine, login.name)
    approved = approval.approve(
        settings, engine, plan_id, user, "approved by citybrain demo --headless", address=None
    )
    return approved.status


def wait_for_decision(engine: Any, plan_id: str, timeout_s: float) -> str:
    """The plan's state once a person approved or rejected it in the console, or ``proposed``
    when nobody did within ``timeout_s``."""
    from optimizer.proposing import store

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = store.get(engine, plan_id).status
        if status != store.PROPOSED:
            return status
        time.sleep(1.0)
    return store.get(engine, plan_id).status


def console_environment(settings: Settings) -> dict[str, str]:
    """The environment of a ``citybrain console`` serving the demo's corner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYBRAIN_")}
    env.update(
        CITYBRAIN_VAR_DIR=str(settings.var_dir.resolve()), CITYBRAIN_LAKE_NETWORK=settings.lake_network
    )
    return env


def start_console(settings: Settings, host: str, port: int) -> subprocess.Popen[bytes]:
    """``citybrain console`` on the demo's database, lake and broker, in a process of its own;
    its log (every request) goes to ``console.log`` in the demo's folder, not over the demo's."""
    command = [sys.executable, "-m", "citybrain.cli", "console", "--host", host, "--port", str(port)]
    with open(settings.var_dir / "console.log", "ab") as log:
        return subprocess.Popen(
            command, env=console_environment(settings), stdout=log, stderr=subprocess.STDOUT
        )


def follow_until_settled(settings: Settings, engine: Any, plan_id: str, timeout_s: float = 120.0) -> str:
    """The plan store follows ``control.plan.applied.v1`` until the plan's outcome is settled."""
    from field.run import follow
    from optimizer.proposing import store

    deadline = time.monotonic() + timeout_s
    follow(
        settings,
        engine,
        stop_when=lambda: store.get(engine, plan_id).status in SETTLED or time.monotonic() > deadline,
    )
    return store.get(engine, plan_id).status


# -- measuring ---------------------------------------------------------------------------------


def measure_windows(settled_at: datetime) -> tuple[datetime, datetime]:
    """The starts of the "before" window (the quarter hour before the decision) and of the
    "after" one (the first whole quarter hour once the plan's transition ended, ``settled_at``)."""
    from field.run import DAY
    from lake.tables import SLOT, ceil_to
    from sim.twin import parse_day, sim_time_to_utc

    decided = sim_time_to_utc(parse_day(DAY), DECIDE_AT)
    return decided - WINDOW, ceil_to(settled_at, SLOT)


def run_without_plan(settings: Settings, scenario: str, out_dir: Path) -> Path:
    """The same twin run (same seed, same incident) with the corridor's own programs throughout,
    its records dropped: SUMO's truth of what the after window would have been without the plan.
    Up to the plan's first switch it is the same simulation, so its "before" equals the loop's."""
    from sim.twin import run_twin

    run_twin(settings, scenario, out_dir=out_dir, until=RUN_UNTIL, sink=lambda _topic, _record: None)
    return out_dir


def measure(
    lake: Path,
    truth_dir: Path,
    without_plan_dir: Path,
    day: str,
    approaches: tuple[Any, ...],
    before: datetime,
    after: datetime,
) -> dict[str, Any]:
    """Delay on ``approaches`` in the two windows, from gold and from SUMO's truth, and the truth
    of the same windows in the run without the plan."""
    from field.watch import approaches_delay, per_slot_delay
    from lake.truth import truth_link_state

    def gold(start: datetime) -> float | None:
        return per_slot_delay(lake, approaches, start, start + WINDOW).get(start)

    def truth(start: datetime, folder: Path = truth_dir) -> float | None:
        return approaches_delay(approaches, truth_link_state(folder, day, start))

    return {
        "delay_before": gold(before),
        "delay_after": gold(after),
        "truth": {
            "delay_before": truth(before),
            "delay_after": truth(after),
            "without_plan": {
                "delay_before": truth(before, without_plan_dir),
                "delay_after": truth(after, without_plan_dir),
            },
        },
        "windows": {
            "before": [before.isoformat(), (before + WINDOW).isoformat()],
            "after": [after.isoformat(), (after + WINDOW).isoformat()],
        },
        "approaches": len(approaches),
    }
