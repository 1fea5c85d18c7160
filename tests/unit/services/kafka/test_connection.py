"""KafkaConnection: LENS_KAFKA_* security settings -> confluent-kafka config and Faust credentials."""

import logging
import ssl

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from prometheus_client import CollectorRegistry

from lens.errors import ConfigError
from lens.settings import load_settings
from services.kafka import KafkaConnection, as_connection

PASSWORD = "hunter2-not-for-logs"


def sasl_settings(protocol="SASL_PLAINTEXT", **extra):
    return load_settings(
        kafka_bootstrap="k1:9092,k2:9092", kafka_security_protocol=protocol,
        kafka_sasl_username="lens", kafka_sasl_password=PASSWORD, **extra,
    )


def test_plaintext_by_default_and_a_bare_address_means_plaintext(clean_lens_env):
    kafka = KafkaConnection.from_settings(load_settings())
    assert kafka.client_config({"group.id": "g"}) == {
        "bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT", "group.id": "g",
    }
    assert kafka.faust_credentials() is None
    assert as_connection("h:1") == KafkaConnection("h:1")
    assert as_connection(kafka) is kafka


def test_sasl_settings_become_librdkafka_properties(clean_lens_env):
    kafka = KafkaConnection.from_settings(sasl_settings(kafka_sasl_mechanism="SCRAM-SHA-512"))
    assert kafka.client_config({"client.id": "lens-pos"}) == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "lens",
        "sasl.password": PASSWORD,
        "client.id": "lens-pos",
    }


def test_sasl_ssl_adds_the_ca_file(clean_lens_env, tmp_path):
    cafile = tmp_path / "ca.pem"
    kafka = KafkaConnection.from_settings(sasl_settings("SASL_SSL", kafka_ssl_cafile=cafile))
    config = kafka.client_config()
    assert (config["security.protocol"], config["ssl.ca.location"]) == ("SASL_SSL", str(cafile))


def test_faust_gets_sasl_credentials_and_an_ssl_context_only_with_ssl(clean_lens_env):
    plain = KafkaConnection.from_settings(sasl_settings()).faust_credentials()
    assert isinstance(plain, SASLCredentials)
    assert (plain.protocol.value, plain.mechanism.value) == ("SASL_PLAINTEXT", "PLAIN")
    assert (plain.username, plain.password, plain.ssl_context) == ("lens", PASSWORD, None)
    secured = KafkaConnection.from_settings(sasl_settings("SASL_SSL")).faust_credentials()
    assert secured.protocol.value == "SASL_SSL"
    assert isinstance(secured.ssl_context, ssl.SSLContext)
    assert secured.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_ssl_alone_gives_faust_ssl_credentials(clean_lens_env):
    kafka = KafkaConnection.from_settings(load_settings(kafka_security_protocol="SSL"))
    assert kafka.client_config()["security.protocol"] == "SSL"
    credentials = kafka.faust_credentials()
    assert isinstance(credentials, SSLCredentials) and credentials.protocol.value == "SSL"


def test_sasl_without_credentials_is_a_config_error(clean_lens_env):
    with pytest.raises(ConfigError, match="LENS_KAFKA_SASL_USERNAME and LENS_KAFKA_SASL_PASSWORD"):
        load_settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="lens")
    with pytest.raises(ConfigError, match="kafka_security_protocol"):
        load_settings(kafka_security_protocol="SASL")
    with pytest.raises(ConfigError, match="SASL username and password"):
        KafkaConnection("h:1", security_protocol="SASL_PLAINTEXT")


def test_security_settings_are_read_from_lens_variables(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LENS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("LENS_KAFKA_SASL_USERNAME", "lens")
    monkeypatch.setenv("LENS_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("LENS_KAFKA_SSL_CAFILE", "/etc/kafka/ca.pem")
    kafka = KafkaConnection.from_settings(load_settings())
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert kafka.sasl_password.get_secret_value() == PASSWORD
    assert str(kafka.ssl_cafile) == "/etc/kafka/ca.pem"


def test_the_password_is_in_no_repr_and_no_log_of_the_funnel_worker(
    clean_lens_env, tmp_path, caplog
):
    """Everything the worker prints or logs about its config: settings, connection, the worker
    config, Faust's credentials and app configuration (built at DEBUG)."""
    from services.funnel.app import FunnelService
    from services.funnel.config import FunnelServiceConfig

    caplog.set_level(logging.DEBUG)
    settings = sasl_settings(run_dir=tmp_path)
    config = FunnelServiceConfig.from_settings(settings, no_model=True)
    service = FunnelService(config, registry=CollectorRegistry())
    shown = [
        repr(settings), str(settings), repr(config), str(config.kafka), repr(config.kafka),
        repr(service.app.conf.broker_credentials), caplog.text,
    ]
    assert service.app.conf.broker_credentials.password == PASSWORD  # it is there, unprinted
    assert not [text for text in shown if PASSWORD in text]
