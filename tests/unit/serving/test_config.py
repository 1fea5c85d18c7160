from pathlib import Path

import pytest

from lens.errors import ConfigError
from serving.config import (
    BatchingParameters,
    load_batching_parameters,
    load_model_server_config,
    load_monitoring_config,
    parse_prefix_map,
    single_model_config,
)

REPO = Path(__file__).resolve().parents[3]


def test_production_models_config_maps_the_container_prefix(tmp_path):
    config = load_model_server_config(
        REPO / "serving" / "models.config", parse_prefix_map([f"/models={tmp_path}"])
    )
    (model,) = config.model_config_list.config
    assert model.name == "lens"
    assert model.base_path == str(tmp_path / "lens")
    assert model.model_version_policy.latest.num_versions == 1


def test_relative_base_path_resolves_against_the_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list { config { name: "m" base_path: "repo/m" } }')
    (model,) = load_model_server_config(path).model_config_list.config
    assert model.base_path == str(tmp_path / "repo" / "m")


def test_syntax_error_names_file_line_and_message(tmp_path):
    path = tmp_path / "models.config"
    path.write_text('model_config_list {\n  config { name: "m" base_pth: "/x" }\n}\n')
    with pytest.raises(ConfigError, match=r"models.config.*2:.*base_pth"):
        load_model_server_config(path)


def test_duplicate_model_is_refused(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(
        'model_config_list { config { name: "m" base_path: "/a" } config { name: "m" base_path: "/b" } }'
    )
    with pytest.raises(ConfigError, match="multiple times"):
        load_model_server_config(path)


def test_missing_config_file_says_which_flag(tmp_path):
    with pytest.raises(ConfigError, match="--model_config_file"):
        load_model_server_config(tmp_path / "nope.config")


def test_production_batching_parameters():
    params = load_batching_parameters(REPO / "serving" / "batching.config")
    assert params == BatchingParameters(
        max_batch_size=128, batch_timeout_micros=2000, num_batch_threads=2, max_enqueued_batches=100
    )
    assert params.batch_timeout_s == pytest.approx(0.002)


def test_batching_defaults_are_tf_servings(tmp_path):
    path = tmp_path / "b.config"
    path.write_text("")
    assert load_batching_parameters(path) == BatchingParameters()


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_batch_size { value: 8 }\nbogus { value: 1 }\n", r"2:1.*no field named \"bogus\""),
        ("max_batch_size: 8\n", r"max_batch_size"),
        ("max_batch_size { value: 0 }\n", r"max_batch_size must be > 0"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n", r"allowed_batch_sizes"),
    ],
)
def test_bad_batching_parameters_are_explained(tmp_path, text, message):
    path = tmp_path / "b.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_batching_parameters(path)


def test_monitoring_config():
    config = load_monitoring_config(REPO / "serving" / "monitoring.config")
    assert config.prometheus_enable
    assert config.prometheus_path == "/monitoring/prometheus/metrics"


def test_prefix_map_needs_prefix_and_dir():
    with pytest.raises(ConfigError, match="PREFIX=LOCAL_DIR"):
        parse_prefix_map(["/models"])


def test_single_model_config_is_latest_one(tmp_path):
    (model,) = single_model_config("m", str(tmp_path)).model_config_list.config
    assert (model.name, model.base_path) == ("m", str(tmp_path))
    assert model.model_version_policy.latest.num_versions == 1
