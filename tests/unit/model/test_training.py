import dataclasses
import json

import numpy as np
import pytest

from lens.errors import TrainingDiverged
from lens.model.config import TrainingConfig
from lens.model.dataset import build_session_table
from lens.model.training import Trainer, train_lens
from tests.unit.model.conftest import first_batch


def test_one_training_step_lowers_the_loss_on_a_fixed_batch(model, funnels, vocabulary, users, config):
    batch = first_batch(build_session_table(funnels, vocabulary, users, config))
    trainer = Trainer(model, config, TrainingConfig(learning_rate=0.01, compiled=False))
    before = float(trainer.eval_step(batch)["loss"])
    trainer.train_step(batch)
    after = float(trainer.eval_step(batch)["loss"])
    assert after < before


def test_a_diverging_step_stops_training_before_it_reaches_the_weights(model, funnels, vocabulary,
                                                                     users, config):
    import tensorflow as tf

    batch = first_batch(build_session_table(funnels, vocabulary, users, config))
    trainer = Trainer(model, config, TrainingConfig(learning_rate=1e30, clipnorm=None, compiled=False))
    trainer.train_step(batch)  # finite, but the weights are now astronomically large
    weights = [w.numpy().copy() for w in model.weights]
    with pytest.raises(TrainingDiverged, match=r"training diverged in test, batch 1 .*--learning-rate"):
        trainer.run_epoch(tf.data.Dataset.from_tensors(batch), description="test")
    for before, after in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


def test_twin_mode_keeps_time_loss_out_of_the_encoders(funnels, vocabulary, users, config):
    import tensorflow as tf

    from lens.model.lens_model import LensModel

    batch = first_batch(build_session_table(funnels, vocabulary, users, config))
    for mode, expect_gradient in (("joint", True), ("twin", False)):
        model = LensModel(dataclasses.replace(config, time_mode=mode), len(vocabulary), len(users))
        model.build_for()
        with tf.GradientTape() as tape:
            out = model(batch)
            time_loss = tf.reduce_mean(tf.abs(out["time"] - out["target_time"]))
        gradient = tape.gradient(time_loss, model.sce.trainable_variables[0])
        assert (gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0) == expect_gradient


def test_train_lens_writes_a_run_directory_and_resumes(funnels, config, tmp_path):
    training = TrainingConfig(epochs=2, batch_size=4, validation_fraction=0.25, patience=5, compiled=False)
    trained, report = train_lens(funnels, config, training, tmp_path)
    assert len(report.history) == 2
    for name in ("lens.json", "history.json", "curves.png", "checkpoints", "weights"):
        assert (tmp_path / name).exists(), name
    # A rerun with more epochs continues from the checkpoint instead of starting again.
    _, resumed = train_lens(funnels, config, dataclasses.replace(training, epochs=3), tmp_path)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert json.loads((tmp_path / "history.json").read_text())["history"][-1]["epoch"] == 3


def test_a_resumed_run_keeps_the_best_weights_of_the_run_before(funnels, config, tmp_path):
    from lens.model.trained_lens import TrainedLens

    training = TrainingConfig(epochs=1, batch_size=4, compiled=False)
    trained, _ = train_lens(funnels, config, training, tmp_path)
    # The run is complete: a rerun trains nothing and must return, and leave, the same model.
    resumed, report = train_lens(funnels, config, training, tmp_path)
    assert len(report.history) == 1
    for model in (resumed.model, TrainedLens.load(tmp_path).model):
        for a, b in zip(trained.model.weights, model.weights, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy())


def test_trained_lens_loads_the_best_weights(funnels, config, tmp_path):
    from lens.model.trained_lens import TrainedLens

    trained, _ = train_lens(funnels, config, TrainingConfig(epochs=1, batch_size=4, compiled=False), tmp_path)
    loaded = TrainedLens.load(tmp_path)
    for a, b in zip(trained.model.weights, loaded.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy())


def test_a_run_directory_seeded_with_a_checkpoint_is_a_complete_run(funnels, config, tmp_path):
    # lens retrain seeds the challenger's run directory with the champion's checkpoint only.
    from lens.model.trained_lens import TrainedLens
    from lens.retrain import seed_run_directory

    training = TrainingConfig(epochs=1, batch_size=4, compiled=False)
    champion, _ = train_lens(funnels, config, training)
    assert seed_run_directory(champion, tmp_path)
    trained, _ = train_lens(funnels, config, training, tmp_path)
    loaded = TrainedLens.load(tmp_path)
    for a, b in zip(trained.model.weights, loaded.model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy())
