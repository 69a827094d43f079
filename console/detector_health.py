"""The detector-health page's data (``GET /api/detectors``): one day of ``gold.detector_health_daily``.

The lake's daily job writes a row per detector and day (:func:`lake.gold.detector_health` says how
it judges ``ok``, ``degraded`` and ``down``); this reads one day's partition through the table's
Delta log with delta-rs (:mod:`lake.delta`: the day's folder may also hold files a rerun replaced;
no Spark session for a web request) and answers its detectors worst first, the count of each
status, and the days the table has for the page's day picker. The lake has no detector inventory
yet, so a detector silent all day is missing from the table rather than ``down``.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from core.errors import CitybrainError
from core.settings import Settings
from lake.delta import Lake, filled_days, read_partitions
from lake.location import tables_location
from lake.tables import TABLES

HEALTH = TABLES["gold.detector_health_daily"]
#: The statuses the lake's job gives, worst first: the order of the table and the counts.
STATUSES = ("down", "degraded", "ok")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadDay(CitybrainError, ValueError):
    """A day asked for that is not a calendar date written YYYY-MM-DD."""


class DetectorOut(BaseModel):
    """One detector's day, as ``gold.detector_health_daily`` has it."""

    detector_id: str
    intersection_id: str
    lane_id: str
    edge_id: str | None
    expected_intervals: int
    received_intervals: int
    availability: float = Field(description="Received intervals over expected ones, in [0, 1].")
    duplicates: int
    late_intervals: int
    stuck_intervals: int
    zero_intervals: int
    implausible_intervals: int
    usable_share: float = Field(description="Share of the day's readings fit for use, in [0, 1].")
    status: str = Field(description="ok, degraded or down.")
    last_seen: datetime


class DetectorHealth(BaseModel):
    """The answer of ``GET /api/detectors``."""

    day: date | None = Field(description="The UTC day shown; null when the lake has no day at all.")
    days: list[date] = Field(description="Every day the table has, oldest first (the day picker's).")
    counts: dict[str, int] = Field(
        description="The day's detectors per status, worst first, whatever the status filter."
    )
    detectors: list[DetectorOut] = Field(
        description="The day's detectors (of the status asked), worst first."
    )
    reason: str | None = Field(None, description="Why there are no detectors to show, if so.")


def parse_day(text: str) -> date:
    """``2026-11-28`` as a date. Stricter than pydantic's ``date``, which also takes a number of
    seconds since 1970 (``?day=0`` would show 1970-01-01, not be refused)."""
    if not _ISO_DAY.fullmatch(text):
        raise BadDay(f"day {text!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadDay(f"day {text!r}: {exc}") from None


def read(settings: Settings, day: date | None = None, status: str | None = None) -> DetectorHealth:
    """The detectors of ``day`` (default: the newest day the lake has), of ``status`` only when
    given, worst first: by status, then by the lower of availability and usable share (what the
    status was judged on), then by id. A lake without the table, or without ``day``, gives no
    detectors and the reason."""
    lake = tables_location(settings)
    days = filled_days(lake, HEALTH.name)
    if day is None and not days:
        return _empty(None, days, f"the lake has no {HEALTH.name} yet: the lake's fuse job writes it")
    shown = day or days[-1]
    if shown not in days:
        return _empty(shown, days, f"the lake has no {HEALTH.name} for {shown}")
    rows = sorted(_rows(lake, shown), key=_worst_first)
    found = Counter(row["status"] for row in rows)
    return DetectorHealth(
        day=shown,
        days=days,
        counts={**{s: found[s] for s in STATUSES}, **found},
        detectors=[row for row in rows if status is None or row["status"] == status],
    )


def _empty(day: date | None, days: list[date], reason: str) -> DetectorHealth:
    return DetectorHealth(day=day, days=days, counts=dict.fromkeys(STATUSES, 0), detectors=[], reason=reason)


def _rows(lake: Lake, day: date) -> list[dict[str, Any]]:
    columns = HEALTH.arrow_schema().names  # the partition column ``date`` is no field of the answer
    return read_partitions(lake, HEALTH, [(day.isoformat(),)], columns=columns).to_pylist()


def _worst_first(row: dict[str, Any]) -> tuple[int, float, str]:
    """Sort key; a status the job does not give (none should come) goes first, to be looked at."""
    rank = STATUSES.index(row["status"]) if row["status"] in STATUSES else -1
    return rank, min(row["availability"], row["usable_share"]), row["detector_id"]
