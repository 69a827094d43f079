"""A simulated NTCIP 1202 controller: an SNMP agent on loopback whose called patterns run in SUMO.

It holds, for each of its signals, the objects of :mod:`field.ntcip_objects` a central system
uses (pattern and split tables, the call, the status, the configured sequence and clearances),
and behaves as a coordinated fixed-time controller does: a SET of ``systemPatternControl`` calls
a pattern; the controller turns the pattern's row into the signal's timing
(:func:`~field.ntcip_objects.signal_plan`) and hands it to a
:class:`~field.twin_adapter.TwinAdapter`, which moves the SUMO signal to it at its next cycle
boundary through transition cycles; ``coordPatternStatus`` names the pattern once the twin
confirms it in force, and ``localFreeStatus`` says why it is not (``badPlan``: the row does not
fit the configuration; ``failed``: the twin could not put it in force). So a plan applied
through the ``ntcip`` adapter reaches SUMO exactly as one applied through the twin directly.

Before any call a signal runs pattern 1, the program SUMO runs it with at the start (Free, 254,
when that cannot be a pattern). Only Get and Set are answered, with SNMPv2c: each signal's
objects are an SNMP context named by its tls id, reached with the community
``<community>@<tls_id>`` (community indexing), or plain ``<community>`` when the controller has
one signal, as a real cabinet has. The configured sequence and clearances are read-only here.

Sharing time with the simulation: the agent runs pysnmp's asyncio engine in a thread of its own,
and touches nothing but the objects, under a lock; the simulation loop calls :meth:`tick` after
each step, which is where calls reach the twin and confirmations come back. libsumo must only
be called from the thread that steps it, and a central system's blocking requests (the
``ntcip`` adapter is synchronous, as the field service is) must be answered while that thread
waits for them: a controller in the simulation's own event loop could not answer a request made
from that loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config as snmp_config
from pysnmp.entity import engine as snmp_engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto.api import v2c
from pysnmp.smi import error as smi_error
from pysnmp.smi import instrum

from field import ntcip_objects as ntcip
from field.adapter import FieldError
from field.ntcip_objects import Oid, Pattern, SignalConfiguration
from field.twin_adapter import TwinAdapter

log = logging.getLogger(__name__)

#: The pattern a signal runs before the central system calls one: its program at the start.
INITIAL_PATTERN = 1
#: How long :meth:`SimulatedController.start` and :meth:`~SimulatedController.stop` wait for the
#: agent's thread (it binds a socket that is already open, so this is only a guard).
THREAD_WAIT_S = 10.0
#: Writable columns: (column, how many index parts, allowed values); pattern rows are indexed by
#: pattern number, split rows by split number and phase number.
_PATTERN_COLUMNS = {
    ntcip.PATTERN_CYCLE_TIME: range(0, ntcip.MAX_SECONDS + 1),
    ntcip.PATTERN_OFFSET_TIME: range(0, ntcip.MAX_SECONDS + 1),
    ntcip.PATTERN_SPLIT_NUMBER: range(0, 256),
    ntcip.PATTERN_SEQUENCE_NUMBER: range(0, 256),
}
_SPLIT_COLUMNS = {
    ntcip.SPLIT_TIME: range(0, ntcip.MAX_SECONDS + 1),
    ntcip.SPLIT_MODE: range(1, 8),
    ntcip.SPLIT_COORD_PHASE: range(0, 2),
}


class _Cabinet:
    """One signal's objects, and what its controller has to do about them."""

    def __init__(self, config: SignalConfiguration, initial: Pattern | None) -> None:
        self.config = config
        self.objects: dict[Oid, int | bytes] = {
            ntcip.SEQUENCE_DATA + (config.sequence_number, ntcip.RING): config.sequence_data,
            ntcip.SYSTEM_PATTERN_CONTROL: 0,
            ntcip.COORD_PATTERN_STATUS: ntcip.FREE,
            ntcip.LOCAL_FREE_STATUS: 1,  # other: running the cabinet's own program
        }
        for phase in config.phases:
            self.objects[ntcip.PHASE_YELLOW_CHANGE + (phase.number,)] = phase.yellow_tenths
            self.objects[ntcip.PHASE_RED_CLEAR + (phase.number,)] = phase.red_tenths
        if initial is not None:
            self.objects.update(ntcip.pattern_writes(config, initial, INITIAL_PATTERN))
            self.objects[ntcip.COORD_PATTERN_STATUS] = INITIAL_PATTERN
            self.objects[ntcip.LOCAL_FREE_STATUS] = ntcip.NOT_FREE
        #: A pattern called and not yet handed to the twin; the plan ids handed to the twin and
        #: not yet confirmed, with their patterns; the last one handed over.
        self.called: int | None = None
        self.waiting: dict[str, int] = {}
        self.latest: str | None = None

    def allowed(self, oid: Oid) -> range | None:
        """The values ``oid`` may be SET to, or None when it is not writable."""
        if oid == ntcip.SYSTEM_PATTERN_CONTROL:
            return ntcip.PATTERNS  # Free and Flash are not simulated
        column, index = oid[:-1], oid[-1:]
        if column in _PATTERN_COLUMNS and index[0] in ntcip.PATTERNS:
            return _PATTERN_COLUMNS[column]
        column, index = oid[:-2], oid[-2:]
        if column in _SPLIT_COLUMNS and 1 <= index[0] <= 255 and index[1] in self.config.numbers:
            return _SPLIT_COLUMNS[column]
        return None

    def pattern(self, number: int) -> Pattern:
        """Pattern ``number`` as its rows hold it; :class:`FieldError` when a value is missing or
        it names a sequence this controller does not have."""
        objects = self.objects
        try:
            cycle, offset, split, sequence = (objects[oid] for oid in ntcip.pattern_row(number))
            splits = tuple(objects[oid] for oid in ntcip.split_times(self.config, int(split)))
        except KeyError as exc:
            raise FieldError(f"pattern {number} has no {ntcip.describe(exc.args[0])}") from None
        if sequence != self.config.sequence_number:
            configured = self.config.sequence_number
            raise FieldError(f"pattern {number} names sequence {sequence}, the controller has {configured}")
        return Pattern(int(cycle), int(offset), tuple(int(s) for s in splits))


