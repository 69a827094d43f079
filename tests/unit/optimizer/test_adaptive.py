"""The adaptive method's policy families: parameter ranges, the checks a hand-set value meets,
the tuned actuation's phases, the junction-clearing hold, and the stored result naming its
family."""

from __future__ import annotations

import json
from collections import namedtuple
from types import SimpleNamespace

import pytest

from core.settings import Settings
from optimizer.methods.adaptive import (
    FAMILIES,
    ActuatedParams,
    ActuatedPolicy,
    PolicyError,
    PressureParams,
    PressurePolicy,
    _Served,
)
from optimizer.methods.as_controllers import Adaptive
from optimizer.search.optimize import POLICY_STARTS, STORE_FORMAT, Optimized, load, store, stored_path
from sim.controllers import ControllerError, _Signal
from sim.scenarios import resco

#: libsumo's Phase, positionally: what ``make_phase`` builds
Phase = namedtuple("Phase", "duration state minDur maxDur next name")


@pytest.mark.parametrize("params_class", [PressureParams, ActuatedParams])
def test_every_parameter_has_a_range_and_defaults_lie_within_them(params_class):
    assert set(params_class.BOUNDS) == set(params_class.names())
    params_class()  # the defaults pass their own checks


def test_every_family_starts_somewhere_and_pressure_starts_keep_the_minimum_green():
    assert set(POLICY_STARTS) == set(FAMILIES)
    assert all(
        isinstance(start, FAMILIES[family][0]) for family, starts in POLICY_STARTS.items() for start in starts
    )
    for start in POLICY_STARTS["pressure"]:
        assert start.min_green_s >= 5  # the safety rules' minimum green holds by construction


def test_the_junction_clearing_hold_is_on_by_default_and_left_out_of_the_search_box():
    assert PressureParams().clear_junction_s == 10
    assert "clear_junction_s" not in PressureParams.search_bounds()
    assert set(PressureParams.search_bounds()) == set(PressureParams.names()) - {"clear_junction_s"}
    assert ActuatedParams.search_bounds() == ActuatedParams.BOUNDS
    # a searched point leaves the hold at its default, and a hand-set value can still switch it off
    assert PressureParams.from_dict({"decision_s": 4}).clear_junction_s == 10
    assert PressureParams(clear_junction_s=0).clear_junction_s == 0


def test_a_value_out_of_range_or_an_unknown_name_is_refused_by_name():
    with pytest.raises(PolicyError, match=r"decision_s must lie within \[1, 20\], got 0"):
        PressureParams(decision_s=0)
    with pytest.raises(PolicyError, match=r"min_green_s must lie within \[5, 25\]"):
        PressureParams.from_dict({"min_green_s": 3})
    with pytest.raises(PolicyError, match=r"unknown parameters \['speed'\]"):
        PressureParams.from_dict({"speed": 1})
    with pytest.raises(PolicyError, match=r"max_gap_s must lie within \[0.5, 8\], got 9"):
        ActuatedParams(max_gap_s=9)


def test_the_policy_takes_its_parameters_as_a_mapping_or_as_params():
    assert PressurePolicy({"decision_s": 4}).params.decision_s == 4
    params = PressureParams(out_weight=0)
    assert PressurePolicy(params).params is params
    assert PressureParams.from_dict(params.to_dict()) == params
    assert ActuatedPolicy({"max_gap_s": 2}).params == ActuatedParams(max_gap_s=2)


