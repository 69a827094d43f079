"""Apache Kafka's configuration as citybrain writes it: listeners, SASL_SSL, reused ports."""

from __future__ import annotations

import json
import socket

import pytest

from core.settings import Settings
from streaming import kafka_server
from streaming.kafka_server import Listeners, ScramUser, SecuredListener


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_a_plain_broker_is_broker_and_controller_on_loopback(tmp_path):
    config = properties(kafka_server.server_properties(tmp_path / "data", Listeners(9101, 9102), None))

    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:9102"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9101,CONTROLLER://127.0.0.1:9102"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9101"
    assert config["log.dirs"] == str(tmp_path / "data")
    assert config["offsets.topic.replication.factor"] == "1"
    assert not any(key.startswith("listener.name.secured") for key in config)


def test_a_secured_listener_speaks_scram_over_tls_with_the_pem_inline(tmp_path):
    cert, key = tmp_path / "broker.pem", tmp_path / "broker.key"
    cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\nBBBB\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\nCCCC\n-----END PRIVATE KEY-----\n")
    secured = SecuredListener(cert, key, (ScramUser("u", "p"),))

    text = kafka_server.server_properties(tmp_path / "data", Listeners(9101, 9102, 9103), secured)
    config = properties(text)

    assert "SECURED:SASL_SSL" in config["listener.security.protocol.map"].split(",")
    assert config["advertised.listeners"].endswith(",SECURED://localhost:9103")
    assert config["listener.name.secured.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["listener.name.secured.ssl.keystore.type"] == "PEM"
    chain = config["listener.name.secured.ssl.keystore.certificate.chain"]
    assert chain == "-----BEGIN CERTIFICATE-----\\nAAAA\\nBBBB\\n-----END CERTIFICATE-----"
    assert len(text.splitlines()) == len(config), "each PEM stays on one properties line"


def test_the_last_ports_are_reused_while_free_and_replaced_when_taken(tmp_path):
    first = kafka_server.choose_listeners(tmp_path, secured=True)
    (tmp_path / "listeners.json").write_text(json.dumps(first.__dict__))

    assert kafka_server.choose_listeners(tmp_path, secured=True) == first
    assert kafka_server.choose_listeners(tmp_path, secured=False) == Listeners(first.plain, first.controller)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first.plain))
        assert kafka_server.choose_listeners(tmp_path, secured=True).plain != first.plain


def test_missing_jars_say_how_to_get_them(tmp_path):
    settings = Settings(var_dir=tmp_path, jvm_dir=tmp_path / "nothing")

    with pytest.raises(kafka_server.KafkaJarsMissing, match="make setup"):
        kafka_server.classpath(settings)


def test_cluster_ids_never_start_like_an_option(monkeypatch):
    draws = iter([bytes([0xF8]) + bytes(15), bytes(16)])  # the first encodes to "-A…"
    monkeypatch.setattr(kafka_server.uuid, "uuid4", lambda: type("U", (), {"bytes": next(draws)})())

    assert kafka_server.new_cluster_id() == "A" * 22
