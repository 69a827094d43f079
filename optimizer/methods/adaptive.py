"""The adaptive method's policies, whose parameters are tuned by simulation: a pressure policy
of our design, and SUMO's gap-based actuation.

The policy generalises Varaiya's max-pressure so that one parameter vector spans the plain
variants (every-second or every-10-s decisions, all vehicles or halting queues, with or
without the downstream term) and the fixes each of them needs somewhere:

- a green is held at least ``min_green_s`` and then reconsidered every ``decision_s``;
- a lane's queue is its halting vehicles plus ``moving_weight`` × its moving ones;
- a green's pressure is the queue on its incoming lanes minus ``out_weight`` × the queue on
  its outgoing lanes; ``link_weight`` blends counting each lane once per green (0) with
  counting it once per green link it serves (1), as max-pressure's textbook sum over
  links does — which favours shared lanes, for better or worse by network;
- the current green is kept unless another one's pressure exceeds it by ``switch_margin``
  vehicles — switching costs a yellow and an all-red of lost time — and its pressure gains
  ``hold_weight`` × the vehicles still moving on its incoming lanes, so a platoon being served
  is not cut off (what gap-based actuation does), up to ``max_green_s``;
- a green whose lanes hold a waiting vehicle and which has not been served for
  ``max_red_s`` is served next whatever the pressures say: plain max-pressure can starve a
  light approach for the whole hour, which RESCO's delay punishes;
- a new green waits, up to ``clear_junction_s`` beyond the program's own clearance, until no
  vehicle of the greens just ended is still inside the junction. Max-pressure jumps between
  greens in any order, and in a large clustered junction (cologne3's main one, with internal
  lanes of 17 m) a vehicle left inside from the last green meets the next green's vehicles
  there; with teleporting off they lock each other, and the network, for good (cologne3 seed
  2: from minute 19).

The clearing hold guards against an event a search cannot price: a gridlock comes on about
one seed in twenty, so three training seeds seldom show one, and a search tuned it down to
1.1 s on cologne3, which then locked on seeds 3 and 23 of 1–40 (490.9 s and 69.3 s). A hold
of up to 5 s still locked seed 3; 10 s locked none of the 40, at a cost of under half a
second of delay elsewhere (cologne1, cologne8, ingolstadt1, grid4x4, seeds 1–10). So the
hold is on by default at 10 s and the search leaves it there (``UNSEARCHED``), as it leaves
the safety rules; a hand-set value may still switch it off.

Greens, yellows and all-reds come from each signal's own program (:class:`sim.controllers.MaxPressure`
reads them the same way), so every switch passes through the program's own clearance and the
safety rules' minimum green holds by construction (``min_green_s`` ≥ 5 s).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

from core.errors import CitybrainError
from optimizer.plans.safety import DEFAULT_MIN_GREEN_S
from sim.controllers import (
    GREEN,
    Actuated,
    Controller,
    _clearance,
    _program_signal,
    _Signal,
    register,
)


class PolicyError(CitybrainError, ValueError):
    """Policy parameters out of their range; the message names the parameter."""


class _Params:
    """A policy's parameters, each checked against its range (``BOUNDS``) when made."""

    BOUNDS: ClassVar[dict[str, tuple[float, float]]]
    #: Parameters a search keeps at their defaults: safeguards whose worth the training seeds cannot show.
    UNSEARCHED: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name, (low, high) in self.BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise PolicyError(
                    f"adaptive policy: {name} must lie within [{low:g}, {high:g}], got {value!r}"
                )

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        unknown = set(values) - set(cls.names())
        if unknown:
            raise PolicyError(f"adaptive policy: unknown parameters {sorted(unknown)}; known: {cls.names()}")
        return cls(**{name: float(value) for name, value in values.items()})

    def to_dict(self) -> dict[str, float]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def search_bounds(cls) -> dict[str, tuple[float, float]]:
        """The box a search tunes in: every range but the ``UNSEARCHED`` ones."""
        return {name: bounds for name, bounds in cls.BOUNDS.items() if name not in cls.UNSEARCHED}


