"""Settings: CITYBRAIN_* variables, the local and production profiles, derived values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings

PRODUCTION_SERVICES = ("CITYBRAIN_KAFKA_BOOTSTRAP", "CITYBRAIN_LAKE_URI", "CITYBRAIN_DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No CITYBRAIN_* variable of the machine running the tests leaks in; run in an empty folder."""
    for name in list(os.environ):
        if name.startswith("CITYBRAIN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- defaults


def test_the_default_profile_is_local_with_an_embedded_broker():
    settings = Settings()

    assert settings.profile == "local"
    assert settings.kafka_bootstrap is None
    assert settings.embedded_broker is True
    assert settings.var_dir == Path("var")


def test_against_the_embedded_broker_the_poll_interval_is_seconds():
    assert Settings().max_poll_interval_ms == 6_000


def test_against_an_external_kafka_the_poll_interval_is_kafkas_default(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")

    settings = Settings()

    assert settings.embedded_broker is False
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert settings.max_poll_interval_ms == 300_000


@pytest.mark.parametrize("bootstrap", [None, "kafka:9092"])
def test_the_poll_interval_can_be_set_whatever_the_broker(monkeypatch, bootstrap):
    if bootstrap:
        monkeypatch.setenv("CITYBRAIN_KAFKA_BOOTSTRAP", bootstrap)
    monkeypatch.setenv("CITYBRAIN_KAFKA_MAX_POLL_INTERVAL_MS", "45000")

    assert Settings().max_poll_interval_ms == 45_000


def test_a_dead_consumer_loses_its_partitions_in_seconds_whatever_the_poll_interval(monkeypatch):
    assert Settings().session_timeout_ms == 6_000  # Tansu: the poll interval, 6 s
    monkeypatch.setenv("CITYBRAIN_KAFKA_BOOTSTRAP", "kafka:9092")
    assert Settings().session_timeout_ms == 10_000  # not the 5-minute poll interval
    monkeypatch.setenv("CITYBRAIN_KAFKA_SESSION_TIMEOUT_MS", "7000")
    assert Settings().session_timeout_ms == 7_000


def test_sasl_without_a_user_and_password_is_refused_naming_them(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CITYBRAIN_KAFKA_SASL_USERNAME", "citybrain")

    with pytest.raises(ValidationError, match="CITYBRAIN_KAFKA_SASL_PASSWORD"):
        Settings()


def test_an_unknown_security_protocol_is_refused(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_KAFKA_SECURITY_PROTOCOL", "KERBEROS")

    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        Settings()


def test_a_poll_interval_under_a_second_is_refused(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_KAFKA_MAX_POLL_INTERVAL_MS", "999")

    with pytest.raises(ValidationError, match="kafka_max_poll_interval_ms"):
        Settings()


# --------------------------------------------------------------------------- environment


@pytest.mark.parametrize(
    ("variable", "text", "field", "value"),
    [
        ("CITYBRAIN_TOPIC_PARTITIONS", "7", "topic_partitions", 7),
        ("CITYBRAIN_VAR_DIR", "/srv/citybrain", "var_dir", Path("/srv/citybrain")),
        ("CITYBRAIN_INGEST_GROUP", "ingest-b", "ingest_group", "ingest-b"),
        ("CITYBRAIN_INGEST_LINGER_MS", "0", "ingest_linger_ms", 0),
        ("CITYBRAIN_KAFKA_CONNECT_TIMEOUT_S", "2.5", "kafka_connect_timeout_s", 2.5),
        ("CITYBRAIN_SPARK_MASTER", "spark://m:7077", "spark_master", "spark://m:7077"),
        ("CITYBRAIN_INGEST_CRASH_AT", "after_bronze", "ingest_crash_at", "after_bronze"),
    ],
)
def test_every_field_is_read_from_its_citybrain_variable(monkeypatch, variable, text, field, value):
    monkeypatch.setenv(variable, text)

    assert getattr(Settings(), field) == value


def test_a_variable_without_the_prefix_is_ignored(monkeypatch):
    monkeypatch.setenv("TOPIC_PARTITIONS", "9")
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "elsewhere:9092")

    settings = Settings()

    assert settings.topic_partitions == 3
    assert settings.embedded_broker


def test_an_unknown_citybrain_variable_is_ignored(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_NO_SUCH_SETTING", "1")

    assert Settings().profile == "local"


@pytest.mark.parametrize(
    ("variable", "text"),
    [
        ("CITYBRAIN_TOPIC_PARTITIONS", "0"),
        ("CITYBRAIN_TOPIC_PARTITIONS", "many"),
        ("CITYBRAIN_PROFILE", "staging"),
        ("CITYBRAIN_KAFKA_CONNECT_TIMEOUT_S", "0"),
        ("CITYBRAIN_INGEST_BATCH_RECORDS", "0"),
    ],
)
def test_a_bad_value_is_refused_at_start(monkeypatch, variable, text):
    monkeypatch.setenv(variable, text)

    with pytest.raises(ValidationError):
        Settings()


# --------------------------------------------------------------------------- production profile


def test_production_without_its_services_names_every_missing_variable(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_PROFILE", "production")

    with pytest.raises(ValidationError) as refused:
        Settings()

    message = str(refused.value)
    for variable in PRODUCTION_SERVICES:
        assert variable in message


@pytest.mark.parametrize("missing", PRODUCTION_SERVICES)
def test_production_names_just_the_variable_that_is_missing(monkeypatch, missing):
    monkeypatch.setenv("CITYBRAIN_PROFILE", "production")
    values = {
        "CITYBRAIN_KAFKA_BOOTSTRAP": "kafka:9092",
        "CITYBRAIN_LAKE_URI": "/mnt/lake",
        "CITYBRAIN_DATABASE_URL": "postgresql://db/citybrain",
    }
    for variable, value in values.items():
        if variable != missing:
            monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError) as refused:
        Settings()

    message = str(refused.value)
    assert missing in message
    assert [v for v in PRODUCTION_SERVICES if v in message] == [missing]


def test_production_with_its_services_starts(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_PROFILE", "production")
    monkeypatch.setenv("CITYBRAIN_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("CITYBRAIN_LAKE_URI", "file:///mnt/lake")
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", "postgresql://db/citybrain")

    settings = Settings()

    assert settings.profile == "production"
    assert not settings.embedded_broker
    assert settings.max_poll_interval_ms == 300_000
    assert settings.lake_path == Path("/mnt/lake")
    assert settings.sqlalchemy_url == "postgresql://db/citybrain"


def test_the_local_profile_needs_none_of_the_production_services():
    Settings(profile="local")


# --------------------------------------------------------------------------- derived values


def test_the_lake_defaults_to_var_lake():
    assert Settings().lake_path == Path("var/lake")
    assert Settings(var_dir=Path("/srv/cb")).lake_path == Path("/srv/cb/lake")


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/mnt/lake", Path("/mnt/lake")),
        ("relative/lake", Path("relative/lake")),
        ("file:///mnt/lake", Path("/mnt/lake")),
        ("file:///mnt/lake/", Path("/mnt/lake")),
    ],
)
def test_the_lake_is_a_plain_path_or_a_file_uri(uri, path):
    assert Settings(lake_uri=uri).lake_path == path


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file://localhost/mnt/lake", Path("/mnt/lake")),
        ("file:///mnt/city%20lake", Path("/mnt/city lake")),
    ],
)
def test_the_lake_file_uri_is_decoded_as_a_uri(uri, path):
    assert Settings(lake_uri=uri).lake_path == path


@pytest.mark.parametrize("uri", ["s3://bucket/lake", "s3a://bucket/lake", "hdfs://namenode:8020/lake"])
def test_a_remote_lake_is_refused_with_a_clear_message(uri):
    settings = Settings(lake_uri=uri)  # Spark may use it; the ingest cannot

    with pytest.raises(ValueError, match="CITYBRAIN_LAKE_URI") as refused:
        _ = settings.lake_path

    assert uri in str(refused.value)
    assert "local or mounted file system" in str(refused.value)


def test_the_database_defaults_to_sqlite_under_var_dir(tmp_path):
    assert Settings(var_dir=tmp_path).sqlalchemy_url == f"sqlite:///{(tmp_path / 'citybrain.db').resolve()}"


def test_the_default_database_path_is_absolute_even_for_a_relative_var_dir(tmp_path):
    url = Settings().sqlalchemy_url

    assert url == f"sqlite:///{(tmp_path / 'var' / 'citybrain.db').resolve()}"
    assert url.startswith("sqlite:////")


def test_a_database_url_is_used_as_given(monkeypatch):
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", "postgresql://user@db:5432/citybrain")

    assert Settings().sqlalchemy_url == "postgresql://user@db:5432/citybrain"


def test_run_and_log_folders_are_under_var_dir():
    settings = Settings(var_dir=Path("/srv/cb"))

    assert settings.run_dir == Path("/srv/cb/run")
    assert settings.log_dir == Path("/srv/cb/log")


def test_the_watch_window_is_at_least_the_quarter_hours_a_verdict_needs(tmp_path):
    from field.watch import MIN_SLOTS
    from lake.tables import SLOT

    shortest = int(MIN_SLOTS * SLOT.total_seconds())
    assert Settings(var_dir=tmp_path, field_watch_window_s=shortest).field_watch_window_s == shortest
    with pytest.raises(ValidationError, match="field_watch_window_s"):
        Settings(var_dir=tmp_path, field_watch_window_s=shortest - 900)
