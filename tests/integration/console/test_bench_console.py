"""``citybrain bench console``: a short run against a real server process answers every request
and reports the figures the issue names (behaviour, not speed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from citybrain.cli import app
from console.benchmark import BASELINE, ROUTES, run_console_benchmark, write_results
from core.settings import Settings

pytestmark = pytest.mark.integration


def test_a_short_run_answers_every_request(tmp_path):
    result = run_console_benchmark(
        Settings(var_dir=tmp_path / "var"), clients=5, seconds=2.0, plans=40, server_workers=2
    )
    assert {"clients", "rps", "p50_ms", "p95_ms", "errors", "seconds", "requests", "server_workers"} <= set(
        result
    )
    assert result["clients"] == 5 and result["server_workers"] == 2
    assert result["errors"] == 0, result.get("error_samples")
    assert result["requests"] > 0 and result["rps"] > 0
    assert result["p50_ms"] <= result["p95_ms"]
    assert set(result["routes"]) == set(ROUTES)
    assert all(route["requests"] > 0 and route["errors"] == 0 for route in result["routes"].values())
    # the baseline ran first, on the same clients, and the ratio is the two p95s'
    assert result["baseline"]["route"] == BASELINE[0] and result["baseline"]["requests"] > 0
    assert result["p95_over_baseline"] == pytest.approx(
        result["p95_ms"] / result["baseline"]["p95_ms"], abs=0.01
    )
    # the map answered in full, gzipped on the wire and inflated: its GeoJSON's size
    assert result["routes"]["/api/network"]["mean_kb"] > 100
    written = write_results(result, tmp_path / "console.json")
    assert json.loads(written.read_text()) == result


def test_the_cli_prints_one_json_object(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYBRAIN_VAR_DIR", str(tmp_path / "var"))
    answer = CliRunner().invoke(app, ["bench", "console", "--clients", "2", "--seconds", "1", "--json"])
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.stdout)
    assert result["clients"] == 2 and result["errors"] == 0 and result["requests"] > 0
