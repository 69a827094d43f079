"""Paired comparison of controllers: statistics checked by hand, the document's shape, the
plot and the command's argument errors — all without SUMO."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from typer.testing import CliRunner

from citybrain.evaluate_command import evaluate as evaluate_command
from citybrain.terminal import UsageProblem
from sim import evaluate as evaluation
from sim.controllers import ACTUATED_MAX_DUR_S, UnknownController, actuated_phases
from sim.evaluate import EvaluationError, check_controllers, compare, paired_difference, shorten
from sim.plots import plot_comparison
from sim.scenarios import Scenario

SCENARIO = Scenario("resco/test", Path("x.sumocfg"), Path("x.net.xml"), 25200, 28800, "resco")


def test_paired_difference_of_three_seeds_by_hand():
    # differences -2, -1, -3: mean -2, sample std 1, standard error 1/√3, t = -2√3 with 2 df.
    # With 2 df the t distribution has a closed form: two-sided p = 1 - |t|/√(2 + t²) = 1 - √(12/14),
    # and the 97.5% quantile is 0.95/√(2·0.975·0.025).
    result = paired_difference([8, 11, 11], [10, 12, 14])
    half = 0.95 / math.sqrt(2 * 0.975 * 0.025) / math.sqrt(3)
    assert result["mean"] == pytest.approx(-2.0)
    assert result["std"] == pytest.approx(1.0)
    assert result["ci95"] == pytest.approx([-2 - half, -2 + half])
    assert result["ci95"] == pytest.approx([-4.4841, 0.4841], abs=1e-4)
    assert result["p_value"] == pytest.approx(1 - math.sqrt(12 / 14))  # 0.0742
    assert result["significant"] is False


def test_a_consistent_improvement_over_four_seeds_is_significant():
    # differences -10, -9, -10, -9: mean -9.5, std √(1/3), t = -9.5/(√(1/3)/2) = -32.9 with 3 df
    result = paired_difference([30, 33, 34, 37], [40, 42, 44, 46])
    assert result["mean"] == pytest.approx(-9.5)
    assert result["std"] == pytest.approx(math.sqrt(1 / 3))
    half = 3.182446305 * math.sqrt(1 / 3) / 2  # t(0.975, 3) from the table
    assert result["ci95"] == pytest.approx([-9.5 - half, -9.5 + half], abs=1e-6)
    assert result["p_value"] < 1e-4 and result["significant"] is True


def test_one_seed_gives_a_difference_but_no_test():
    assert paired_difference([5.0], [7.0]) == {
        "mean": -2.0,
        "std": None,
        "ci95": None,
        "p_value": None,
        "significant": False,
    }


def test_zero_spread_is_the_limit_of_the_test_not_a_nan():
    same = paired_difference([3.0, 4.0], [3.0, 4.0])
    assert same == {"mean": 0.0, "std": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0, "significant": False}
    shifted = paired_difference([103.0, 96.0, 99.0], [100.0, 93.0, 96.0])  # +3 on every seed
    assert shifted["ci95"] == pytest.approx([3.0, 3.0]) and shifted["p_value"] == 0.0
    assert shifted["significant"] is True


def test_unpaired_samples_are_refused():
    with pytest.raises(EvaluationError, match="length"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(EvaluationError, match="empty"):
        paired_difference([], [])


def test_controller_names_are_checked_before_anything_runs():
    with pytest.raises(UnknownController, match="known: .*actuated.*fixed.*max-pressure"):
        check_controllers(["fixed", "nope"])
    with pytest.raises(EvaluationError, match="no controllers"):
        check_controllers([])
    with pytest.raises(EvaluationError, match="twice: fixed"):
        check_controllers(["fixed", "actuated", "fixed"])


def test_minutes_shorten_the_window_from_its_begin_never_lengthen_it():
    assert shorten(SCENARIO, 10).end == 25200 + 600
    assert shorten(SCENARIO, 1000).end == 28800
    assert shorten(SCENARIO, None) is SCENARIO
    with pytest.raises(EvaluationError, match="positive"):
        shorten(SCENARIO, 0)


def _run(delay: float, throughput: float) -> dict:
    kpis = {
        "resco_delay": delay,
        "mean_delay": delay - 2,
        "travel_time": delay + 20,
        "waiting_time": delay / 2,
        "stops": 1.0,
        "throughput": throughput,
        "vehicles": 500.0,
        "teleports": 0.0,
    }
    return {**kpis, "intersections": {"J1": {"approach_delay": delay, "queue": 3.0}}}


RUNS = {
    "fixed": [_run(40, 450), _run(42, 452), _run(44, 448)],
    "max-pressure": [_run(30, 455), _run(33, 456), _run(34, 453)],
}


def test_the_document_has_the_issue_shape_with_differences_after_the_first():
    result = compare(SCENARIO, [1, 2, 3], RUNS)
    assert result["scenario"] == "resco/test" and result["window"] == [25200, 28800]
    assert result["seeds"] == [1, 2, 3] and result["baseline"] == "fixed"
    fixed, pressure = result["controllers"]["fixed"], result["controllers"]["max-pressure"]
    assert set(fixed["kpis"]["resco_delay"]) == {"mean", "std", "ci95"}
    assert fixed["kpis"]["resco_delay"]["mean"] == pytest.approx(42.0)
    assert "difference" not in fixed
    delay = pressure["difference"]["resco_delay"]
    assert delay["mean"] == pytest.approx(-9.666666, rel=1e-5)  # (-10 - 9 - 10) / 3
    assert set(delay) == {"mean", "std", "ci95", "p_value", "significant"}
    assert pressure["difference"]["throughput"]["mean"] == pytest.approx(14 / 3)
    trip = {k: v for k, v in RUNS["max-pressure"][1].items() if k != "intersections"}
    assert pressure["runs"][1] == {"seed": 2, **trip}
    assert "intersections" not in pressure["runs"][0]
    assert pressure["intersections"]["J1"]["approach_delay"]["mean"] == pytest.approx(97 / 3)


def test_every_controller_runs_the_same_seeds(monkeypatch, tmp_path):
    calls = []

    def fake_run_seeds(scenario, controller, seeds, out_dir, **options):
        calls.append((controller, list(seeds), scenario.end))
        for seed in seeds:
            options["on_done"](seed)
        return [r for r in RUNS["fixed" if controller == "fixed" else "max-pressure"][: len(seeds)]]

    monkeypatch.setattr(evaluation, "run_seeds", fake_run_seeds)
    done = []
    result = evaluation.evaluate(
        SCENARIO, ["fixed", "max-pressure"], [1, 2], tmp_path, minutes=10, on_done=lambda *a: done.append(a)
    )
    assert calls == [("fixed", [1, 2], 25800), ("max-pressure", [1, 2], 25800)]
    assert done == [("fixed", 1), ("fixed", 2), ("max-pressure", 1), ("max-pressure", 2)]
    assert result["window"] == [25200, 25800]
    assert result["controllers"]["max-pressure"]["wall_s"] >= 0


def test_an_unknown_controller_is_refused_before_any_run(monkeypatch, tmp_path):
    monkeypatch.setattr(evaluation, "run_seeds", lambda *a, **k: pytest.fail("ran a simulation"))
    with pytest.raises(UnknownController):
        evaluation.evaluate(SCENARIO, ["fixed", "typo"], [1], tmp_path)


def test_the_plot_is_a_png_with_a_panel_per_key_kpi(tmp_path):
    path = plot_comparison(compare(SCENARIO, [1, 2, 3], RUNS), tmp_path / "deep" / "cmp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_actuated_keeps_clearances_fixed_and_gives_greens_a_range():
    phase = SimpleNamespace
    static = [
        phase(duration=62, state="GrGr", minDur=62, maxDur=62, next=(), name=""),  # no range: SUMO's
        phase(duration=3, state="yryr", minDur=3, maxDur=3, next=(), name=""),
        phase(duration=2, state="rrrr", minDur=2, maxDur=2, next=(), name=""),
        phase(duration=29, state="rGrg", minDur=7, maxDur=40, next=(), name="main"),  # the program's own
        phase(duration=5, state="ryrg", minDur=5, maxDur=5, next=(), name=""),  # mixed: a clearance
    ]
    made = actuated_phases(static, lambda *args: args)
    assert made[0] == (62, "GrGr", 5.0, 62, (), "")  # the plan's 62 s stays within reach
    assert made[1] == (3, "yryr", 3, 3, (), "") and made[2] == (2, "rrrr", 2, 2, (), "")
    assert made[3] == (29, "rGrg", 7, 40, (), "main")
    assert made[4] == (5, "ryrg", 5, 5, (), "")
    short = actuated_phases(
        [phase(duration=4, state="G", minDur=4, maxDur=4, next=(), name="")], lambda *a: a
    )
    assert short[0][2:4] == (4, ACTUATED_MAX_DUR_S)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("evaluate")(evaluate_command)
    app.command("other")(lambda: None)  # a second command keeps "evaluate" a subcommand
    return app


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--controllers", "fixed,typo"],
            "unknown 'typo'; known: actuated, actuated-policy, adaptive, coordinated, emergency-priority, "
            "fixed",
        ),
        (["--controllers", " , "], "--controllers is empty; expected a comma-separated list of"),
        (["--controllers", "fixed,fixed"], "names a controller twice"),
        (["--seeds", "0"], "--seeds 0: expected a number of seeds of at least 1"),
        (["--minutes", "0"], "--minutes 0: expected a positive number of minutes"),
        (["--plot", "out.svg"], "expected a .png file name"),
    ],
)
def test_bad_arguments_say_what_was_expected(arguments, message):
    result = CliRunner().invoke(_cli(), ["evaluate", "--scenario", "resco/cologne1", *arguments])
    assert isinstance(result.exception, UsageProblem), result.output
    assert message in str(result.exception)
