"""Signal controllers behind one small interface, chosen by name from a registry.

A controller gets the running simulation (the ``libsumo`` module or a TraCI connection —
the same API) at the start and, if it asks for it, once per simulated second. One that needs
work done before a scenario's runs (an optimization, a SUMO tool run) does it in
:meth:`Controller.prepare`, once, in the process that starts the runs. A researcher adds one
by subclassing :class:`Controller` and decorating it with :func:`register`.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from core.errors import CitybrainError
from sim.plugins import Registry

if TYPE_CHECKING:
    from sim.scenarios import Scenario

GREEN = frozenset("Gg")
YELLOW = frozenset("yY")

#: The entry-point group through which installed packages add controllers — ours
#: (``optimizer.methods.as_controllers``) and any a researcher's package declares the same way.
ENTRY_POINT_GROUP = "citybrain.controllers"


class UnknownController(CitybrainError, KeyError):
    def __str__(self) -> str:
        return f"no controller {self.args[0]!r}; known: {', '.join(sorted(registry()))}"


CONTROLLERS: Registry[type[Controller]] = Registry(ENTRY_POINT_GROUP, UnknownController)


class Controller(ABC):
    """Controls some or all traffic lights of a running simulation."""

    name: ClassVar[str]
    #: False when the controller never acts after start, so the runner can run to the end in one call.
    acts_each_step: ClassVar[bool] = True

    @classmethod
    def prepare(cls, scenario: Scenario) -> dict[str, Any]:
        """Work to do once before a scenario's runs; returns options for every run's constructor.

        The runner calls it in the process that starts the runs, before the seed processes, so
        an expensive step (a search that itself runs simulations in other processes) happens
        once and never inside a running simulation. Results should be cached: it is called
        again for every batch of runs. Most controllers need nothing.
        """
        return {}

    @abstractmethod
    def start(self, sim: Any) -> None:
        """Called once, after SUMO started and before the first step."""

    def step(self, sim: Any, time: float) -> None:  # noqa: B027 - optional for passive controllers
        """Called before each simulation step of one second."""

    def measurements(self) -> dict[str, Any]:
        """What the controller measured during the run, kept in the run's result under
        ``"controller"`` (JSON-able); most controllers measure nothing of their own."""
        return {}


def register(cls: type[Controller]) -> type[Controller]:
    """Class decorator adding a controller to the registry under its ``name``."""
    CONTROLLERS[cls.name] = cls
    return cls


def registry() -> dict[str, type[Controller]]:
    """Every controller by name: ours, the installed packages' and the configured modules'."""
    return CONTROLLERS.loaded()


def controller_class(name: str) -> type[Controller]:
    return CONTROLLERS.named(name)


def create(name: str, **options: Any) -> Controller:
    return controller_class(name)(**options)


@register
class FixedTime(Controller):
    """The scenario's own signal programs, untouched."""

    name = "fixed"
    acts_each_step = False

    def start(self, sim: Any) -> None:
        pass


@dataclass
class _Signal:
    """One traffic light as max-pressure sees it: its green states and their links."""

    tls_id: str
    greens: list[str]
    links: list[list[tuple[str, str]]]  # per signal index: (incoming lane, outgoing lane) pairs
    yellow_s: float
    all_red_s: float
    min_green_s: float
    current: int = 0
    stage: str = "green"  # green → yellow → red → green
    target: int = 0
    until: float = 0.0
    lanes: set[str] = field(default_factory=set)


def _clearance(frm: str, to: str, colour: str) -> str:
    """``frm`` with each link that is green now but not in ``to`` set to ``colour``."""
    return "".join(colour if a in GREEN and b not in GREEN else a for a, b in zip(frm, to, strict=True))


