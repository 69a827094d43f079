"""The benchmark and the demo run end to end on small inputs (figures are checked for shape and
consistency, never for speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from optimizer.proposing import store

from .conftest import citybrain

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_script_prints_one_consistent_json_object(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--records", "3000", "--rounds", "1"]
        + ["--broker", "kafka", "--processes", "1,2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout)
    for key in ("records", "raw_consume_rate", "ingest_rate", "ratio", "landed", "dead_lettered"):
        assert key in figures
    assert figures["records"] == 3000
    assert figures["landed"] + figures["dead_lettered"] == 3000
    assert figures["dead_lettered"] == 30 and figures["bronze_rows"] == figures["landed"]
    assert figures["round_ratios"] == [figures["ratio"]]
    assert abs(figures["ratio"] - figures["ingest_rate"] / figures["raw_consume_rate"]) < 0.002
    assert figures["broker"] == "kafka" and set(figures["group_rates"]) == {"1", "2"}
    assert figures["group_lost"] == figures["group_duplicated"] == 0
    assert figures["group_runs_with_wrong_dead_letters"] == 0
    rates = figures["group_rates"]
    assert figures["group_scaling"] == round(rates["2"] / rates["1"], 3)


@pytest.mark.timeout(900)
def test_the_demo_closes_the_loop_and_the_plan_lowers_the_measured_delay(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    # stdin is not a terminal here: the demo approves by script even without --headless (said)
    result = citybrain(settings, "demo", "--records", "2000", "--json", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "stdin is not a terminal: the plan is approved by" in " ".join(result.stderr.split())
    summary = json.loads(result.stdout)
    for topic, row in summary["topics"].items():
        assert row["bronze_rows"] == row["valid_sent"], topic
        assert row["dlq"] == row["sent"] - row["valid_sent"], topic
    twin = summary["twin"]
    assert twin["total"] > 0 and twin["counts"]["traffic.detector.v1"] > 0
    assert (
        summary["records"] == sum(row["sent"] for row in summary["topics"].values()) == 2000 + twin["total"]
    )
    assert summary["sample_dead_letter_reasons"]
    lake = summary["lake_stage"]  # the twin's morning, fused in Spark and scored on its truth
    assert lake["fuse"]["tables"]["gold.link_state_15min"]["rows"] > 0
    assert lake["fuse_after"]["tables"]["gold.link_state_15min"]["rows"] > 0
    assert lake["map_matching_accuracy"] >= 0.95 and lake["speed_cells"] > 0
    # a plan for the peak's first quarter hour, better than the corridor's programs, proposed
    optimizer = summary["optimizer_stage"]
    assert optimizer["outcome"] == "published", optimizer["reason"]
    assert optimizer["difference"]["ci95"][1] < 0 and optimizer["published"] == optimizer["signals"] > 0
    assert summary["predicted_delay_after"] < summary["predicted_delay_before"]
    # approved, applied by the field on every signal, followed by the store
    assert summary["state"] == "applied" and summary["plan_id"] == optimizer["plan_id"]
    assert summary["field"]["outcomes"] == {
        "submitted": optimizer["signals"],
        "applied": optimizer["signals"],
    }
    engine = store.open_url(f"sqlite:///{settings.var_dir / 'demo' / 'citybrain.db'}")
    (plan,) = store.list_plans(engine)
    assert (plan.plan_id, plan.status) == (summary["plan_id"], "applied")
    assert set(plan.signal_outcomes.values()) == {"applied"}
    # measured over equal windows of the flat peak: lower after, in gold and in SUMO's truth
    assert summary["windows"]["before"][1] <= summary["effective_at"] < summary["windows"]["after"][0]
    assert summary["delay_after"] < summary["delay_before"]
    truth, without = summary["truth"], summary["truth"]["without_plan"]
    assert truth["delay_after"] < truth["delay_before"]
    # the run without the plan is the same simulation until the plan: the same "before", a worse "after"
    assert without["delay_before"] == truth["delay_before"]
    assert truth["delay_after"] < without["delay_after"]
    # a signal's event log came through Kafka and the lake: its measures and PCDs before and after
    assert twin["counts"]["traffic.signal_event.v1"] > 0
    measured = summary["signal_measures"]
    assert measured["signal"] == "J4" and measured["phases"]["2"]["volume"]["before"] > 0
    for name, diagram in measured["pcd"].items():
        assert Path(diagram["path"]).stat().st_size > 10_000, name
        assert 0 < diagram["percent_on_green"]["2"] < 100, name
    assert not (settings.var_dir / "demo" / "run" / "broker.json").exists(), "the demo stops its broker"
