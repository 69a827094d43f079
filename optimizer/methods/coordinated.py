"""The coordinated method's search space: one common cycle, each signal's splits and offset.

A candidate is a point of :class:`PlanSpace`; :meth:`PlanSpace.plan` turns it into a fixed-time
:class:`~optimizer.plans.model.NetworkPlan` that is safe by construction, so the search never wastes a
simulation on a plan that could not be proposed:

- ``cycle_s``: the cycle every signal shares, within the rules' 40–180 s — coordination needs
  a common cycle; a signal whose own clearances and minimum greens need more runs at that
  minimum instead;
- ``<tls>:green<i>``: the weight of the signal's i-th green phase; the green time left after
  the clearances and every green's minimum is shared out in proportion to the weights (a
  green of weight 0 runs its minimum);
- ``<tls>:offset``: where in the common cycle the signal's program starts, as a fraction.

The phase sequence, the yellows and all-reds are the base plan's (our Webster plan, which keeps
each signal's own program structure), so the clearance rules hold whatever the point; the
greens never go below the rules' minimum (the pedestrian minimum where the signal has crossings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from optimizer.methods.webster import is_green_phase
from optimizer.plans.model import NetworkPlan, Phase, SignalPlan
from optimizer.plans.safety import Rule, SafetyRules, SignalNetwork
from optimizer.search.cmaes import Point, Space

METHOD = "coordinated"


@dataclass(frozen=True)
class PlanSpace:
    """The coordinated search space around ``base`` (one fixed-time program per signal)."""

    base: NetworkPlan
    network: Mapping[str, SignalNetwork]
    rules: SafetyRules

    def _min_green(self, tls_id: str) -> float:
        signal = self.network.get(tls_id)
        minimum = self.rules.min_green_s
        if (
            signal is not None
            and signal.crossing_links
            and self.rules.enforces(Rule.PEDESTRIAN_MINIMUM, tls_id)
        ):
            minimum = max(minimum, self.rules.pedestrian_min_s)
        return minimum

    def _greens(self, signal: SignalPlan) -> list[int]:
        return [i for i, phase in enumerate(signal.phases) if is_green_phase(phase.state)]

    def space(self) -> Space:
        bounds: dict[str, tuple[float, float]] = {"cycle_s": (self.rules.cycle_min_s, self.rules.cycle_max_s)}
        for signal in self.base.signals:
            for k in range(len(self._greens(signal))):
                bounds[f"{signal.tls_id}:green{k}"] = (0.0, 1.0)
            bounds[f"{signal.tls_id}:offset"] = (0.0, 1.0)
        return Space(bounds)

    def point(self, plan: NetworkPlan) -> Point:
        """A plan with the base's phase sequence as a point: its longest cycle for all, its
        greens' shares of the time above their minimum, its offsets."""
        cycle = max(signal.cycle_s for signal in plan.signals)
        cycle = min(max(cycle, self.rules.cycle_min_s), self.rules.cycle_max_s)
        point: Point = {"cycle_s": cycle}
        for signal in plan.signals:
            greens = [signal.phases[i].duration_s for i in self._greens(signal)]
            spare = [max(g - self._min_green(signal.tls_id), 0.0) for g in greens]
            total = sum(spare) or 1.0
            for k, extra in enumerate(spare):
                point[f"{signal.tls_id}:green{k}"] = extra / total
            point[f"{signal.tls_id}:offset"] = (signal.offset_s % signal.cycle_s) / signal.cycle_s
        return point

    def plan(self, point: Mapping[str, float]) -> NetworkPlan:
        """The fixed-time plan at ``point`` (durations to 0.1 s, the cycle exactly their sum)."""
        signals = []
        for signal in self.base.signals:
            greens = self._greens(signal)
            minimum = self._min_green(signal.tls_id)
            fixed = sum(p.duration_s for i, p in enumerate(signal.phases) if i not in greens)
            cycle = max(round(point["cycle_s"], 1), round(fixed + minimum * len(greens) + 0.05, 1))
            spare = cycle - fixed - minimum * len(greens)
            weights = [point[f"{signal.tls_id}:green{k}"] for k in range(len(greens))]
            total_weight = sum(weights)
            if total_weight > 0:
                fractions = [w / total_weight for w in weights]
            else:  # every weight 0: share equally
                fractions = [1 / len(weights)] * len(weights)
            shares = [round(minimum + spare * f, 1) for f in fractions]
            longest = max(range(len(shares)), key=shares.__getitem__)
            shares[longest] = round(shares[longest] + cycle - fixed - sum(shares), 1)  # rounding slack
            durations = dict(zip(greens, shares, strict=True))
            phases = tuple(
                Phase(state=p.state, duration_s=durations[i], name=p.name) if i in durations else p
                for i, p in enumerate(signal.phases)
            )
            total = round(sum(p.duration_s for p in phases), 1)
            offset = round(point[f"{signal.tls_id}:offset"] * total, 1) % total
            signals.append(replace(signal, phases=phases, offset_s=offset, cycle_s=total))
        return NetworkPlan(signals=tuple(signals), method=METHOD)
