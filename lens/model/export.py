"""Export a trained LENS model for TensorFlow Serving.

    export_saved_model(trained, "serving/models/lens")  ->  serving/models/lens/<version>/

The version directory is a SavedModel (``tf.saved_model.save`` of a ``tf.Module`` with explicit
input signatures), written under a temporary name and renamed, so a model server never sees a
half-written version. Every input and output is batch-major (first dimension -1), so server-side
batching works; there are no scalar inputs.

Inputs of ``next_basket``, ``time_to_next`` and ``funnel_embedding`` (B customers, S = max_sessions,
L = max_basket_items, F = len(lens.data.features.FEATURE_NAMES)): each customer's latest <= S
sessions, oldest first, left-aligned and padded:
  session_items    string  [B, S, L]  product ids, "" = padding (unknown ids are fine: OOV)
  session_features float32 [B, S, F]  raw features in FEATURE_NAMES order, 0 for padding sessions
  session_count    int32   [B]        sessions given (1..S)
  customer_id      string  [B]        customers unseen in training share the reserved user row
Outputs:
  next_basket:      items string [B, D] ("" after the basket ended), item_scores float [B, D],
                    quantities float [B, D], basket_size int32 [B], ranking string [B, K],
                    ranking_scores float [B, K], days_to_next float [B]   (D = max_target_items)
  time_to_next:     days_to_next float [B]
  funnel_embedding: embedding float [B, H]
  item_embedding:   input product_id string [B] -> embedding float [B, E], known bool [B]

Vocabulary: outputs are product id strings. The id <-> row mapping ships as assets
``items.txt`` (line i = vocabulary id i; lines 0 and 1 are "<pad>" and "<oov>") and ``users.txt``
(line i = user row i; line 0 is "<unknown>"), read by lookup tables inside the graph.
Warmup: ``assets.extra/tf_serving_warmup_requests``, one PredictRequest per signature.
"""

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lens.data.basket import Basket
from lens.data.features import FEATURE_NAMES, funnel_features
from lens.model.trained_lens import TrainedLens

__all__ = [
    "SIGNATURES",
    "build_serving_module",
    "export_saved_model",
    "next_version",
    "serving_inputs",
]

SIGNATURES = ("next_basket", "time_to_next", "funnel_embedding", "item_embedding")
WARMUP_FILE = "tf_serving_warmup_requests"


def next_version(base: Path) -> int:
    """1 + the largest integer version directory under ``base`` (1 when there is none)."""
    if not base.is_dir():
        return 1
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def serving_inputs(
    histories: Mapping[str, Sequence[Basket]], max_sessions: int, max_basket_items: int
) -> dict[str, np.ndarray]:
    """The funnel-signature inputs for each customer's latest ``max_sessions`` baskets (customers
    in ``histories`` order, each history non-empty); S and L come from the exported config (or
    the server's signature metadata). Features are those of the whole history, as in training:
    a session's features read only the session before it, so the latest S + 1 baskets give them.
    """
    customers = list(histories)
    B, S, L, F = len(customers), max_sessions, max_basket_items, len(FEATURE_NAMES)
    items = np.full((B, S, L), b"", dtype=object)  # [B, S, L]
    features = np.zeros((B, S, F), np.float32)  # [B, S, F]
    counts = np.zeros(B, np.int32)  # [B]
    matrices = funnel_features({c: list(histories[c])[-(S + 1):] for c in customers})
    for b, customer in enumerate(customers):
        funnel = list(histories[customer])[-S:]
        counts[b] = len(funnel)
        features[b, : len(funnel)] = matrices[customer].as_matrix()[-S:]
        for s, basket in enumerate(funnel):
            for i, product in enumerate(basket.items[:L]):
                items[b, s, i] = product.encode()
    return {
        "session_items": items,
        "session_features": features,
        "session_count": counts,
        "customer_id": np.array([c.encode() for c in customers], dtype=object),
    }


