"""The model server's configuration files, read as TensorFlow Serving reads them.

- ``models.config``: a text-format ``tensorflow.serving.ModelServerConfig`` holding a
  ``model_config_list`` (``--model_config_file``).
- the batching parameters file: a text-format ``tensorflow.serving.BatchingParameters``
  (``--batching_parameters_file``), e.g. ``max_batch_size { value: 128 }``.
- the monitoring config: a text-format ``tensorflow.serving.MonitoringConfig``
  (``--monitoring_config_file``), e.g. ``prometheus_config { enable: true path: "/metrics" }``.

The last two messages are not shipped in ``tensorflow-serving-api``, so their descriptors are built
here with the same field names, numbers and wrapper types as TensorFlow Serving's protos; the
text-format parser then reports mistakes with line and column.

LENS addition: ``prefix_map`` rewrites a production ``base_path`` prefix (``/models`` in the
container) to a local directory, so the exact ``serving/models.config`` works outside Docker.
Relative base paths resolve against the config file's directory.
"""

from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf import wrappers_pb2  # noqa: F401  (registers the wrapper types in the pool)
from tensorflow_serving.config import model_server_config_pb2

from lens.errors import ConfigError

__all__ = [
    "BatchingParameters",
    "MonitoringConfig",
    "load_batching_parameters",
    "load_model_server_config",
    "load_monitoring_config",
    "parse_prefix_map",
    "single_model_config",
]


