"""The optimizer's methods as signal controllers, so each is usable by name everywhere.

``sim.controllers`` loads this module through the ``citybrain.controllers`` entry point
(declared in ``setup.cfg``), so the registry knows these names in every process — the
runner's seed processes included — while the SUMO layer never imports the optimizer.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from core.settings import Settings
from optimizer.demand.own_routes import movement_flows
from optimizer.methods.adaptive import FAMILIES
from optimizer.methods.green_wave import green_wave_plan
from optimizer.methods.sumo_baselines import sumo_coordinator_plan, sumo_webster_plan
from optimizer.methods.webster import inherited_waivers, webster_plan
from optimizer.plans.model import NetworkPlan
from optimizer.plans.safety import enforce, scenario_signals
from optimizer.plans.sumo_programs import apply, parse_tls, read_tls, render_tls
from optimizer.search.optimize import PLAN_CONTROLLER, stored_or_optimized
from sim.controllers import Controller, ControllerError, register, running_scenario
from sim.scenarios import Scenario


class _PlanFromDemand(Controller):
    """A fixed-time plan made at start from the running scenario's own demand, then run by SUMO alone.

    Whatever the plan needs from the demand (movement flows, or a SUMO tool's run) is computed
    once per scenario window and cached under ``cache_dir`` — by default the settings'
    ``sim_dir/demand`` — so the other seeds and later runs reuse it. Our own methods' plans are
    checked against the safety rules (waiving only what the network's own program already
    breaks) before they are put in force; SUMO's tools are baselines as SUMO ships them, so
    they are applied as they come.
    """

    acts_each_step = False
    #: Whether the plan must pass our safety rules before it is applied.
    checked: ClassVar[bool] = True

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self.plan: NetworkPlan | None = None

    @abstractmethod
    def make_plan(self, scenario: Scenario, cache_dir: Path) -> NetworkPlan:
        """The plan for the scenario's window."""

    def start(self, sim: Any) -> None:
        scenario = running_scenario(sim)
        plan = self.make_plan(scenario, self.cache_dir or Settings().sim_dir / "demand")
        if self.checked:
            network = scenario_signals(scenario)
            enforce(plan, network, inherited_waivers(network))
        apply(sim, plan)
        self.plan = plan


@register
class WebsterController(_PlanFromDemand):
    """Webster's cycle and splits for every signal's own program, from the movement flows of
    the scenario's window (:func:`optimizer.methods.webster.webster_plan`)."""

    name = "webster"

    def make_plan(self, scenario: Scenario, cache_dir: Path) -> NetworkPlan:
        return webster_plan(scenario, movement_flows(scenario, cache_dir))


@register
class GreenWaveController(_PlanFromDemand):
    """A green wave: one common cycle (the longest Webster cycle), Webster splits at it, and
    offsets that progress along the heaviest arterials
    (:func:`optimizer.methods.green_wave.green_wave_plan`)."""

    name = "green-wave"

    def __init__(self, cache_dir: Path | None = None, progression_speed_mps: float | None = None) -> None:
        super().__init__(cache_dir)
        self.progression_speed_mps = progression_speed_mps

    def make_plan(self, scenario: Scenario, cache_dir: Path) -> NetworkPlan:
        flows = movement_flows(scenario, cache_dir)
        return green_wave_plan(scenario, flows, progression_speed_mps=self.progression_speed_mps)


class _SumoToolController(_PlanFromDemand):
    """A plan from one of SUMO's own timing tools (:mod:`optimizer.methods.sumo_baselines`), as it comes."""

    checked = False


@register
class SumoWebsterController(_SumoToolController):
    """SUMO's ``tlsCycleAdaptation.py``: Webster's cycle and splits for each signal's own program."""

    name = "sumo-webster"

    def make_plan(self, scenario: Scenario, cache_dir: Path) -> NetworkPlan:
        return sumo_webster_plan(scenario, cache_dir)


@register
class SumoCoordinatorController(_SumoToolController):
    """SUMO's ``tlsCoordinator.py``: the network's own programs with green-wave offsets."""

    name = "sumo-coordinator"

    def make_plan(self, scenario: Scenario, cache_dir: Path) -> NetworkPlan:
        return sumo_coordinator_plan(scenario, cache_dir)


@register
class SignalPlanController(Controller):
    """A fixed-time plan, as SUMO tlLogic text (``tls_xml``) or file (``plan_file``), put in force at start.

    The search simulates its candidate plans through it; a researcher can run any plan file.
    """

    name = PLAN_CONTROLLER
    acts_each_step = False

    def __init__(self, tls_xml: str | None = None, plan_file: str | Path | None = None) -> None:
        if (tls_xml is None) == (plan_file is None):
            raise ControllerError(f"{self.name} needs exactly one of tls_xml and plan_file")
        self.signals = parse_tls(tls_xml, "tls_xml") if tls_xml is not None else read_tls(Path(plan_file))

    def start(self, sim: Any) -> None:
        apply(sim, self.signals)


@register
class Coordinated(SignalPlanController):
    """The optimizer's best fixed-time coordinated plan for the scenario (``citybrain optimize``).

    :meth:`prepare` reads the stored plan, searching for one first with the settings' budget
    when none is stored.
    """

    name = "coordinated"

    @classmethod
    def prepare(cls, scenario: Scenario) -> dict[str, Any]:
        plan = stored_or_optimized(scenario, cls.name).plan
        return {"tls_xml": render_tls(plan)}


@register
class Adaptive(Controller):
    """The optimizer's best adaptive policy for the scenario: a policy family, tuned.

    :meth:`prepare` reads the family and parameters stored for this scenario (``citybrain
    optimize --method adaptive``), tuning them first with the settings' budget when none are
    stored; the run is then that family's controller with those parameters.
    """

    name = "adaptive"

    def __init__(self, family: str, params: dict[str, float]) -> None:
        if family not in FAMILIES:
            raise ControllerError(f"{self.name}: family must be one of {', '.join(FAMILIES)}, got {family!r}")
        self.policy = FAMILIES[family][1](params)
        self.acts_each_step = self.policy.acts_each_step

    @classmethod
    def prepare(cls, scenario: Scenario) -> dict[str, Any]:
        found = stored_or_optimized(scenario, cls.name)
        return {"family": found.family, "params": found.policy}

    def start(self, sim: Any) -> None:
        self.policy.start(sim)

    def step(self, sim: Any, time: float) -> None:
        self.policy.step(sim, time)
