"""An incident as the re-planning reads it: one ``public.incident.v1`` report, latest first.

Reports of one incident share its ``incident_id``; the newest (by ``ts``) says where it stands.
Re-planning acts on two moments of that life:

- it **opens** when a report says ``confirmed`` or ``active`` (a ``reported`` incident is not
  yet trusted enough to re-time signals for) and the incident has a network edge;
- it is **over** when a report says ``cleared`` or ``cancelled``, or when its expected end has
  passed without a word (reports stop as often as they are closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import CitybrainError
from optimizer.plans.model import parse_utc

OPENING = frozenset({"confirmed", "active"})
CLOSING = frozenset({"cleared", "cancelled"})


def _moment(value: str | datetime) -> datetime:
    """A time from a record (ISO 8601 text) or a lake row (a datetime, naive meaning UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return parse_utc(value)


class IncidentError(CitybrainError, ValueError):
    """An incident that cannot be planned for (not located on the network, or on no signal)."""


@dataclass(frozen=True)
class Incident:
    incident_id: str
    ts: datetime
    kind: str
    status: str
    severity: int
    edge_id: str | None
    lane_ids: tuple[str, ...]
    start: datetime
    end: datetime | None
    description: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Incident:
        """From a ``public.incident.v1`` record (valid against its contract) or a
        ``silver.incidents`` row (times as datetimes, the edge as located there)."""
        return cls(
            incident_id=record["incident_id"],
            ts=_moment(record["ts"]),
            kind=record["kind"],
            status=record["status"],
            severity=int(record["severity"]),
            edge_id=record.get("edge_id"),
            lane_ids=tuple(record.get("lane_ids") or ()),
            start=_moment(record["start"]),
            end=None if record.get("end") is None else _moment(record["end"]),
            description=record.get("description", ""),
        )

    def is_open(self, now: datetime) -> bool:
        """Confirmed or active, and not past its expected end."""
        return self.status in OPENING and not self.is_over(now)

    def is_over(self, now: datetime) -> bool:
        """Cleared, cancelled, or its expected end passed."""
        return self.status in CLOSING or (self.end is not None and self.end <= now)

    def expected_end(self, now: datetime, default: timedelta) -> datetime:
        """When a plan for it should stop: its reported end, else ``default`` from now."""
        return self.end if self.end is not None and self.end > now else now + default


def latest(records: Iterable[Mapping[str, Any]]) -> dict[str, Incident]:
    """The newest report of each incident, by ``ts`` (a later record wins a tie: an update
    re-sent with the same time replaces the first)."""
    found: dict[str, Incident] = {}
    for record in records:
        incident = Incident.from_record(record)
        known = found.get(incident.incident_id)
        if known is None or incident.ts >= known.ts:
            found[incident.incident_id] = incident
    return found
