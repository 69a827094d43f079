"""The one small interface every field adapter has, and what it answers.

An adapter is where approved timing meets a signal: the running SUMO twin (``twin``), or a
controller reached over NTCIP 1202 (``ntcip``). The field service (``citybrain field run``)
re-checks a plan's safety, then hands each signal's timing to :meth:`Adapter.apply`, which puts it
in force at the signal's next cycle boundary and moves the offset over a few cycles, the way
controllers transition, never by an abrupt jump. :meth:`Adapter.running` reads back what the
signal runs, so an application is confirmed by the signal, not assumed from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from core.errors import CitybrainError
from optimizer.plans.model import SignalPlan

#: What became of a signal's timing: in force; refused before anything was sent (unsafe, an
#: unknown signal, a malformed plan); sent but not confirmed (the controller did not take it).
Outcome = Literal["applied", "refused", "failed"]


class FieldError(CitybrainError):
    """A signal the adapter cannot reach, or a command it refused; the message names the signal."""


@dataclass(frozen=True)
class Application:
    """What became of one signal's timing: ``running`` is the program the signal reports after
    it (the new one when ``applied``; None when unreadable), ``effective_at`` the UTC moment the
    new timing took over at a cycle boundary (None unless applied), ``transition_cycles`` how
    many cycles the offset change was spread over."""

    tls_id: str
    plan_id: str
    outcome: Outcome
    detail: str
    effective_at: datetime | None = None
    running: SignalPlan | None = None
    transition_cycles: int = 0


class Adapter(Protocol):
    """A way to the signals. ``name`` goes into ``control.plan.applied.v1``'s ``application``.

    Applying is two steps, as with a real controller: :meth:`submit` hands the timing over (the
    signal switches at its next cycle boundary, later), and :meth:`confirmed` returns what has
    since been confirmed by reading the signal back, or has failed."""

    name: str

    def signals(self) -> frozenset[str]:
        """The SUMO tls ids this adapter can reach."""
        ...

    def running(self, tls_id: str) -> SignalPlan:
        """The timing ``tls_id`` runs now, as the signal reports it; :class:`FieldError` if unreachable."""
        ...

    def submit(self, plan_id: str, plan: SignalPlan) -> None:
        """Hand ``plan`` to its signal, to take over at the next cycle boundary with the offset
        moved over a few cycles. :class:`FieldError` when the signal refuses it or cannot be
        reached (nothing changed then)."""
        ...

    def confirmed(self) -> list[Application]:
        """The applications completed since the last call: applied (read back from the signal)
        or failed (with the reason)."""
        ...
