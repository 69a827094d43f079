"""The sensor twin's lake, built once per session, and a copy of it fused once, for lake tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from citybrain.settings import Settings
from tests.integration.twin_lake import make_twin_lake


@dataclass(frozen=True)
class TwinLake:
    settings: Settings
    start: datetime
    end: datetime
    truth: Path


def _cache(factory: pytest.TempPathFactory) -> Path:
    cache = Path(factory.getbasetemp()) / "twin_lake_cache"  # shared with the DAG tests
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture
def twin(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> TwinLake:
    """A fresh copy of the twin's bronze lake, not yet fused."""
    cache = _cache(tmp_path_factory)
    settings, start, end = make_twin_lake(cache, tmp_path)
    return TwinLake(settings, start, end, cache / "truth")


@pytest.fixture(scope="session")
def fused(tmp_path_factory: pytest.TempPathFactory, spark) -> TwinLake:
    """The twin's lake after one clean fuse of its whole window (read only: copy before changing)."""
    from lake.jobs import fuse

    cache = _cache(tmp_path_factory)
    settings, start, end = make_twin_lake(cache, tmp_path_factory.mktemp("fused"))
    fuse(settings, start, end, spark=spark)
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
