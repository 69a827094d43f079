"""Replay an ATSPM event-log export (CSV) onto ``traffic.signal_event.v1``.

An ATSPM export (the UDOT/ATSPM 4 ``Controller_Event_Log`` table, or ATSPM 5's
``locationIdentifier`` variant) has one row per high-resolution event: ``SignalID, Timestamp,
EventCode, EventParam``, times in the controllers' local time to a tenth of a second. This module
turns each row into a contract record with ``source`` "atspm":

- the header names the columns (any order, case, spaces or underscores; extra columns ignored; a
  header repeated further down, as concatenated exports have, is skipped);
- ``SignalID`` must be one of the signal configuration's controller ids, and is the record's
  ``signal_id`` as it is: the lake keeps every signal's events under its controller id, as the
  SUMO twin logs them (:mod:`sim.event_log`). A row whose SignalID the configuration does not know
  is *refused*, counted by reason with its first line: the lake could not measure it (no phases, no
  detector channels), and sending it would only fill the dead-letter topic. A row that breaks the
  contract (a phase number out of range for its code, say) is refused the same way;
- a time without a zone is read in the ``--timezone`` given (IANA name); in the hour a
  fall-back repeats, an event that would go back in time for its signal is taken as the second
  occurrence, which is right for a log in time order per signal;
- times are rounded to 0.1 s, the controllers' resolution (exports often print ``.100``).

A row that is not an event at all (wrong number of fields, a code that is not an integer, a time
that does not parse) stops the import with :class:`BadRow` naming its line, after the records
before it have been sent: the silver table deduplicates events, so sending the file again once
it is fixed adds nothing twice.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from core.errors import CitybrainError
from schemas import RecordInvalid, contract

TOPIC = "traffic.signal_event.v1"
#: Normalised header name (lower case, letters and digits only) → the column it is.
HEADER_NAMES = {
    "signalid": "signal_id",
    "locationidentifier": "signal_id",
    "timestamp": "timestamp",
    "eventcode": "event_code",
    "eventparam": "event_param",
    "eventparameter": "event_param",
}
COLUMNS = ("signal_id", "timestamp", "event_code", "event_param")
#: What ATSPM and its spreadsheets print besides ISO 8601.
US_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S.%f %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S",
)
TENTH_US = 100_000
REFUSED_UNKNOWN_SIGNAL = "unknown SignalID"
REFUSED_CONTRACT = f"breaks {TOPIC}"


class BadRow(CitybrainError, ValueError):
    """A line of the export that is not an event; the message names the line and what is wrong."""


class Sender(Protocol):
    def send(self, topic: str, record: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...


@dataclass
class ImportReport:
    """What an import did with each row: sent, or refused (by reason, with the first line)."""

    rows: int = 0
    sent: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    first_line: dict[str, int] = field(default_factory=dict)
    unknown_signals: Counter[str] = field(default_factory=Counter)

    def refuse(self, reason: str, line: int) -> None:
        self.refused[reason] += 1
        self.first_line.setdefault(reason, line)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": TOPIC,
            "rows": self.rows,
            "sent": self.sent,
            "refused": sum(self.refused.values()),
            "refused_by_reason": {
                reason: {"rows": count, "first_line": self.first_line[reason]}
                for reason, count in self.refused.most_common()
            },
            "unknown_signals": dict(self.unknown_signals.most_common()),
        }


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _columns(header: list[str], line: int, source: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        column = HEADER_NAMES.get(_normal(name))
        if column is not None and column not in found:
            found[column] = index
    missing = [c for c in COLUMNS if c not in found]
    if missing:
        raise BadRow(
            f"line {line} of {source}: expected a header with SignalID, Timestamp, EventCode and "
            f"EventParam; {', '.join(missing)} missing from {','.join(header)!r}"
        )
    return found


def parse_time(text: str) -> datetime:
    """The export's time as written: aware when it names a zone (``Z``, ``+02:00``), else naive."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in US_TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise ValueError(f"time {text!r} is neither ISO 8601 (2024-05-01 07:00:00.100) nor M/D/YYYY h:mm:ss.f AM")


