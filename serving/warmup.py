"""SavedModel warmup: replay ``<version>/assets.extra/tf_serving_warmup_requests`` before serving.

The file is a TFRecord of ``tensorflow.serving.PredictionLog``; like TensorFlow Serving, at most
1000 records are allowed, only ``predict_log`` entries are replayed here (classify, regress and
multi_inference logs fail the load, since those APIs are not served), and any failure fails the
version's load, so a model that cannot answer its own warmup never becomes AVAILABLE.
"""

import logging
from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving.errors import ServingError
from serving.servable import Servable

__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "run_warmup", "warmup_path", "write_warmup_file"]

log = logging.getLogger(__name__)

WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


def warmup_path(export_dir: str | Path) -> Path:
    return Path(export_dir) / "assets.extra" / WARMUP_FILE


def run_warmup(servable: Servable, num_request_iterations: int = 1) -> int:
    """Replay the version's warmup requests; returns how many ran (0 when there is no file)."""
    path = warmup_path(servable.path)
    if not path.exists():
        return 0
    records = []
    for raw in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS + 1).as_numpy_iterator():
        if len(records) >= MAX_WARMUP_RECORDS:
            raise ServingError.invalid_argument(
                f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
            )
        records.append(raw)
    for raw in records:
        entry = prediction_log_pb2.PredictionLog()
        entry.ParseFromString(raw)
        kind = entry.WhichOneof("log_type")
        if kind != "predict_log":
            raise ServingError.invalid_argument(
                f"Unsupported log_type for warmup: {kind}; only predict_log is served"
            )
        for _ in range(max(1, num_request_iterations)):
            servable.predict(entry.predict_log.request)
    log.info("warmup of %s version %d: %d requests from %s", servable.name, servable.version, len(records), path)
    return len(records)


def write_warmup_file(export_dir: str | Path, requests) -> Path:
    """Write PredictRequests as a warmup file (for exports and tests)."""
    path = warmup_path(export_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for request in requests:
            entry = prediction_log_pb2.PredictionLog()
            entry.predict_log.request.CopyFrom(request)
            writer.write(entry.SerializeToString())
    return path
