"""The files a finished optimisation leaves: the JSON document and, for a plan, its SUMO file."""

from __future__ import annotations

import json
from pathlib import Path

from optimizer.plans.model import NetworkPlan, Phase, SignalPlan
from optimizer.plans.sumo_programs import parse_tls
from optimizer.proposing.results import file_stem, write_results
from optimizer.search.optimize import Optimized

EVALUATION = {"controllers": {"fixed": {}, "coordinated": {}}}


def found(method: str, **result) -> Optimized:
    return Optimized(
        scenario="resco/cologne1",
        method=method,
        train_seeds=[101, 102],
        start_delay=50.0,
        best_delay=40.0,
        evaluations=12,
        generations=2,
        seconds=61.0,
        **result,
    )


def test_a_plan_is_written_as_json_and_as_a_sumo_file_named_by_scenario_and_method(tmp_path):
    signal = SignalPlan("A1", (Phase("Gr", 30), Phase("yr", 4), Phase("rG", 30), Phase("ry", 4)), offset_s=7)
    plan = NetworkPlan((signal,), "coordinated")

    document = write_results(
        tmp_path / "plans", "resco/cologne1", found("coordinated", plan=plan), EVALUATION, 300
    )

    written = tmp_path / "plans" / "resco_cologne1-coordinated.json"
    assert document["plan_json"] == str(written)
    assert json.loads(written.read_text()) == {k: v for k, v in document.items() if k != "plan_json"}
    assert document["scenario"] == "resco/cologne1" and document["method"] == "coordinated"
    assert document["search"]["budget_s"] == 300 and document["search"]["evaluations"] == 12
    assert not {"tls", "policy", "format"} & set(document["search"])
    assert document["evaluation"] == EVALUATION
    assert document["signals"] == [
        {"tls_id": "A1", "cycle_s": 68.0, "offset_s": 7.0, "phases": [p.to_record() for p in signal.phases]}
    ]
    assert document["tls_file"] == str(tmp_path / "plans" / "resco_cologne1-coordinated.tls.add.xml")
    assert [s.tls_id for s in parse_tls(Path(document["tls_file"]).read_text())] == ["A1"]
    assert "policy" not in document
    assert sorted(p.name for p in (tmp_path / "plans").iterdir()) == [
        "resco_cologne1-coordinated.json",
        "resco_cologne1-coordinated.tls.add.xml",
    ]


def test_a_policy_is_written_as_json_only(tmp_path):
    document = write_results(
        tmp_path, "/x/corridor.sumocfg", found("adaptive", policy={"gap_s": 3.0}), {}, 60
    )

    assert document["policy"] == {"gap_s": 3.0}
    assert "signals" not in document and "tls_file" not in document
    assert [p.name for p in tmp_path.iterdir()] == ["corridor-adaptive.json"]


def test_the_stem_is_the_scenario_file_or_name_then_the_method():
    assert file_stem("resco/cologne1", "coordinated") == "resco_cologne1-coordinated"
    assert file_stem("/nets/grid.sumocfg", "adaptive") == "grid-adaptive"
