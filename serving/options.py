"""The model server's options: ``tensorflow_model_server``'s flags plus LENS's additions.

Kept free of TensorFlow and gRPC imports so ``lens --help`` stays fast.
"""

import argparse
import logging
from dataclasses import dataclass, field

from lens.errors import ConfigError

__all__ = ["ServerOptions", "add_flags", "options_from_args"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    """What ``tensorflow_model_server``'s flags say, plus LENS's host, metrics port and prefix map."""

    port: int = 8500
    host: str = "127.0.0.1"
    rest_api_port: int = 0
    model_name: str = "default"
    model_base_path: str | None = None
    model_config_file: str | None = None
    model_config_file_poll_wait_seconds: float = 0.0
    file_system_poll_wait_seconds: float = 1.0
    enable_batching: bool = False
    batching_parameters_file: str | None = None
    monitoring_config_file: str | None = None
    enable_model_warmup: bool = True
    max_num_load_retries: int = 5
    metrics_port: int | None = None
    model_base_path_prefix_map: tuple[str, ...] = field(default_factory=tuple)
    grace_period_s: float = 10.0
    max_request_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_request_bytes < 1:
            raise ConfigError(f"--max_request_bytes must be >= 1, got {self.max_request_bytes}")
        if bool(self.model_base_path) == bool(self.model_config_file):
            raise ConfigError(
                "give exactly one of --model_base_path (with --model_name) or --model_config_file"
            )
        if self.batching_parameters_file and not self.enable_batching:
            log.warning("--batching_parameters_file is ignored without --enable_batching")


def _bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """tensorflow_model_server's flags (same names and meanings), then LENS's additions."""
    tf = parser.add_argument_group("tensorflow_model_server flags")
    tf.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500; 0 picks a free one)")
    tf.add_argument(
        "--rest_api_port", type=int, default=0,
        help="accepted for compatibility: the REST API is not served; with --monitoring_config_file "
        "enabling Prometheus, metrics are served on this port",
    )
    tf.add_argument("--model_name", default="default", help="model name with --model_base_path")
    tf.add_argument("--model_base_path", default=None, help="directory of integer version dirs (one model)")
    tf.add_argument("--model_config_file", default=None, help="ModelServerConfig text file (model_config_list)")
    tf.add_argument(
        "--model_config_file_poll_wait_seconds", type=float, default=0.0,
        help="re-read --model_config_file this often (0: never)",
    )
    tf.add_argument(
        "--file_system_poll_wait_seconds", type=float, default=1.0,
        help="poll base paths for new versions this often (<= 0: only at start)",
    )
    tf.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False,
                    help="batch concurrent Predict requests on the server")
    tf.add_argument("--batching_parameters_file", default=None, help="BatchingParameters text file")
    tf.add_argument("--monitoring_config_file", default=None, help="MonitoringConfig text file")
    tf.add_argument("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
                    help="replay assets.extra/tf_serving_warmup_requests before a version is AVAILABLE")
    tf.add_argument("--max_num_load_retries", type=int, default=5,
                    help="retries of a failed version load (one per poll)")
    lens = parser.add_argument_group("LENS additions")
    lens.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    lens.add_argument("--metrics_port", type=int, default=None,
                      help="serve Prometheus metrics on this HTTP port (any path)")
    lens.add_argument(
        "--model_base_path_prefix_map", action="append", default=[], metavar="PREFIX=DIR",
        help="rewrite base paths starting with PREFIX to DIR, e.g. /models=serving/models, so the "
        "production models.config works locally (repeatable; relative base paths resolve "
        "against the config file's directory)",
    )
    lens.add_argument("--grace_period_s", type=float, default=10.0,
                      help="on SIGTERM/SIGINT, how long calls in flight may take to finish")
    lens.add_argument(
        "--max_request_bytes", type=int, default=64 * 1024 * 1024,
        help="largest request message accepted (default 64 MiB); larger ones are refused with "
        "RESOURCE_EXHAUSTED before they are parsed",
    )


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        port=args.port,
        host=args.host,
        rest_api_port=args.rest_api_port,
        model_name=args.model_name,
        model_base_path=args.model_base_path,
        model_config_file=args.model_config_file,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        enable_batching=args.enable_batching,
        batching_parameters_file=args.batching_parameters_file,
        monitoring_config_file=args.monitoring_config_file,
        enable_model_warmup=args.enable_model_warmup,
        max_num_load_retries=args.max_num_load_retries,
        metrics_port=args.metrics_port,
        model_base_path_prefix_map=tuple(args.model_base_path_prefix_map),
        grace_period_s=args.grace_period_s,
        max_request_bytes=args.max_request_bytes,
    )
