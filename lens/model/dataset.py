"""Training examples and tf.data pipelines: funnels -> padded, length-bucketed batches.

Every basket of every training funnel becomes one row of a *session table*; an example is a run of
consecutive rows of one customer (a window of at most S sessions) plus which of its positions are
trained on. Position ``p`` of a window predicts the basket that follows session ``p``:

* bidirectional FBE (paper): one example per prefix; only the last position is a target, so a funnel
  of n baskets gives the n - min_history_sessions prefixes "continuously incrementing" (paper III.D);
* unidirectional FBE: one example per window; every position is a target, so all prefixes of a funnel
  are trained in one pass (windows of S sessions, overlapping by S/2 when a funnel is longer).

Target baskets: vocabulary ids restricted to the output vocabulary (ids < output_vocab_size), **sorted
by ascending id, i.e. by descending global popularity** (Vocabulary ids follow descending basket
count), cut to ``max_target_items``, then end-of-basket (class 0). A cut basket gets no end-of-basket
loss (the basket did not end there); a basket with no output-vocabulary item is not a target.

A batch (dict of tensors, B examples, S = longest window, L = longest session in the batch):
  items       int32   [B, S, L]  vocabulary ids, 0 = padding
  features    float32 [B, S, F]  raw session features (lens.data.features.FEATURE_NAMES order)
  user        int32   [B]        user index (0 = unknown user)
  lengths     int32   [B]        sessions in the window (>= 1)
  target_items      int32   [B, S, D]  next-basket classes then end-of-basket (0), D = max_target_items + 1
  target_token_weight float32 [B, S, D]  1 on trained tokens
  target_quantities float32 [B, S, D]  log1p(units) of each target item (0 elsewhere)
  target_days float32 [B, S]     days from session p to the next one
  target_weight float32 [B, S]   1 where position p is a training target
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lens.data.basket import Basket, Funnels
from lens.data.features import FEATURE_NAMES, funnel_features
from lens.data.vocabulary import PAD_ID, Vocabulary
from lens.model.config import LensConfig

__all__ = [
    "NUM_FEATURES",
    "SessionTable",
    "UserIndex",
    "build_session_table",
    "make_dataset",
    "pad_histories",
]

NUM_FEATURES = len(FEATURE_NAMES)
EOB = 0  # end-of-basket class (the padding id is never a target item)


class UserIndex:
    """Customer id <-> user-embedding row. Row 0 is reserved for customers unseen in training."""

    def __init__(self, customers: Sequence[str]) -> None:
        self.customers = tuple(customers)
        self._rows = {c: i for i, c in enumerate(self.customers, start=1)}

    def __len__(self) -> int:
        """Embedding rows, the reserved one included."""
        return len(self.customers) + 1

    def row_of(self, customer: str) -> int:
        return self._rows.get(customer, 0)


@dataclass(frozen=True)
class SessionTable:
    """All sessions of some funnels, row-aligned (N sessions, one extra empty row N at the end),
    plus the examples built on them."""

    item_values: np.ndarray  # int32 [sum of basket sizes]
    item_lengths: np.ndarray  # int64 [N + 1]
    features: np.ndarray  # float32 [N + 1, F]
    next_items: np.ndarray  # int32 [N + 1, D]
    next_token_weight: np.ndarray  # float32 [N + 1, D]
    next_quantities: np.ndarray  # float32 [N + 1, D]
    next_days: np.ndarray  # float32 [N + 1]
    is_target: np.ndarray  # float32 [N + 1]: the next basket is a usable target
    example_first: np.ndarray  # int32 [E]: first session row of each example
    example_length: np.ndarray  # int32 [E]
    example_count_from: np.ndarray  # int32 [E]: positions >= this are targets
    example_user: np.ndarray  # int32 [E]
    example_customer: np.ndarray  # int32 [E]: index into the customer list (for splitting)

    @property
    def num_examples(self) -> int:
        return len(self.example_first)

    @property
    def num_targets(self) -> int:
        """Trained (prefix, next basket) pairs."""
        total = 0
        for first, length, start in zip(
            self.example_first, self.example_length, self.example_count_from, strict=True
        ):
            total += int(self.is_target[first + start : first + length].sum())
        return total


def _target(basket: Basket, vocabulary: Vocabulary, config: LensConfig):
    """(classes [D], token weights [D], log1p quantities [D]) of ``basket`` as a decoder target."""
    ids = vocabulary.encode(basket.items)
    qty = np.asarray(basket.quantities, dtype=np.float32)
    keep = (ids >= 2) & (ids < config.output_vocab_size)
    ids, qty = ids[keep], qty[keep]
    order = np.argsort(ids, kind="stable")  # ascending id = descending global popularity
    ids, qty = ids[order], qty[order]
    depth = config.decode_steps
    classes = np.zeros(depth, np.int32)
    weights = np.zeros(depth, np.float32)
    quantities = np.zeros(depth, np.float32)
    n = min(len(ids), config.max_target_items)
    classes[:n] = ids[:n]
    quantities[:n] = np.log1p(np.maximum(qty[:n], 0.0))
    weights[:n] = 1.0
    if len(ids) <= config.max_target_items:
        weights[n] = 1.0  # end-of-basket is trained only where the basket really ended
    return classes, weights, quantities, len(ids) > 0


def build_session_table(
    funnels: Funnels,
    vocabulary: Vocabulary,
    users: UserIndex,
    config: LensConfig,
) -> SessionTable:
    """Encode ``funnels`` into a SessionTable with the training examples of ``config``'s FBE."""
    customers = list(funnels)
    features = funnel_features(funnels)
    depth = config.decode_steps
    item_chunks, item_lengths, feature_rows = [], [], []
    next_items, next_weight, next_qty, next_days, is_target = [], [], [], [], []
    ex_first, ex_length, ex_from, ex_user, ex_customer = [], [], [], [], []
    row = 0
    window, half = config.max_sessions, max(1, config.max_sessions // 2)
    for c_index, customer in enumerate(customers):
        funnel = funnels[customer]
        n = len(funnel)
        if n == 0:
            continue
        matrix = features[customer].as_matrix()  # [n, F]
        for position, basket in enumerate(funnel):
            ids = vocabulary.encode(basket.items[: config.max_basket_items])
            item_chunks.append(ids)
            item_lengths.append(len(ids))
            if position + 1 < n:
                classes, weights, qty, usable = _target(funnel[position + 1], vocabulary, config)
                usable = usable and position + 1 >= config.min_history_sessions
                days = float(matrix[position + 1, FEATURE_NAMES.index("days_since_previous")])
            else:
                classes, weights, qty = (
                    np.zeros(depth, np.int32),
                    np.zeros(depth, np.float32),
                    np.zeros(depth, np.float32),
                )
                usable, days = False, 0.0
            next_items.append(classes)
            next_weight.append(weights)
            next_qty.append(qty)
            next_days.append(days)
            is_target.append(float(usable))
        feature_rows.append(matrix)
        user = users.row_of(customer)
        # Positions p = 0 .. n-2 have a next basket (the last basket is nobody's history here).
        last = n - 1  # number of positions with a target
        if last <= 0:
            row += n
            continue
        if config.fbe_bidirectional:
            for end in range(config.min_history_sessions, n):  # prefix = sessions [start, end)
                start = max(0, end - window)
                ex_first.append(row + start)
                ex_length.append(end - start)
                ex_from.append(end - start - 1)
                ex_user.append(user)
                ex_customer.append(c_index)
        else:
            end, done = min(window, last), 0
            while True:
                start = max(0, end - window)
                ex_first.append(row + start)
                ex_length.append(end - start)
                ex_from.append(done - start)
                ex_user.append(user)
                ex_customer.append(c_index)
                if end >= last:
                    break
                done, end = end, min(end + half, last)
        row += n
    # The extra empty row N: where padded positions point.
    item_lengths.append(0)
    feature_rows.append(np.zeros((1, NUM_FEATURES), np.float32))
    next_items.append(np.zeros(depth, np.int32))
    next_weight.append(np.zeros(depth, np.float32))
    next_qty.append(np.zeros(depth, np.float32))
    next_days.append(0.0)
    is_target.append(0.0)
    return SessionTable(
        item_values=np.concatenate([np.zeros(0, np.int32), *item_chunks]).astype(np.int32),
        item_lengths=np.asarray(item_lengths, np.int64),
        features=np.concatenate(feature_rows).astype(np.float32),
        next_items=np.stack(next_items),
        next_token_weight=np.stack(next_weight),
        next_quantities=np.stack(next_qty),
        next_days=np.asarray(next_days, np.float32),
        is_target=np.asarray(is_target, np.float32),
        example_first=np.asarray(ex_first, np.int32),
        example_length=np.asarray(ex_length, np.int32),
        example_count_from=np.asarray(ex_from, np.int32),
        example_user=np.asarray(ex_user, np.int32),
        example_customer=np.asarray(ex_customer, np.int32),
    )


def _batches(
    table: SessionTable,
    examples: np.ndarray,
    batch_size: int,
    boundaries: Sequence[int],
    rng: np.random.Generator | None,
) -> list[np.ndarray]:
    """Example ids grouped into batches of similar window length (length bucketing)."""
    lengths = table.example_length[examples]
    buckets = np.searchsorted(np.asarray(boundaries), lengths, side="right")
    batches = []
    for bucket in np.unique(buckets):
        members = examples[buckets == bucket]
        if rng is not None:
            members = rng.permutation(members)
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def make_dataset(
    table: SessionTable,
    *,
    examples: np.ndarray | None = None,
    batch_size: int = 128,
    boundaries: Sequence[int] = (2, 3, 4, 6, 8, 12),
    shuffle_seed: int | None = None,
):
    """A tf.data.Dataset of batches (see the module docstring) over ``examples`` (default: all).

    With ``shuffle_seed`` the batches are reshuffled on every iteration (epoch); padding is per
    batch, and batches hold windows of similar length.
    """
    import tensorflow as tf

    if examples is None:
        examples = np.arange(table.num_examples)
    examples = np.asarray(examples, np.int64)
    items = tf.RaggedTensor.from_row_lengths(
        tf.constant(table.item_values), tf.constant(table.item_lengths)
    )  # [N + 1, (L)]
    features = tf.constant(table.features)
    next_items = tf.constant(table.next_items)
    next_weight = tf.constant(table.next_token_weight)
    next_qty = tf.constant(table.next_quantities)
    next_days = tf.constant(table.next_days)
    is_target = tf.constant(table.is_target)
    ex_first = tf.constant(table.example_first)
    ex_length = tf.constant(table.example_length)
    ex_from = tf.constant(table.example_count_from)
    ex_user = tf.constant(table.example_user)
    empty_row = tf.constant(len(table.item_lengths) - 1, tf.int32)
    state = {"epoch": 0}

    def generate() -> Iterator[np.ndarray]:
        rng = None
        if shuffle_seed is not None:
            rng = np.random.default_rng([shuffle_seed, state["epoch"]])
            state["epoch"] += 1
        yield from _batches(table, examples, batch_size, boundaries, rng)

    def gather(ids):  # ids int64 [B]
        first = tf.gather(ex_first, ids)
        lengths = tf.gather(ex_length, ids)
        count_from = tf.gather(ex_from, ids)
        steps = tf.range(tf.reduce_max(lengths))  # [S]
        inside = steps[None, :] < lengths[:, None]  # [B, S]
        rows = tf.where(inside, first[:, None] + steps[None, :], empty_row)  # [B, S]
        batch, width = tf.shape(rows)[0], tf.shape(rows)[1]
        flat = tf.reshape(rows, [-1])
        session_items = tf.gather(items, flat).to_tensor(default_value=PAD_ID)  # [B*S, L]
        weight = tf.gather(is_target, rows) * tf.cast(
            inside & (steps[None, :] >= count_from[:, None]), tf.float32
        )
        return {
            "items": tf.reshape(session_items, [batch, width, -1]),
            "features": tf.gather(features, rows),
            "user": tf.gather(ex_user, ids),
            "lengths": lengths,
            "target_items": tf.gather(next_items, rows),
            "target_token_weight": tf.gather(next_weight, rows),
            "target_quantities": tf.gather(next_qty, rows),
            "target_days": tf.gather(next_days, rows),
            "target_weight": weight,
        }

    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec([None], tf.int64)
    )
    num_batches = len(_batches(table, examples, batch_size, boundaries, None))
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def pad_histories(
    histories: Mapping[str, Sequence[Basket]],
    vocabulary: Vocabulary,
    users: UserIndex,
    config: LensConfig,
) -> dict[str, np.ndarray]:
    """Fixed-shape model inputs for each customer's latest ``max_sessions`` sessions (customers in
    ``histories`` order; each history non-empty):
    items int32 [B, S, L], features float32 [B, S, F], user int32 [B], lengths int32 [B]."""
    customers = list(histories)
    S, L = config.max_sessions, config.max_basket_items
    items = np.zeros((len(customers), S, L), np.int32)
    feats = np.zeros((len(customers), S, NUM_FEATURES), np.float32)
    lengths = np.zeros(len(customers), np.int32)
    user = np.zeros(len(customers), np.int32)
    features = funnel_features({c: histories[c] for c in customers})
    for b, customer in enumerate(customers):
        funnel = list(histories[customer])[-S:]
        matrix = features[customer].as_matrix()[-S:]
        lengths[b] = len(funnel)
        user[b] = users.row_of(customer)
        feats[b, : len(funnel)] = matrix
        for s, basket in enumerate(funnel):
            ids = vocabulary.encode(basket.items[:L])
            items[b, s, : len(ids)] = ids
    return {"items": items, "features": feats, "user": user, "lengths": lengths}
