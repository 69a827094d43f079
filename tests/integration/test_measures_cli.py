"""``citybrain produce --format atspm-csv``, ``signals`` and ``measures`` as a user runs them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from core.settings import Settings
from sim.signal_config import configuration
from tests.unit.lake.test_measure_plots import T0, write_lake

from .conftest import citybrain, read_records

PERIOD = ["--from", "2024-05-01T07:00Z", "--to", "2024-05-01T07:15Z"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path / "var")


def test_an_atspm_export_is_sent_and_unknown_signals_refused(kafka, reader, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(
        "SignalID,Timestamp,EventCode,EventParam\n"
        "J2,2024-05-01 07:00:00.100,1,2\n"
        "9999,2024-05-01 07:00:00.200,1,2\n"
        "J3,2024-05-01 07:00:01.000,82,3\n",
        encoding="utf-8",
    )
    result = citybrain(
        kafka, "produce", "--format", "atspm-csv", "--timezone", "America/Denver", "--json", str(export)
    )
    assert result.returncode == 1, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["sent"], summary["refused"]) == (3, 2, 1)
    assert summary["unknown_signals"] == {"9999": 1}
    records = sorted(
        (orjson.loads(r.value) for r in read_records(reader, "traffic.signal_event.v1")), key=str
    )
    assert {(r["signal_id"], r["ts"], r["event_code"], r["source"]) for r in records} == {
        ("J2", "2024-05-01T13:00:00.1Z", 1, "atspm"),
        ("J3", "2024-05-01T13:00:01.0Z", 82, "atspm"),
    }

    export.write_text("SignalID,Timestamp,EventCode,EventParam\nJ2,2024-05-01 07:00:02,1,2\nJ2,noon,1,2\n")
    malformed = citybrain(kafka, "produce", "--format", "atspm-csv", str(export))
    assert malformed.returncode == 2 and "Traceback" not in malformed.stderr
    assert f"line 3 of {export}: time 'noon'" in malformed.stderr
    assert "(1 earlier records were sent)" in malformed.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["produce", "x.jsonl"], "--topic is required with --format jsonl"),
        (["produce", "--format", "atspm-csv", "--timezone", "Mars/Base", "x.csv"], "not an IANA time zone"),
        (
            ["produce", "--format", "atspm-csv", "--topic", "traffic.detector.v1", "x.csv"],
            "produces to traffic",
        ),
    ],
)
def test_produce_refuses_options_that_do_not_fit(settings, args, message):
    result = citybrain(settings, *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_signals_config_writes_a_file_that_check_accepts(settings, tmp_path):
    path = tmp_path / "signals.json"
    written = citybrain(settings, "signals", "config", "--network", "corridor", "-o", str(path), "--json")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["signals"] == 7
    checked = citybrain(settings, "signals", "check", str(path), "--network", "corridor", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout)["ok"] is True

    document = json.loads(path.read_text())
    document["signals"][0]["detectors"][0]["phase"] = 39
    path.write_text(json.dumps(document))
    broken = citybrain(settings, "signals", "check", str(path))
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "feeds phase 39, which it does not have" in broken.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["plot", "--signal", "J9", "--measure", "pcd", *PERIOD, "-o", "x.png"], "no signal 'J9'"),
        (
            ["plot", "--signal", "J2", "--measure", "pcd", *PERIOD, "-o", "x.png", "--phase", "9"],
            "has no phase 9",
        ),
        (
            [
                "plot",
                "--signal",
                "J2",
                "--measure",
                "pcd",
                "--from",
                "2024-05-01T08:00",
                "--to",
                "2024-05-01T07:00",
            ]
            + ["-o", "x.png"],
            "is not after the start",
        ),
        (
            ["plot", "--signal", "J2", "--measure", "pcd", "--from", "7am", "--to", "8am", "-o", "x.png"],
            "'7am'",
        ),
        (["plot", "--signal", "J2", "--measure", "pcd", *PERIOD, "-o", "x.svg"], "expected a .png"),
        (["plot", "--signal", "J2", "--measure", "pcd", *PERIOD, "-o", "x.png"], "no events of signal J2"),
        (["compare", "--signal", "J2", "--before", "2024-05-01T07:00Z", "--after", "x,y"], "--before"),
    ],
)
def test_measures_say_what_is_wrong_in_one_line(settings, args, message):
    result = citybrain(settings, "measures", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_measures_plot_and_compare_read_the_lake(settings, tmp_path):
    signal = configuration(settings).signals["J2"]
    advance = next(d for d in signal.detectors if d.phase == 2 and d.kind == "advance")
    events = []
    for minute in range(-15, 20):
        at = T0 + timedelta(minutes=minute)
        events += [(at, 1, 2), (at + timedelta(seconds=30), 8, 2), (at + timedelta(seconds=34), 9, 2)]
        events += [
            (at + timedelta(seconds=5), 82, advance.channel),
            (at + timedelta(seconds=40), 82, advance.channel),
        ]
    write_lake(settings.lake_path, sorted(events), signal_id=signal.controller_id)

    png = tmp_path / "pcd.png"
    plotted = citybrain(
        settings, "measures", "plot", "--signal", "J2", "--measure", "pcd", *PERIOD, "-o", str(png), "--json"
    )
    assert plotted.returncode == 0, plotted.stderr
    summary = json.loads(plotted.stdout)
    assert summary["phases"] == [2, 6] and png.stat().st_size > 0
    assert sum(summary["arrivals_by_band"]["2"].values()) == 30

    period = "2024-05-01T07:00Z,2024-05-01T07:15Z"
    compared = citybrain(
        settings, "measures", "compare", "--signal", "J2", "--before", period, "--after", period, "--json"
    )
    assert compared.returncode == 0, compared.stderr
    phase_2 = json.loads(compared.stdout)["phases"]["2"]
    assert phase_2["volume"]["before"] == 30 and phase_2["volume"]["change"] == 0
    table = citybrain(
        settings, "measures", "compare", "--signal", "J2", "--before", period, "--after", period
    )
    assert "percent_on_green" in table.stdout
