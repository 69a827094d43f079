"""The Spark session of the lake jobs: ``local[*]`` by default, any master from the settings.

One session per process (Spark's ``getOrCreate``): it takes seconds to start, so the CLI, the
Airflow tasks and the tests share it. Workers must run the same Python as the driver, or they
fail to import pyarrow; the session sets ``PYSPARK_PYTHON`` and binds Spark to loopback when it
runs locally. Silver and gold are Delta tables, on a local file system or on object storage
(``s3a://``): the session loads Delta Lake's jars and Hadoop's S3A connector from the folders
``make setup`` resolved them into (pom.xml's ``delta`` and ``s3`` profiles), never from the
network, and takes the S3 endpoint and credentials from the settings.
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
#: pom.xml's profile of Hadoop's S3A connector and the AWS SDK modules it uses.
S3_PROFILE = "s3"


class LakeJarsMissing(CitybrainError):
    """Delta Lake's or the S3A connector's jars were not resolved (``make setup`` does it)."""


def lake_jars(settings: Settings) -> list[Path]:
    """Delta Lake's jars and Hadoop's S3A connector's for ``spark.jars``, or
    :class:`LakeJarsMissing` saying how to get them."""
    jars = []
    for profile, marker in ((DELTA_PROFILE, "delta-spark_"), (S3_PROFILE, "hadoop-aws-")):
        folder = settings.jvm_dir / profile
        found = sorted(folder.glob("*.jar"))
        if not any(jar.name.startswith(marker) for jar in found):
            raise LakeJarsMissing(
                f"the lake's jars are not in {folder}: run `make setup`, which resolves pom.xml's "
                f"'{profile}' profile from Maven Central (or set CITYBRAIN_JVM_DIR to where they are)"
            )
        jars += found
    return jars


def s3a_options(settings: Settings) -> dict[str, str]:
    """The S3 settings as Hadoop's S3A connector names them (tables on ``s3a://``)."""
    options = {"spark.hadoop.fs.s3a.endpoint.region": settings.s3_region}
    if settings.s3_endpoint:
        options["spark.hadoop.fs.s3a.endpoint"] = settings.s3_endpoint
        options["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            settings.s3_endpoint.startswith("https://")
        ).lower()
    if settings.s3_path_style:
        options["spark.hadoop.fs.s3a.path.style.access"] = "true"
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        options["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
        options["spark.hadoop.fs.s3a.access.key"] = settings.s3_access_key_id
        options["spark.hadoop.fs.s3a.secret.key"] = settings.s3_secret_access_key.get_secret_value()
    return options


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session, started for ``settings`` if there is none yet."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = settings.spark_master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    jars = ",".join(str(jar) for jar in lake_jars(settings))
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
    for key, value in s3a_options(settings).items():
        builder = builder.config(key, value)
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
