"""The lake tests' own copies of the sensor twin's lake; the fused one (``fused``) is shared by the
integration tests and lives in :mod:`tests.integration.conftest`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lake.delta import read_partitions
from lake.tables import TABLES
from tests.integration.conftest import TwinLake, twin_lake_cache
from tests.integration.twin_lake import make_twin_lake


@pytest.fixture
def twin(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> TwinLake:
    """A fresh copy of the twin's bronze lake, not yet fused."""
    cache = twin_lake_cache(tmp_path_factory)
    settings, start, end = make_twin_lake(cache, tmp_path)
    return TwinLake(settings, start, end, cache / "truth")


def contents(lake: Path) -> dict[str, str]:
    """SHA-256 of each silver and gold table's live rows (read through its Delta log, sorted by
    the table's key), by table: equal when the data is, whatever the files and versions."""
    import pyarrow as pa

    sums = {}
    for name, table in TABLES.items():
        rows = read_partitions(lake, table)
        if rows.num_rows == 0:
            continue
        rows = rows.sort_by([(column, "ascending") for column in (*table.partition_by, *table.key)])
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, rows.schema) as writer:
            writer.write_table(rows)
        sums[name] = hashlib.sha256(sink.getvalue()).hexdigest()
    return sums