@dataclass(frozen=True)
class PressureParams(_Params):
    """One point of the pressure policy's parameter space (see the module docstring).

    The defaults are max-pressure as RESCO's calibration runs it (10 s decisions on halting
    queues, summed per link, with the downstream term) with the junction-clearing hold on.
    """

    decision_s: float = 10.0
    min_green_s: float = 10.0
    moving_weight: float = 0.0
    out_weight: float = 1.0
    switch_margin: float = 0.0
    hold_weight: float = 0.0
    link_weight: float = 1.0
    max_green_s: float = 300.0
    max_red_s: float = 600.0
    clear_junction_s: float = 10.0

    #: Each parameter's allowed range: what a hand-set value is checked against, and the search box
    #: (less the UNSEARCHED ones).
    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "decision_s": (1.0, 20.0),
        "min_green_s": (5.0, 25.0),
        "moving_weight": (0.0, 1.0),
        "out_weight": (0.0, 1.0),
        "switch_margin": (0.0, 10.0),
        "hold_weight": (0.0, 2.0),
        "link_weight": (0.0, 1.0),
        "max_green_s": (15.0, 300.0),
        "max_red_s": (30.0, 600.0),
        "clear_junction_s": (0.0, 20.0),
    }
    UNSEARCHED: ClassVar[tuple[str, ...]] = ("clear_junction_s",)


@dataclass(frozen=True)
class ActuatedParams(_Params):
    """SUMO's gap-based actuation, tuned: the gap that ends a green, and each green's range.

    Each green's range is the program's own (or SUMO's 5–50 s) scaled by ``min_scale`` and
    ``max_scale``, never below the safety rules' 5 s. Of a running program SUMO lets one
    change ``max-gap`` but not its detector placement or passing time, which are fixed when
    the program is built, so those stay SUMO's. The defaults are SUMO's own: the
    ``actuated`` reference.
    """

    max_gap_s: float = 3.0
    min_scale: float = 1.0
    max_scale: float = 1.0

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "max_gap_s": (0.5, 8.0),
        "min_scale": (0.5, 3.0),
        "max_scale": (0.3, 3.0),
    }


@dataclass
class _Served:
    """What the policy tracks per signal beyond max-pressure's state machine."""

    signal: _Signal
    incoming: list[dict[str, float]]  # per green: its incoming lanes and their weights
    outgoing: list[dict[str, float]]  # per green: its outgoing lanes and their weights
    last_served: list[float]  # per green: when it last ended (or the start)
    via: list[list[str]]  # per signal index: the junction's internal lanes its links cross
    green_since: float = 0.0  # when the current green began
    clearing_until: float | None = None  # the latest start of the next green while the junction clears


