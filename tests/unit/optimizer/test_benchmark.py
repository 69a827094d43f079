"""The RESCO benchmark's figures and targets from an evaluation document."""

from __future__ import annotations

import time

from optimizer.resco_benchmark import CONTROLLERS, RESCO_BEST, _document, scenario_result


def evaluation(delays: dict[str, float]) -> dict:
    controllers = {}
    for name, delay in delays.items():
        entry = {"kpis": {"resco_delay": {"mean": delay, "std": 1.0, "ci95": [delay - 1, delay + 1]}}}
        if name != "fixed":
            entry["difference"] = {"resco_delay": {"mean": delay - delays["fixed"], "p_value": 0.01}}
        controllers[name] = entry
    return {"controllers": controllers}


def test_targets_are_read_from_figures_of_the_same_run():
    delays = dict(zip(CONTROLLERS, [40.0, 30.0, 35.0, 33.0, 32.0, 25.0], strict=True))
    row = scenario_result(evaluation(delays), "cologne1", {})
    assert row["resco_best"] == RESCO_BEST["cologne1"] == 26.05
    assert row["targets"] == {
        "adaptive_at_or_below_resco_best": True,  # 25 ≤ 26.05
        "adaptive_below_max_pressure": True,  # 25 < 30
        "coordinated_at_most_0.8_fixed": True,  # 32 ≤ 0.8 × 40
    }
    assert row["controllers"]["adaptive"]["vs_fixed"] == {"mean": -15.0, "p_value": 0.01}
    missed = scenario_result(evaluation(delays | {"coordinated": 32.1, "adaptive": 30.0}), "cologne1", {})
    assert not any(missed["targets"].values())


def test_a_partial_run_says_so_and_counts_its_targets():
    delays = dict(zip(CONTROLLERS, [40.0, 30.0, 35.0, 33.0, 32.0, 25.0], strict=True))
    rows = {"cologne1": scenario_result(evaluation(delays), "cologne1", {})}
    document = _document(rows, [1, 2], 3.0, 2, time.perf_counter())
    assert document["complete"] is False
    assert document["targets_met"]["coordinated_at_most_0.8_fixed"] == "1/1"
