import argparse

import pytest

from lens.errors import ConfigError
from serving.options import add_flags, options_from_args


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_flags(parser)
    return options_from_args(parser.parse_args(list(argv)))


def test_production_command_line_parses():
    options = parse(
        "--port=8500", "--rest_api_port=8501", "--model_config_file=/config/models.config",
        "--model_config_file_poll_wait_seconds=60", "--file_system_poll_wait_seconds=30",
        "--enable_batching", "--batching_parameters_file=/config/batching.config",
        "--monitoring_config_file=/config/monitoring.config",
    )
    assert options.port == 8500 and options.rest_api_port == 8501
    assert options.enable_batching is True
    assert options.model_config_file_poll_wait_seconds == 60
    assert options.host == "127.0.0.1"


def test_boolean_flags_take_tf_style_values():
    assert parse("--model_base_path=/m", "--enable_batching=false").enable_batching is False
    assert parse("--model_base_path=/m", "--enable_batching=true").enable_batching is True
    assert parse("--model_base_path=/m").enable_model_warmup is True


def test_prefix_map_is_repeatable():
    options = parse("--model_base_path=/m", "--model_base_path_prefix_map", "/models=a",
                    "--model_base_path_prefix_map=/x=b")
    assert options.model_base_path_prefix_map == ("/models=a", "/x=b")


@pytest.mark.parametrize("argv", [(), ("--model_base_path=/m", "--model_config_file=c")])
def test_exactly_one_model_source(argv):
    with pytest.raises(ConfigError, match="exactly one"):
        parse(*argv)


def test_the_docker_compose_model_server_command_is_accepted_verbatim():
    from pathlib import Path

    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[3] / "docker-compose.yml").read_text())
    command = compose["services"]["model-server"]["command"]
    options = parse(*command)
    assert options.model_config_file == "/config/models.config"
    assert options.enable_batching and options.monitoring_config_file == "/config/monitoring.config"


def test_request_size_limit_defaults_to_64_mib_and_must_be_positive():
    assert parse("--model_base_path=/m").max_request_bytes == 64 * 1024 * 1024
    assert parse("--model_base_path=/m", "--max_request_bytes=1024").max_request_bytes == 1024
    with pytest.raises(ConfigError, match="max_request_bytes"):
        parse("--model_base_path=/m", "--max_request_bytes=0")
