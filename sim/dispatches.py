"""Emergency dispatches on a scenario's network: seeded trips that cross many signals, and the
vehicle put into a running simulation.

A comparison of priority with and without is only telling on trips that meet signals, so the
origin and destination edges are drawn until the fastest route between them (in the empty
network) crosses at least ``min_signals`` signals; the dispatch time falls inside the
scenario's window, late enough for traffic to have built up and early enough to arrive.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from core.errors import CitybrainError
from sim.network import read_sumolib
from sim.scenarios import Scenario

#: SUMO's vehicle type of an emergency vehicle: the ``emergency`` class without a blue-light
#: device, so it obeys the signals like other traffic.
VEHICLE_TYPE = "citybrain_emergency"
#: Dispatches leave this long after the window opens (traffic has built up) and this long before
#: it closes (so they arrive inside it).
WARM_UP_S = 300
TRIP_ALLOWANCE_S = 900
#: Pairs of edges tried per dispatch when looking for long routes.
_TRIES_PER_DISPATCH = 200


@dataclass(frozen=True)
class Dispatch:
    origin: str
    destination: str
    depart: float
    signals: int  # on its fastest route in the empty network
    seed: int


def draw_dispatches(scenario: Scenario, count: int, seed: int, min_signals: int) -> list[Dispatch]:
    """``count`` seeded dispatches with routes crossing at least ``min_signals`` signals, or the
    longest-signalled routes found when the network has too few such routes."""
    net = read_sumolib(scenario.net_file)
    edges = sorted(
        (e for e in net.getEdges() if e.getFunction() == "" and e.allows("emergency")),
        key=lambda e: e.getID(),
    )
    rng = random.Random(seed)
    found: dict[tuple[str, str], int] = {}
    long_enough = set()
    for _ in range(count * _TRIES_PER_DISPATCH):
        origin, destination = rng.sample(edges, 2)
        path, _cost = net.getShortestPath(origin, destination, vClass="emergency")
        if not path:
            continue
        pair = (origin.getID(), destination.getID())
        found[pair] = sum(1 for edge in path[:-1] if edge.getToNode().getType().startswith("traffic_light"))
        if found[pair] >= min_signals:
            long_enough.add(pair)
            if len(long_enough) >= count:
                break
    ranked = sorted(found.items(), key=lambda item: (-min(item[1], min_signals), rng.random()))[:count]
    latest = max(scenario.begin + WARM_UP_S, scenario.end - TRIP_ALLOWANCE_S)
    return [
        Dispatch(
            o, d, float(rng.randint(scenario.begin + WARM_UP_S, latest)), signals, seed * 1000 + index + 1
        )
        for index, ((o, d), signals) in enumerate(ranked)
    ]


class NoEmergencyRoute(CitybrainError, ValueError):
    """No route for an emergency vehicle between the two edges; the message names them."""


def add_emergency_vehicle(sim: Any, vehicle_id: str, origin: str, destination: str) -> tuple[str, ...]:
    """Put an emergency vehicle into the running simulation now, on SUMO's fastest route from
    ``origin`` to ``destination`` at this moment (the current travel times); returns the route."""
    if VEHICLE_TYPE not in sim.vehicletype.getIDList():
        sim.vehicletype.copy("DEFAULT_VEHTYPE", VEHICLE_TYPE)
        sim.vehicletype.setVehicleClass(VEHICLE_TYPE, "emergency")
        sim.vehicletype.setSpeedFactor(VEHICLE_TYPE, 1.0)
        sim.vehicletype.setColor(VEHICLE_TYPE, (255, 0, 0, 255))
    route = sim.simulation.findRoute(origin, destination, VEHICLE_TYPE)
    if not route.edges:
        raise NoEmergencyRoute(f"no route for an emergency vehicle from {origin} to {destination}")
    sim.route.add(f"{vehicle_id}_route", list(route.edges))
    sim.vehicle.add(vehicle_id, f"{vehicle_id}_route", typeID=VEHICLE_TYPE, depart="now", departLane="best")
    return tuple(route.edges)
