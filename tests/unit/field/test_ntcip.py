"""The ntcip adapter and the simulated controller talking SNMP on loopback, with a scripted twin
behind the controller (the real twin and SUMO are in tests/integration/field/test_ntcip.py): the
pattern rows taking turns, read-back, one pattern at a time, SETs refused whole, each way an
application fails, a controller nobody runs, and where the settings say each controller is."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
    set_cmd,
)
from pysnmp.proto.rfc1902 import Integer32

from core.settings import Settings
from field import ntcip_objects as ntcip
from field.adapter import Application, FieldError
from field.controller_sim import SimulatedController
from field.ntcip import Address, NtcipAdapter, controller_addresses
from field.ntcip_objects import configuration
from optimizer.plans.model import Phase, SignalPlan

COMMUNITY = "city"


def two_stage(tls_id: str, greens=(50, 38), offset=0.0) -> SignalPlan:
    phases = (
        Phase("GGrr", greens[0]),
        Phase("yyrr", 4),
        Phase("rrrr", 2),
        Phase("rrGG", greens[1]),
        Phase("rryy", 4),
        Phase("rrrr", 2),
    )
    return SignalPlan(tls_id, phases, offset_s=offset)


class ScriptedTwin:
    """Runs whatever it is handed at the next step, or fails it when told to."""

    def __init__(self, programs: list[SignalPlan]) -> None:
        self.programs = {p.tls_id: p for p in programs}
        self.queued: list[tuple[str, SignalPlan]] = []
        self.done: list[Application] = []
        self.fail_with: str | None = None

    def running(self, tls_id: str) -> SignalPlan:
        return self.programs[tls_id]

    def submit(self, plan_id: str, plan: SignalPlan) -> None:
        self.queued.append((plan_id, plan))

    def step(self, now_s: float) -> None:
        for plan_id, plan in self.queued:
            if self.fail_with:
                self.done.append(Application(plan.tls_id, plan_id, "failed", self.fail_with))
            else:
                self.programs[plan.tls_id] = plan
                self.done.append(Application(plan.tls_id, plan_id, "applied", "in force", running=plan))
        self.queued = []

    def confirmed(self) -> list[Application]:
        done, self.done = self.done, []
        return done


PROGRAMS = [two_stage("A"), two_stage("B", offset=30)]
CONFIGS = [configuration(p) for p in PROGRAMS]


@pytest.fixture
def twin() -> ScriptedTwin:
    return ScriptedTwin(PROGRAMS)


@pytest.fixture
def controller(twin) -> Iterator[SimulatedController]:
    with SimulatedController(twin, CONFIGS, community=COMMUNITY) as running:
        yield running


def central(controller: SimulatedController, **settings) -> NtcipAdapter:
    host, port = controller.address
    options = {"ntcip_controllers": f"{host}:{port}", "ntcip_community": COMMUNITY, "ntcip_timeout_s": 0.3}
    return NtcipAdapter(CONFIGS, Settings(**(options | settings)))


def raw(controller: SimulatedController, tls_id: str, *writes: tuple[tuple[int, ...], int | None]):
    """A GET (values None) or SET as any central system might send it: (error status, index,
    values answered)."""

    async def send():
        engine = SnmpEngine()
        target = await UdpTransportTarget.create(controller.address, timeout=0.3, retries=0)
        command = get_cmd if writes[0][1] is None else set_cmd
        bindings = [
            ObjectType(ObjectIdentity(oid), *([] if value is None else [Integer32(value)]))
            for oid, value in writes
        ]
        _, status, index, answered = await command(
            engine,
            CommunityData(f"{COMMUNITY}@{tls_id}", mpModel=1),
            target,
            ContextData(),
            *bindings,
            lookupMib=False,
        )
        engine.close_dispatcher()
        error = status.prettyPrint() if status else "noError"
        return error, int(index), [value.prettyPrint() for _, value in answered]

    return asyncio.run(send())


def raw_set(controller: SimulatedController, tls_id: str, *writes: tuple[tuple[int, ...], int]):
    return raw(controller, tls_id, *writes)[:2]


def test_a_signal_runs_its_own_program_as_pattern_1_before_any_call(controller):
    with central(controller) as adapter:
        assert adapter.signals() == {"A", "B"}
        assert adapter.running("A") == PROGRAMS[0]
        assert adapter.running("B").offset_s == 30


def test_a_plan_goes_into_the_row_not_running_and_is_applied_once_the_controller_runs_it(controller, twin):
    new = two_stage("A", greens=(40, 48), offset=15)
    with central(controller) as adapter:
        adapter.submit("p1", new)
        assert adapter.confirmed() == []  # called, not yet running
        with pytest.raises(FieldError, match="still moving to plan p1 .pattern 2.; a controller takes one"):
            adapter.submit("p2", two_stage("A", offset=5))
        controller.tick(1.0)
        (application,) = adapter.confirmed()
        assert (application.plan_id, application.outcome, application.running) == ("p1", "applied", new)
        assert twin.programs["A"] == new and adapter.running("A") == new
        assert adapter.running("B") == PROGRAMS[1]  # the other signal on the agent untouched
        again = two_stage("A", greens=(30, 58))
        adapter.submit("p2", again)  # pattern 2 runs: row 1 takes this one
        controller.tick(2.0)
        (application,) = adapter.confirmed()
        assert application.outcome == "applied" and "pattern 1" in application.detail
        assert adapter.running("A") == again


def test_a_set_is_refused_whole_when_one_value_is_out_of_range_or_not_writable(controller):
    row = ntcip.PATTERN_CYCLE_TIME + (3,)
    assert raw_set(controller, "A", (row, 100), (ntcip.PATTERN_OFFSET_TIME + (3,), 256)) == ("wrongValue", 2)
    assert raw_set(controller, "A", (row, 100), (ntcip.COORD_PATTERN_STATUS, 3)) == ("notWritable", 2)
    assert raw_set(controller, "A", (ntcip.SYSTEM_PATTERN_CONTROL, 254)) == ("wrongValue", 1)  # no Free here
    _, _, values = raw(controller, "A", (row, None), (ntcip.COORD_PATTERN_STATUS, None))
    assert values[0].startswith("No Such Instance") and values[1] == "1"  # nothing of either SET was kept


def test_a_called_pattern_that_does_not_fit_fails_as_the_controllers_bad_plan(controller):
    with central(controller) as adapter:
        adapter.submit("p1", two_stage("A", greens=(40, 48)))
        assert raw_set(controller, "A", (ntcip.SPLIT_TIME + (2, 1), 3)) == (
            "noError",
            0,
        )  # shorter than clearance
        assert raw_set(controller, "A", (ntcip.SYSTEM_PATTERN_CONTROL, 2)) == ("noError", 0)
        controller.tick(1.0)
        (application,) = adapter.confirmed()
    assert application.outcome == "failed"
    assert application.detail == "pattern 2: the controller reports localFreeStatus badPlan"


def test_a_pattern_the_twin_cannot_put_in_force_fails_with_the_controllers_failed_status(controller, twin):
    twin.fail_with = "no green to stretch"
    with central(controller) as adapter:
        adapter.submit("p1", two_stage("A", greens=(40, 48)))
        controller.tick(1.0)
        (application,) = adapter.confirmed()
    assert (application.outcome, application.detail) == (
        "failed",
        "pattern 2: the controller reports localFreeStatus failed",
    )


def test_a_pattern_not_running_within_the_confirm_timeout_fails(controller):
    with central(controller, ntcip_confirm_timeout_s=0.05) as adapter:
        adapter.submit("p1", two_stage("A", greens=(40, 48)))
        time.sleep(0.1)  # no tick: the controller never gets to it
        (application,) = adapter.confirmed()
    assert application.outcome == "failed"
    assert application.detail == (
        "pattern 2: not running 0.05 s after the call "
        "(the controller runs pattern 1, localFreeStatus notFree)"
    )


def test_an_unknown_signal_or_a_plan_a_pattern_cannot_carry_is_refused_before_anything_is_sent(
    controller, twin
):
    with central(controller) as adapter:
        with pytest.raises(FieldError, match="signal C has no NTCIP controller"):
            adapter.submit("p1", two_stage("C"))
        with pytest.raises(FieldError, match="NTCIP carries whole seconds"):
            adapter.submit("p1", two_stage("A", greens=(40.5, 48)))
        controller.tick(1.0)
    assert twin.programs["A"] == PROGRAMS[0]


def test_each_signal_is_found_where_the_settings_say():
    spec = "J1=10.0.0.5:161, J2 = 10.0.0.6:1161, 127.0.0.1:16100"
    assert controller_addresses(spec, "public", ["J1", "J2", "J3"]) == {
        "J1": Address("10.0.0.5", 161, "public"),
        "J2": Address("10.0.0.6", 1161, "public"),
        "J3": Address("127.0.0.1", 16100, "public@J3"),  # the shared agent: one community per signal
    }
    assert controller_addresses("J1=10.0.0.5:161", "public", ["J1", "J2"]).keys() == {"J1"}
    with pytest.raises(FieldError, match="two shared addresses"):
        controller_addresses("a:1,b:2", "public", ["J1"])
    with pytest.raises(FieldError, match="'10.0.0.5' is not host:port"):
        controller_addresses("J1=10.0.0.5", "public", ["J1"])


def test_a_controller_nobody_runs_is_a_field_error_naming_it_within_the_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(ntcip_controllers=f"A=127.0.0.1:{port}", ntcip_timeout_s=0.2, ntcip_retries=1)
    with NtcipAdapter(CONFIGS, settings) as adapter:
        started = time.monotonic()
        nobody = rf"^signal A: the controller at 127.0.0.1:{port} did not answer \(No SNMP response"
        with pytest.raises(FieldError, match=nobody):
            adapter.submit("p1", two_stage("A", greens=(40, 48)))
        assert time.monotonic() - started < 2.0
        assert adapter.confirmed() == []  # nothing was called, so nothing waits
        with pytest.raises(FieldError, match="did not answer"):
            adapter.running("A")
