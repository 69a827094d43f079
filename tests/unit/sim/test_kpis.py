"""KPI parsing on a hand-written fixture whose numbers are checked by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import kpis
from sim.kpis import (
    TripInfoError,
    UnknownKpi,
    intersection_kpis,
    summarise,
    summarise_intersections,
    summarise_runs,
    t_interval95,
    trip_kpis,
)
from sim.plugins import load_plugins

FIXTURES = Path(__file__).parent / "fixtures"


def test_trip_kpis_of_the_fixture():
    kpis = trip_kpis(FIXTURES / "tripinfo.xml", FIXTURES / "statistics.xml")

    # resco_delay: (20+0 + 40+5 + 30+1) / 3 = 96 / 3
    assert kpis["resco_delay"] == pytest.approx(32.0)
    assert kpis["mean_delay"] == pytest.approx(30.0)  # (20 + 40 + 30) / 3
    assert kpis["travel_time"] == pytest.approx(230 / 3)
    assert kpis["waiting_time"] == pytest.approx(20.0)
    assert kpis["stops"] == pytest.approx(2.0)
    assert kpis["throughput"] == 2  # c has not arrived
    assert kpis["vehicles"] == 3
    assert kpis["teleports"] == 2
    assert kpis["co2"] == pytest.approx(200.0)  # mg → g, mean of 100, 200, 300


def test_a_missing_or_broken_trip_info_names_the_file(tmp_path):
    with pytest.raises(TripInfoError, match="missing.xml"):
        trip_kpis(tmp_path / "missing.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<tripinfos><tripinfo id='a'")
    with pytest.raises(TripInfoError, match="broken.xml"):
        trip_kpis(broken)


def test_summary_is_mean_sample_std_and_t_interval():
    summary = summarise([10.0, 12.0, 14.0])
    assert summary["mean"] == pytest.approx(12.0)
    assert summary["std"] == pytest.approx(2.0)
    # t(0.975, 2) = 4.302653; half width = 4.302653 * 2 / sqrt(3) = 4.968275
    low, high = summary["ci95"]
    assert low == pytest.approx(12.0 - 4.968275, abs=1e-5)
    assert high == pytest.approx(12.0 + 4.968275, abs=1e-5)


def test_one_seed_has_no_spread():
    assert summarise([5.0]) == {"mean": 5.0, "std": 0.0, "ci95": [5.0, 5.0]}


def test_summarise_runs_keeps_kpis_present_in_every_run():
    summary = summarise_runs([{"resco_delay": 1.0, "co2": 3.0}, {"resco_delay": 3.0}])
    assert set(summary) == {"resco_delay"}
    assert summary["resco_delay"]["mean"] == 2.0


def test_intersection_kpis_sum_the_approach_lanes_of_each_signal():
    approaches = {"e1_0": "A", "e1_1": "A", "e2_0": "B", "unused_0": "C"}

    result = intersection_kpis(FIXTURES / "lanes.xml", approaches, window_s=100)

    # A: time loss (100 + 20) / entered (10 + 2); queue = waiting (50 + 30) / 100 s
    assert result["A"] == {"approach_delay": pytest.approx(10.0), "queue": pytest.approx(0.8)}
    assert result["B"] == {"approach_delay": pytest.approx(1.0), "queue": 0.0}
    assert result["C"] == {"approach_delay": 0.0, "queue": 0.0}  # no traffic: no delay


def test_intersections_are_summarised_over_runs():
    runs = [{"A": {"queue": 1.0}}, {"A": {"queue": 3.0}}]
    assert summarise_intersections(runs)["A"]["queue"]["mean"] == 2.0


MAX_DELAY_PLUGIN = """
from sim.kpis import register


@register("max_delay", "s", "the largest timeLoss of any vehicle")
def max_delay(run):
    return max(run.values("timeLoss"), default=0.0)
"""


@pytest.fixture
def own_registry():
    """The KPI registry as it is, restored after the test (a plugin's KPI stays in it otherwise)."""
    saved = dict(kpis.KPIS)
    yield
    kpis.KPIS.clear()
    kpis.KPIS.update(saved)


def test_a_plugin_kpi_is_registered_and_chosen_by_name(tmp_path, own_registry):
    plugin = tmp_path / "max_delay_kpi.py"
    plugin.write_text(MAX_DELAY_PLUGIN)
    load_plugins([str(plugin)])
    assert kpis.kpi("max_delay").unit == "s"
    tripinfo, statistics = FIXTURES / "tripinfo.xml", FIXTURES / "statistics.xml"
    assert trip_kpis(tripinfo, statistics, names=["max_delay", "throughput"]) == {
        "max_delay": 40.0,
        "throughput": 2.0,
    }
    everything = trip_kpis(tripinfo, statistics)
    assert everything["max_delay"] == 40.0 and everything["resco_delay"] == pytest.approx(32.0)
    assert "max_delay" in summarise_runs([everything, everything])


def test_an_unknown_kpi_is_refused_naming_the_known_ones():
    with pytest.raises(UnknownKpi, match="no KPI 'nope'; known: co2, mean_delay, resco_delay"):
        trip_kpis(FIXTURES / "tripinfo.xml", names=["resco_delay", "nope"])


def test_every_kpi_says_its_unit_and_definition():
    for name, known in kpis.registry().items():
        assert known.name == name and known.unit and known.definition


def test_one_t_interval_serves_the_summaries_and_the_paired_differences():
    # t(0.975, 2) = 4.302653; half width = 4.302653 * 2 / sqrt(3) = 4.968275
    assert t_interval95(12.0, 2.0, 3) == pytest.approx([12.0 - 4.968275, 12.0 + 4.968275], abs=1e-5)
    assert summarise([10.0, 12.0, 14.0])["ci95"] == t_interval95(12.0, 2.0, 3)
    assert all(type(bound) is float for bound in t_interval95(12.0, 2.0, 3))