class PressurePolicy(Controller):
    """The tunable pressure policy run with explicit parameters (``params``)."""

    name = "pressure-policy"

    def __init__(self, params: Mapping[str, Any] | PressureParams | None = None) -> None:
        if isinstance(params, PressureParams):
            self.params = params
        else:
            self.params = PressureParams.from_dict(params or {})
        self.signals: list[_Served] = []

    def start(self, sim: Any) -> None:
        now = sim.simulation.getTime()
        for tls_id in sim.trafficlight.getIDList():
            signal = _program_signal(sim, tls_id, self.params.min_green_s)
            if signal is None:
                continue
            incoming = [self._lane_weights(signal, state, 0) for state in signal.greens]
            outgoing = [self._lane_weights(signal, state, 1) for state in signal.greens]
            sim.trafficlight.setRedYellowGreenState(tls_id, signal.greens[0])
            signal.until = now + signal.min_green_s
            via = [[v for _, _, v in links if v] for links in sim.trafficlight.getControlledLinks(tls_id)]
            self.signals.append(_Served(signal, incoming, outgoing, [now] * len(signal.greens), via))

    def _lane_weights(self, signal: _Signal, state: str, end: int) -> dict[str, float]:
        """Each lane at ``end`` (0 incoming, 1 outgoing) of the green's links, weighted by ``link_weight``."""
        links = Counter(
            pair[end] for i, colour in enumerate(state) if colour in GREEN for pair in signal.links[i]
        )
        return {lane: 1 + self.params.link_weight * (count - 1) for lane, count in links.items()}

    def step(self, sim: Any, time: float) -> None:
        params = self.params
        halting: dict[str, int] = {}
        queue: dict[str, float] = {}
        moving_count: dict[str, int] = {}

        def halted(lane: str) -> int:
            if lane not in halting:
                halting[lane] = sim.lane.getLastStepHaltingNumber(lane)
            return halting[lane]

        def moving(lane: str) -> int:
            if lane not in moving_count:
                moving_count[lane] = sim.lane.getLastStepVehicleNumber(lane) - halted(lane)
            return moving_count[lane]

        def queued(lane: str) -> float:
            if lane not in queue:
                queue[lane] = halted(lane) + (
                    params.moving_weight * moving(lane) if params.moving_weight else 0
                )
            return queue[lane]

        for served in self.signals:
            signal = served.signal
            if time < signal.until:
                continue
            if signal.stage == "green":
                target = self._choose(served, time, queued, halted, moving)
                if target == signal.current:
                    signal.until = time + params.decision_s
                    continue
                served.last_served[signal.current] = time
                signal.target = target
                signal.stage = "yellow"
                current = signal.greens[signal.current]
                sim.trafficlight.setRedYellowGreenState(
                    signal.tls_id, _clearance(current, signal.greens[target], "y")
                )
                signal.until = time + signal.yellow_s
            elif signal.stage == "yellow" and signal.all_red_s > 0:
                signal.stage = "red"
                current, target_state = signal.greens[signal.current], signal.greens[signal.target]
                sim.trafficlight.setRedYellowGreenState(signal.tls_id, _clearance(current, target_state, "r"))
                signal.until = time + signal.all_red_s
            else:
                if params.clear_junction_s and self._clearing(served, sim, time):
                    continue
                signal.stage = "green"
                signal.current = signal.target
                served.green_since = time
                sim.trafficlight.setRedYellowGreenState(signal.tls_id, signal.greens[signal.current])
                signal.until = time + signal.min_green_s

    def _clearing(self, served: _Served, sim: Any, time: float) -> bool:
        """Hold the clearance a second more while a vehicle of the ended greens is in the junction."""
        signal = served.signal
        if served.clearing_until is None:
            served.clearing_until = time + self.params.clear_junction_s
        current, target = signal.greens[signal.current], signal.greens[signal.target]
        ending = [
            i
            for i, (now, then) in enumerate(zip(current, target, strict=True))
            if now in GREEN and then not in GREEN
        ]
        if time < served.clearing_until and any(
            sim.lane.getLastStepVehicleNumber(lane) for i in ending for lane in served.via[i]
        ):
            if signal.stage != "red":
                signal.stage = "red"
                sim.trafficlight.setRedYellowGreenState(signal.tls_id, _clearance(current, target, "r"))
            signal.until = time + 1
            return True
        served.clearing_until = None
        return False

    def _choose(self, served: _Served, time: float, queued: Any, halted: Any, moving: Any) -> int:
        """The green to serve next: a starved one first, else the highest pressure beyond the margin."""
        params = self.params
        current = served.signal.current
        held_out = time - served.green_since >= params.max_green_s
        starved = [
            g
            for g in range(len(served.incoming))
            if g != current
            and (held_out or time - served.last_served[g] >= params.max_red_s)
            and any(halted(lane) for lane in served.incoming[g])
        ]
        if starved:
            return min(starved, key=lambda g: served.last_served[g])
        pressures = [
            sum(weight * queued(lane) for lane, weight in incoming.items())
            - params.out_weight * sum(weight * queued(lane) for lane, weight in outgoing.items())
            for incoming, outgoing in zip(served.incoming, served.outgoing, strict=True)
        ]
        if params.hold_weight:
            pressures[current] += params.hold_weight * sum(moving(lane) for lane in served.incoming[current])
        best = max(range(len(pressures)), key=pressures.__getitem__)
        if pressures[best] > pressures[current] + params.switch_margin:
            return best
        return current


register(PressurePolicy)


class ActuatedPolicy(Actuated):
    """SUMO's actuation run with explicit parameters (``params``, see :class:`ActuatedParams`)."""

    name = "actuated-policy"
    program_id = "citybrain-actuated-policy"

    def __init__(self, params: Mapping[str, Any] | ActuatedParams | None = None) -> None:
        super().__init__()
        self.params = params if isinstance(params, ActuatedParams) else ActuatedParams.from_dict(params or {})

    def phases(self, phases: list[Any], make_phase: Any) -> list[Any]:
        params = self.params
        result = []
        for phase in super().phases(phases, make_phase):
            if phase.minDur == phase.maxDur:  # a clearance: never actuated
                result.append(phase)
                continue
            low = max(DEFAULT_MIN_GREEN_S, phase.minDur * params.min_scale)
            high = max(low, phase.maxDur * params.max_scale)
            duration = min(max(phase.duration, low), high)
            result.append(make_phase(duration, phase.state, low, high, tuple(phase.next), phase.name))
        return result

    def tune(self, sim: Any, tls_id: str) -> None:
        sim.trafficlight.setParameter(tls_id, "max-gap", f"{self.params.max_gap_s:.2f}")


register(ActuatedPolicy)

#: The adaptive method's policy families: each one's parameters and the controller running them.
FAMILIES: dict[str, tuple[type[_Params], type[Controller]]] = {
    "pressure": (PressureParams, PressurePolicy),
    "actuated": (ActuatedParams, ActuatedPolicy),
}