def _program_signal(sim: Any, tls_id: str, default_min_green_s: float) -> _Signal | None:
    program = sim.trafficlight.getProgram(tls_id)
    logics = sim.trafficlight.getAllProgramLogics(tls_id)
    logic = next((lg for lg in logics if lg.programID == program), logics[0])
    greens: list[str] = []
    yellow_s, all_red_s, min_green = 0.0, 0.0, []
    for phase in logic.phases:
        state = phase.state
        if set(state) & YELLOW:
            yellow_s = max(yellow_s, phase.duration)
        elif set(state) & GREEN:
            if state not in greens:
                greens.append(state)
                min_green.append(phase.minDur if logic.type != 0 and 0 < phase.minDur < phase.duration else 0)
        else:
            all_red_s = max(all_red_s, phase.duration) if yellow_s else all_red_s
    if len(greens) < 2:
        return None  # nothing to choose between
    links = [
        list(dict.fromkeys((c[0], c[1]) for c in group))
        for group in sim.trafficlight.getControlledLinks(tls_id)
    ]
    lanes = {lane for group in links for pair in group for lane in pair}
    return _Signal(
        tls_id,
        greens,
        links,
        yellow_s=yellow_s or 3.0,
        all_red_s=all_red_s,
        min_green_s=max([default_min_green_s, *min_green]),
        lanes=lanes,
    )


@register
class MaxPressure(Controller):
    """Varaiya's max-pressure: serve the green whose links have the largest queue difference.

    Pressure of a green state = Σ over its green links of (vehicles on the incoming lane −
    vehicles on the outgoing lane). Greens, yellow and all-red times come from the scenario's
    own program, whatever its shape (several greens, all-red phases, actuated minima), so a
    switch always passes through the program's yellow and all-red clearance, and a green is
    held at least its minimum before the next decision.
    """

    name = "max-pressure"

    def __init__(self, min_green_s: float = 5.0) -> None:
        self.min_green_s = min_green_s
        self.signals: list[_Signal] = []

    def start(self, sim: Any) -> None:
        now = sim.simulation.getTime()
        for tls_id in sim.trafficlight.getIDList():
            signal = _program_signal(sim, tls_id, self.min_green_s)
            if signal is None:
                continue
            sim.trafficlight.setRedYellowGreenState(tls_id, signal.greens[0])
            signal.until = now + signal.min_green_s
            self.signals.append(signal)

    def _pressure(self, signal: _Signal, state: str, count: Callable[[str], int]) -> int:
        return sum(
            count(incoming) - count(outgoing)
            for index, colour in enumerate(state)
            if colour in GREEN
            for incoming, outgoing in signal.links[index]
        )

    def step(self, sim: Any, time: float) -> None:
        cache: dict[str, int] = {}

        def count(lane: str) -> int:
            if lane not in cache:
                cache[lane] = sim.lane.getLastStepVehicleNumber(lane)
            return cache[lane]

        for signal in self.signals:
            if time < signal.until:
                continue
            current = signal.greens[signal.current]
            target = signal.greens[signal.target]
            if signal.stage == "green":
                best = max(
                    range(len(signal.greens)), key=lambda i: self._pressure(signal, signal.greens[i], count)
                )
                if best == signal.current:
                    signal.until = time + 1
                    continue
                signal.target = best
                signal.stage = "yellow"
                sim.trafficlight.setRedYellowGreenState(
                    signal.tls_id, _clearance(current, signal.greens[best], "y")
                )
                signal.until = time + signal.yellow_s
            elif signal.stage == "yellow" and signal.all_red_s > 0:
                signal.stage = "red"
                sim.trafficlight.setRedYellowGreenState(signal.tls_id, _clearance(current, target, "r"))
                signal.until = time + signal.all_red_s
            else:
                signal.stage = "green"
                signal.current = signal.target
                sim.trafficlight.setRedYellowGreenState(signal.tls_id, target)
                signal.until = time + signal.min_green_s


#: SUMO's own defaults for actuated greens when a program names no range (netconvert's
#: ``--tls.min-dur`` and ``--tls.max-dur``).
ACTUATED_MIN_DUR_S = 5.0
ACTUATED_MAX_DUR_S = 50.0
_STATIC = 0  # libsumo's TrafficLightType: STATIC 0, ACTUATED 3
_ACTUATED = 3