class _Objects(instrum.AbstractMibInstrumController):
    """A cabinet's objects as the agent serves them (in the agent's thread, under the lock)."""

    def __init__(self, cabinet: _Cabinet, lock: threading.Lock) -> None:
        self.cabinet = cabinet
        self.lock = lock

    def read_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        with self.lock:
            values = [self.cabinet.objects.get(tuple(oid)) for oid, _ in var_binds]
        return [(oid, _snmp_value(value)) for (oid, _), value in zip(var_binds, values, strict=True)]

    def write_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """All or nothing, as SNMP requires of a SET: every binding is checked before any is kept."""
        with self.lock:
            writes = []
            for index, (name, value) in enumerate(var_binds):
                oid = tuple(name)
                allowed = self.cabinet.allowed(oid)
                if allowed is None:
                    raise smi_error.NotWritableError(name=name, idx=index)
                if value.tagSet != v2c.Integer32.tagSet:
                    raise smi_error.WrongTypeError(name=name, idx=index)
                if int(value) not in allowed:
                    raise smi_error.WrongValueError(name=name, idx=index)
                writes.append((oid, int(value)))
            for oid, value in writes:
                self.cabinet.objects[oid] = value
                if oid == ntcip.SYSTEM_PATTERN_CONTROL:
                    self.cabinet.called = value
                    self.cabinet.objects[ntcip.LOCAL_FREE_STATUS] = ntcip.NOT_FREE  # a new call
        return list(var_binds)


def _snmp_value(value: int | bytes | None) -> Any:
    if value is None:
        return v2c.NoSuchInstance()
    if isinstance(value, bytes):
        return v2c.OctetString(value)
    return v2c.Integer32(value)


