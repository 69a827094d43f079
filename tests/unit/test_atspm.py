"""An ATSPM event-log export read into traffic.signal_event.v1 records."""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from schemas import contract
from streaming import atspm

UTC = ZoneInfo("UTC")
#: The controller ids of the signal configuration.
CONTROLLERS = {"1001", "1002"}
HEADER = "SignalID,Timestamp,EventCode,EventParam"


class Collected:
    """A sender that keeps what it is given and counts flushes."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.flushes = 0

    def send(self, topic: str, record: dict[str, Any]) -> None:
        assert topic == "traffic.signal_event.v1"
        self.records.append(record)

    def flush(self) -> None:
        self.flushes += 1


def read(text: str, zone: ZoneInfo = UTC) -> tuple[list[dict[str, Any]], atspm.ImportReport]:
    report = atspm.ImportReport()
    lines = io.StringIO(text)
    records = list(
        atspm.read_events(lines, controllers=CONTROLLERS, zone=zone, source="x.csv", report=report)
    )
    return records, report


def test_rows_become_contract_records_rounded_to_tenths():
    records, report = read(
        "SignalID,Timestamp,EventCode,EventParam\n"
        "1001,2024-05-01 07:00:00.100,1,2\n"
        "1002,2024-05-01T07:00:03.449,82,5\n"
        "1001,2024-05-01 07:00:04.050,8,2\n"
        "1001,2024-05-01 07:00:59.960,82,3\n"
    )
    assert records == [
        {"schema_version": 1, "ts": "2024-05-01T07:00:00.1Z", "signal_id": "1001", "event_code": 1,
         "event_param": 2, "source": "atspm"},
        {"schema_version": 1, "ts": "2024-05-01T07:00:03.4Z", "signal_id": "1002", "event_code": 82,
         "event_param": 5, "source": "atspm"},
        {"schema_version": 1, "ts": "2024-05-01T07:00:04.1Z", "signal_id": "1001", "event_code": 8,
         "event_param": 2, "source": "atspm"},
        {"schema_version": 1, "ts": "2024-05-01T07:01:00.0Z", "signal_id": "1001", "event_code": 82,
         "event_param": 3, "source": "atspm"},
    ]  # fmt: skip
    for record in records:
        contract("traffic.signal_event.v1").validate(record)
    assert (report.rows, report.to_dict()["refused"]) == (4, 0)


@pytest.mark.parametrize(
    "header",
    [
        "SignalID,Timestamp,EventCode,EventParam",
        "signalid,timestamp,eventcode,eventparam",
        "\ufeffSignalId, TimeStamp, Event Code, Event Parameter",
        "locationIdentifier,timestamp,eventCode,eventParam",
        "Timestamp,EventParam,Extra,SignalID,EventCode",
    ],
)
def test_header_variants_name_the_columns(header):
    names = [name.strip().lstrip("\ufeff") for name in header.split(",")]
    values = {"signalid": "1002", "timestamp": "2024-05-01 07:00:00.1", "extra": "x"}
    values |= {"eventcode": "82", "eventparam": "4", "eventparameter": "4", "locationidentifier": "1002"}
    row = ",".join(values[atspm._normal(name)] for name in names)
    records, _ = read(f"{header}\n{row}\n")
    assert [(r["signal_id"], r["event_code"], r["event_param"]) for r in records] == [("1002", 82, 4)]


def test_a_repeated_header_and_blank_lines_are_skipped():
    records, report = read(
        f"{HEADER}\n1001,2024-05-01 07:00:00.1,1,2\n\n{HEADER}\n1001,2024-05-01 07:00:01.0,8,2\n"
    )
    assert [r["event_code"] for r in records] == [1, 8] and report.rows == 2


def test_unknown_signals_and_contract_breaches_are_refused_and_counted():
    records, report = read(
        "SignalID,Timestamp,EventCode,EventParam\n"
        "9999,2024-05-01 07:00:00.1,1,2\n"
        "1001,2024-05-01 07:00:00.2,1,2\n"
        "9999,2024-05-01 07:00:00.3,1,2\n"
        "1001,2024-05-01 07:00:00.4,1,41\n"  # phase 41: phases go to 40
        "777,2024-05-01 07:00:00.5,82,1\n"
    )
    assert len(records) == 1
    summary = report.to_dict()
    assert summary["rows"] == 5 and summary["refused"] == 4
    assert summary["refused_by_reason"] == {
        "unknown SignalID": {"rows": 3, "first_line": 2},
        "breaks traffic.signal_event.v1": {"rows": 1, "first_line": 5},
    }
    assert summary["unknown_signals"] == {"9999": 2, "777": 1}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "SignalID,Timestamp,EventCode\n1001,2024-05-01 07:00:00.1,1\n",
            "line 1 of x.csv: expected a header",
        ),
        (f"{HEADER}\n1001,2024-05-01 07:00:00.1,1\n", "line 2 of x.csv: 3 field(s)"),
        (f"{HEADER}\n1001,2024-05-01 07:00:00.1,x,2\n", "line 2 of x.csv: EventCode"),
        (f"{HEADER}\n\n1001,yesterday,1,2\n", "line 3 of x.csv: time 'yesterday'"),
        (f"{HEADER}\n1001,2024-05-01 07:00:00.1,1,2.5\n", "line 2 of x.csv"),
        ("", "x.csv is empty"),
    ],
)
def test_a_malformed_row_is_an_error_naming_its_line(text, message):
    with pytest.raises(atspm.BadRow, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        read(text)


def test_produce_flushes_what_came_before_a_bad_row_and_says_how_much():
    sender = Collected()
    text = "SignalID,Timestamp,EventCode,EventParam\n1001,2024-05-01 07:00:00.1,1,2\n1001,noon,1,2\n"
    with pytest.raises(atspm.BadRow, match=r"line 3 of x.csv: .*\(1 earlier records were sent\)$"):
        atspm.produce(sender, io.StringIO(text), controllers=CONTROLLERS, zone=UTC, source="x.csv")
    assert len(sender.records) == 1 and sender.flushes == 1


def test_local_times_are_read_in_the_zone_given_and_written_in_utc():
    denver = ZoneInfo("America/Denver")
    records, _ = read(
        "SignalID,Timestamp,EventCode,EventParam\n"
        "1001,2024-05-01 07:00:00.1,1,2\n"  # MDT, UTC-6
        "1001,2024-01-15 07:00:00.1,1,2\n"  # MST, UTC-7
        "1001,2024-05-01T07:00:00.1Z,1,2\n"  # says its zone: kept
        "1001,5/1/2024 7:00:00.100 PM,1,2\n",
        denver,
    )
    assert [r["ts"] for r in records] == [
        "2024-05-01T13:00:00.1Z",
        "2024-01-15T14:00:00.1Z",
        "2024-05-01T07:00:00.1Z",
        "2024-05-02T01:00:00.1Z",
    ]


def test_the_repeated_fall_back_hour_is_told_apart_by_each_signals_order():
    """2024-11-03 in Denver: 01:00-02:00 MDT, then 01:00-02:00 again in MST."""
    records, _ = read(
        "SignalID,Timestamp,EventCode,EventParam\n"
        "1001,2024-11-03 01:59:59.0,1,2\n"
        "1002,2024-11-03 01:10:00.0,1,2\n"  # another signal's order does not count
        "1001,2024-11-03 01:00:01.0,8,2\n"  # back in time for 1001: the second 01:00
        "1001,2024-11-03 01:00:02.0,9,2\n",
        ZoneInfo("America/Denver"),
    )
    assert [(r["signal_id"], r["ts"]) for r in records] == [
        ("1001", "2024-11-03T07:59:59.0Z"),
        ("1002", "2024-11-03T07:10:00.0Z"),
        ("1001", "2024-11-03T08:00:01.0Z"),
        ("1001", "2024-11-03T08:00:02.0Z"),
    ]
