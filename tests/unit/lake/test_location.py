"""Where the tables live: a lake folder or s3a://, as Spark and delta-rs each name it, and the S3
settings each engine is given."""

from __future__ import annotations

import pytest

from core.settings import Settings
from core.spark import s3a_options
from lake.location import BadTablesUri, TableLocation, table_location, tables_location
from lake.tables import TABLES

LINK = TABLES["gold.link_state_15min"]


def test_a_lake_folder_holds_its_tables(tmp_path):
    here = tables_location(Settings(var_dir=tmp_path))
    assert here == table_location(tmp_path / "lake") and not here.remote
    assert here.local_path(LINK) == tmp_path / "lake" / "gold" / "link_state_15min"
    assert here.spark_uri(LINK) == f"file://{tmp_path}/lake/gold/link_state_15min"
    assert here.delta_rs_uri(LINK) == f"{tmp_path}/lake/gold/link_state_15min"
    assert (
        tables_location(Settings(var_dir=tmp_path, lake_tables_uri=f"file://{tmp_path}/t")).root
        == f"{tmp_path}/t"
    )


def test_tables_on_s3a_are_s3_to_delta_rs_with_the_settings_options(tmp_path):
    settings = Settings(
        var_dir=tmp_path,
        lake_tables_uri="s3a://city-lake/prod/",
        s3_endpoint="http://minio:9000",
        s3_access_key_id="key",
        s3_secret_access_key="secret",
        s3_path_style=True,
    )
    there = tables_location(settings)
    assert there.remote and there.local_path(LINK) is None
    assert there.spark_uri(LINK) == "s3a://city-lake/prod/gold/link_state_15min"
    assert there.delta_rs_uri(LINK) == "s3://city-lake/prod/gold/link_state_15min"
    assert there.storage_options == {
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://minio:9000",
        "AWS_ALLOW_HTTP": "true",
        "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    assert s3a_options(settings) == {
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.endpoint": "http://minio:9000",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.access.key": "key",
        "spark.hadoop.fs.s3a.secret.key": "secret",
    }
    # Without keys both engines fall back on the AWS default chain (instance role, AWS_* variables).
    plain = tables_location(Settings(var_dir=tmp_path, lake_tables_uri="s3a://city-lake"))
    assert plain.storage_options == {"AWS_REGION": "us-east-1"}
    assert TableLocation("s3a://city-lake") == plain  # the options are not part of where it is


@pytest.mark.parametrize(
    ("uri", "complaint"),
    [
        ("s3://bucket/lake", "expected s3a://bucket/prefix"),
        ("gs://b/l", "expected s3a://"),
        ("s3a:///x", "no bucket"),
    ],
)
def test_a_tables_uri_other_than_a_path_or_s3a_is_refused_saying_what_is_expected(tmp_path, uri, complaint):
    with pytest.raises(BadTablesUri, match=complaint):
        tables_location(Settings(var_dir=tmp_path, lake_tables_uri=uri))
