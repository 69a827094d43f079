"""The adaptive policy's parameters: ranges, names and the checks a hand-set value meets."""

from __future__ import annotations

import pytest

from optimizer.adaptive import PolicyError, PressureParams, PressurePolicy
from optimizer.optimize import POLICY_STARTS


def test_every_parameter_has_a_range_and_defaults_lie_within_them():
    assert set(PressureParams.BOUNDS) == set(PressureParams.names())
    PressureParams()  # the defaults pass their own checks
    for start in POLICY_STARTS:
        assert start.min_green_s >= 5  # the safety rules' minimum green holds by construction


def test_a_value_out_of_range_or_an_unknown_name_is_refused_by_name():
    with pytest.raises(PolicyError, match=r"decision_s must lie within \[1, 20\], got 0"):
        PressureParams(decision_s=0)
    with pytest.raises(PolicyError, match=r"min_green_s must lie within \[5, 25\]"):
        PressureParams.from_dict({"min_green_s": 3})
    with pytest.raises(PolicyError, match=r"unknown parameters \['speed'\]"):
        PressureParams.from_dict({"speed": 1})


def test_the_policy_takes_its_parameters_as_a_mapping_or_as_params():
    assert PressurePolicy({"decision_s": 4}).params.decision_s == 4
    params = PressureParams(out_weight=0)
    assert PressurePolicy(params).params is params
    assert PressureParams.from_dict(params.to_dict()) == params
