"""``benchmarks/lake.py`` writes the figures it prints to its results file, the one the README quotes.

The benchmark itself (Spark, 25 minutes) is replaced by a stub: these tests are about where its
figures go, and never touch the kept ``benchmarks/results/lake.json``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import lake.benchmark
from lake.benchmark import RESULTS_FILE, write_results

REPO = Path(__file__).resolve().parents[3]
FIGURES = {"benchmark": "lake", "days": 1, "rows_per_s": 1234.5, "input_rows": {"one_day": {"total": 9}}}


def _script():
    spec = importlib.util.spec_from_file_location("bench_lake_script", REPO / "benchmarks" / "lake.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stub_benchmark(monkeypatch):
    calls = []

    def run(settings, **options):
        calls.append(options)
        return FIGURES

    monkeypatch.setattr(lake.benchmark, "run_lake_benchmark", run)
    return calls


def test_the_default_results_file_is_the_kept_one_in_benchmarks_results():
    assert RESULTS_FILE == REPO / "benchmarks" / "results" / "lake.json"
    kept = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    assert kept["benchmark"] == "lake" and kept["days"] == 7  # the last real run, not a test's


def test_results_go_to_the_file_named_and_match_what_is_printed(
    tmp_path, monkeypatch, capsys, stub_benchmark
):
    target = tmp_path / "out" / "lake.json"
    monkeypatch.setattr(sys, "argv", ["lake.py", "--days", "1", "--results", str(target)])
    _script().main()
    printed = json.loads(capsys.readouterr().out)
    assert printed == FIGURES
    assert json.loads(target.read_text(encoding="utf-8")) == FIGURES
    assert stub_benchmark[0]["days"] == 1


def test_without_results_the_script_writes_the_default_file(monkeypatch, capsys, stub_benchmark):
    written = []
    monkeypatch.setattr(lake.benchmark, "write_results", lambda result, path: written.append(path))
    monkeypatch.setattr(sys, "argv", ["lake.py"])
    _script().main()
    assert written == [RESULTS_FILE]


def test_a_failed_run_leaves_the_last_results_in_place(tmp_path, monkeypatch):
    target = write_results(FIGURES, tmp_path / "lake.json")

    def fail(settings, **options):
        raise RuntimeError("Spark went away")

    monkeypatch.setattr(lake.benchmark, "run_lake_benchmark", fail)
    monkeypatch.setattr(sys, "argv", ["lake.py", "--results", str(target)])
    with pytest.raises(RuntimeError, match="Spark went away"):
        _script().main()
    assert json.loads(target.read_text(encoding="utf-8")) == FIGURES
    assert [p.name for p in tmp_path.iterdir()] == ["lake.json"]


def test_the_cluster_comparison_names_what_it_expected(tmp_path):
    from core.errors import CitybrainError
    from core.settings import Settings
    from lake.benchmark import compare_on_cluster

    with pytest.raises(CitybrainError, match=r"spark://HOST:PORT master or 'loopback', got 'local\[2\]'"):
        compare_on_cluster(Settings(var_dir=tmp_path), "local[2]")


def test_with_cluster_the_script_writes_the_cluster_results_file(tmp_path, monkeypatch, capsys):
    figures = {"benchmark": "lake_cluster", "cluster_vs_local": 1.2}
    seen = []
    monkeypatch.setattr(
        lake.benchmark, "compare_on_cluster", lambda s, cluster, **o: seen.append(cluster) or figures
    )
    monkeypatch.setattr(lake.benchmark, "CLUSTER_RESULTS_FILE", tmp_path / "lake_cluster.json")
    monkeypatch.setattr(sys, "argv", ["lake.py", "--cluster", "loopback"])
    _script().main()
    assert (
        json.loads(capsys.readouterr().out)
        == figures
        == json.loads((tmp_path / "lake_cluster.json").read_text())
    )
    assert seen == ["loopback"]
