"""LocalKafka: its rendered server.properties (PLAINTEXT by default, SASL/PLAIN when configured)
and its JVM options."""

import pytest

from lens.errors import ConfigError
from lens.settings import LensSettings, load_settings
from services.stack import LocalKafka


def rendered(tmp_path, **settings) -> dict[str, str]:
    broker = LocalKafka(LensSettings(run_dir=tmp_path, kafka_port=19092, **settings))
    broker.home.mkdir(parents=True, exist_ok=True)
    broker._render_config()
    lines = broker.config_path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_default_broker_is_plaintext_without_sasl(clean_lens_env, tmp_path):
    config = rendered(tmp_path)
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:9093"
    assert config["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert config["inter.broker.listener.name"] == "PLAINTEXT"
    assert not [key for key in config if "sasl" in key]


def test_sasl_plaintext_settings_give_a_sasl_listener_accepting_that_user(clean_lens_env, tmp_path):
    config = rendered(
        tmp_path, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="lens",
        kafka_sasl_password='a"b\\c',
    )
    assert config["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:9093"
    assert config["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert config["sasl.enabled.mechanisms"] == "PLAIN"
    # JAAS escapes " and \ (\" and \\); the .properties format doubles every \ again.
    quoted = 'a\\\\"b\\\\\\\\c'
    assert config["listener.name.sasl_plaintext.plain.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="lens" password="{quoted}" user_lens="{quoted}";'
    )
    assert (tmp_path / "kafka" / "server.properties").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"kafka_security_protocol": "SSL"}, "not SSL"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "SCRAM-SHA-256",
          "kafka_sasl_username": "lens", "kafka_sasl_password": "pw"}, "with SCRAM-SHA-256"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "a b",
          "kafka_sasl_password": "pw"}, "SASL user name"),
    ],
)
def test_what_the_local_broker_cannot_serve_is_a_config_error(clean_lens_env, tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        rendered(tmp_path, **settings)


def java_options(tmp_path, monkeypatch, **settings) -> list[str]:
    """The JVM options before the main class of the broker's command line."""
    monkeypatch.setattr("services.stack.kafka.resolve_kafka_jars", lambda: tmp_path / "lib")
    broker = LocalKafka(LensSettings(run_dir=tmp_path, **settings))
    command = broker._java_command("java", "kafka.Kafka", "server.properties")
    return command[1 : command.index("-cp")]


def test_the_broker_jvm_compiles_with_c1_only_unless_told_otherwise(clean_lens_env, tmp_path,
                                                                    monkeypatch):
    assert "-XX:TieredStopAtLevel=1" in java_options(tmp_path, monkeypatch)
    chosen = java_options(tmp_path, monkeypatch,
                          kafka_jvm_options="-XX:+UseSerialGC '-Dlens.note=a b'")
    assert chosen[:2] == ["-XX:+UseSerialGC", "-Dlens.note=a b"]
    assert "-XX:TieredStopAtLevel=1" not in chosen
    assert not [o for o in java_options(tmp_path, monkeypatch, kafka_jvm_options="")
                if o.startswith("-XX")]


@pytest.mark.parametrize("options, message", [
    ("-Dlens.note='unclosed", "cannot split"),
    ("-XX:TieredStopAtLevel=1 -Xmx2g", "LENS_KAFKA_HEAP"),
])
def test_jvm_options_that_do_not_split_or_set_the_heap_are_a_config_error(
        clean_lens_env, monkeypatch, options, message):
    monkeypatch.setenv("LENS_KAFKA_JVM_OPTIONS", options)
    with pytest.raises(ConfigError, match=f"kafka_jvm_options(.|\\n)*{message}"):
        load_settings()
