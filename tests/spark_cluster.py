"""The test run's Spark standalone cluster (:mod:`core.spark_cluster`): a master and two workers of
one core each on loopback, started on first use and stopped when the session ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.spark_cluster import SparkCluster, loopback_cluster

WORKERS = 2


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    with loopback_cluster(tmp_path_factory.mktemp("spark_cluster"), workers=WORKERS) as cluster:
        yield cluster
