"""CMA-ES over named parameters: the unit-cube mapping, the starting points, the budget."""

from __future__ import annotations

import time

import pytest

from optimizer.search.cmaes import SearchError, Space, cma_search

SPACE = Space({"x": (-5.0, 5.0), "y": (0.0, 100.0)})


def bowl(points):
    return [(p["x"] - 2.0) ** 2 + ((p["y"] - 70.0) / 10) ** 2 for p in points]


def test_points_map_onto_the_unit_cube_and_back_clipped_to_their_ranges():
    unit = SPACE.to_unit({"x": 0.0, "y": 25.0})
    assert list(unit) == [0.5, 0.25]
    assert SPACE.from_unit([1.5, -1.0]) == {"x": 5.0, "y": 0.0}
    with pytest.raises(SearchError, match=r"lacks \['y'\]"):
        SPACE.to_unit({"x": 1.0})
    with pytest.raises(SearchError, match="range \\[3, 3\\] is empty"):
        Space({"z": (3, 3)})


def test_the_search_finds_the_bottom_of_a_bowl_from_the_best_start():
    calls = []

    def objective(points):
        calls.append(len(points))
        return bowl(points)

    result = cma_search(
        SPACE, [{"x": -4.0, "y": 10.0}, {"x": 4.0, "y": 90.0}], objective, budget_s=5, popsize=8
    )
    assert calls[0] == 2  # both starts in one batch
    assert result.start_value == pytest.approx(bowl([{"x": 4.0, "y": 90.0}])[0])
    assert result.best["x"] == pytest.approx(2.0, abs=0.05) and result.best["y"] == pytest.approx(
        70.0, abs=0.5
    )
    assert result.evaluations == 2 + sum(calls[1:]) and result.generations == len(calls) - 1
    assert [v for _, v in result.history] == sorted((v for _, v in result.history), reverse=True)


def test_a_search_never_answers_worse_than_its_best_start():
    # Every candidate but the start is worse: the answer is the start itself.
    def objective(points):
        return [0.0 if p == {"x": 2.0, "y": 70.0} else 1.0 for p in points]

    result = cma_search(SPACE, [{"x": 2.0, "y": 70.0}], objective, budget_s=1, popsize=4)
    assert result.best == {"x": 2.0, "y": 70.0} and result.best_value == 0.0


def test_an_exhausted_budget_stops_after_the_generation_it_started():
    result = cma_search(SPACE, [{"x": 0.0, "y": 0.0}], bowl, budget_s=0, popsize=4)
    assert result.generations == 0 and result.evaluations == 1
    with pytest.raises(SearchError, match="at least one starting point"):
        cma_search(SPACE, [], bowl, budget_s=1)


def test_starts_scored_by_the_caller_are_not_scored_again_and_count_as_evaluations():
    calls = []

    def objective(points):
        calls.append(len(points))
        return bowl(points)

    starts = [{"x": 0.0, "y": 50.0}, {"x": 3.0, "y": 60.0}]
    result = cma_search(
        SPACE, starts, objective, budget_s=0.5, popsize=4, start_values=bowl(starts), evaluated=5
    )
    assert all(n == 4 for n in calls)  # generations only
    assert result.start_value == min(bowl(starts)) and result.evaluations == 5 + sum(calls)
    with pytest.raises(SearchError, match="1 start values for 2 starting points"):
        cma_search(SPACE, starts, objective, budget_s=1, start_values=[1.0])


def test_a_generation_that_would_not_fit_the_budget_is_not_started():
    def slow(points):
        time.sleep(0.05 * len(points))  # 0.05 s a candidate: a generation of 8 takes 0.4 s
        return bowl(points)

    result = cma_search(SPACE, [{"x": 0.0, "y": 0.0}], slow, budget_s=0.3, popsize=8)
    assert result.generations == 0 and result.seconds < 0.3
    enough = cma_search(SPACE, [{"x": 0.0, "y": 0.0}], slow, budget_s=1.0, popsize=8)
    # two fit (0.05 + 2 × 0.4 s); a little slack for a loaded machine's late wake-ups
    assert enough.generations in (1, 2) and enough.seconds < 1.2
