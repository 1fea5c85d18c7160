import argparse

import serving
from lens.cli import serve


def test_serve_command_takes_the_production_flags():
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args([
        "serve", "--port=8500", "--rest_api_port=8501", "--model_config_file=serving/models.config",
        "--enable_batching", "--batching_parameters_file=serving/batching.config",
        "--model_base_path_prefix_map", "/models=serving/models",
    ])
    assert args.handler is serve.run
    assert args.enable_batching and args.model_base_path_prefix_map == ["/models=serving/models"]


def test_public_surface_resolves():
    for name in serving.__all__:
        assert getattr(serving, name).__name__ == name
