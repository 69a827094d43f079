"""The ntcip adapter against a simulated controller on loopback that drives a real libsumo run of
the corridor: a plan applied through NTCIP 1202 over SNMP runs in SUMO exactly as through the twin
(the same program in force, the same KPIs on the same seed), and a controller that does not answer
is a clear failure within the SNMP timeout, not a hang.

Two signals get new splits and offsets twenty seconds into a 20-minute cut of the corridor; both
go through one agent (one address for all, a community per signal). Each run happens once, in a
process forked for it by the executor (libsumo runs one simulation per process, and a second run
in one process need not reproduce the first); its controller writes what it saw to a report.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from field.service import timing_record
from optimizer.plans.model import Phase, SignalPlan
from optimizer.plans.sumo_programs import read_net_programs
from sim.evaluate import shorten
from sim.executor import LocalExecutor, Trial
from sim.scenarios import resolve
from tests.integration.field.records import POLL_EVERY_S

pytestmark = pytest.mark.integration

CONTROLLERS = Path(__file__).with_name("adapter_controllers.py")
SEED = 7
APPLY_AFTER_S = 20


def _plan(own: SignalPlan, offset_s: float, greens_s: list[float]) -> SignalPlan:
    """``own`` with new greens (in order) and offset; clearances kept, cycle still 120 s."""
    greens = iter(greens_s)
    phases = tuple(
        Phase(p.state, next(greens)) if set(p.state) & set("Gg") and not set(p.state) & set("yY") else p
        for p in own.phases
    )
    return dataclasses.replace(own, phases=phases, offset_s=offset_s, program_id="citybrain")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both runs' KPIs and reports, and the plans they applied."""
    build = tmp_path_factory.mktemp("build")
    scenario = shorten(resolve("corridor", build), 20)
    own = {p.tls_id: p for p in read_net_programs(scenario.net_file, scenario.additional_files)}
    plans = [
        _plan(own["J3"], 80, [55, 20, 30]),  # greens 62/15/28, offset 59
        _plan(own["J4"], 10, [40, 20, 28, 12]),  # greens 44/16/28/12, offset 118
    ]
    silenced = dataclasses.replace(own["J5"], offset_s=30, program_id="citybrain")
    out = tmp_path_factory.mktemp("runs")
    trials = {
        name: Trial(
            scenario,
            f"test-field-{name}",
            SEED,
            {
                "plans": [timing_record(p) for p in plans],
                "at_s": scenario.begin + APPLY_AFTER_S,
                "end_s": scenario.end,
                "report": str(out / f"{name}.json"),
                "silenced": timing_record(silenced),
            },
            intersections=True,
            out_dir=out / name,
        )
        for name in ("twin", "ntcip")
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYBRAIN_CONTROLLER_MODULES", str(CONTROLLERS))
        with LocalExecutor(1) as executor:
            kpis = dict(zip(trials, executor.map(list(trials.values())), strict=True))
    reports = {name: json.loads((out / f"{name}.json").read_text()) for name in trials}
    return {"kpis": kpis, "reports": reports, "plans": plans, "own": own}


def test_through_ntcip_each_plan_is_confirmed_applied_as_sent(runs):
    for name in ("ntcip", "twin"):
        confirmed = runs["reports"][name]["confirmed"]
        assert [(a["tls_id"], a["plan_id"], a["outcome"]) for a in confirmed] == [
            ("J3", "plan-J3", "applied"),
            ("J4", "plan-J4", "applied"),
        ], name
        for application, plan in zip(confirmed, runs["plans"], strict=True):
            assert application["running"] == timing_record(plan), name


def test_the_same_program_ends_up_running_and_reads_back_through_ntcip(runs):
    twin, ntcip = runs["reports"]["twin"], runs["reports"]["ntcip"]
    expected = {p.tls_id: timing_record(p) for p in runs["plans"]}
    assert twin["running"] == expected
    assert ntcip["running"] == expected
    assert ntcip["read_back"] == expected  # what the controller reports, as a plan
    assert expected["J3"] != timing_record(runs["own"]["J3"])  # the plans did change something


def test_the_same_kpis_on_the_same_seed(runs):
    twin, ntcip = runs["kpis"]["twin"], runs["kpis"]["ntcip"]
    assert ntcip == twin
    assert twin["throughput"] > 0 and twin["intersections"]


def test_ntcip_confirms_within_one_poll_of_the_switch(runs):
    """NTCIP reports no switch time: the adapter records when it first saw the pattern running."""
    twin, ntcip = runs["reports"]["twin"]["confirmed"], runs["reports"]["ntcip"]["confirmed"]
    for switch, sight in zip(twin, ntcip, strict=True):
        switched, seen = (datetime.fromisoformat(a["effective_at"]) for a in (switch, sight))
        assert switched <= seen <= switched + timedelta(seconds=POLL_EVERY_S)


def test_a_controller_that_stops_answering_fails_the_application_with_the_reason(runs):
    report = runs["reports"]["ntcip"]
    (silenced,) = report["silenced"]
    assert (silenced["tls_id"], silenced["plan_id"], silenced["outcome"]) == ("J5", "plan-silenced", "failed")
    assert "did not answer" in silenced["detail"] and "No SNMP response" in silenced["detail"]
    assert report["silenced_wait_s"] < 2.0  # 0.3 s timeout, one retry
