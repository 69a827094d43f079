"""Controllers for test_ntcip: put plans in force during a runner's simulation through a field
adapter, and write what happened to the JSON file ``report`` names.

``test-field-twin`` hands the plans to the :class:`~field.twin_adapter.TwinAdapter` directly;
``test-field-ntcip`` hands them to the :class:`~field.ntcip.NtcipAdapter`, which reaches a
:class:`~field.controller_sim.SimulatedController` on loopback that drives the same kind of twin.
Both submit at ``at_s`` and step the twin in the same order, so the simulations can only differ
if the protocol changed the plans. At the end the ntcip run submits ``silenced`` and stops the
controller, to see what its adapter makes of a controller that no longer answers.

Loaded in the executor's workers through ``CITYBRAIN_CONTROLLER_MODULES``.
"""

from __future__ import annotations

import json
import time as wall
from abc import abstractmethod
from functools import partial
from pathlib import Path
from typing import Any

from core.settings import Settings
from field.adapter import Application
from field.controller_sim import SimulatedController
from field.ntcip import NtcipAdapter
from field.ntcip_objects import configuration
from field.service import signal_from_record, timing_record
from field.twin_adapter import TwinAdapter
from sim.controllers import Controller, register
from sim.twin import sim_time_to_utc
from tests.integration.field.records import DAY, POLL_EVERY_S, application_record


class _Applies(Controller):
    """Submits ``plans`` (records) as ``plan-<tls id>`` at ``at_s``; reports at ``end_s``."""

    def __init__(self, plans: list[dict], at_s: float, end_s: float, report: str, **extra: Any) -> None:
        self.plans = [signal_from_record(r) for r in plans]
        self.at_s, self.end_s, self.report = at_s, end_s, Path(report)
        self.extra = extra
        self.submitted = False
        self.reported = False
        self.confirmations: list[Application] = []
        self.now = 0.0

    def start(self, sim: Any) -> None:
        self.sim = sim
        self.step_s = sim.simulation.getDeltaT()
        self.twin = TwinAdapter(sim, partial(sim_time_to_utc, DAY))

    def step(self, sim: Any, time: float) -> None:
        self.now = time
        if not self.submitted and time >= self.at_s:
            for plan in self.plans:
                self.adapter.submit(f"plan-{plan.tls_id}", plan)
            self.submitted = True
        self.advance(time)
        if time % POLL_EVERY_S == 0:
            self.confirmations += self.adapter.confirmed()
        if not self.reported and time + self.step_s >= self.end_s:
            self.confirmations += self.adapter.confirmed()
            report = {
                "confirmed": [application_record(a) for a in self.confirmations],
                "running": {p.tls_id: timing_record(self.twin.running(p.tls_id)) for p in self.plans},
                **self.finish(),
            }
            self.report.write_text(json.dumps(report))
            self.reported = True

    @property
    @abstractmethod
    def adapter(self) -> Any:
        """The adapter the plans go through."""

    @abstractmethod
    def advance(self, time: float) -> None:
        """Step the twin, directly or through the controller."""

    def finish(self) -> dict[str, Any]:
        """More to report, at the end."""
        return {}


@register
class ThroughTwin(_Applies):
    name = "test-field-twin"

    @property
    def adapter(self) -> TwinAdapter:
        return self.twin

    def advance(self, time: float) -> None:
        self.twin.step(time)


@register
class ThroughNtcip(_Applies):
    name = "test-field-ntcip"

    def start(self, sim: Any) -> None:
        super().start(sim)
        configs = [configuration(self.twin.running(tls)) for tls in sorted(sim.trafficlight.getIDList())]
        self.controller = SimulatedController(self.twin, configs, community="corridor")
        self.controller.start()
        host, port = self.controller.address
        settings = Settings(
            ntcip_controllers=f"{host}:{port}",
            ntcip_community="corridor",
            ntcip_timeout_s=0.3,
            ntcip_retries=1,
        )
        self.central = NtcipAdapter(configs, settings, clock=lambda: sim_time_to_utc(DAY, self.now))

    @property
    def adapter(self) -> NtcipAdapter:
        return self.central

    def advance(self, time: float) -> None:
        self.controller.tick(time)

    def finish(self) -> dict[str, Any]:
        read_back = {p.tls_id: timing_record(self.central.running(p.tls_id)) for p in self.plans}
        silenced = signal_from_record(self.extra["silenced"])
        self.central.submit("plan-silenced", silenced)
        self.controller.stop()
        started = wall.monotonic()
        after_silence = self.central.confirmed()
        waited_s = wall.monotonic() - started
        self.central.close()
        return {
            "read_back": read_back,
            "silenced": [application_record(a) for a in after_silence],
            "silenced_wait_s": waited_s,
        }
