"""Webster's cycle and splits against a hand-computed example."""

from __future__ import annotations

import pytest

from optimizer.methods.webster import WebsterError, webster


def test_a_two_phase_signal_worked_by_hand():
    # Two green phases, y = 0.25 and 0.35, 10 s of yellow and all-red per cycle, 2 s start-up loss each:
    # L = 10 + 2·2 = 14 s; C = (1.5·14 + 5) / (1 − 0.6) = 26 / 0.4 = 65 s; effective green 65 − 14 = 51 s,
    # shared 0.25 : 0.35 → 21.25 and 29.75 s, plus 2 s start-up each → 23.25 and 31.75 s (sum 65 − 10).
    timing = webster([0.25, 0.35], 10.0)
    assert timing.cycle_s == 65.0 and timing.lost_time_s == 14.0 and not timing.saturated
    assert timing.greens_s == pytest.approx((23.25, 31.75), abs=0.051)
    assert sum(timing.greens_s) == pytest.approx(65.0 - 10.0, abs=0.1)


def test_the_cycle_stays_within_the_limits_and_greens_above_the_minimum():
    light = webster([0.02, 0.03], 10.0)
    assert light.cycle_s == 40.0  # (1.5·14 + 5) / 0.95 = 27.4 s, raised to the shortest cycle
    heavy = webster([0.5, 0.45], 10.0)
    assert heavy.saturated and heavy.cycle_s == 180.0
    skewed = webster([0.001, 0.6, 0.2], 12.0, min_green_s=7.0)
    assert min(skewed.greens_s) == 7.0 and sum(skewed.greens_s) == pytest.approx(
        skewed.cycle_s - 12.0, abs=0.15
    )


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(WebsterError, match="at least one green phase"):
        webster([], 10.0)
    with pytest.raises(WebsterError, match="must not be negative"):
        webster([0.2, -0.1], 10.0)
