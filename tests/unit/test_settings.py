from pathlib import Path

import pytest

from lens.errors import ConfigError
from lens.settings import LensSettings, load_settings


def test_defaults_point_at_the_local_broker(clean_lens_env):
    settings = load_settings()
    assert settings.uses_local_kafka
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.run_dir == Path(".run")


def test_environment_variables_with_lens_prefix_are_read(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_PORT", "19092")
    monkeypatch.setenv("LENS_RUN_DIR", "/tmp/x")
    settings = load_settings()
    assert settings.kafka_port == 19092
    assert settings.run_dir == Path("/tmp/x")


def test_flags_win_over_environment_and_none_means_not_given(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_PORT", "19092")
    assert load_settings(kafka_port=29092).kafka_port == 29092
    assert load_settings(kafka_port=None).kafka_port == 19092


def test_external_cluster_replaces_the_local_broker(clean_lens_env, monkeypatch):
    monkeypatch.setenv("LENS_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    settings = load_settings()
    assert not settings.uses_local_kafka
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_invalid_values_raise_config_error_naming_the_field(clean_lens_env):
    with pytest.raises(ConfigError, match="kafka_port"):
        load_settings(kafka_port=70000)


def test_unknown_settings_are_rejected(clean_lens_env):
    with pytest.raises(ConfigError, match="kafka_prot"):
        load_settings(kafka_prot=1)


def test_settings_are_frozen(clean_lens_env):
    settings = LensSettings()
    with pytest.raises(Exception):
        settings.kafka_port = 1