def actuated_phases(phases: list[Any], make_phase: Callable[..., Any]) -> list[Any]:
    """The phases of a static program, made gap-actuated the way SUMO builds actuated programs.

    A green phase (some green, no yellow) gets the range the program states where it states
    one (``minDur < maxDur``, as the Cologne and Ingolstadt programs do), else SUMO's 5–50 s;
    the range is widened to contain the planned duration so no green is forced shorter or
    longer than the plan at its first cycle. Yellow, all-red and mixed clearance phases stay
    fixed (``minDur = maxDur = duration``): actuation must never shorten a clearance.
    """
    result = []
    for phase in phases:
        colours = set(phase.state)
        if colours & GREEN and not colours & YELLOW:
            ranged = 0 < phase.minDur < phase.maxDur
            min_dur = phase.minDur if ranged else ACTUATED_MIN_DUR_S
            max_dur = phase.maxDur if ranged else ACTUATED_MAX_DUR_S
            low, high = min(min_dur, phase.duration), max(max_dur, phase.duration)
        else:
            low = high = phase.duration
        # positional: libsumo's Phase takes no keywords
        result.append(make_phase(phase.duration, phase.state, low, high, tuple(phase.next), phase.name))
    return result


@register
class Actuated(Controller):
    """SUMO's own gap-based actuation (type ``actuated``) with its default parameters.

    SUMO cannot change the type of a running program, but it accepts a new program through
    ``trafficlight.setProgramLogic``: given type ``actuated`` it builds SUMO's
    ``MSActuatedTrafficLightLogic``, with its induction loops placed ``detector-gap`` (2 s of
    travel) upstream of each stop line, ``max-gap`` 3 s, ``passing-time`` 1.9 s — all SUMO's
    defaults. So at start each static program is copied with the same phases, turned
    actuated by :func:`actuated_phases`, and made active at the phase the static program is
    in, keeping the plan's offset for the first cycle. SUMO then controls alone: this needs no
    extra files and no per-step Python, and works with libsumo and TraCI alike. Programs that
    are already adaptive (actuated, delay-based, NEMA) are left as they are.
    """

    name = "actuated"
    acts_each_step = False
    program_id = "citybrain-actuated"

    def __init__(self) -> None:
        self.converted: list[str] = []

    def start(self, sim: Any) -> None:
        for tls_id in sim.trafficlight.getIDList():
            program = sim.trafficlight.getProgram(tls_id)
            logics = sim.trafficlight.getAllProgramLogics(tls_id)
            logic = next((lg for lg in logics if lg.programID == program), None)
            if logic is None or logic.type != _STATIC or not logic.phases:
                continue  # switched off, a rail signal, or already adaptive
            phases = self.phases(list(logic.phases), sim.trafficlight.Phase)
            current = sim.trafficlight.getPhase(tls_id)
            actuated = sim.trafficlight.Logic(self.program_id, _ACTUATED, current, phases)
            sim.trafficlight.setProgramLogic(tls_id, actuated)
            sim.trafficlight.setProgram(tls_id, self.program_id)
            self.tune(sim, tls_id)
            self.converted.append(tls_id)

    def phases(self, phases: list[Any], make_phase: Callable[..., Any]) -> list[Any]:
        """The actuated program's phases; a tuned actuation (the optimizer's) reshapes the ranges."""
        return actuated_phases(phases, make_phase)

    def tune(self, sim: Any, tls_id: str) -> None:
        """Set the running program's parameters; SUMO's defaults need nothing."""


class ControllerError(CitybrainError, RuntimeError):
    """A controller cannot work with the running simulation; the message says why."""


def running_scenario(sim: Any) -> Scenario:
    """The scenario a running simulation was started with: its configuration file and window.

    The runner creates controllers by name only (``create(name, **options)``), so a controller
    that needs the scenario's files asks SUMO for the options it was started with
    (``simulation.getOption``, libsumo and TraCI alike). The window is the one of this run,
    which ``citybrain evaluate --minutes`` may have cut short.
    """
    from sim.scenarios import from_sumocfg

    try:
        config = sim.simulation.getOption("configuration-file")
        begin, end = (float(sim.simulation.getOption(option)) for option in ("begin", "end"))
    except AttributeError:
        raise ControllerError("this SUMO cannot report its options (simulation.getOption)") from None
    if not config:
        raise ControllerError("the simulation was not started from a .sumocfg; its demand cannot be read")
    return dataclasses.replace(from_sumocfg(Path(config)), begin=int(begin), end=int(end))
