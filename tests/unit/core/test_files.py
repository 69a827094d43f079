"""Files that appear whole or not at all, and work done once across processes."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from core.files import atomic_dir, atomic_path, existing, produce_once, staging_name, write_atomic


def test_a_file_is_staged_under_a_hidden_name_beside_it():
    assert staging_name(Path("/lake/a/0-1-2.parquet")) == Path("/lake/a/.0-1-2.parquet.tmp")


def test_write_atomic_replaces_the_file_and_leaves_no_staging_file(tmp_path):
    path = tmp_path / "new" / "plan.json"
    write_atomic(path, "one\n")
    assert write_atomic(path, b"two", durable=False) == path
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_staging_one(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as staging:
        staging.write_text("half")
        raise RuntimeError("crashed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_atomic_dir_replaces_a_folder_with_entries(tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "stale.xml").write_text("stale")
    with atomic_dir(folder) as staging:
        (staging / "fresh.xml").write_text("fresh")
    assert [p.name for p in folder.iterdir()] == ["fresh.xml"]
    assert not staging_name(folder).exists()


def _read_count(path: Path) -> int | None:
    return int(path.read_text()) if path.is_file() else None


def _produce_once_counting(path: Path) -> int:
    def produce(staging: Path) -> int:
        with (path.parent / "runs").open("a") as runs:
            runs.write("x")
        staging.write_text("42")
        return 42

    return produce_once(path, produce, _read_count)


def test_produce_once_does_the_work_once_across_processes(tmp_path):
    path = tmp_path / "cache.txt"
    with ProcessPoolExecutor(4) as pool:
        results = list(pool.map(_produce_once_counting, [path] * 8))
    assert results == [42] * 8
    assert (tmp_path / "runs").read_text() == "x"


def test_existing_reads_a_file_that_is_valid_once_there(tmp_path):
    path = tmp_path / "routes.xml"
    assert existing(path) is None
    assert produce_once(path, lambda staging: staging.write_text("<routes/>") and path, existing) == path
    assert existing(path) == path
