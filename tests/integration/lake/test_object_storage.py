"""The silver and gold Delta tables on object storage (``s3a://``, a local S3 server): the fuse job
writes them there through Hadoop's S3A connector, and the readers without a JVM (delta-rs) find
the rows a local lake holds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.settings import Settings
from lake.delta import table_versions
from lake.location import tables_location
from lake.tables import TABLES
from optimizer.demand.lake_counts import read_gold_counts
from tests.integration.conftest import cli_env
from tests.integration.lake.conftest import contents

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)
def test_the_fuse_job_writes_the_tables_to_s3_and_every_reader_finds_them(twin, fused, s3_server):
    s = twin.settings
    on_s3 = s3_server.settings("city")
    env = cli_env(s, CITYBRAIN_LAKE_NETWORK=s.lake_network, CITYBRAIN_SPARK_SHUFFLE_PARTITIONS="4", **on_s3)
    citybrain = [sys.executable, "-m", "citybrain.cli", "lake"]
    interval = ["--start", twin.start.isoformat(), "--end", twin.end.isoformat()]

    fused_there = subprocess.run([*citybrain, "fuse", *interval], env=env, capture_output=True, text=True)

    assert fused_there.returncode == 0, fused_there.stderr[-3000:]
    assert not (s.lake_path / "silver").exists() and not (s.lake_path / "gold").exists()
    fields = {name.removeprefix("CITYBRAIN_").lower(): value for name, value in on_s3.items()}
    there = tables_location(Settings(var_dir=s.var_dir, **fields))
    assert there.remote and there.root == f"s3a://{s3_server.bucket}/city"
    assert set(table_versions(there, TABLES).values()) == {0}
    assert contents(there) == contents(fused.settings.lake_path)
    # The optimizer's demand and `lake check` read it without a JVM.
    assert read_gold_counts(there, fused.start, fused.end) == read_gold_counts(
        fused.settings.lake_path, fused.start, fused.end
    )
    check = [*citybrain, "check", "--as-of", twin.end.isoformat(), "--json"]
    checked = subprocess.run(check, env=env, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-2000:]
    assert set(json.loads(checked.stdout)["tables"]) == set(TABLES)
