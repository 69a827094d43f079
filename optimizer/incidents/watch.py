"""``citybrain incidents watch``: incident reports in from ``public.incident.v1``, plans out.

The watch follows the topic (:mod:`streaming.follower`, group :data:`WATCH_GROUP`) and keeps the
newest report of each incident. After each poll it acts on what changed:

- an incident that is open (``confirmed`` or ``active``, before its end) and not yet tried is
  re-planned (:func:`optimizer.incidents.replan.replan`), once: a refusal (nothing better than
  the current programs) is remembered, not retried on every poll;
- an incident that is over (``cleared``, ``cancelled``, or its end passed) and was re-planned is
  stood down (:func:`optimizer.incidents.replan.stand_down`), once.

A plan stored while the broker was away (``publish-failed``) is sent when the watch starts
(:func:`optimizer.proposing.propose.publish_pending`). What the watch knows survives a restart:
the reports and what was done with them are written to ``var/run/incidents-<group>.json``
before the offsets are committed, so a restart neither re-plans an incident nor forgets one
whose report it had read. Records that break the contract are counted and skipped: the ingest
dead-letters them with the reason already, from its own group. An incident whose re-planning
fails (not located on the network, a simulation that failed) is said, remembered and left;
the watch goes on with the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from core.errors import CitybrainError
from core.files import write_atomic
from core.settings import Settings
from optimizer.incidents.model import Incident, IncidentError
from optimizer.incidents.replan import INCIDENT_METHOD, answers, replan, stand_down
from optimizer.plans.model import format_utc
from optimizer.proposing import store
from optimizer.proposing.propose import publish_pending
from schemas import RecordInvalid, contract
from sim.scenarios import Scenario
from streaming.follower import assigned_consumer, polled

log = logging.getLogger(__name__)

TOPIC = "public.incident.v1"
WATCH_GROUP = "citybrain-incidents"
#: Format of the state file; bumped when its meaning changes.
STATE_FORMAT = 1


def state_file(settings: Settings, group: str) -> Path:
    return settings.run_dir / f"incidents-{group}.json"


@dataclass
class WatchState:
    """The newest report of each incident, and which were re-planned and stood down (by id:
    the outcome of the attempt)."""

    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    replanned: dict[str, str] = field(default_factory=dict)
    stood_down: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> WatchState:
        if not path.is_file():
            return cls()
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or record.get("format") != STATE_FORMAT:
                found = record.get("format") if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"format {found!r}, expected {STATE_FORMAT}")
            parts = record["reports"], record["replanned"], record["stood_down"]
            if not all(isinstance(part, dict) for part in parts):
                raise ValueError("reports, replanned and stood_down must be objects")
            return cls(*parts)
        except (ValueError, KeyError, TypeError) as exc:
            raise IncidentError(
                f"{path}: cannot read the incident watch's state ({exc}); move it aside"
            ) from None

    def save(self, path: Path) -> None:
        content = {
            "format": STATE_FORMAT,
            "reports": self.reports,
            "replanned": self.replanned,
            "stood_down": self.stood_down,
        }
        write_atomic(path, json.dumps(content, indent=1, sort_keys=True) + "\n")

    def take(self, record: dict[str, Any]) -> bool:
        """Keep ``record`` if it is the newest of its incident; whether it was."""
        known = self.reports.get(record["incident_id"])
        if known is not None and Incident.from_record(known).ts > Incident.from_record(record).ts:
            return False
        self.reports[record["incident_id"]] = record
        return True

    def incidents(self) -> list[Incident]:
        return [Incident.from_record(r) for _, r in sorted(self.reports.items())]


@dataclass
class WatchReport:
    """What a watch did: records read, skipped as invalid, and each action's summary."""

    read: int = 0
    invalid: int = 0
    replanned: list[dict[str, Any]] = field(default_factory=list)
    stood_down: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "invalid": self.invalid,
            "replanned": self.replanned,
            "stood_down": self.stood_down,
        }


