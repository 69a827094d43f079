"""The SUMO twin as a field adapter: approved timings put in force in a running simulation.

:meth:`TwinAdapter.submit` checks the signal and queues the timing; :meth:`TwinAdapter.step`, called
by the simulation loop after every step (the twin's ``on_step`` hook), carries it out the way a
controller does. At the running program's next cycle boundary the signal starts the transition
cycles :func:`field.transition.plan_transition` plans, installed as one program of their own
(``<program id>+transition``: every transition cycle's phases in a row); when they end, the new
plan goes in force with :func:`optimizer.plans.sumo_programs.apply`, which finds it at the start of
its cycle, as its offset says. Both switches happen on the step where the boundary falls (after a
step to ``t`` SUMO has not yet begun the phase due at ``t``), so no phase is cut or stretched by
the switch itself; a boundary between two steps (durations or offsets that are not whole steps)
is acted on up to one step late, where the new timing is then placed as its offset says. The
application is then read back from SUMO and waits for :meth:`confirmed`. The twin runs every plan
as a fixed-time (``static``) program, as :func:`~optimizer.plans.sumo_programs.apply` does.

libsumo is not thread-safe: every call must come from the thread that steps the simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from field.adapter import Application, FieldError
from field.transition import Transition, TransitionError, plan_transition
from optimizer.plans.model import Phase, PlanError, SignalPlan
from optimizer.plans.sumo_programs import apply, check_fits, running_plan

#: Appended to the new plan's program id to name the program that runs its transition cycles.
TRANSITION_SUFFIX = "+transition"
#: Seconds below which two times count as equal (SUMO itself works in milliseconds).
_EPS = 1e-6


@dataclass(frozen=True)
class _Queued:
    plan_id: str
    plan: SignalPlan


@dataclass(frozen=True)
class _Underway:
    plan_id: str
    transition: Transition


class TwinAdapter:
    """:class:`~field.adapter.Adapter` over a running SUMO simulation.

    ``sim`` is the ``libsumo`` module or a TraCI connection (the same API); ``clock`` turns
    simulation seconds into the UTC moment they stand for (for the twin's day:
    ``functools.partial(sim.twin.sim_time_to_utc, day)``).

    Per signal, one timing waits for its boundary and one is in transition at most: a second
    :meth:`submit` before the first has started replaces it (the replaced one is confirmed as
    ``failed``, superseded, unless it has the same plan id), and one submitted during a transition
    waits for the transition's end, which is the new plan's first cycle boundary.
    """

    name = "sumo-twin"

    def __init__(self, sim: Any, clock: Callable[[float], datetime]) -> None:
        self.sim = sim
        self.clock = clock
        self._queued: dict[str, _Queued] = {}
        self._underway: dict[str, _Underway] = {}
        self._done: list[Application] = []

    def signals(self) -> frozenset[str]:
        """Every traffic light of the simulation."""
        return frozenset(self.sim.trafficlight.getIDList())

    def running(self, tls_id: str) -> SignalPlan:
        """What ``tls_id`` runs now, read from SUMO: its current program's phases, with the offset
        it runs at (from the phase it is in and when that ends, not the program's ``offset``
        attribute; see :func:`~optimizer.plans.sumo_programs.running_plan`). During a transition
        that is the transition program, whose one "cycle" is all the transition cycles."""
        try:
            return running_plan(self.sim, tls_id)
        except PlanError as exc:
            raise FieldError(str(exc)) from None

    def submit(self, plan_id: str, plan: SignalPlan) -> None:
        """Queue ``plan`` for its signal's next cycle boundary. :class:`FieldError`, with nothing
        queued, when the simulation has no such signal or it controls another number of links."""
        try:
            check_fits(self.sim, plan)
        except PlanError as exc:
            raise FieldError(str(exc)) from None
        replaced = self._queued.get(plan.tls_id)
        if replaced is not None and replaced.plan_id != plan_id:
            self._fail(replaced.plan_id, plan.tls_id, f"superseded by plan {plan_id} before it took effect")
        self._queued[plan.tls_id] = _Queued(plan_id, plan)

    def confirmed(self) -> list[Application]:
        """Applications settled since the last call: ``applied`` once a timing is in force on its
        offset (read back), ``failed`` when SUMO refused it, its transition was impossible, or a
        later submit superseded it before its boundary."""
        done, self._done = self._done, []
        return done

    def step(self, now_s: float) -> None:
        """Carry out what is due at simulation time ``now_s`` (call after every simulation step,
        with the time the step reached): end transitions whose last cycle is over, then start
        queued timings whose signal is at a cycle boundary."""
        for tls_id, underway in list(self._underway.items()):
            if now_s >= underway.transition.ends_at_s - _EPS:
                del self._underway[tls_id]
                self._put_in_force(underway)
        for tls_id, queued in list(self._queued.items()):
            if tls_id not in self._underway:
                self._start(queued, now_s)

    def _start(self, queued: _Queued, now_s: float) -> None:
        plan = queued.plan
        try:
            transition = plan_transition(
                self.running(plan.tls_id), plan, now_s, resolution_s=self.sim.simulation.getDeltaT()
            )
        except (FieldError, TransitionError) as exc:
            del self._queued[plan.tls_id]
            self._fail(queued.plan_id, plan.tls_id, str(exc))
            return
        if transition.starts_at_s > now_s + _EPS:
            return
        del self._queued[plan.tls_id]
        underway = _Underway(queued.plan_id, transition)
        if not transition.cycles:
            self._put_in_force(underway)
            return
        phases = tuple(
            Phase(phase.state, duration, name=phase.name)
            for cycle in transition.cycles
            for phase, duration in zip(plan.phases, cycle, strict=True)
        )
        program = replace(
            plan,
            phases=phases,
            cycle_s=None,
            offset_s=transition.starts_at_s,
            program_id=plan.program_id + TRANSITION_SUFFIX,
            kind="static",
        )
        try:
            apply(self.sim, [program])
        except PlanError as exc:
            self._fail(queued.plan_id, plan.tls_id, str(exc))
            return
        self._underway[plan.tls_id] = underway

    def _put_in_force(self, underway: _Underway) -> None:
        transition = underway.transition
        plan = transition.plan
        try:
            apply(self.sim, [plan])
            running = running_plan(self.sim, plan.tls_id)
        except PlanError as exc:
            self._fail(underway.plan_id, plan.tls_id, str(exc))
            return
        cycles, moved = len(transition.cycles), abs(transition.correction_s)
        how = f" after {cycles} transition cycles, {transition.direction}ed by {moved:g} s" if cycles else ""
        self._done.append(
            Application(
                tls_id=plan.tls_id,
                plan_id=underway.plan_id,
                outcome="applied",
                detail=f"program {running.program_id} in force on its offset{how}",
                effective_at=self.clock(transition.ends_at_s),
                running=running,
                transition_cycles=cycles,
            )
        )

    def _fail(self, plan_id: str, tls_id: str, detail: str) -> None:
        self._done.append(Application(tls_id=tls_id, plan_id=plan_id, outcome="failed", detail=detail))