class SimulatedController:
    """See the module. ``twin`` is the adapter of the running simulation (stepped by
    :meth:`tick`, not by the caller), ``configurations`` the signals this controller drives.
    ``port`` 0 takes a free one; :attr:`address` says which."""

    def __init__(
        self,
        twin: TwinAdapter,
        configurations: Iterable[SignalConfiguration],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        community: str = "public",
    ) -> None:
        self.twin = twin
        self.configurations = {c.tls_id: c for c in configurations}
        self.community = community
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._cabinets: dict[str, _Cabinet] = {}
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where the agent listens."""
        if self._socket is None:
            raise FieldError("the simulated controller is not started")
        host, port = self._socket.getsockname()[:2]
        return host, port

    def start(self) -> None:
        """Read each signal's program from the simulation (call from its thread), bind the socket
        and start the agent's thread."""
        for tls_id, config in self.configurations.items():
            try:
                initial: Pattern | None = ntcip.pattern(self.twin.running(tls_id), config)
            except FieldError as exc:
                log.info("signal %s runs free: its program is no pattern (%s)", tls_id, exc)
                initial = None
            self._cabinets[tls_id] = _Cabinet(config, initial)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(self._bind)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="ntcip-agent", daemon=True)
        self._thread.start()
        if not ready.wait(THREAD_WAIT_S):
            raise FieldError(f"the simulated controller's agent did not start within {THREAD_WAIT_S:g} s")

    def _serve(self, ready: threading.Event) -> None:
        assert self._loop is not None and self._socket is not None
        asyncio.set_event_loop(self._loop)
        engine = snmp_engine.SnmpEngine()
        snmp_config.add_transport(
            engine, udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(sock=self._socket)
        )
        snmp_context = context.SnmpContext(engine)
        single = len(self._cabinets) == 1
        for number, (tls_id, cabinet) in enumerate(self._cabinets.items()):
            snmp_context.register_context_name(v2c.OctetString(tls_id), _Objects(cabinet, self._lock))
            communities = [f"{self.community}@{tls_id}", *([self.community] if single else [])]
            for kind, community in enumerate(communities):
                snmp_config.add_v1_system(engine, f"signal-{number}-{kind}", community, contextName=tls_id)
        cmdrsp.GetCommandResponder(engine, snmp_context)
        cmdrsp.SetCommandResponder(engine, snmp_context)
        self._loop.call_soon(ready.set)
        try:
            self._loop.run_forever()
        finally:
            engine.close_dispatcher()
            self._loop.run_until_complete(asyncio.sleep(0))  # let the dispatcher's timer task end
            self._loop.close()

    def tick(self, now_s: float) -> None:
        """After each simulation step (in its thread): hand called patterns to the twin, step
        it, and take its confirmations into the status objects."""
        for cabinet in self._cabinets.values():
            with self._lock:
                called, cabinet.called = cabinet.called, None
            if called is not None:
                self._call(cabinet, called)
        self.twin.step(now_s)
        for application in self.twin.confirmed():
            cabinet = self._cabinets[application.tls_id]
            with self._lock:
                number = cabinet.waiting.pop(application.plan_id, None)
                if number is None:
                    continue
                if application.outcome == "applied":
                    cabinet.objects[ntcip.COORD_PATTERN_STATUS] = number
                    cabinet.objects[ntcip.LOCAL_FREE_STATUS] = ntcip.NOT_FREE
                elif application.plan_id == cabinet.latest:  # not one a later call superseded
                    cabinet.objects[ntcip.LOCAL_FREE_STATUS] = ntcip.FAILED
            log.info(
                "signal %s: pattern %s %s: %s",
                application.tls_id,
                number,
                application.outcome,
                application.detail,
            )

    def _call(self, cabinet: _Cabinet, number: int) -> None:
        """Pattern ``number`` was called: its timing to the twin, or ``badPlan`` when it has none."""
        plan_id = f"pattern-{number}"
        try:
            with self._lock:
                timing = ntcip.signal_plan(cabinet.pattern(number), cabinet.config)
            self.twin.submit(plan_id, timing)
        except FieldError as exc:
            with self._lock:
                cabinet.objects[ntcip.LOCAL_FREE_STATUS] = ntcip.BAD_PLAN
            log.warning("signal %s: pattern %s is a bad plan: %s", cabinet.config.tls_id, number, exc)
            return
        with self._lock:
            cabinet.waiting[plan_id] = number
            cabinet.latest = plan_id
        log.info("signal %s: pattern %s called, handed to the twin", cabinet.config.tls_id, number)

    def stop(self) -> None:
        """Stop the agent and close its socket."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(THREAD_WAIT_S)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._loop = self._socket = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
