"""An emergency vehicle in a running simulation, with or without signal priority.

:class:`EmergencyPriority` runs the network's own signal programs, dispatches one emergency
vehicle at a set time from an origin to a destination edge (without them in its options: a trip
drawn from the run's seed across at least four signals, :mod:`sim.dispatches`),
and — when ``preempt`` is on — gives it green along its way:

- **route**: SUMO's router (``simulation.findRoute``) on the network's travel times at the
  moment of dispatch, which in the simulation are the current, congestion-aware ones;
- **arrival**: for each signal ahead on the route (``vehicle.getNextTLS``: the signal, the link
  the vehicle will use, the distance to its stop line), the time to reach it at the vehicle's
  speed, or at ``crawl_mps`` when it is slower (a vehicle queued at a red still needs its green);
- **preemption**: once the predicted arrival is within ``lookahead_s``, the signal moves to the
  vehicle's green the quickest safe way (:func:`optimizer.priority.preemption.preempt`) —
  preferring a phase that also serves the other links of the vehicle's lane, so the vehicles
  queued in front of it can leave — holds it until the vehicle has crossed that stop line, then
  goes back the same safe way into step with its own program
  (:func:`optimizer.priority.preemption.resume`);
- **give-up**: a vehicle that stands ``stall_s`` on its own green is held up by traffic beyond
  the signal, not by the signal, and a hold never lasts more than ``hold_max_s``: the signal is
  then released all the same and left to its program for ``backoff_s`` before it is asked
  again, so a gridlock downstream is not made worse by starving the other approaches.

Without ``preempt`` the vehicle is dispatched the same way and obeys the signals like any other
traffic (SUMO's ``emergency`` class without a blue-light device does not run red lights), so the
two runs on one seed differ only by the priority. Either way the controller records what every
signal showed on every step and checks it against the safety rules
(:func:`optimizer.plans.shown.check_shown`), waiving only what a signal's own program already
breaks. :meth:`measurements` returns the vehicle's trip, the preemptions and the violations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optimizer.methods.webster import inherited_waivers
from optimizer.plans.safety import GREEN, scenario_signals
from optimizer.plans.shown import Shown, check_shown
from optimizer.priority.preemption import NoPriorityPhase, Preemption, Step, preempt, resume
from sim.controllers import Controller, ControllerError, register, running_scenario
from sim.dispatches import NoEmergencyRoute, add_emergency_vehicle, draw_dispatches
from sim.twin import parse_day, sim_time_to_utc, utc_timestamp

#: Signals a drawn dispatch's route should cross, when the options name no trip.
DRAWN_MIN_SIGNALS = 4
#: Below this speed a vehicle counts as stopped (SUMO's own waiting threshold).
STOPPED_MPS = 0.1


@dataclass
class _Running:
    """A preemption under way at one signal: the way it follows (to the priority green, then
    back into step with the program), the step it shows and for how long it has."""

    preemption: Preemption
    requested_at: float
    number: int
    way: Preemption | None = None
    step: int = 0
    in_step_s: float = 0.0
    green_at: float | None = None
    released_at: float | None = None
    held_s: float = 0.0
    stalled_s: float = 0.0
    #: The vehicle has crossed the stop lines of the preemption's links.
    passed: bool = False

    def __post_init__(self) -> None:
        self.way = self.way or self.preemption


@dataclass
class _Trip:
    route: list[str] = field(default_factory=list)
    dispatched_at: float | None = None
    departed_at: float | None = None
    arrived_at: float | None = None
    time_loss_s: float = 0.0
    crossings: list[tuple[str, int]] = field(default_factory=list)
    stopped_at: set[tuple[str, int]] = field(default_factory=set)


@register
class EmergencyPriority(Controller):
    """The network's own programs, one emergency vehicle, and (with ``preempt``) its green path."""

    name = "emergency-priority"

    def __init__(
        self,
        origin: str | None = None,
        destination: str | None = None,
        depart: float | None = None,
        preempt: bool = True,
        vehicle_id: str = "emergency",
        lookahead_s: float = 25.0,
        crawl_mps: float = 5.0,
        hold_max_s: float = 90.0,
        stall_s: float = 15.0,
        backoff_s: float = 90.0,
        day: str = "2026-11-28",
    ) -> None:
        if min(lookahead_s, crawl_mps, hold_max_s, stall_s) <= 0 or backoff_s < 0:
            raise ValueError(
                "lookahead_s, crawl_mps, hold_max_s, stall_s must be positive; backoff_s not negative"
            )
        self.origin, self.destination, self.depart = origin, destination, depart
        self.preempt, self.vehicle_id = preempt, vehicle_id
        self.lookahead_s, self.crawl_mps, self.hold_max_s = lookahead_s, crawl_mps, hold_max_s
        self.stall_s, self.backoff_s = stall_s, backoff_s
        #: Signals released without the vehicle passing, and until when they are left alone.
        self.backoff: dict[str, float] = {}
        self.speed = 0.0
        self.trip = _Trip()
        self.running: dict[str, _Running] = {}
        self.done: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.day = parse_day(day)
        #: Every preemption's life as ``control.preempt.v1`` records: what the field adapter logs.
        self.log: list[dict[str, Any]] = []

    def start(self, sim: Any) -> None:
        scenario = running_scenario(sim)
        if self.origin is None or self.destination is None or self.depart is None:
            drawn = draw_dispatches(scenario, 1, int(sim.simulation.getOption("seed")), DRAWN_MIN_SIGNALS)
            if not drawn:
                raise ControllerError(f"{scenario.name}: no route for an emergency vehicle between two edges")
            self.origin = self.origin or drawn[0].origin
            self.destination = self.destination or drawn[0].destination
            self.depart = drawn[0].depart if self.depart is None else self.depart
        self.networks = scenario_signals(scenario)
        self.rules = inherited_waivers(self.networks)
        self.programs = {tls: s.program for tls, s in self.networks.items() if s.program is not None}
        self.program_ids = {tls: sim.trafficlight.getProgram(tls) for tls in self.programs}
        self.lane_of: dict[str, list[str]] = {
            tls: [links[0][0] if links else "" for links in sim.trafficlight.getControlledLinks(tls)]
            for tls in self.programs
        }
        self.shown = {tls: Shown(tls) for tls in self.networks}
        self.green_for = {tls: [0.0] * s.link_count for tls, s in self.networks.items()}

    def step(self, sim: Any, time: float) -> None:
        trip = self.trip
        if trip.dispatched_at is None and self.depart is not None and time >= self.depart:
            self._dispatch(sim, time)
        if trip.dispatched_at is not None and trip.arrived_at is None:
            self._follow(sim, time)
        for tls in list(self.running):
            self._advance(sim, tls, time)
        for tls, shown in self.shown.items():
            state = sim.trafficlight.getRedYellowGreenState(tls)
            shown.add(state, time)
            green_for = self.green_for[tls]
            for link, letter in enumerate(state[: len(green_for)]):
                green_for[link] = green_for[link] + 1.0 if letter in GREEN else 0.0

    def _dispatch(self, sim: Any, time: float) -> None:
        try:
            route = add_emergency_vehicle(sim, self.vehicle_id, self.origin, self.destination)
        except NoEmergencyRoute as exc:
            raise ControllerError(str(exc)) from None
        self.trip.route = list(route)
        self.trip.dispatched_at = time

    def _follow(self, sim: Any, time: float) -> None:
        trip = self.trip
        if self.vehicle_id in sim.simulation.getArrivedIDList():
            trip.arrived_at = time
            return
        if self.vehicle_id not in sim.vehicle.getIDList():
            return  # not inserted yet: its lane is full
        if trip.departed_at is None:
            trip.departed_at = time
        speed = self.speed = sim.vehicle.getSpeed(self.vehicle_id)
        trip.time_loss_s = sim.vehicle.getTimeLoss(self.vehicle_id)
        ahead = [
            (tls, int(link), float(distance))
            for tls, link, distance, _ in sim.vehicle.getNextTLS(self.vehicle_id)
        ]
        for tls, link, _ in ahead:
            if (tls, link) not in trip.crossings:
                trip.crossings.append((tls, link))
        if ahead and speed < STOPPED_MPS:
            trip.stopped_at.add(ahead[0][:2])
        if self.preempt:
            self._request(sim, time, ahead, speed)
        crossing = {(tls, link) for tls, link, _ in ahead}
        for tls, running in self.running.items():
            running.passed = not any((tls, link) in crossing for link in running.preemption.links)

    def _request(self, sim: Any, time: float, ahead: list[tuple[str, int, float]], speed: float) -> None:
        arriving: dict[str, set[int]] = {}
        eta: dict[str, float] = {}
        for tls, link, distance in ahead:
            seconds = distance / max(speed, self.crawl_mps)
            if seconds <= self.lookahead_s:
                arriving.setdefault(tls, set()).add(link)
                eta.setdefault(tls, seconds)
        for tls, links in arriving.items():
            resting = self.backoff.get(tls, -1.0) > time
            if tls in self.running or tls not in self.programs or tls in self.refused or resting:
                continue
            nearest = next(link for t, link, _ in ahead if t == tls)
            state = sim.trafficlight.getRedYellowGreenState(tls)
            lanes = self.lane_of[tls]
            lane_links = [i for i, lane in enumerate(lanes) if lane and lane == lanes[nearest]]
            found = None
            for wanted in (links, {nearest}):
                try:
                    found = preempt(
                        self.networks[tls],
                        self.programs[tls],
                        state,
                        self.green_for[tls],
                        wanted,
                        self.rules,
                        lane_links,
                    )
                except NoPriorityPhase:
                    continue
                break
            else:
                self.refused.append(tls)
                self._log(
                    time, tls, len(self.log), [nearest], "refused", None, eta[tls], (),
                    f"no phase of the signal's program gives link {nearest} green",
                )  # fmt: skip
                continue
            if found is not None:
                running = _Running(found, time, len(self.log))
                self.running[tls] = running
                self._log(time, tls, running.number, sorted(found.links), "requested", found.resume_phase,
                          eta[tls], found.steps)  # fmt: skip

    def _advance(self, sim: Any, tls: str, time: float) -> None:
        running = self.running[tls]
        assert running.way is not None
        steps = running.way.steps
        if running.step < len(steps) - 1 and running.in_step_s >= steps[running.step].seconds:
            running.step, running.in_step_s = running.step + 1, 0.0
        last = running.step == len(steps) - 1
        if running.released_at is None and last:
            if running.green_at is None:
                running.green_at = time
                self._log_step(time, tls, running, "green")
            passed = running.passed or self.trip.arrived_at is not None
            gave_up = running.held_s >= self.hold_max_s or running.stalled_s >= self.stall_s
            if running.in_step_s >= steps[-1].seconds and (passed or gave_up):
                if not passed:
                    self.backoff[tls] = time + self.backoff_s
                running.way = resume(
                    self.networks[tls],
                    self.programs[tls],
                    steps[-1].state,
                    self.green_for[tls],
                    time,
                    self.rules,
                )
                running.released_at, running.step, running.in_step_s = time, 0, 0.0
                self._log_step(time, tls, running, "released")
                steps = running.way.steps
                last = len(steps) == 1
        if running.released_at is not None and last:
            # Back in step: the program runs on from here, its phase ending when it would have.
            sim.trafficlight.setProgram(tls, self.program_ids[tls])
            sim.trafficlight.setPhase(tls, running.way.resume_phase)
            sim.trafficlight.setPhaseDuration(tls, steps[-1].seconds)
            self.done.append(self._record(tls, running, time))
            del self.running[tls]
            return
        sim.trafficlight.setRedYellowGreenState(tls, steps[running.step].state)
        running.in_step_s += 1.0
        if last:
            running.held_s += 1.0
            running.stalled_s = running.stalled_s + 1.0 if self.speed < STOPPED_MPS else 0.0

    def _log(
        self,
        time: float,
        tls: str,
        number: int,
        links: list[int],
        status: str,
        phase: int | None,
        eta_s: float | None,
        steps: tuple[Step, ...],
        reason: str | None = None,
    ) -> None:
        dispatch = f"{self.vehicle_id}-{int(self.trip.dispatched_at or 0)}"
        self.log.append(
            {
                "schema_version": 1,
                "ts": utc_timestamp(sim_time_to_utc(self.day, time)),
                "preempt_id": f"{dispatch}-{number}",
                "dispatch_id": dispatch,
                "vehicle_id": self.vehicle_id,
                "tls_id": tls,
                "links": links,
                "status": status,
                "priority_phase": phase,
                "eta_s": None if eta_s is None else round(eta_s, 3),
                "steps": [{"state": step.state, "duration_s": step.seconds} for step in steps],
                "reason": reason,
            }
        )

    def _log_step(self, time: float, tls: str, running: _Running, status: str) -> None:
        preemption = running.preemption
        self._log(
            time, tls, running.number, sorted(preemption.links), status, preemption.resume_phase, None, ()
        )

    def _record(self, tls: str, running: _Running, in_step_at: float) -> dict[str, Any]:
        preemption = running.preemption
        return {
            "tls_id": tls,
            "vehicle_id": self.vehicle_id,
            "links": sorted(preemption.links),
            "requested_at": running.requested_at,
            "green_at": running.green_at,
            "released_at": running.released_at,
            "in_step_at": in_step_at,
            "priority_phase": preemption.resume_phase,
            "resumed_phase": None if running.way is None else running.way.resume_phase,
            "steps": [{"state": s.state, "seconds": s.seconds} for s in preemption.steps],
        }

    def measurements(self) -> dict[str, Any]:
        trip = self.trip
        violations = [
            v.to_dict()
            for tls, shown in sorted(self.shown.items())
            for v in check_shown(shown, self.networks[tls], self.rules)
        ]
        travel = None
        if trip.arrived_at is not None and trip.dispatched_at is not None:
            travel = trip.arrived_at - trip.dispatched_at
        return {
            "vehicle_id": self.vehicle_id,
            "preempt": self.preempt,
            "origin": self.origin,
            "destination": self.destination,
            "route": trip.route,
            "dispatched_at": trip.dispatched_at,
            "arrived_at": trip.arrived_at,
            "travel_time_s": travel,
            "time_loss_s": trip.time_loss_s,
            "signals_crossed": len(trip.crossings),
            "signals_stopped_at": len(trip.stopped_at),
            "preemptions": self.done,
            "preemption_log": self.log,
            "no_priority_phase": self.refused,
            "checked_steps": sum(sum(s[2] for s in shown.stretches) for shown in self.shown.values()),
            "violations": violations,
        }
