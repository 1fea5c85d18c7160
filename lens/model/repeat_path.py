"""RepeatPath: the copy mechanism of the Next Session Decoder (RepeatNet / pointer-generator style).

Customers rebuy: most items of a next basket were in the customer's earlier baskets. The generator
softmax of the NSD must rediscover each customer's items from the funnel encoding; the repeat path
points at them directly. Per decoding step:

    history h [N, C]   recency-decayed counts of each class in the sessions the target may see:
                       h_c = sum over sessions s <= p of decay^(p - s) * (times c is in session s)
    p_rep  [N, C]      softmax over classes with h_c > 0 of  query(state) . e_c + beta * log h_c
    g      [N]         sigmoid(gate(state)): the share of the generator
    p      [N, C]      g * p_gen + (1 - g) * p_rep        (end-of-basket only through p_gen)

``decay`` (in (0, 1)) and ``beta`` are learned. Copyable classes are item classes (ids 2 .. C-1 of
the vocabulary, as decoder class id == vocabulary id); padding, OOV and items outside the output
vocabulary are not. A customer with no copyable history item gets g = 1.
"""

import math

import keras
import tensorflow as tf

__all__ = ["RepeatPath"]

_NEG = -1e9  # log of "impossible": finite so that gradients through masked entries stay zero


class RepeatPath(keras.layers.Layer):
    """Mixes the generator distribution with a distribution over the customer's own items."""

    def __init__(self, num_classes: int, key_dim: int, initial_decay: float = 0.8, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.query = keras.layers.Dense(key_dim, name="repeat_query")
        self.gate = keras.layers.Dense(1, name="repeat_gate")
        # Weights created here, not in build: history() runs before the first __call__.
        self.decay_logit = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(initial_decay / (1 - initial_decay))),
            name="decay_logit",
        )
        self.beta = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(1.0), name="beta"
        )

    def build(self, input_shape=None):
        self.built = True

    @property
    def decay(self):
        return tf.sigmoid(self.decay_logit)

    def history(self, items, until):
        """items int32 [N, S, L] (vocabulary ids), until int32 [N]: last session each row may see
        -> decayed counts h float32 [N, C] over sessions 0..until (later sessions ignored)."""
        rows, width = tf.shape(items)[0], tf.shape(items)[1]
        age = until[:, None] - tf.range(width)[None, :]  # [N, S]
        weight = tf.pow(self.decay, tf.cast(tf.maximum(age, 0), tf.float32))
        weight *= tf.cast(age >= 0, tf.float32)  # [N, S]: 0 on sessions after `until`
        copyable = (items >= 2) & (items < self.num_classes)  # [N, S, L]
        weight = weight[:, :, None] * tf.cast(copyable, tf.float32)  # [N, S, L]
        slot = tf.range(rows)[:, None, None] * self.num_classes + tf.where(copyable, items, 0)
        counts = tf.math.unsorted_segment_sum(
            tf.reshape(weight, [-1]), tf.reshape(slot, [-1]), rows * self.num_classes
        )
        return tf.reshape(counts, [rows, self.num_classes])  # [N, C]

    def call(self, logits, outputs, class_embeddings, history):
        """logits [N, (D,) C] of the generator, outputs [N, (D,) u] decoder states,
        class_embeddings [C, E], history [N, C] -> mixture log-probabilities [N, (D,) C]."""
        if len(logits.shape) == 3:  # teacher forcing: one history per target, for every step
            history = history[:, None, :]
        seen = history > 0  # [N, (1,) C]
        # matmul, not einsum("...e,ce->...c"): TF's ellipsis einsum was 30x slower here.
        scores = tf.matmul(self.query(outputs), class_embeddings, transpose_b=True)
        scores += self.beta * tf.math.log(tf.maximum(history, 1e-12))
        log_p_rep = tf.nn.log_softmax(tf.where(seen, scores, _NEG))  # ~ -1e9 off the history
        gate = tf.squeeze(self.gate(outputs), axis=-1)  # [N, (D)]
        can_repeat = tf.reduce_any(seen, axis=-1)  # [N, (1)]
        log_g = tf.where(can_repeat, tf.math.log_sigmoid(gate), 0.0)[..., None]
        log_1mg = tf.where(can_repeat, tf.math.log_sigmoid(-gate), _NEG)[..., None]
        mixture = [log_g + tf.nn.log_softmax(logits), log_1mg + log_p_rep]
        return tf.math.reduce_logsumexp(tf.stack(mixture, axis=0), axis=0)
