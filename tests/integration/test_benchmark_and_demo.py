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
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--records", "3000", "--rounds", "1"],
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


@pytest.mark.timeout(600)
def test_demo_lands_every_valid_record_and_dead_letters_the_rest(tmp_path):
    settings = Settings(var_dir=tmp_path / "var")
    result = citybrain(settings, "demo", "--records", "2000", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    for topic, row in summary["topics"].items():
        assert row["bronze_rows"] == row["valid_sent"], topic
        assert row["dlq"] == row["sent"] - row["valid_sent"], topic
    twin = summary["twin"]
    assert twin["total"] > 0 and twin["counts"]["traffic.detector.v1"] > 0
    assert sum(row["sent"] for row in summary["topics"].values()) == 2000 + twin["total"]
    assert summary["kpis"]["scenario"] == "corridor"
    assert summary["kpis"]["kpis"]["resco_delay"]["mean"] > 0
    assert summary["sample_dead_letter_reasons"]
    assert Path(summary["lake"]).is_dir()
    lake = summary["lake_stage"]  # the twin's quarter hour, fused in Spark and scored on its truth
    assert lake["fuse"]["tables"]["gold.link_state_15min"]["rows"] > 0
    assert lake["map_matching_accuracy"] >= 0.95 and lake["speed_cells"] > 0
    assert lake["busiest_edges"] and all(edge["flow_vph"] > 0 for edge in lake["busiest_edges"])
    # a plan for the fused quarter hour, better than the corridor's peak-hour programs, proposed
    optimizer = summary["optimizer_stage"]
    assert optimizer["period"] == [lake["fuse"]["start"], lake["fuse"]["end"]]
    assert optimizer["outcome"] == "published", optimizer["reason"]
    assert optimizer["delay"]["coordinated"] < optimizer["delay"]["fixed"]
    assert optimizer["difference"]["ci95"][1] < 0 and optimizer["published"] == optimizer["signals"] > 0
    plans = store.list_plans(store.open_url(f"sqlite:///{settings.var_dir / 'demo' / 'citybrain.db'}"))
    assert [(plan.plan_id, plan.status, plan.published) for plan in plans] == [
        (optimizer["plan_id"], "proposed", True)
    ]
    assert not (settings.var_dir / "demo" / "run" / "broker.json").exists(), "the demo stops its broker"
