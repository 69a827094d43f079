"""The coordinated search space: every point is a safe fixed-time plan with one common cycle."""

from __future__ import annotations

import random

import pytest

from optimizer.methods.coordinated import PlanSpace
from optimizer.methods.webster import inherited_waivers, is_green_phase
from optimizer.plans.model import NetworkPlan
from optimizer.plans.safety import check, read_network
from tests.unit.optimizer.conftest import resco_net


def own_space(name: str) -> PlanSpace:
    network = read_network(resco_net(name))
    base = NetworkPlan(signals=tuple(s.program for s in network.values() if s.program), method="fixed")
    return PlanSpace(base, network, inherited_waivers(network))


def test_a_single_signal_plan_is_a_point_of_the_space_and_comes_back_unchanged():
    space = own_space("cologne1")
    (own,) = space.base.signals
    (back,) = space.plan(space.point(space.base)).signals
    assert [p.duration_s for p in back.phases] == pytest.approx([p.duration_s for p in own.phases], abs=0.05)
    assert [p.state for p in back.phases] == [p.state for p in own.phases]
    assert back.offset_s == pytest.approx(own.offset_s % own.cycle_s, abs=0.05)


@pytest.mark.parametrize("name", ["cologne8", "ingolstadt7", "grid4x4"])
def test_every_point_is_a_safe_plan_sharing_one_cycle(name):
    space = own_space(name)
    box = space.space()
    assert len(box.names) == 1 + sum(
        1 + sum(is_green_phase(p.state) for p in s.phases) for s in space.base.signals
    )
    rng = random.Random(7)
    for _ in range(20):
        point = box.from_unit([rng.random() for _ in box.names])
        plan = space.plan(point)
        assert check(plan, space.network, space.rules) == []
        for signal in plan.signals:
            assert 0 <= signal.offset_s < signal.cycle_s
            assert signal.cycle_s == pytest.approx(sum(p.duration_s for p in signal.phases))
            # a signal runs the common cycle unless its clearances and minimum greens need more
            assert signal.cycle_s >= round(point["cycle_s"], 1) - 0.05


def test_weights_share_the_green_time_above_the_minimums():
    space = own_space("cologne1")
    (signal,) = space.base.signals
    greens = [i for i, p in enumerate(signal.phases) if is_green_phase(p.state)]
    point = {"cycle_s": 90.0, f"{signal.tls_id}:offset": 0.5}
    point |= {f"{signal.tls_id}:green{k}": 0.0 for k in range(len(greens))}
    point[f"{signal.tls_id}:green0"] = 1.0
    (plan,) = space.plan(point).signals
    durations = [plan.phases[i].duration_s for i in greens]
    assert durations[1:] == [space.rules.min_green_s] * (len(greens) - 1)  # weight 0: the minimum
    assert plan.cycle_s == pytest.approx(90.0) and plan.offset_s == pytest.approx(45.0)
