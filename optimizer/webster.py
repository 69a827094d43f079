"""Webster's method: a cycle and green splits from the critical flow ratios of a signal's phases.

For each green phase i the critical flow ratio y_i is the largest flow/saturation ratio among the
lanes it serves; with Y = Σ y_i and L the lost time per cycle (the yellow and all-red intervals
plus a start-up loss per phase), Webster's delay-minimising cycle is C = (1.5 L + 5) / (1 − Y),
and the effective green C − L is shared in proportion to y_i (each displayed green adding back its
start-up loss). The cycle is kept within the
safety limits, and each green at or above the minimum green. (F. V. Webster, *Traffic Signal
Settings*, Road Research Technical Paper 39, 1958.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import CitybrainError

#: Saturation flow of one lane, vehicles per hour of green.
SATURATION_VPH_PER_LANE = 1800.0
#: Start-up lost time per green phase (s).
STARTUP_LOSS_S = 2.0
#: Above this total critical ratio no cycle serves the demand; the longest cycle is used.
MAX_TOTAL_RATIO = 0.9


class WebsterError(CitybrainError, ValueError):
    """Inputs Webster's formula cannot use; the message names which."""


@dataclass(frozen=True)
class WebsterTiming:
    """A cycle and the green time of each green phase, in the order given."""

    cycle_s: float
    greens_s: tuple[float, ...]
    total_ratio: float
    lost_time_s: float
    saturated: bool


def webster(
    critical_ratios: Sequence[float],
    fixed_intervals_s: float,
    *,
    min_green_s: float = 5.0,
    min_cycle_s: float = 40.0,
    max_cycle_s: float = 180.0,
    startup_loss_s: float = STARTUP_LOSS_S,
) -> WebsterTiming:
    """The timing for green phases with ``critical_ratios`` (y_i), given the cycle's yellow and
    all-red seconds (``fixed_intervals_s``), which stay as they are and count as lost time."""
    if not critical_ratios:
        raise WebsterError("Webster needs at least one green phase")
    if any(y < 0 for y in critical_ratios):
        raise WebsterError(f"critical flow ratios must not be negative, got {list(critical_ratios)}")
    if fixed_intervals_s < 0:
        raise WebsterError(f"yellow and all-red time must not be negative, got {fixed_intervals_s}")
    phases = len(critical_ratios)
    lost = fixed_intervals_s + startup_loss_s * phases
    total = sum(critical_ratios)
    saturated = total >= MAX_TOTAL_RATIO
    cycle = max_cycle_s if saturated else (1.5 * lost + 5.0) / (1.0 - total)
    floor = fixed_intervals_s + min_green_s * phases
    cycle = min(max(cycle, min_cycle_s, floor), max(max_cycle_s, floor))
    # Each displayed green is its start-up loss plus its share of the effective green C − L.
    shares = [y / total for y in critical_ratios] if total > 0 else [1.0 / phases] * phases
    raw = [startup_loss_s + (cycle - lost) * share for share in shares]
    greens = _at_least(cycle - fixed_intervals_s, [g / sum(raw) for g in raw], min_green_s)
    return WebsterTiming(round(cycle, 1), tuple(greens), total, lost, saturated)


def _at_least(total: float, shares: Sequence[float], minimum: float) -> list[float]:
    """Split ``total`` by ``shares``, raising any part below ``minimum`` to it and taking the
    difference from the others in proportion, so the parts still add up to ``total``."""
    fixed: dict[int, float] = {}
    while True:
        free = [i for i in range(len(shares)) if i not in fixed]
        remaining = total - sum(fixed.values())
        weight = sum(shares[i] for i in free)
        parts = {i: remaining * shares[i] / weight if weight > 0 else remaining / len(free) for i in free}
        short = [i for i, g in parts.items() if g < minimum]
        if not short:
            split = {**fixed, **parts}
            return [round(split[i], 1) for i in range(len(shares))]
        for i in short:
            fixed[i] = minimum
