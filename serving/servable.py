"""One loaded SavedModel version: its signatures, and Predict on numpy arrays.

``Servable.prepare`` checks a ``PredictRequest`` against a signature exactly as TensorFlow Serving's
``predict_util.cc`` and ``saved_model::GetInputValues`` do (same order, codes and messages), so a
bad request fails on its own before it can join a server-side batch. ``Servable.run`` executes the
signature's concrete function on batch-major arrays (``[batch, ...]``).
"""

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2

from serving.errors import ServingError
from serving.tensors import dtype_name, to_ndarray

__all__ = ["DEFAULT_SIGNATURE", "PreparedPredict", "Servable"]

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"
PREDICT_METHODS = (
    "tensorflow/serving/predict",
    "tensorflow/serving/classify",
    "tensorflow/serving/regress",
)


@dataclass
class PreparedPredict:
    """A checked Predict: inputs as arrays keyed by signature input alias, outputs to fetch."""

    signature_name: str
    inputs: dict[str, np.ndarray]  # alias -> [batch, ...]
    output_aliases: tuple[str, ...]  # in the order of the request's output_filter, else sorted
    batch_size: int | None = None  # rows (dim 0), when every input has the same dim 0
    extra: dict = field(default_factory=dict)


def read_signature_defs(export_dir: Path) -> dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs of the ``serve`` MetaGraph in ``saved_model.pb``."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ServingError.not_found(
        f"Could not find meta graph def matching supplied tags: {{ {SERVE_TAG} }}. "
        f"Export the SavedModel in {export_dir} with the serve tag."
    )


class Servable:
    """A SavedModel version held in memory. Thread-safe: ``run`` may be called concurrently."""

    def __init__(self, name: str, version: int, path: str | Path) -> None:
        self.name = name
        self.version = version
        self.path = Path(path)
        self.signature_defs = read_signature_defs(self.path)
        self._model = tf.saved_model.load(str(self.path), tags=[SERVE_TAG])
        self._functions = dict(self._model.signatures)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Servable({self.name!r}, {self.version})"

    # -- metadata --------------------------------------------------------------------------
    def signature_def_map(self) -> get_model_metadata_pb2.SignatureDefMap:
        out = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.signature_defs.items():
            out.signature_def[key].CopyFrom(signature)
        return out

    # -- predict ---------------------------------------------------------------------------
    def prepare(self, request: predict_pb2.PredictRequest, batching: bool = False) -> PreparedPredict:
        """Validate ``request`` against its signature; raises ServingError as TF Serving would."""
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature = self.signature_defs.get(signature_name)
        if signature is None:
            raise ServingError.failed_precondition(
                f'Serving signature key "{signature_name}" not found.'
            )
        if signature.method_name not in PREDICT_METHODS:
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of {"
                + ", ".join(PREDICT_METHODS)
                + f"}}. Was: {signature.method_name}",
            )
        request_keys = sorted(request.inputs)
        signature_keys = sorted(signature.inputs)
        if len(request_keys) > len(signature_keys) or (
            len(request_keys) < len(signature_keys) and not signature.defaults
        ):
            extra = sorted(set(request_keys) - set(signature_keys))
            missing = sorted(set(signature_keys) - set(request_keys))
            raise ServingError.invalid_argument(
                f"input size does not match signature: {len(request_keys)}!={len(signature_keys)} "
                f"len({{{','.join(request_keys)}}}) != len({{{','.join(signature_keys)}}}). "
                f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
            )
        inputs: dict[str, np.ndarray] = {}
        seen = set()
        for alias in signature_keys:
            info = signature.inputs[alias]
            if alias in request.inputs:
                proto = request.inputs[alias]
                seen.add(alias)
            elif alias in signature.defaults:
                proto = signature.defaults[alias]
            else:
                raise ServingError.invalid_argument(
                    f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                    "and no default value provided. Inputs expected to be in the request "
                    f"{{{','.join(request_keys)}}}, or default input alias set: "
                    + ",".join(sorted(signature.defaults))
                )
            try:
                array = to_ndarray(proto)
            except Exception:  # noqa: BLE001 - any decode failure is the client's tensor
                raise ServingError.invalid_argument(f"tensor parsing error: {alias}") from None
            _check_tensor(alias, array, proto.dtype, info, position=len(inputs))
            inputs[alias] = array
        if request_keys and len(seen) != len(request_keys):
            raise ServingError.invalid_argument(
                f"Inputs contains invalid name. Used request inputs: {','.join(sorted(seen))}, "
                f"request input: {','.join(request_keys)}"
            )
        aliases = []
        for alias in request.output_filter:
            if alias not in signature.outputs:
                raise ServingError.invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {{{','.join(sorted(signature.outputs))}}}."
                )
            if alias in aliases:
                raise ServingError.invalid_argument(f"duplicate output tensor alias: {alias}")
            aliases.append(alias)
        if not aliases:
            aliases = sorted(signature.outputs)
        batch_size = None
        if batching:
            sizes = set()
            for array in inputs.values():
                if array.ndim == 0:
                    raise ServingError.invalid_argument(
                        "Batching Run() input tensors must have at least one dimension"
                    )
                sizes.add(array.shape[0])
            if len(sizes) > 1:
                raise ServingError.invalid_argument(
                    "Batching Run() input tensors must have equal 0th-dimension size"
                )
            batch_size = sizes.pop() if sizes else 0
        return PreparedPredict(signature_name, inputs, tuple(aliases), batch_size)

    def run(
        self, signature_name: str, inputs: dict[str, np.ndarray], output_aliases: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """Execute a signature: ``inputs`` alias -> array, returns alias -> array."""
        function = self._functions.get(signature_name)
        if function is None:
            raise ServingError.failed_precondition(
                f'Serving signature key "{signature_name}" not found.'
            )
        try:
            outputs = function(**{alias: tf.constant(value) for alias, value in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise ServingError.invalid_argument(_tf_message(exc)) from exc
        except tf.errors.OpError as exc:
            raise ServingError(grpc.StatusCode.INTERNAL, _tf_message(exc)) from exc
        return {alias: outputs[alias].numpy() for alias in output_aliases}

    def predict(self, request: predict_pb2.PredictRequest) -> dict[str, np.ndarray]:
        """Prepare and run one request (no batching): used by warmup and in-process callers."""
        prepared = self.prepare(request)
        return self.run(prepared.signature_name, prepared.inputs, prepared.output_aliases)


def _tf_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def _check_tensor(alias: str, array: np.ndarray, dtype: int, info, position: int) -> None:
    """dtype and shape against the signature's TensorInfo (what Session::Run would reject)."""
    if info.dtype and dtype != info.dtype:
        raise ServingError.invalid_argument(
            f"Expects arg[{position}] to be {_short(info.dtype)} but {_short(dtype)} is provided"
        )
    if info.tensor_shape.unknown_rank:
        return
    expected = [d.size for d in info.tensor_shape.dim]
    if len(expected) != array.ndim or any(
        e >= 0 and e != a for e, a in zip(expected, array.shape)
    ):
        shown = "[" + ",".join("?" if e < 0 else str(e) for e in expected) + "]"
        raise ServingError.invalid_argument(
            f"input {alias}: shape {list(array.shape)} is incompatible with the signature's "
            f"shape {shown}"
        )


def _short(dtype: int) -> str:
    return dtype_name(dtype).removeprefix("DT_").lower()
