"""The ``ntcip`` field adapter: signals reached as a central system reaches them, NTCIP 1202 over SNMP.

:meth:`NtcipAdapter.submit` turns the plan into a pattern of the signal's controller
(:func:`field.ntcip_objects.pattern`; what a pattern cannot carry is refused before anything is
sent), writes it with one SNMP SET into the pattern row the controller does not run (rows 1 and 2
alternate, so the running pattern is never edited under the controller's feet), and calls it with
a second SET of ``systemPatternControl``. The controller moves to it at its next cycle boundary
and transitions to the new offset its own way. :meth:`NtcipAdapter.confirmed` polls
``coordPatternStatus`` and ``localFreeStatus``: the application is ``applied`` once the controller
runs the called pattern and reads back the values sent, ``failed`` when it reports the pattern bad,
does not run it within ``CITYBRAIN_NTCIP_CONFIRM_TIMEOUT_S``, or does not answer. NTCIP reports
neither the moment a pattern took over nor its transition cycles: ``effective_at`` is when this
adapter first saw it running (at most one poll late) and ``transition_cycles`` 0.

Controllers are found from ``CITYBRAIN_NTCIP_CONTROLLERS`` (see :func:`controller_addresses`);
each signal's :class:`~field.ntcip_objects.SignalConfiguration` is the central system's record of
its controller, as a city's signal database holds it. pysnmp is asyncio-based; the adapter keeps
one event loop of its own and runs each request to completion in the caller's thread, so it is
used from one thread and never from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

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
from pysnmp.proto.rfc1902 import Integer32, OctetString
from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

from core.settings import Settings
from field import ntcip_objects as ntcip
from field.adapter import Application, FieldError
from field.ntcip_objects import Oid, Pattern, SignalConfiguration
from optimizer.plans.model import SignalPlan

#: The pattern rows the adapter writes, taking turns: the one the controller does not run.
PATTERN_ROWS = (1, 2)
#: pysnmp's message processing model for SNMPv2c, the community-based version the adapter speaks.
_SNMP_V2C = 1
_T = TypeVar("_T")


@dataclass(frozen=True)
class Address:
    """Where a signal's controller answers, and the community that reaches its objects."""

    host: str
    port: int
    community: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def controller_addresses(spec: str, community: str, tls_ids: Iterable[str]) -> dict[str, Address]:
    """Each of ``tls_ids`` with its controller's address, from ``CITYBRAIN_NTCIP_CONTROLLERS``:
    ``J1=10.0.0.5:161,J2=10.0.0.6:161`` names each signal's controller; a bare ``host:port`` is
    where every signal not named is reached, one agent serving them all, each signal's objects
    under the community ``<community>@<tls_id>``. A signal with no address is not reachable."""
    named: dict[str, str] = {}
    shared: str | None = None
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        tls_id, _, where = entry.rpartition("=")
        if not tls_id:
            if shared is not None:
                raise FieldError(f"CITYBRAIN_NTCIP_CONTROLLERS names two shared addresses: {shared}, {where}")
            shared = where
        else:
            named[tls_id.strip()] = where.strip()
    addresses = {}
    for tls_id in tls_ids:
        if tls_id in named:
            addresses[tls_id] = _address(named[tls_id], community)
        elif shared is not None:
            addresses[tls_id] = _address(shared, f"{community}@{tls_id}")
    return addresses


def _address(where: str, community: str) -> Address:
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FieldError(f"CITYBRAIN_NTCIP_CONTROLLERS: {where!r} is not host:port")
    return Address(host, int(port), community)


@dataclass(frozen=True)
class _Pending:
    """A called pattern waiting to be seen running."""

    plan_id: str
    number: int
    values: Pattern
    deadline: float  # time.monotonic()


