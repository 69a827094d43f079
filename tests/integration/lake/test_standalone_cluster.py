"""The lake jobs and the optimizer's Spark executor on a Spark standalone cluster (a master and two
workers on loopback, ``tests/spark_cluster.py``): the same tables and the same KPIs as ``local[*]``."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lake.delta import read_partitions
from lake.tables import TABLES
from tests.integration.conftest import cli_env

pytestmark = pytest.mark.integration


def table_frames(lake: Path) -> dict[str, object]:
    """Every silver and gold table's rows, sorted, as pandas frames (row order within a file
    follows the order shuffle blocks arrive in, which a cluster does not fix)."""
    frames = {}
    for name, table in TABLES.items():
        frame = read_partitions(lake, table).to_pandas()
        frame = frame[sorted(frame.columns)]
        # Lists and structs sort by their text; everything else by its value.
        keys = frame.apply(lambda column: column.map(as_text) if column.dtype == object else column)
        order = keys.sort_values(list(keys.columns)).index
        frames[name] = frame.loc[order].reset_index(drop=True)
    return frames


def as_text(value: object) -> str:
    return repr(value.tolist() if hasattr(value, "tolist") else value)


def completed_apps(cluster) -> list[str]:
    with urllib.request.urlopen(f"{cluster.web_ui}/json/", timeout=5) as answer:
        return [app["name"] for app in json.load(answer)["completedapps"]]


def test_the_lake_jobs_on_the_cluster_give_the_tables_of_local(twin, fused, spark_cluster):
    import pandas as pd

    s = twin.settings
    env = cli_env(
        s,
        CITYBRAIN_LAKE_NETWORK=s.lake_network,
        CITYBRAIN_SPARK_SHUFFLE_PARTITIONS="4",
        CITYBRAIN_SPARK_MASTER=spark_cluster.master,
        SPARK_LOCAL_IP="127.0.0.1",
    )
    command = [sys.executable, "-m", "citybrain.cli", "lake", "fuse"]
    command += ["--start", twin.start.isoformat(), "--end", twin.end.isoformat()]

    fused_there = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)

    assert fused_there.returncode == 0, fused_there.stderr[-3000:]
    assert "citybrain-lake" in completed_apps(spark_cluster), "the job ran on the cluster"
    there, here = table_frames(s.lake_path), table_frames(fused.settings.lake_path)
    assert sorted(there) == sorted(here)
    for name, frame in here.items():
        assert len(frame) > 0, name
        pd.testing.assert_frame_equal(there[name], frame, check_exact=False, rtol=1e-9, obj=name)


#: Two five-minute trials of resco/cologne1 through the executor the settings choose.
TRIALS = """
import json
from core.settings import Settings
from sim.evaluate import shorten
from sim.executor import Trial, open_executor
from sim.scenarios import resco

scenario = shorten(resco("cologne1"), 5)
with open_executor(Settings()) as executor:
    print(json.dumps({"kind": type(executor).__name__, "kpis": executor.map(
        [Trial(scenario, "fixed", 1), Trial(scenario, "max-pressure", 2)])}))
"""


def test_the_optimizers_spark_executor_on_the_cluster_gives_the_kpis_of_local(tmp_path, spark_cluster):
    env = {"PATH": "/usr/bin:/bin", "CITYBRAIN_VAR_DIR": str(tmp_path / "var"), "SPARK_LOCAL_IP": "127.0.0.1"}
    run = [sys.executable, "-c", TRIALS]

    apps_before = len(completed_apps(spark_cluster))
    cluster = subprocess.run(
        run, env={**env, "CITYBRAIN_SPARK_MASTER": spark_cluster.master}, capture_output=True, text=True
    )
    local = subprocess.run(
        run, env={**env, "CITYBRAIN_OPTIMIZER_EXECUTOR": "local"}, capture_output=True, text=True
    )

    assert cluster.returncode == 0, cluster.stderr[-3000:]
    assert local.returncode == 0, local.stderr[-3000:]
    there, here = json.loads(cluster.stdout), json.loads(local.stdout)
    assert (there["kind"], here["kind"]) == ("SparkExecutor", "LocalExecutor")
    assert there["kpis"] == here["kpis"] and there["kpis"][0] != there["kpis"][1]
    assert len(completed_apps(spark_cluster)) == apps_before + 1, "the trials ran on the cluster"