def test_tuned_actuation_scales_green_ranges_never_below_five_seconds_and_keeps_clearances():
    static = [
        Phase(31, "GGrr", 10, 40, (), "main"),
        Phase(3, "yyrr", 3, 3, (), ""),
        Phase(2, "rrrr", 2, 2, (), ""),
        Phase(12, "rrGG", 6, 20, (), "side"),
    ]
    made = ActuatedPolicy({"min_scale": 0.5, "max_scale": 0.5}).phases(static, Phase)
    assert made[0] == Phase(20, "GGrr", 5.0, 20.0, (), "main")  # the planned 31 s clipped into the new range
    assert made[1] == static[1] and made[2] == static[2]  # clearances untouched
    assert made[3] == Phase(10.0, "rrGG", 5.0, 10.0, (), "side")
    longer = ActuatedPolicy({"min_scale": 2, "max_scale": 0.3}).phases(static, Phase)
    assert longer[0][2:4] == (20, 20)  # a range never inverted: the maximum at least the minimum
    assert ActuatedPolicy().phases(static, Phase) == static  # the defaults are SUMO's actuation


def test_the_adaptive_controller_runs_the_stored_family_and_refuses_an_unknown_one():
    actuated = Adaptive("actuated", {"max_gap_s": 2})
    assert isinstance(actuated.policy, ActuatedPolicy) and not actuated.acts_each_step
    pressure = Adaptive("pressure", {"decision_s": 5})
    assert isinstance(pressure.policy, PressurePolicy) and pressure.acts_each_step
    with pytest.raises(ControllerError, match="family must be one of pressure, actuated, got 'greedy'"):
        Adaptive("greedy", {})


def test_a_stored_result_keeps_its_family_and_an_older_format_is_searched_again(tmp_path):
    settings = Settings(var_dir=tmp_path)
    scenario = resco("cologne1")
    found = Optimized(
        "resco/cologne1", "adaptive", [1001, 1002, 1003], 40.0, 30.0, 12, 2, 61.0,
        history=[(30.0, 35.0), (61.0, 30.0)], family="actuated", policy=ActuatedParams(max_gap_s=2).to_dict(),
    )  # fmt: skip
    path = store(settings, scenario, found)
    assert load(settings, scenario, "adaptive") == found
    record = json.loads(path.read_text())
    assert record["format"] == STORE_FORMAT and record["family"] == "actuated"
    stored_path(settings, scenario, "adaptive").write_text(json.dumps(record | {"format": STORE_FORMAT - 1}))
    assert load(settings, scenario, "adaptive") is None


class _Junction:
    """The two libsumo calls the clearing hold makes: vehicles on a lane, and setting a state."""

    def __init__(self, occupied: set[str]) -> None:
        self.occupied = occupied
        self.states: list[str] = []
        self.lane = SimpleNamespace(getLastStepVehicleNumber=lambda lane: int(lane in self.occupied))
        self.trafficlight = SimpleNamespace(
            setRedYellowGreenState=lambda _tls, state: self.states.append(state)
        )


def _served_after_yellow() -> _Served:
    # index 0 (north→south) ends, index 1 (east→west) starts; each crosses its own internal lane
    signal = _Signal("J", ["Gr", "rG"], [[("n", "s")], [("e", "w")]], 3.0, 0.0, 5.0, stage="yellow", target=1)
    return _Served(signal, [{"n": 1}, {"e": 1}], [{"s": 1}, {"w": 1}], [0.0, 0.0], [[":J_0"], [":J_1"]])


def test_a_new_green_waits_while_a_vehicle_of_the_ended_green_is_inside_the_junction_up_to_the_limit():
    policy = PressurePolicy({"clear_junction_s": 4})
    served, junction = _served_after_yellow(), _Junction({":J_0"})
    assert policy._clearing(served, junction, 100.0)  # still inside: hold red for a second
    assert junction.states == ["rr"] and served.signal.stage == "red" and served.signal.until == 101.0
    assert policy._clearing(served, junction, 103.0)
    assert not policy._clearing(served, junction, 104.0)  # the limit: the green starts regardless
    assert served.clearing_until is None  # reset for the next switch
    # a vehicle on the starting green's own internal lane is no reason to wait
    other = _served_after_yellow()
    assert not policy._clearing(other, _Junction({":J_1"}), 100.0)