class NtcipAdapter:
    """:class:`~field.adapter.Adapter` over NTCIP 1202 controllers (see the module).
    ``clock`` gives the moments applications record (default: now, UTC).

    One signal takes one new pattern at a time: a :meth:`submit` while the signal's last one is
    unconfirmed is refused, since a controller reports only the number of the pattern it runs
    and a row rewritten before that would be confirmed with values it never ran."""

    name = "ntcip"

    def __init__(
        self,
        configurations: Iterable[SignalConfiguration],
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.configurations = {c.tls_id: c for c in configurations}
        self.addresses = controller_addresses(
            settings.ntcip_controllers, settings.ntcip_community, self.configurations
        )
        self.timeout_s = settings.ntcip_timeout_s
        self.retries = settings.ntcip_retries
        self.confirm_timeout_s = settings.ntcip_confirm_timeout_s
        self.clock = clock
        self._loop = asyncio.new_event_loop()
        self._engine: SnmpEngine | None = None
        self._targets: dict[str, UdpTransportTarget] = {}
        self._pending: dict[str, _Pending] = {}

    def signals(self) -> frozenset[str]:
        return frozenset(self.addresses)

    def running(self, tls_id: str) -> SignalPlan:
        """The timing ``tls_id``'s controller runs: its current pattern read back over its
        configured sequence. :class:`FieldError` when unreachable, running no pattern (Free,
        Flash), or reporting another sequence or other clearances than its configuration."""
        self._reachable(tls_id)

        async def read() -> SignalPlan:
            (number,) = await self._get(tls_id, [ntcip.COORD_PATTERN_STATUS])
            if number not in ntcip.PATTERNS:
                raise FieldError(
                    f"signal {tls_id}: the controller runs no pattern (coordPatternStatus {number})"
                )
            return (await self._read_pattern(tls_id, number))[1]

        return self._run(read())

    def submit(self, plan_id: str, plan: SignalPlan) -> None:
        """Write ``plan`` as a pattern and call it (see the module). :class:`FieldError` when the
        plan cannot be a pattern, the signal is unreachable or already moving to another plan, or
        the controller refuses a SET; the running pattern is untouched then (except when only the
        answer to the call was lost: :meth:`running` tells)."""
        tls_id = plan.tls_id
        self._reachable(tls_id)
        values = ntcip.pattern(plan, self.configurations[tls_id])
        waiting = self._pending.get(tls_id)
        if waiting is not None:
            raise FieldError(
                f"signal {tls_id}: still moving to plan {waiting.plan_id} (pattern {waiting.number}); "
                "a controller takes one new pattern at a time"
            )
        number = self._run(self._call(tls_id, values))
        self._pending[tls_id] = _Pending(plan_id, number, values, time.monotonic() + self.confirm_timeout_s)

    def confirmed(self) -> list[Application]:
        """Poll each signal with a called pattern (see the module)."""
        done = []
        for tls_id, pending in list(self._pending.items()):
            try:
                outcome = self._run(self._check(tls_id, pending))
            except FieldError as exc:
                outcome = self._failed(tls_id, pending, str(exc))
            if outcome is not None:
                del self._pending[tls_id]
                done.append(outcome)
        return done

    def close(self) -> None:
        """Close the SNMP engine's socket and the event loop."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._loop.run_until_complete(asyncio.sleep(0))  # let the dispatcher's timer task end
            self._engine = None
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # -- the protocol --------------------------------------------------------------------------

    async def _call(self, tls_id: str, values: Pattern) -> int:
        """Write ``values`` into the row the controller does not run and call it; its number."""
        (running,) = await self._get(tls_id, [ntcip.COORD_PATTERN_STATUS])
        number = PATTERN_ROWS[1] if running == PATTERN_ROWS[0] else PATTERN_ROWS[0]
        await self._set(tls_id, ntcip.pattern_writes(self.configurations[tls_id], values, number))
        await self._set(tls_id, [(ntcip.SYSTEM_PATTERN_CONTROL, number)])
        return number

    async def _check(self, tls_id: str, pending: _Pending) -> Application | None:
        """The application's outcome if the controller decided it, else None."""
        number, free = await self._get(tls_id, [ntcip.COORD_PATTERN_STATUS, ntcip.LOCAL_FREE_STATUS])
        why = ntcip.LOCAL_FREE.get(int(free), str(free))
        if number == pending.number:
            values, plan = await self._read_pattern(tls_id, number)
            if values != pending.values:
                return self._failed(
                    tls_id, pending, f"the controller runs it with {values}, not {pending.values}"
                )
            return Application(
                tls_id,
                pending.plan_id,
                "applied",
                f"the controller runs pattern {number} (cycle, offset and splits read back)",
                effective_at=self.clock(),
                running=plan,
            )
        if free in ntcip.CANNOT_RUN:
            return self._failed(tls_id, pending, f"the controller reports localFreeStatus {why}")
        if time.monotonic() > pending.deadline:
            return self._failed(
                tls_id,
                pending,
                f"not running {self.confirm_timeout_s:g} s after the call (the controller runs pattern "
                f"{number}, localFreeStatus {why})",
            )
        return None

    def _failed(self, tls_id: str, pending: _Pending, why: str) -> Application:
        return Application(tls_id, pending.plan_id, "failed", f"pattern {pending.number}: {why}")

    async def _read_pattern(self, tls_id: str, number: int) -> tuple[Pattern, SignalPlan]:
        """Pattern ``number`` as the controller holds it, and the timing it gives over the
        configured sequence once the controller's sequence and clearances are checked."""
        config = self.configurations[tls_id]
        cycle, offset, split, sequence = await self._get(tls_id, ntcip.pattern_row(number))
        clearances = ntcip.clearances(config)
        found = await self._get(
            tls_id,
            [
                ntcip.SEQUENCE_DATA + (int(sequence), ntcip.RING),
                *clearances,
                *ntcip.split_times(config, int(split)),
            ],
        )
        ntcip.check_reported(config, found[0], found[1 : 1 + len(clearances)])
        values = Pattern(int(cycle), int(offset), tuple(int(s) for s in found[1 + len(clearances) :]))
        return values, ntcip.signal_plan(values, config)

    # -- SNMP ----------------------------------------------------------------------------------

    def _reachable(self, tls_id: str) -> None:
        if tls_id not in self.addresses:
            raise FieldError(f"signal {tls_id} has no NTCIP controller: not in CITYBRAIN_NTCIP_CONTROLLERS")

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self._loop.run_until_complete(coroutine)

    async def _get(self, tls_id: str, oids: Sequence[Oid]) -> list[int | bytes]:
        values: list[int | bytes] = []
        for oid, value in zip(oids, await self._request(tls_id, get_cmd, oids), strict=True):
            if isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
                raise FieldError(f"signal {tls_id}: the controller has no {ntcip.describe(oid)}")
            values.append(value.asOctets() if isinstance(value, OctetString) else int(value))
        return values

    async def _set(self, tls_id: str, writes: Sequence[tuple[Oid, int]]) -> None:
        await self._request(tls_id, set_cmd, [oid for oid, _ in writes], [Integer32(v) for _, v in writes])

    async def _request(
        self, tls_id: str, command: Any, oids: Sequence[Oid], values: Sequence[Any] | None = None
    ) -> list[Any]:
        """One SNMP request (a GET, or a SET of ``values``); the values answered, in order.
        :class:`FieldError` naming the controller and what went wrong."""
        address = self.addresses[tls_id]
        if self._engine is None:
            self._engine = SnmpEngine()
        if tls_id not in self._targets:
            self._targets[tls_id] = await UdpTransportTarget.create(
                (address.host, address.port), timeout=self.timeout_s, retries=self.retries
            )
        bindings = [
            ObjectType(ObjectIdentity(oid), *([] if values is None else [values[i]]))
            for i, oid in enumerate(oids)
        ]
        indication, status, index, answered = await command(
            self._engine,
            CommunityData(address.community, mpModel=_SNMP_V2C),
            self._targets[tls_id],
            ContextData(),
            *bindings,
            lookupMib=False,
        )
        if indication:
            raise FieldError(
                f"signal {tls_id}: the controller at {address} did not answer ({indication}; waited "
                f"{self.timeout_s:g} s, {self.retries} retries)"
            )
        if status:
            what = ntcip.describe(oids[int(index) - 1]) if 0 < int(index) <= len(oids) else "the request"
            raise FieldError(
                f"signal {tls_id}: the controller at {address} refused {what}: {status.prettyPrint()}"
            )
        return [value for _, value in answered]
