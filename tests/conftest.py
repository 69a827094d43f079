"""Fixtures shared by unit and integration tests, and the JVMs' compiler for the test run.

The suite starts some hundred short-lived JVMs (a Spark driver for each ``citybrain lake`` call
and Airflow task, the brokers, the Spark cluster's executors), each doing seconds of work:
JIT-compiling with C1 only (``-XX:TieredStopAtLevel=1``, read by every ``java`` launch from
``JDK_JAVA_OPTIONS``) spends less of the two cores on compilation that never pays back (the lake's
twin tests: 188 s instead of 209 s). Production JVMs keep the default, both tiers, for long jobs.
C1 alone gets the small code cache of a client VM (48 MB), which a Spark driver with Delta's and
the S3 connector's classes filled ("Out of space in CodeCache"), so the cache is sized as tiered
compilation sizes it. A value already set in the environment wins.
"""

import os

os.environ.setdefault("JDK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m")

from tests.apache_kafka import apache_kafka  # noqa: E402, F401  (a session-scoped fixture, used by name)
from tests.postgres import postgres_url, postgresql  # noqa: E402, F401  (fixtures, used by name)
from tests.s3_server import s3_server  # noqa: E402, F401  (a session-scoped fixture, used by name)
from tests.spark_cluster import spark_cluster  # noqa: E402, F401  (a session-scoped fixture, used by name)
from tests.spark_session import spark  # noqa: E402, F401  (a session-scoped fixture, used by name)
