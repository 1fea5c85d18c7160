"""Vocabulary growth between model versions: known keys keep their learned rows, new keys get
fresh ones.

A retrain rebuilds the item vocabulary from the new data window (ids follow descending count, so
that the decoder's output vocabulary stays the most frequent items), then keeps the champion's
items the window no longer has (so a product that comes back, or sits in an older session of a
live funnel, is still known). Rows of every weight indexed by item (or customer) are then carried
over by key, not by position: an item's id usually changes between versions.
"""

from collections.abc import Sequence

import numpy as np

from lens.data.basket import Funnels
from lens.data.vocabulary import Vocabulary

__all__ = ["carry_rows", "grown_vocabulary"]


def grown_vocabulary(champion: Vocabulary, window: Funnels) -> Vocabulary:
    """The window's items by descending count, then the champion's items the window lacks (in
    the champion's order)."""
    fresh = Vocabulary.build(window, min_count=champion.min_count)
    retired = [item for item in champion.items if item not in fresh]
    return Vocabulary([*fresh.items, *retired], min_count=champion.min_count)


def carry_rows(
    learned: np.ndarray,
    learned_keys: Sequence[str],
    initial: np.ndarray,
    keys: Sequence[str],
    axis: int = 0,
) -> np.ndarray:
    """``initial`` (freshly initialised, indexed by ``keys`` along ``axis``) with every slice
    whose key is in ``learned_keys`` replaced by that key's slice of ``learned``.

    learned [..., len(learned_keys), ...], initial [..., len(keys), ...] -> [..., len(keys), ...]
    (same shape as ``initial``; the other axes must agree).
    """
    if learned.shape[axis] != len(learned_keys) or initial.shape[axis] != len(keys):
        raise ValueError("each array needs one slice per key along axis")
    position = {key: i for i, key in enumerate(learned_keys)}
    target = [i for i, key in enumerate(keys) if key in position]
    source = [position[keys[i]] for i in target]
    out = np.array(initial, copy=True)
    index = [slice(None)] * out.ndim
    index[axis] = target
    out[tuple(index)] = np.take(learned, source, axis=axis)
    return out
