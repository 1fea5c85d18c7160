"""The NSD repeat (copy) path: history counts, the mixture, no target leak, decoding, and that it
learns to repeat faster than the generator alone."""

import dataclasses

import numpy as np
import pytest

from lens.model.dataset import build_session_table, pad_histories
from lens.model.decoding import decode
from tests.unit.model.conftest import basket, first_batch


def force_repeat(model, generator_bias: dict[int, float] | None = None) -> None:
    """Gate -> g = sigmoid(-30) (repeat path only), query -> 0 (p_rep ∝ h^beta), and a constant
    generator with the given biases."""
    repeat = model.nsd.repeat
    for layer in (repeat.gate, repeat.query, model.nsd.output_layer):
        layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    repeat.gate.bias.assign([-30.0])
    bias = np.zeros(model.nsd.output_layer.bias.shape, np.float32)
    for index, value in (generator_bias or {}).items():
        bias[index] = value
    model.nsd.output_layer.bias.assign(bias)


def test_history_is_recency_decayed_counts_of_copyable_items():
    from lens.model.repeat_path import RepeatPath

    path = RepeatPath(num_classes=8, key_dim=2, initial_decay=0.5)
    items = np.array([[[2, 3, 0], [3, 9, 1], [4, 0, 0]]], np.int32)  # [1, S=3, L=3]
    history = path.history(items, np.array([1], np.int32)).numpy()[0]
    # until session 1: class 3 = 0.5 (session 0) + 1 (session 1), class 2 = 0.5; id 9 is outside
    # the 8 classes, 1 is OOV, 0 padding; class 4 is in session 2, after `until`.
    np.testing.assert_allclose(history, [0, 0, 0.5, 1.5, 0, 0, 0, 0], atol=1e-6)


def test_mixture_is_a_distribution_at_every_step(model, funnels, vocabulary, users, config):
    assert config.repeat_path
    out = model(first_batch(build_session_table(funnels, vocabulary, users, config)))
    np.testing.assert_allclose(np.exp(out["logits"].numpy()).sum(axis=-1), 1.0, atol=1e-5)


def test_a_targets_own_items_do_not_leak_into_its_repeat_distribution(vocabulary, users, funnels):
    from lens.model.config import CONFIGS
    from lens.model.lens_model import LensModel

    # Unidirectional FBE: one window holds every session of a customer and trains every position,
    # so the basket that position p predicts (session p + 1) is in the same input tensor.
    config = dataclasses.replace(CONFIGS["tiny"], fbe_bidirectional=False)
    model = LensModel(config, len(vocabulary), len(users))
    model.build_for()
    force_repeat(model)
    batch = first_batch(build_session_table(funnels, vocabulary, users, config))
    where = np.argwhere(batch["target_weight"].numpy() > 0)  # [N, 2] (row, position)
    p = np.exp(model(batch)["logits"].numpy())  # [N, D, C] ~ p_repeat
    items, targets = batch["items"].numpy(), batch["target_items"].numpy()
    leak_chances = 0
    for n, (row, position) in enumerate(where):
        seen = set(items[row, : position + 1].ravel().tolist())
        unseen = [c for c in range(2, model.num_classes) if c not in seen]
        assert p[n][:, unseen].max() < 1e-6
        new = set(targets[row, position].tolist()) - seen - {0}
        leak_chances += bool(new & set(items[row, position + 1 :].ravel().tolist()))
    assert leak_chances > 0  # some target's new items are in its own input window


@pytest.mark.parametrize("beam_width", [1, 3])
def test_decoding_copies_the_history_by_decayed_count(model, funnels, vocabulary, users, config,
                                                      beam_width):
    # Customer d bought [eggs] then [milk eggs]: h(eggs) = 0.8 + 1 > h(milk) = 1, so p_rep picks
    # eggs, then milk; then only the generator is left, whose end-of-basket bias ends the basket.
    force_repeat(model, {0: 10.0})
    x = pad_histories({"d": funnels["d"]}, vocabulary, users, config)
    encoding = model.funnel_embedding(**x)
    history = model.repeat_history(x["items"], x["lengths"])
    out = decode(model, encoding, max_items=5, ranking_size=4, beam_width=beam_width,
                 history=history)
    eggs, milk = vocabulary.encode(["eggs", "milk"]).tolist()
    assert out["items"].numpy()[0].tolist() == [eggs, milk, 0, 0, 0]
    # The ranking takes each item's best probability on the path: milk had ~1 at step 2.
    assert out["ranking"].numpy()[0, :2].tolist() == [milk, eggs]
    np.testing.assert_allclose(out["scores"].numpy()[0, 0], 1.8 / 2.8, atol=1e-4)


def test_decoding_a_repeat_model_needs_the_history(model, funnels, vocabulary, users, config):
    encoding = model.funnel_embedding(**pad_histories(funnels, vocabulary, users, config))
    with pytest.raises(ValueError, match="repeat_history"):
        decode(model, encoding, max_items=3, ranking_size=2)


def repeat_world(customers=24, items=30, baskets=5, size=3):
    """Every customer buys the same personal basket of ``size`` items at every visit."""
    rng = np.random.default_rng(1)
    funnels = {}
    for c in range(customers):
        chosen = " ".join(f"i{j}" for j in rng.choice(items, size=size, replace=False))
        funnels[f"u{c}"] = tuple(basket(f"u{c}", 3 * day, chosen) for day in range(baskets))
    return funnels


def recall_after_training(funnels, config, k: int) -> float:
    from lens.model.config import TrainingConfig
    from lens.model.recommender import Predictor
    from lens.model.training import train_lens

    history = {c: f[:-1] for c, f in funnels.items()}
    training = TrainingConfig(epochs=6, batch_size=32, learning_rate=0.01, validation_fraction=0,
                              patience=6, compiled=False)
    trained, _ = train_lens(history, config, training)
    ranking = Predictor(trained).predict_arrays(history)["ranking"][:, :k]
    recalls = []
    for row, customer in enumerate(history):
        truth = set(trained.vocabulary.encode(funnels[customer][-1].items).tolist())
        recalls.append(len(truth & set(ranking[row].tolist())) / len(truth))
    return float(np.mean(recalls))


def test_the_repeat_path_learns_repeat_customers_faster(config):
    funnels = repeat_world()
    with_repeat = recall_after_training(funnels, config, k=3)
    without = recall_after_training(funnels, dataclasses.replace(config, repeat_path=False), k=3)
    assert with_repeat > 0.8
    assert with_repeat > without + 0.3
