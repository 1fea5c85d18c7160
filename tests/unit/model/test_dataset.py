import dataclasses

import numpy as np

from lens.model.dataset import build_session_table, pad_histories
from tests.unit.model.conftest import first_batch


def test_bidirectional_fbe_trains_one_example_per_prefix(funnels, vocabulary, users, config):
    table = build_session_table(funnels, vocabulary, users, config)
    # a: 2 prefixes, b: none, c: 3, d: 1 (min_history_sessions = 1).
    assert table.num_examples == 6
    assert table.num_targets == 6
    assert sorted(table.example_length.tolist()) == [1, 1, 1, 2, 2, 3]


def test_unidirectional_fbe_trains_every_prefix_in_one_window(funnels, vocabulary, users, config):
    config = dataclasses.replace(config, fbe_bidirectional=False)
    table = build_session_table(funnels, vocabulary, users, config)
    assert table.num_examples == 3  # a, c, d: one window each
    assert table.num_targets == 6  # the same (prefix, next basket) pairs


def test_min_history_drops_short_prefixes(funnels, vocabulary, users, config):
    config = dataclasses.replace(config, min_history_sessions=2)
    table = build_session_table(funnels, vocabulary, users, config)
    assert table.num_targets == 3  # a: 1, c: 2, d: 0


def test_targets_are_ordered_by_popularity_then_end_of_basket(funnels, vocabulary, users, config):
    table = build_session_table(funnels, vocabulary, users, config)
    batch = first_batch(table)
    where = np.argwhere(batch["target_weight"].numpy() > 0)
    targets = batch["target_items"].numpy()[where[:, 0], where[:, 1]]  # [N, D]
    for row in targets:
        items = row[row > 0]
        assert list(items) == sorted(items)  # ids follow descending count
        assert row[len(items)] == 0  # end-of-basket right after the items
    # c's last basket: milk bread tea jam -> ids ascending, milk (most popular) first.
    assert vocabulary.id_of("milk") == 2


def test_cut_targets_get_no_end_of_basket_loss(funnels, vocabulary, users, config):
    config = dataclasses.replace(config, max_target_items=2)
    table = build_session_table(funnels, vocabulary, users, config)
    # a's third basket has 3 items: cut to 2, the end-of-basket token is not trained.
    row = table.example_first[0] + 1  # session a[1]; its next basket is a[2]
    assert table.next_token_weight[row].tolist() == [1.0, 1.0, 0.0]


def test_batches_are_padded_and_masked(funnels, vocabulary, users, config):
    table = build_session_table(funnels, vocabulary, users, config)
    batch = first_batch(table)
    items, lengths = batch["items"].numpy(), batch["lengths"].numpy()
    assert items.shape[:2] == (6, lengths.max())
    for row, length in enumerate(lengths):
        assert (items[row, length:] == 0).all()
        assert (items[row, :length, 0] > 0).all()


def test_pad_histories_keeps_the_latest_sessions(funnels, vocabulary, users, config):
    config = dataclasses.replace(config, max_sessions=2)
    x = pad_histories(funnels, vocabulary, users, config)
    assert x["items"].shape == (4, 2, config.max_basket_items)
    assert x["lengths"].tolist() == [2, 1, 2, 2]
    c = list(funnels).index("c")
    assert vocabulary.decode(x["items"][c, 1]) == list(funnels["c"][-1].items)
