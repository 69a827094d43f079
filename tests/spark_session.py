"""One Spark session for the whole test run (it takes seconds to start), as the lake jobs get it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from core.spark import spark_session

    session = spark_session(
        Settings(var_dir=Path(tmp_path_factory.mktemp("spark")), spark_shuffle_partitions=4)
    )
    yield session
