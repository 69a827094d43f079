"""The lake tests' own copies of the sensor twin's lake; the fused one (``fused``) is shared by the
integration tests and lives in :mod:`tests.integration.conftest`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.integration.conftest import TwinLake, twin_lake_cache
from tests.integration.twin_lake import make_twin_lake


@pytest.fixture
def twin(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> TwinLake:
    """A fresh copy of the twin's bronze lake, not yet fused."""
    cache = twin_lake_cache(tmp_path_factory)
    settings, start, end = make_twin_lake(cache, tmp_path)
    return TwinLake(settings, start, end, cache / "truth")


def content_checksums(lake: Path, layers: tuple[str, ...] = ("silver", "gold")) -> dict[str, str]:
    """SHA-256 of every file's rows and schema (Arrow IPC), by path: equal when the data is.

    Across Spark processes the bytes of equal files can differ in one place: parquet-mr lists a
    column's encodings from a Java HashSet, in an order that changes with each JVM's identity
    hashes. Within one Spark application the bytes repeat (:func:`checksums`).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    sums = {}
    for layer in layers:
        for path in sorted((lake / layer).rglob("*.parquet")):
            sink = pa.BufferOutputStream()
            table = pq.read_table(path)
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            sums[str(path.relative_to(lake))] = hashlib.sha256(sink.getvalue()).hexdigest()
    return sums


def checksums(lake: Path, layers: tuple[str, ...] = ("silver", "gold")) -> dict[str, str]:
    """SHA-256 of every file under the layers, by path relative to the lake."""
    return {
        str(path.relative_to(lake)): hashlib.sha256(path.read_bytes()).hexdigest()
        for layer in layers
        for path in sorted((lake / layer).rglob("*"))
        if path.is_file()
    }