class IncidentWatch:
    """The watch's loop body: :meth:`poll` reads, remembers, commits and acts (see the module).

    ``scenario`` gives the city's scenario when an incident needs one (the lake's latest counts,
    or a named scenario); ``now`` the time incidents are judged at.
    """

    def __init__(
        self,
        settings: Settings,
        scenario: Callable[[], Scenario],
        *,
        group: str = WATCH_GROUP,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_step: Callable[[str], None] = log.info,
    ) -> None:
        self.settings = settings
        self.scenario = scenario
        self.now = now
        self.on_step = on_step
        self.path = state_file(settings, group)
        self.state = WatchState.load(self.path)
        self.report = WatchReport()
        self.contract = contract(TOPIC)
        self.consumer = assigned_consumer(settings, (TOPIC,), group)
        self._scenario: Scenario | None = None
        # a proposal stored while the broker was away is sent before anything new
        for pending in publish_pending(settings):
            on_step(f"earlier proposal {pending.plan_id}: {pending.outcome} ({pending.reason})")

    def poll(self, timeout_ms: int = 1000) -> None:
        messages = list(polled(self.consumer, timeout_ms))
        for message in messages:
            self.report.read += 1
            try:
                record = orjson.loads(message.value)
                self.contract.validate(record)
            except (orjson.JSONDecodeError, RecordInvalid) as exc:
                self.report.invalid += 1
                log.warning("incident record at %s/%d skipped: %s", message.partition, message.offset, exc)
                continue
            self.state.take(record)
        if messages:
            self.state.save(self.path)
            self.consumer.commit()
        self.act()

    def act(self) -> None:
        """Re-plan what opened, stand down what is over, each once."""
        now = self.now()
        for incident in self.state.incidents():
            key = incident.incident_id
            if incident.is_open(now) and key not in self.state.replanned:
                self._replan(incident, now)
            elif incident.is_over(now) and key in self.state.replanned and key not in self.state.stood_down:
                self._stand_down(incident, now)

    def _replan(self, incident: Incident, now: datetime) -> None:
        key = incident.incident_id
        self.on_step(f"incident {key} is {incident.status} on edge {incident.edge_id}: re-planning")
        try:
            done = replan(self.settings, self.city(), incident, now=now, on_step=self.on_step)
        except CitybrainError as exc:
            # not located, no lake to plan on, a simulation that failed: said, remembered, and
            # the watch goes on with the other incidents
            outcome = "refused-not-located" if isinstance(exc, IncidentError) else "failed"
            self._remember(self.state.replanned, key, f"{outcome}: {exc}")
            self.report.replanned.append({"incident_id": key, "outcome": outcome, "reason": str(exc)})
            self.on_step(f"incident {key}: {outcome} ({exc})")
            return
        self.on_step(f"incident {key}: {done.proposal.outcome} ({done.proposal.reason})")
        self._remember(self.state.replanned, key, done.proposal.outcome)
        self.report.replanned.append(done.summary())

    def _stand_down(self, incident: Incident, now: datetime) -> None:
        key = incident.incident_id
        planned = answers(store.open_store(self.settings), key)
        if not any(p.method == INCIDENT_METHOD for p in planned):  # refused: nothing to take back
            self._remember(self.state.stood_down, key, "no plan to stand down")
            return
        self.on_step(f"incident {key} is over ({incident.status}): standing down its plan")
        try:
            actions = stand_down(self.settings, self.city(), incident, now=now, on_step=self.on_step)
        except CitybrainError as exc:
            self._remember(self.state.stood_down, key, f"failed: {exc}")
            self.report.stood_down.append(
                {"incident_id": key, "plan_id": None, "action": None, "reason": f"failed: {exc}"}
            )
            self.on_step(f"incident {key}: standing down failed ({exc})")
            return
        outcome = ", ".join(a.action or "nothing" for a in actions)
        self._remember(self.state.stood_down, key, f"{outcome} at {format_utc(now)}")
        self.report.stood_down.extend(a.to_dict() for a in actions)

    def _remember(self, done: dict[str, str], key: str, outcome: str) -> None:
        done[key] = outcome
        self.state.save(self.path)

    def city(self) -> Scenario:
        """The city's scenario, made once per watch."""
        if self._scenario is None:
            self._scenario = self.scenario()
        return self._scenario

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def watch(
    settings: Settings,
    scenario: Callable[[], Scenario],
    *,
    stop_when: Callable[[], bool],
    group: str = WATCH_GROUP,
    poll_s: float = 1.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_step: Callable[[str], None] = log.info,
) -> WatchReport:
    """Follow the incident topic until ``stop_when()``; what was done."""
    follower = IncidentWatch(settings, scenario, group=group, now=now, on_step=on_step)
    try:
        while not stop_when():
            follower.poll(int(poll_s * 1000))
    finally:
        follower.close()
    return follower.report
