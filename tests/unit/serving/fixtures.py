"""Tiny SavedModels for the model server's tests (built in a tmp dir, a second or two each).

Every version of the toy model answers ``serving_default``:
    x: float32 [batch, 3]  ->  y = 2 * x + version   [batch, 3]
                               total = sum(y, axis=1) [batch]
and ``pair``:
    a: float32 [batch, 2], b: int64 [batch]  ->  out = sum(a, axis=1) + b  [batch] (float32)
and ``scalar`` (not batch-major, to test the batching error):
    s: float32 []  ->  t = s + 1  []
"""

from pathlib import Path

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2, predict_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.tensors import to_tensor_proto

MODEL = "toy"


class ToyModel(tf.Module):
    def __init__(self, version: int) -> None:
        super().__init__()
        self.offset = tf.Variable(float(version), trainable=False)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def serve(self, x):
        y = 2.0 * x + self.offset
        return {"y": y, "total": tf.reduce_sum(y, axis=1)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2], tf.float32, name="a"),
            tf.TensorSpec([None], tf.int64, name="b"),
        ]
    )
    def pair(self, a, b):
        return {"out": tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="s")])
    def scalar(self, s):
        return {"t": s + 1.0}


def save_toy_version(base_path: Path, version: int, warmup: list | None = None) -> Path:
    """Export version ``version`` under ``base_path`` atomically (write aside, then rename)."""
    base_path.mkdir(parents=True, exist_ok=True)
    staging = base_path / f".tmp-{version}"
    model = ToyModel(version)
    tf.saved_model.save(
        model,
        str(staging),
        signatures={"serving_default": model.serve, "pair": model.pair, "scalar": model.scalar},
    )
    if warmup is not None:
        from serving.warmup import write_warmup_file

        write_warmup_file(staging, warmup)
    final = base_path / str(version)
    staging.rename(final)
    return final


def predict_request(x, *, model: str = MODEL, signature: str = "", version: int | None = None,
                    label: str | None = None, output_filter=()) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if signature:
        request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(to_tensor_proto(np.asarray(x, dtype=np.float32)))
    request.output_filter.extend(output_filter)
    return request


def expected_y(x, version: int) -> np.ndarray:
    return 2.0 * np.asarray(x, dtype=np.float32) + version


def config_for(base, policy: str = "", labels: str = "", name: str = "toy"):
    return text_format.Parse(
        f'model_config_list {{ config {{ name: "{name}" base_path: "{base}" '
        f"model_platform: \"tensorflow\" {policy} {labels} }} }}",
        model_server_config_pb2.ModelServerConfig(),
    )


def spec(name="toy", version=None, label=None) -> model_pb2.ModelSpec:
    model_spec = model_pb2.ModelSpec(name=name)
    if version is not None:
        model_spec.version.value = version
    if label is not None:
        model_spec.version_label = label
    return model_spec
