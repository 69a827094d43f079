"""The Spark session of the lake jobs: ``local[*]`` by default, any master from the settings.

One session per process (Spark's ``getOrCreate``): it takes seconds to start, so the CLI, the
Airflow tasks and the tests share it. Workers must run the same Python as the driver, or they
fail to import pyarrow; the session sets ``PYSPARK_PYTHON`` and binds Spark to loopback when it
runs locally. Silver and gold are Delta tables: the session loads Delta Lake's jars from the
folder ``make setup`` resolved them into (pom.xml's ``delta`` profile), never from the network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import CitybrainError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from core.settings import Settings


#: The driver JVM's logging: errors only (see the file).
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
#: pom.xml's profile of Delta Lake's jars, under the settings' ``jvm_dir``.
DELTA_PROFILE = "delta"


class DeltaJarsMissing(CitybrainError):
    """Delta Lake's jars were not resolved (``make setup`` does it)."""


def delta_jars(settings: Settings) -> list[Path]:
    """Delta Lake's jars for ``spark.jars``, or :class:`DeltaJarsMissing` saying how to get them."""
    folder = settings.jvm_dir / DELTA_PROFILE
    jars = sorted(folder.glob("*.jar"))
    if not any(jar.name.startswith("delta-spark_") for jar in jars):
        raise DeltaJarsMissing(
            f"Delta Lake's jars are not in {folder}: run `make setup`, which resolves pom.xml's "
            f"'{DELTA_PROFILE}' profile from Maven Central (or set CITYBRAIN_JVM_DIR to where they are)"
        )
    return jars


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session, started for ``settings`` if there is none yet."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = settings.spark_master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    jars = ",".join(str(jar) for jar in delta_jars(settings))
    builder = (
        SparkSession.builder.appName("citybrain-lake")
        .master(settings.spark_master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.parquet.compression.codec", "snappy")
        # Standard Parquet timestamps (not Spark's legacy INT96), so pyarrow and DuckDB read them as UTC.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.jars", jars)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        # A table's state is rebuilt from its log in this many tasks (Delta's default of 50 is for
        # big clusters: here it made every commit of a small interval a 50-task stage).
        .config("spark.databricks.delta.snapshotPartitions", str(settings.spark_shuffle_partitions))
        .config("spark.hadoop.parquet.enable.summary-metadata", "false")
    )
    if local:
        builder = (
            builder.config("spark.driver.memory", settings.spark_driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}")
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_path(path: Path) -> str:
    """A local path as Spark wants it: ``file://`` and the path as it is (Spark does not decode
    the ``%3D`` that ``Path.as_uri()`` makes of the ``=`` in partition folders)."""
    return f"file://{path.resolve()}"
