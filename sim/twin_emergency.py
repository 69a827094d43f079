"""The sensor twin's emergency dispatch: one emergency vehicle sent across signals, as a fleet
system would report it.

At :data:`EMERGENCY_AT` of the window the vehicle is dispatched from an origin to a destination
edge (given, or drawn from the seed across signals, :func:`sim.dispatches.draw_dispatches`) on
SUMO's fastest route at that moment. It is SUMO's ``emergency`` class without a blue-light device,
so it obeys the signals like other traffic: what priority would save is measured against that.
:class:`EmergencyTrip` says when the fleet system would report it — the dispatch, a position
every ``update_every_s``, the arrival — as :class:`Sighting` values that the twin turns into
``operator.emergency.v1`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.dispatches import add_emergency_vehicle

#: When the vehicle is dispatched, as a share of the twin's window.
EMERGENCY_AT = 1 / 2


@dataclass(frozen=True)
class Sighting:
    """What the fleet system reports at simulated second ``t``: ``kind`` as in the contract."""

    kind: str
    t: float
    x: float
    y: float
    speed_mps: float | None = None
    angle_deg: float | None = None


@dataclass
class EmergencyLog:
    """What the twin did: the trip and when it started and ended."""

    dispatch_id: str
    vehicle_id: str
    origin: str
    destination: str
    dispatched_s: float
    route: tuple[str, ...] = ()
    departed_s: float | None = None
    arrived_s: float | None = None
    positions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


class EmergencyTrip:
    """One dispatch in a running simulation; :meth:`step` after every simulation step."""

    def __init__(self, log: EmergencyLog, update_every_s: int) -> None:
        self.log, self.update_every_s = log, update_every_s
        self.dispatched = False
        self.last: tuple[float, float] = (0.0, 0.0)

    def step(self, sim: Any, t: float) -> list[Sighting]:
        log = self.log
        if log.arrived_s is not None or t < log.dispatched_s:
            return []
        if not self.dispatched:
            return [self._dispatch(sim, t)]
        vehicle = log.vehicle_id
        if vehicle in sim.simulation.getArrivedIDList():
            log.arrived_s = t
            return [Sighting("arrived", t, *self.last)]
        if vehicle not in sim.vehicle.getIDList():
            return []  # not inserted yet: its lane is full
        if log.departed_s is None:
            log.departed_s = t
        self.last = sim.vehicle.getPosition(vehicle)
        if round(t - log.dispatched_s) % self.update_every_s:
            return []
        log.positions += 1
        return [
            Sighting("position", t, *self.last, sim.vehicle.getSpeed(vehicle), sim.vehicle.getAngle(vehicle))
        ]

    def _dispatch(self, sim: Any, t: float) -> Sighting:
        log = self.log
        log.route = add_emergency_vehicle(sim, log.vehicle_id, log.origin, log.destination)
        self.dispatched = True
        self.last = sim.simulation.convert2D(log.origin, 0.0)
        return Sighting("dispatch", t, *self.last)
