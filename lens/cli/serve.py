"""``lens serve``: the local model server, speaking TensorFlow Serving's gRPC API.

It takes ``tensorflow_model_server``'s flags with the same names and meanings, so the production
command line (docker-compose service ``model-server``) works here too, plus
``--model_base_path_prefix_map /models=serving/models`` to map the container's model directory:

    lens serve --port=8500 --model_config_file=serving/models.config \\
        --model_base_path_prefix_map /models=serving/models \\
        --enable_batching --batching_parameters_file=serving/batching.config \\
        --file_system_poll_wait_seconds=30 --model_config_file_poll_wait_seconds=60
"""

import argparse
import sys

from lens.settings import LensSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the model server (TensorFlow Serving gRPC API) over serving/models",
        description="Serve SavedModel versions over TensorFlow Serving's gRPC API "
        "(PredictionService Predict/GetModelMetadata, ModelService GetModelStatus, "
        "grpc.health.v1), with its flags, version policies, hot version swaps, server-side "
        "batching and warmup. Stops gracefully on SIGTERM/SIGINT. Binds 127.0.0.1 by default.",
        epilog="Example: lens serve --model_config_file=serving/models.config "
        "--model_base_path_prefix_map /models=serving/models --enable_batching "
        "--batching_parameters_file=serving/batching.config",
    )
    _add_flags(parser)
    parser.set_defaults(handler=run)


def _add_flags(parser: argparse.ArgumentParser) -> None:
    from serving.options import add_flags  # light: no TensorFlow until the handler runs

    add_flags(parser)


def run(args: argparse.Namespace, settings: LensSettings) -> int:
    from serving.options import options_from_args

    options = options_from_args(args)  # flag mistakes surface before TensorFlow loads
    from serving.server import serve

    return serve(options)


def main(argv: list[str] | None = None) -> int:
    """``python -m lens.cli.serve``: the same command without the rest of the CLI."""
    import logging

    from lens.errors import LensError
    from lens.settings import load_settings

    parser = argparse.ArgumentParser(prog="lens serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_flags(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args, load_settings())
    except LensError as exc:
        print(f"lens: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