def _build_messages():
    """Descriptors of tensorflow.serving.BatchingParameters and MonitoringConfig."""
    file = descriptor_pb2.FileDescriptorProto(
        name="lens_serving/tf_serving_batching_and_monitoring.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    F = descriptor_pb2.FieldDescriptorProto
    batching = file.message_type.add(name="BatchingParameters")
    for number, name, wrapper in (
        (1, "max_batch_size", "Int64Value"),
        (2, "batch_timeout_micros", "Int64Value"),
        (3, "max_enqueued_batches", "Int64Value"),
        (4, "num_batch_threads", "Int64Value"),
        (5, "thread_pool_name", "StringValue"),
        (7, "pad_variable_length_inputs", "BoolValue"),
        (8, "enable_large_batch_splitting", "BoolValue"),
        (9, "max_execution_batch_size", "Int64Value"),
    ):
        batching.field.add(
            name=name, number=number, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
            type_name=f".google.protobuf.{wrapper}",
        )
    batching.field.add(
        name="allowed_batch_sizes", number=6, type=F.TYPE_INT64, label=F.LABEL_REPEATED
    )
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(file.SerializeToString())
    classes = message_factory.GetMessages([file], pool=pool)
    return (
        classes["tensorflow.serving.BatchingParameters"],
        classes["tensorflow.serving.MonitoringConfig"],
    )


BatchingParametersProto, MonitoringConfigProto = _build_messages()


@dataclass(frozen=True)
class BatchingParameters:
    """Server-side batching, with TensorFlow Serving's defaults for unset fields.

    A batch closes when it holds ``max_batch_size`` rows or its first request has waited
    ``batch_timeout_micros``; ``num_batch_threads`` batches run at once; a queue (one per model
    version, signature and output set) holds at most ``max_enqueued_batches`` batches, and a
    request that does not fit is refused with UNAVAILABLE.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 4
    max_enqueued_batches: int = 10
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"batching parameter {name} must be > 0, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ConfigError(
                f"batching parameter batch_timeout_micros must be >= 0, got {self.batch_timeout_micros}"
            )
        if self.allowed_batch_sizes and self.allowed_batch_sizes[-1] != self.max_batch_size:
            raise ConfigError(
                "the last entry of allowed_batch_sizes must equal max_batch_size "
                f"({list(self.allowed_batch_sizes)} vs {self.max_batch_size})"
            )

    @property
    def batch_timeout_s(self) -> float:
        return self.batch_timeout_micros / 1e6


@dataclass(frozen=True)
class MonitoringConfig:
    """``prometheus_config``: whether metrics are exported and at which HTTP path."""

    prometheus_enable: bool = False
    prometheus_path: str = "/monitoring/prometheus/metrics"


def _read(path: Path, what: str, flag: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}. Check {flag}.") from exc


def _parse(text: str, message, path: Path, what: str):
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigError(
            f"{path}: not a valid {what} ({message.DESCRIPTOR.full_name} in protobuf text "
            f"format): {exc}"
        ) from exc


def load_batching_parameters(path: str | Path) -> BatchingParameters:
    """Read a TensorFlow Serving batching parameters file."""
    path = Path(path)
    proto = _parse(
        _read(path, "batching parameters file", "--batching_parameters_file"),
        BatchingParametersProto(), path, "batching parameters file",
    )
    values = {}
    for name in (
        "max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches",
        "pad_variable_length_inputs", "enable_large_batch_splitting",
    ):
        if proto.HasField(name):
            values[name] = getattr(proto, name).value
    if proto.allowed_batch_sizes:
        values["allowed_batch_sizes"] = tuple(proto.allowed_batch_sizes)
    try:
        return BatchingParameters(**values)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_monitoring_config(path: str | Path) -> MonitoringConfig:
    """Read a TensorFlow Serving monitoring config file."""
    path = Path(path)
    proto = _parse(
        _read(path, "monitoring config file", "--monitoring_config_file"),
        MonitoringConfigProto(), path, "monitoring config file",
    )
    prometheus = proto.prometheus_config
    return MonitoringConfig(
        prometheus_enable=prometheus.enable,
        prometheus_path=prometheus.path or MonitoringConfig.prometheus_path,
    )


def parse_prefix_map(entries: list[str] | None) -> dict[str, Path]:
    """``["/models=serving/models"]`` -> ``{"/models": Path("serving/models").resolve()}``."""
    mapping = {}
    for entry in entries or ():
        prefix, sep, local = entry.partition("=")
        if not sep or not prefix or not local:
            raise ConfigError(
                f"--model_base_path_prefix_map {entry!r}: expected PREFIX=LOCAL_DIR, "
                "e.g. /models=serving/models"
            )
        mapping[prefix.rstrip("/") or "/"] = Path(local).resolve()
    return mapping


def resolve_base_path(base_path: str, prefix_map: dict[str, Path], relative_to: Path) -> str:
    """Apply the prefix map (longest prefix first), then resolve a relative path."""
    for prefix in sorted(prefix_map, key=len, reverse=True):
        if base_path == prefix or base_path.startswith(prefix.rstrip("/") + "/"):
            rest = base_path[len(prefix):].lstrip("/")
            return str(prefix_map[prefix] / rest) if rest else str(prefix_map[prefix])
    path = Path(base_path)
    return str(path if path.is_absolute() else (relative_to / path).resolve())


def load_model_server_config(
    path: str | Path, prefix_map: dict[str, Path] | None = None
) -> model_server_config_pb2.ModelServerConfig:
    """Read ``--model_config_file``; base paths come back rewritten by ``prefix_map``."""
    path = Path(path)
    config = _parse(
        _read(path, "model config file", "--model_config_file"),
        model_server_config_pb2.ModelServerConfig(), path, "model config file",
    )
    return normalize_config(config, prefix_map or {}, path.resolve().parent, source=str(path))


def normalize_config(
    config: model_server_config_pb2.ModelServerConfig,
    prefix_map: dict[str, Path],
    relative_to: Path,
    source: str = "model server config",
) -> model_server_config_pb2.ModelServerConfig:
    """Check a ModelServerConfig as TensorFlow Serving does and rewrite its base paths."""
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(
            f"{source}: only model_config_list is supported (custom_model_config is not)"
        )
    out = model_server_config_pb2.ModelServerConfig()
    out.CopyFrom(config)
    names = set()
    for model in out.model_config_list.config:
        if not model.name:
            raise ConfigError(f"{source}: a model config has no name")
        if model.name in names:
            raise ConfigError(f"{source}: Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
        if not model.base_path:
            raise ConfigError(f"{source}: model {model.name} has no base_path")
        if model.model_platform and model.model_platform != "tensorflow":
            raise ConfigError(
                f"{source}: model {model.name}: model_platform {model.model_platform!r} is not "
                "served here; use \"tensorflow\""
            )
        model.base_path = resolve_base_path(model.base_path, prefix_map, relative_to)
    return out


def single_model_config(
    name: str, base_path: str, prefix_map: dict[str, Path] | None = None
) -> model_server_config_pb2.ModelServerConfig:
    """What ``--model_name``/``--model_base_path`` mean: one model, latest version policy."""
    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    model.model_version_policy.latest.num_versions = 1
    return normalize_config(config, prefix_map or {}, Path.cwd(), source="--model_base_path")