def to_tenths_utc(moment: datetime) -> datetime:
    """``moment`` in UTC, rounded to the nearest tenth of a second (half up)."""
    utc = moment.astimezone(UTC)
    rest = utc.microsecond % TENTH_US
    utc -= timedelta(microseconds=rest)
    return utc + timedelta(microseconds=TENTH_US) if rest * 2 >= TENTH_US else utc


def iso_tenths(moment: datetime) -> str:
    """``2024-05-01T13:00:00.1Z``: the contract's UTC form, to the tenth of a second."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // TENTH_US}Z"


def _localize(naive: datetime, zone: tzinfo, previous: datetime | None) -> datetime:
    """A local wall time in UTC; in a repeated (fall-back) hour the second occurrence when the
    first would put the event before its signal's previous one."""
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if previous is None or first >= previous:
        return first
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return second if second != first else first


def read_events(
    lines: Iterable[str],
    *,
    controllers: Collection[str],
    zone: tzinfo,
    source: str,
    report: ImportReport,
) -> Iterator[dict[str, Any]]:
    """The contract records of an export's lines (header first), refusing into ``report`` the rows
    the lake could not use and raising :class:`BadRow` at the first line that is not an event."""
    topic_contract = contract(TOPIC)
    reader = csv.reader(lines)
    columns: dict[str, int] | None = None
    header: list[str] = []
    last_seen: dict[str, datetime] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as exc:
            raise BadRow(f"line {reader.line_num + 1} of {source}: {exc}") from None
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if columns is None:
            header, columns = row, _columns(row, line, source)
            continue
        if row == header:
            continue
        report.rows += 1
        record = _record(row, columns, line, source, zone, controllers, last_seen, report)
        if record is None:
            continue
        try:
            topic_contract.validate_parsed(record)
        except RecordInvalid:
            report.refuse(REFUSED_CONTRACT, line)
            continue
        yield record
    if columns is None:
        raise BadRow(f"{source} is empty: expected a header SignalID,Timestamp,EventCode,EventParam and rows")


def _record(
    row: list[str],
    columns: Mapping[str, int],
    line: int,
    source: str,
    zone: tzinfo,
    controllers: Collection[str],
    last_seen: dict[str, datetime],
    report: ImportReport,
) -> dict[str, Any] | None:
    """One row as a record, or None when refused (an unknown signal)."""
    width = max(columns.values()) + 1
    if len(row) < width:
        raise BadRow(f"line {line} of {source}: {len(row)} field(s), the header has {width} or more")
    controller = row[columns["signal_id"]].strip()
    try:
        code = int(row[columns["event_code"]])
        param = int(row[columns["event_param"]])
    except ValueError as exc:
        raise BadRow(f"line {line} of {source}: EventCode and EventParam must be integers: {exc}") from None
    try:
        written = parse_time(row[columns["timestamp"]])
    except ValueError as exc:
        raise BadRow(f"line {line} of {source}: {exc}") from None
    if controller not in controllers:
        report.refuse(REFUSED_UNKNOWN_SIGNAL, line)
        report.unknown_signals[controller] += 1
        return None
    if written.tzinfo is None:
        moment = _localize(written, zone, last_seen.get(controller))
    else:
        moment = written.astimezone(UTC)
    last_seen[controller] = moment
    return {
        "schema_version": 1,
        "ts": iso_tenths(to_tenths_utc(moment)),
        "signal_id": controller,
        "event_code": code,
        "event_param": param,
        "source": "atspm",
    }


def produce(
    sender: Sender,
    lines: Iterable[str],
    *,
    controllers: Collection[str],
    zone: tzinfo,
    source: str,
) -> ImportReport:
    """Send an export's events (keyed by signal, so each signal's stay in order), then flush.

    At a :class:`BadRow` what was sent before it is flushed and the message says how much.
    """
    report = ImportReport()
    try:
        for record in read_events(lines, controllers=controllers, zone=zone, source=source, report=report):
            sender.send(TOPIC, record)
            report.sent += 1
    except BadRow as exc:
        sender.flush()
        raise BadRow(f"{exc} ({report.sent} earlier records were sent)") from None
    sender.flush()
    return report
