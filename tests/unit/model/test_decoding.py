"""Decoding with hand-set output biases: the decoder's logits are then the same at every step
(output kernel = 0), so the emitted sequence follows from the masking rules alone. The masking
rules are the generator's (no repeat path); decoding through the repeat path is in
test_repeat_path."""

import dataclasses

import numpy as np
import pytest

from lens.model.dataset import pad_histories
from lens.model.decoding import decode

A, B = 5, 3  # two item classes


def force_bias(model, values: dict[int, float]) -> None:
    layer = model.nsd.output_layer
    layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))
    bias = np.zeros(layer.bias.shape, np.float32)
    for index, value in values.items():
        bias[index] = value
    layer.bias.assign(bias)


@pytest.fixture
def config(config):
    return dataclasses.replace(config, repeat_path=False)


@pytest.fixture
def encoding(model, funnels, vocabulary, users, config):
    return model.funnel_embedding(**pad_histories(funnels, vocabulary, users, config))


@pytest.mark.parametrize("beam_width", [1, 3])
def test_decoding_stops_at_end_of_basket(model, encoding, beam_width):
    # Step 0 cannot end the basket -> A; A is then masked -> B (9 > 8); then end-of-basket (8).
    # Beam: log p([A, B, end]) = log pA + log 0.73 + log 0.99 beats [A, end] = log pA + log 0.27.
    force_bias(model, {A: 10.0, B: 9.0, 0: 8.0})
    out = decode(model, encoding, max_items=5, ranking_size=4, beam_width=beam_width)
    assert out["items"].numpy().tolist() == [[A, B, 0, 0, 0]] * 4
    assert out["sizes"].numpy().tolist() == [2] * 4
    scores = out["scores"].numpy()
    assert (scores[:, :2] > 0.5).all() and (scores[:, 2:] == 0).all()
    assert (out["quantities"].numpy()[:, 2:] == 0).all()
    assert out["ranking"].numpy()[:, :2].tolist() == [[A, B]] * 4


@pytest.mark.parametrize("beam_width", [1, 3])
def test_decoding_never_repeats_nor_emits_oov(model, encoding, beam_width):
    # A dominates and OOV (class 1) even more; end-of-basket is never likely: 5 distinct items.
    force_bias(model, {A: 10.0, 1: 20.0, 0: -10.0})
    out = decode(model, encoding, max_items=5, ranking_size=4, beam_width=beam_width)
    items = out["items"].numpy()
    assert items.shape == (4, 5)
    for row in items:
        assert row[0] == A
        assert len(set(row.tolist())) == 5 and 0 not in row and 1 not in row
    ranking = out["ranking"].numpy()
    assert not np.isin(ranking, [0, 1]).any()
    assert all(len(set(row)) == len(row) for row in ranking.tolist())


@pytest.mark.parametrize("beam_width", [1, 3])
def test_decoding_loop_ends_when_every_basket_has_ended(model, encoding, beam_width, monkeypatch):
    # Every basket is [A, B, end]: three decoder steps, not max_items = 8.
    force_bias(model, {A: 10.0, B: 9.0, 0: 8.0})
    step, calls = model.nsd.step, []
    monkeypatch.setattr(model.nsd, "step", lambda *a, **k: calls.append(1) or step(*a, **k))
    out = decode(model, encoding, max_items=8, ranking_size=4, beam_width=beam_width)
    assert len(calls) == 3
    assert out["items"].numpy().tolist() == [[A, B, 0, 0, 0, 0, 0, 0]] * 4


@pytest.mark.parametrize("beam_width", [1, 3])
def test_end_threshold_ends_the_basket_only_once_end_of_basket_is_that_likely(
    model, encoding, beam_width
):
    # End-of-basket (bias 3) is the most likely class at every step after A (bias 1), but its
    # probability e^3 / (e^3 + items left) only grows as emitted items are masked.
    force_bias(model, {A: 1.0, 0: 3.0})
    items_left = model.nsd.num_classes - 2  # item classes (end-of-basket and OOV are not)
    p_end = [np.exp(3) / (np.exp(3) + items_left - emitted) for emitted in (1, 2)]
    threshold = float(np.mean(p_end))  # reached once two items are in the basket, not before

    def sizes(end_threshold):
        out = decode(model, encoding, max_items=5, ranking_size=4, beam_width=beam_width,
                     end_threshold=end_threshold)
        return out["sizes"].numpy().tolist()

    assert sizes(0.0) == [1] * 4  # argmax: ends right after A
    assert sizes(threshold) == [2] * 4
    assert sizes(0.99) == [5] * 4  # never that likely: the basket fills up to max_items
