"""docker/: the compose file is valid to Debian's docker-compose, refuses to start without its
secrets, and every service built from the citybrain image runs a command that exists."""

from __future__ import annotations

import configparser
import re
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from citybrain.cli import app

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
SECRETS = {
    "CITYBRAIN_DB_PASSWORD": "test-db-password",
    "AIRFLOW_DB_PASSWORD": "test-airflow-password",
    "AIRFLOW_JWT_SECRET": "test-jwt-secret",
    "CITYBRAIN_NTCIP_CONTROLLERS": "J1=10.0.0.5:161",
}


def compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), *args],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The compose file as docker-compose resolves it, with the secrets set."""
    result = compose("config", env=SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_compose_file_is_valid():
    checked = compose("config", "-q", env=SECRETS)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_run_without_each_secret(secret):
    refused = compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != secret})
    assert refused.returncode != 0 and f"set {secret}" in refused.stderr


def test_the_stack_has_every_part_with_healthchecks_and_volumes(resolved):
    services = resolved["services"]
    wanted = {"kafka", "spark-master", "spark-worker", "airflow-api-server", "airflow-scheduler"}
    wanted |= {"airflow-dag-processor", "citybrain-db", "airflow-db", "ingest", "console", "field"}
    assert wanted <= set(services)
    for name in ("kafka", "citybrain-db", "airflow-db", "spark-master", "console", "airflow-api-server"):
        assert services[name]["healthcheck"]["test"], name
    assert {"lake", "kafka-data", "citybrain-db", "airflow-db"} <= set(resolved["volumes"])
    for name in ("ingest", "spark-worker", "airflow-scheduler"):  # who writes the lake
        targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in services[name]["volumes"]]
        assert "/lake" in targets, name
    kafka_version = ET.parse(REPO / "pom.xml").find(".//{*}kafka.version").text
    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version}", "the broker the tests run"


def citybrain_services(resolved: dict) -> dict[str, list[str]]:
    return {
        name: service["command"]
        for name, service in resolved["services"].items()
        if service.get("build", {}).get("dockerfile") == "docker/Dockerfile"
    }


def test_every_citybrain_command_exists_with_its_options(resolved):
    commands = [c for c in citybrain_services(resolved).values() if c[0] == "citybrain"]
    assert len(commands) >= 5
    for command in commands:
        # --help after the options: click refuses an unknown command or option before it helps.
        answered = CliRunner().invoke(app, [*command[1:], "--help"])
        assert answered.exit_code == 0, (command, answered.output)


def test_every_airflow_command_exists(resolved):
    from airflow.cli.cli_parser import get_parser

    commands = [c for c in citybrain_services(resolved).values() if c[0] == "airflow"]
    assert {c[1] for c in commands} == {"db", "api-server", "scheduler", "dag-processor"}
    parser = get_parser()
    for command in commands:
        parser.parse_args(command[1:])  # argparse exits on an unknown command or option


def test_every_spark_class_is_in_the_installed_pyspark(resolved):
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    classes = {
        name
        for jar in jars.glob("spark-core_*.jar")
        for name in zipfile.ZipFile(jar).namelist()
        if name.endswith(".class")
    }
    commands = [c for c in citybrain_services(resolved).values() if c[0] == "spark-class"]
    assert len(commands) == 2
    for command in commands:
        assert command[1].replace(".", "/") + ".class" in classes, command


def test_the_image_copies_every_package_the_distribution_has():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    packages = {line.rstrip("*") for line in config["options.packages.find"]["include"].split()}
    copied = set(re.findall(r"^COPY (\w+) \1$", (REPO / "docker" / "Dockerfile").read_text(), re.M))
    assert packages == copied
