"""Export for TF Serving: reload equivalence, batch-major signatures, warmup requests."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lens.data.vocabulary import Vocabulary
from lens.model.config import CONFIGS
from lens.model.dataset import UserIndex, pad_histories
from lens.model.export import SIGNATURES, WARMUP_FILE, export_saved_model, serving_inputs
from lens.model.recommender import Predictor
from lens.model.trained_lens import TrainedLens
from tests.unit.model.conftest import make_funnels

SAVED_MODEL_CLI = Path(sys.executable).parent / "saved_model_cli"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    funnels = make_funnels()
    trained = TrainedLens.create(CONFIGS["tiny"], Vocabulary.build(funnels), UserIndex(sorted(funnels)))
    base = tmp_path_factory.mktemp("serving") / "lens"
    return trained, funnels, export_saved_model(trained, base)


def string_inputs(trained, funnels):
    c = trained.config
    x = pad_histories(funnels, trained.vocabulary, trained.users, c)
    inputs = serving_inputs(funnels, c.max_sessions, c.max_basket_items)
    # The same funnels as the model's integer inputs: ids <-> product strings.
    names = np.array(["", "<oov>", *trained.vocabulary.items], dtype=object)
    assert (inputs["session_items"] == names[x["items"]].astype(bytes)).all()
    np.testing.assert_allclose(inputs["session_features"], x["features"])
    return x, inputs


def test_reloaded_export_gives_the_keras_model_outputs(exported):
    import tensorflow as tf

    trained, funnels, path = exported
    assert path.name == "1"
    loaded = tf.saved_model.load(str(path))
    assert set(SIGNATURES) <= set(loaded.signatures)
    x, inputs = string_inputs(trained, funnels)
    served = loaded.signatures["next_basket"](**{k: tf.constant(v) for k, v in inputs.items()})
    expected = Predictor(trained).predict_arrays(funnels)
    for row in range(len(funnels)):
        size = int(expected["sizes"][row])
        basket = [item.decode() for item in served["items"].numpy()[row][:size]]
        assert basket == trained.vocabulary.decode(expected["items"][row][:size])
        assert all(item == b"" for item in served["items"].numpy()[row][size:])
    np.testing.assert_allclose(served["item_scores"].numpy(), expected["scores"], atol=1e-5)
    np.testing.assert_allclose(served["days_to_next"].numpy(), expected["days_to_next"], atol=1e-4)
    embedding = loaded.signatures["funnel_embedding"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(
        embedding["embedding"].numpy(), trained.model.funnel_embedding(**x).numpy(), atol=1e-5
    )
    items = loaded.signatures["item_embedding"](product_id=tf.constant([b"milk", b"caviar"]))
    np.testing.assert_allclose(
        items["embedding"].numpy()[0],
        trained.model.item_embedding.embeddings.numpy()[trained.vocabulary.id_of("milk")],
    )
    assert items["known"].numpy().tolist() == [True, False]


def test_saved_model_cli_lists_batch_major_signatures(exported):
    _, _, path = exported
    shown = subprocess.run(
        [str(SAVED_MODEL_CLI), "show", "--all", "--dir", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in shown
    shapes = [line.split("shape:")[1].strip() for line in shown.splitlines() if "shape: (" in line]
    assert shapes and all(shape.startswith("(-1") for shape in shapes), shapes


def test_warmup_file_has_one_request_per_signature(exported):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    _, _, path = exported
    records = tf.data.TFRecordDataset(str(path / "assets.extra" / WARMUP_FILE))
    names = []
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        names.append(log.predict_log.request.model_spec.signature_name)
        assert log.predict_log.request.model_spec.name == "lens"
    assert sorted(names) == sorted(SIGNATURES)
    assert (path / "assets" / "items.txt").read_text().splitlines()[:3] == ["<pad>", "<oov>", "milk"]


def test_next_export_gets_the_next_version(exported, tmp_path):
    from lens.model.export import next_version

    _, _, path = exported
    assert next_version(path.parent) == 2
    (tmp_path / "7").mkdir()
    (tmp_path / ".8-staging").mkdir()
    assert next_version(tmp_path) == 8


def test_serving_inputs_of_a_long_history_are_the_training_inputs():
    """Only the latest S + 1 baskets are read, yet the oldest session shown keeps the gap to the
    basket before it, as when training reads the whole history."""
    from lens.data.features import FEATURE_NAMES
    from tests.unit.model.conftest import basket

    funnels = make_funnels()
    days = [0, 1, 5, 6, 13, 15, 16, 30, 31, 40, 44, 45, 47]  # uneven gaps, 13 baskets
    funnels["long"] = tuple(
        basket("long", d, "milk tea" if i % 2 else "bread") for i, d in enumerate(days)
    )
    vocabulary, users = Vocabulary.build(funnels), UserIndex(sorted(funnels))
    trained = TrainedLens.create(CONFIGS["tiny"], vocabulary, users)
    x, inputs = string_inputs(trained, funnels)  # asserts equality with the training inputs
    S = trained.config.max_sessions
    row = list(funnels).index("long")
    gaps = inputs["session_features"][row, :, FEATURE_NAMES.index("days_since_previous")]
    assert gaps.tolist() == [float(b - a) for a, b in zip(days[-S - 1:-1], days[-S:])]
