"""Item embeddings pre-trained on baskets, for the warm start of LENS (``lens embed``).

Skip-gram with negative sampling (Mikolov et al. 2013) where the "sentence" is a basket: every
ordered pair of distinct products bought together is a (target, context) example, and
``negatives`` products drawn from the unigram distribution raised to 0.75 are the contrast.
Products that meet the same needs end up close, which is what the SCE reads a basket with. Ids
follow the training run's ``Vocabulary`` (row i = vocabulary id i); the reserved rows (padding,
out-of-vocabulary) stay zero. The target table is returned, as in word2vec.
"""

from dataclasses import dataclass

import numpy as np

from lens.data.basket import Funnels
from lens.data.vocabulary import Vocabulary
from lens.errors import DataError

__all__ = ["SkipGramConfig", "basket_pairs", "train_item_embeddings"]

RESERVED = 2  # padding and OOV ids


@dataclass(frozen=True)
class SkipGramConfig:
    """dim: embedding size (the LENS config's item_embedding_dim); max_basket_items: larger
    baskets keep their first-scanned items only (pairs grow with the square of the size)."""

    dim: int = 64
    epochs: int = 5
    negatives: int = 5
    batch_size: int = 4096
    learning_rate: float = 0.01
    max_basket_items: int = 32
    seed: int = 0


def basket_pairs(train: Funnels, vocabulary: Vocabulary, max_basket_items: int) -> np.ndarray:
    """[P, 2] int32 (target, context) ids: every ordered pair of distinct known items of a basket."""
    pairs = []
    for funnel in train.values():
        for basket in funnel:
            ids = vocabulary.encode(basket.items[:max_basket_items])
            ids = np.unique(ids[ids >= RESERVED])
            if ids.size < 2:
                continue
            target, context = np.meshgrid(ids, ids, indexing="ij")
            keep = target != context
            pairs.append(np.stack([target[keep], context[keep]], axis=1))
    if not pairs:
        raise DataError("no basket has two known products: nothing to learn embeddings from")
    return np.concatenate(pairs).astype(np.int32)


def train_item_embeddings(
    train: Funnels, vocabulary: Vocabulary, config: SkipGramConfig = SkipGramConfig(),
    *, progress: bool = True,
) -> np.ndarray:
    """float32 [len(vocabulary), config.dim] embeddings learned from ``train``'s baskets."""
    import tensorflow as tf
    from tqdm import tqdm

    pairs = basket_pairs(train, vocabulary, config.max_basket_items)
    size, dim = len(vocabulary), config.dim
    counts = np.bincount(pairs[:, 1], minlength=size).astype(np.float64)
    noise = np.log(np.maximum(counts, 1e-12) ** 0.75)  # log-weights; reserved ids never drawn
    noise[:RESERVED] = -np.inf
    tf.random.set_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    target = tf.Variable(rng.uniform(-0.5 / dim, 0.5 / dim, (size, dim)).astype(np.float32))
    context = tf.Variable(np.zeros((size, dim), np.float32))
    optimizer = tf.keras.optimizers.Adam(config.learning_rate)
    noise_logits = tf.constant(noise[None, :], tf.float32)  # [1, V]

    @tf.function
    def step(batch):  # batch [B, 2]
        negatives = tf.reshape(
            tf.random.categorical(noise_logits, tf.shape(batch)[0] * config.negatives),
            [-1, config.negatives],
        )  # [B, K]
        with tf.GradientTape() as tape:
            u = tf.gather(target, batch[:, 0])  # [B, D]
            v = tf.gather(context, batch[:, 1])  # [B, D]
            n = tf.gather(context, negatives)  # [B, K, D]
            positive = tf.math.log_sigmoid(tf.reduce_sum(u * v, axis=-1))  # [B]
            negative = tf.reduce_sum(
                tf.math.log_sigmoid(-tf.einsum("bd,bkd->bk", u, n)), axis=-1)  # [B]
            loss = -tf.reduce_mean(positive + negative)
        grads = tape.gradient(loss, [target, context])
        optimizer.apply_gradients(zip(grads, [target, context], strict=True))
        return loss

    steps = -(-len(pairs) // config.batch_size)
    for epoch in range(config.epochs):
        order = rng.permutation(len(pairs))
        bar = tqdm(range(steps), desc=f"skip-gram epoch {epoch + 1}/{config.epochs}",
                   unit="batch", disable=not progress, dynamic_ncols=True, mininterval=0.5)
        for s in bar:
            loss = step(tf.constant(pairs[order[s * config.batch_size:(s + 1) * config.batch_size]]))
            if s % 20 == 0:
                bar.set_postfix(loss=f"{float(loss):.4f}")
    embeddings = target.numpy()
    embeddings[:RESERVED] = 0.0
    return embeddings