def build_serving_module(trained: TrainedLens, asset_dir: Path):
    """A tf.Module whose tf.functions are the four signatures (see the module docstring).
    ``asset_dir`` receives items.txt and users.txt (copied into the SavedModel on save)."""
    import tensorflow as tf

    from lens.model.decoding import decode_as_configured

    model, config = trained.model, trained.config
    S, L, F = config.max_sessions, config.max_basket_items, len(FEATURE_NAMES)
    items_txt, users_txt = asset_dir / "items.txt", asset_dir / "users.txt"
    items_txt.write_text("\n".join(["<pad>", "<oov>", *trained.vocabulary.items]) + "\n")
    users_txt.write_text("\n".join(["<unknown>", *trained.users.customers]) + "\n")
    whole, number = tf.lookup.TextFileIndex.WHOLE_LINE, tf.lookup.TextFileIndex.LINE_NUMBER

    module = tf.Module()
    # Track the weights, not the Keras model: a Keras 3 model would add its own traced endpoint.
    module.model_variables = list(model.variables)
    module.item_ids = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(str(items_txt), tf.string, whole, tf.int64, number),
        default_value=1,
    )
    module.item_names = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(str(items_txt), tf.int64, number, tf.string, whole),
        default_value="",
    )
    module.user_rows = tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(str(users_txt), tf.string, whole, tf.int64, number),
        default_value=0,
    )

    def ids_of(products):  # string [...] -> int32 [...]; "" -> 0 (padding)
        ids = tf.cast(module.item_ids.lookup(products), tf.int32)
        return tf.where(products == "", 0, ids)

    def names_of(ids):  # int32 [...] -> string [...]; 0 -> ""
        names = module.item_names.lookup(tf.cast(ids, tf.int64))
        return tf.where(ids > 1, names, "")

    def model_inputs(session_items, session_features, session_count, customer_id):
        user = tf.cast(module.user_rows.lookup(customer_id), tf.int32)
        lengths = tf.clip_by_value(session_count, 1, S)
        return ids_of(session_items), session_features, user, lengths

    def encode(*funnel):
        return model.funnel_embedding(*model_inputs(*funnel))

    funnel_spec = [
        tf.TensorSpec([None, S, L], tf.string, name="session_items"),
        tf.TensorSpec([None, S, F], tf.float32, name="session_features"),
        tf.TensorSpec([None], tf.int32, name="session_count"),
        tf.TensorSpec([None], tf.string, name="customer_id"),
    ]

    @tf.function(input_signature=funnel_spec)
    def next_basket(session_items, session_features, session_count, customer_id):
        items, features, user, lengths = model_inputs(
            session_items, session_features, session_count, customer_id
        )
        encoding = model.funnel_embedding(items, features, user, lengths)
        out = decode_as_configured(
            model, config, encoding, history=model.repeat_history(items, lengths)
        )
        return {
            "items": names_of(out["items"]),
            "item_scores": out["scores"],
            "quantities": out["quantities"],
            "basket_size": out["sizes"],
            "ranking": names_of(out["ranking"]),
            "ranking_scores": out["ranking_scores"],
            "days_to_next": model.days_to_next(encoding),
        }

    @tf.function(input_signature=funnel_spec)
    def time_to_next(session_items, session_features, session_count, customer_id):
        encoding = encode(session_items, session_features, session_count, customer_id)
        return {"days_to_next": model.days_to_next(encoding)}

    @tf.function(input_signature=funnel_spec)
    def funnel_embedding(session_items, session_features, session_count, customer_id):
        return {"embedding": encode(session_items, session_features, session_count, customer_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="product_id")])
    def item_embedding(product_id):
        ids = ids_of(product_id)
        return {"embedding": model.item_embedding(ids), "known": ids > 1}

    module.next_basket = next_basket
    module.time_to_next = time_to_next
    module.funnel_embedding = funnel_embedding
    module.item_embedding = item_embedding
    return module


def _example_inputs(trained: TrainedLens) -> dict[str, dict[str, np.ndarray]]:
    """One customer per signature, for the warmup file."""
    c = trained.config
    items = np.full((1, c.max_sessions, c.max_basket_items), b"", dtype=object)
    known = trained.vocabulary.items[:2] or ("unknown",)
    for i, product in enumerate(known):
        items[0, 0, i] = product.encode()
    funnel = {
        "session_items": items,
        "session_features": np.zeros((1, c.max_sessions, len(FEATURE_NAMES)), np.float32),
        "session_count": np.ones(1, np.int32),
        "customer_id": np.array([b"warmup"], dtype=object),
    }
    return {
        "next_basket": funnel,
        "time_to_next": funnel,
        "funnel_embedding": funnel,
        "item_embedding": {"product_id": np.array([known[0].encode()], dtype=object)},
    }


def write_warmup(trained: TrainedLens, path: Path, model_name: str) -> None:
    """A TFRecord of PredictionLog records, one PredictRequest per signature."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in _example_inputs(trained).items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def export_saved_model(
    trained: TrainedLens,
    base: str | Path,
    *,
    version: int | None = None,
    model_name: str | None = None,
) -> Path:
    """Write ``base/<version>/`` (default version: next free integer) and return its path."""
    import tensorflow as tf

    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    version = version if version is not None else next_version(base)
    target = base / str(version)
    if target.exists():
        raise FileExistsError(f"{target} exists; pick another --version or remove it")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=base))
    try:
        with tempfile.TemporaryDirectory() as assets:
            module = build_serving_module(trained, Path(assets))
            signatures = {name: getattr(module, name) for name in SIGNATURES}
            signatures["serving_default"] = module.next_basket
            tf.saved_model.save(module, str(staging), signatures=signatures)
        write_warmup(trained, staging / "assets.extra" / WARMUP_FILE, model_name or base.name)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
