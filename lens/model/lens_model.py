"""LensModel: the hierarchical encoder-decoder of the paper (Figure 1) in Keras 3 on TensorFlow.

    items [B, S, L] --item embedding--> SCE (BiLSTM per basket) --> [B, S, 2u_sce]
    features [B, S, F] --FeatureScaler--> [B, S, F]                    | concat
    user [B] --user embedding--> [B, U] (broadcast over S)             v
                                          FBE (Bi/uni LSTM over sessions) --> encodings [B, S, H]
    encoding --> NSD (autoregressive LSTM) --> next basket classes + quantities
    items [B, S, L] --decayed counts--> history [B, C] --> NSD repeat path (config.repeat_path)
    encoding --> time head (MLP) --> days to next purchase

The model only computes; losses live in ``lens.model.task``, decoding in ``lens.model.decoding``.
"""

import keras
import numpy as np
import tensorflow as tf

from lens.model.config import LensConfig
from lens.model.dataset import NUM_FEATURES
from lens.model.feature_scaler import FeatureScaler
from lens.model.funnel_behavior_encoder import FunnelBehaviorEncoder
from lens.model.next_session_decoder import NextSessionDecoder
from lens.model.session_content_encoder import SessionContentEncoder

__all__ = ["LensModel"]


class LensModel(keras.Model):
    """SCE -> FBE -> NSD + time head.

    ``num_items``: input vocabulary size (len(Vocabulary), reserved ids included); ``num_users``:
    user-embedding rows (len(UserIndex), row 0 = unknown user). ``item_embeddings`` float [V, E]:
    warm start (e.g. skip-gram vectors); with ``config.freeze_item_embeddings`` they stay fixed.
    """

    def __init__(
        self,
        config: LensConfig,
        num_items: int,
        num_users: int,
        item_embeddings: np.ndarray | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.num_items = num_items
        self.num_users = num_users
        self.num_classes = min(config.output_vocab_size, num_items)
        self.item_embedding = keras.layers.Embedding(
            num_items,
            config.item_embedding_dim,
            trainable=not config.freeze_item_embeddings,
            name="item_embedding",
        )
        self.item_embedding.build((None,))
        if item_embeddings is not None:
            if item_embeddings.shape != (num_items, config.item_embedding_dim):
                raise ValueError(
                    f"item_embeddings must be [{num_items}, {config.item_embedding_dim}], "
                    f"got {list(item_embeddings.shape)}"
                )
            self.item_embedding.embeddings.assign(item_embeddings.astype(np.float32))
        self.user_embedding = keras.layers.Embedding(
            num_users,
            config.user_embedding_dim,
            embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05),
            name="user_embedding",
        )
        self.scaler = FeatureScaler(NUM_FEATURES, name="feature_scaler")
        self.sce = SessionContentEncoder(config.sce_units, name="sce")
        self.fbe = FunnelBehaviorEncoder(config.fbe_units, config.fbe_bidirectional, name="fbe")
        self.nsd = NextSessionDecoder(
            config.nsd_units,
            self.num_classes,
            context_dim=config.nsd_context_dim,
            projection_dim=config.nsd_projection_dim,
            repeat_key_dim=config.item_embedding_dim if config.repeat_path else 0,
            name="nsd",
        )
        self.time_hidden = keras.layers.Dense(
            config.time_head_units, activation="relu", name="time_hidden"
        )
        self.time_output = keras.layers.Dense(1, name="time_output")

    def build(self, input_shape=None):
        # Sub-layers create their weights on first use (see build_for).
        self.built = True

    # -- encoders -------------------------------------------------------------------------------

    def encode(self, items, features, user, lengths, training=False):
        """items int32 [B, S, L], features float32 [B, S, F], user int32 [B], lengths int32 [B]
        -> encodings [B, S, H] (row p encodes sessions 0..p; row lengths-1 is always filled)."""
        batch, width, depth = tf.shape(items)[0], tf.shape(items)[1], tf.shape(items)[2]
        valid = tf.sequence_mask(lengths, width)  # [B, S]
        flat_valid = tf.reshape(valid, [-1])  # [B*S]
        sessions = tf.boolean_mask(tf.reshape(items, [-1, depth]), flat_valid)  # [Ns, L]
        vectors = self.sce(
            self.item_embedding(sessions), item_mask=sessions != 0, training=training
        )  # [Ns, 2u]
        where = tf.where(flat_valid)  # [Ns, 1] int64
        baskets = tf.scatter_nd(
            where, vectors, tf.cast(tf.stack([batch * width, tf.shape(vectors)[1]]), tf.int64)
        )  # [B*S, 2u]
        baskets = tf.reshape(baskets, [batch, width, self.sce.output_dim])
        users = tf.repeat(self.user_embedding(user)[:, None, :], width, axis=1)  # [B, S, U]
        inputs = tf.concat([baskets, self.scaler(features), users], axis=-1)  # [B, S, I]
        return self.fbe(inputs, lengths, training=training)  # [B, S, H]

    def funnel_embedding(self, items, features, user, lengths):
        """The encoding of each whole history: [B, H]."""
        encodings = self.encode(items, features, user, lengths)
        return tf.gather(encodings, lengths - 1, batch_dims=1)

    def time_head(self, encoding):
        """encoding [..., H] -> days / time_scale_days [...] (unclipped)."""
        if self.config.time_mode == "twin":
            encoding = tf.stop_gradient(encoding)
        return tf.squeeze(self.time_output(self.time_hidden(encoding)), axis=-1)

    def days_to_next(self, encoding):
        """encoding [B, H] -> predicted days to the next purchase [B] (>= 0)."""
        return tf.nn.relu(self.time_head(encoding)) * self.config.time_scale_days

    # -- repeat path ----------------------------------------------------------------------------

    def repeat_history(self, items, lengths):
        """What the repeat path may copy after a whole history: items int32 [B, S, L], lengths
        int32 [B] -> decayed class counts [B, C]; None without a repeat path."""
        if self.nsd.repeat is None:
            return None
        return self.nsd.repeat.history(items, lengths - 1)

    def class_embeddings(self):
        """The item embedding of every decoder class: [C, E] (class id == vocabulary id)."""
        return self.item_embedding(tf.range(self.num_classes))

    # -- training forward pass -------------------------------------------------------------------

    def call(self, batch, training=False):
        """Teacher-forced forward pass on the N target positions of a batch (see
        lens.model.dataset). Returns logits [N, D, C], quantities [N, D] (log1p), time [N] (scaled),
        and the gathered targets: classes [N, D], token_weight [N, D], target_quantities [N, D],
        target_time [N]."""
        encodings = self.encode(
            batch["items"], batch["features"], batch["user"], batch["lengths"], training=training
        )  # [B, S, H]
        where = tf.where(batch["target_weight"] > 0)  # [N, 2]
        encoding = tf.gather_nd(encodings, where)  # [N, H]
        classes = tf.gather_nd(batch["target_items"], where)  # [N, D]
        previous = tf.concat([tf.zeros_like(classes[:, :1]), classes[:, :-1]], axis=1)  # [N, D]
        history = class_embeddings = None
        if self.nsd.repeat is not None:
            # Target (b, p) predicts the basket after session p: it may copy sessions 0..p of its
            # window only. (A unidirectional window also holds the later sessions, targets
            # included; the FBE never lets position p see them either.)
            history = self.nsd.repeat.history(
                tf.gather(batch["items"], where[:, 0]), tf.cast(where[:, 1], tf.int32)
            )  # [N, C]
            class_embeddings = self.class_embeddings()
        logits, outputs = self.nsd(
            encoding,
            self.item_embedding(previous),
            history=history,
            class_embeddings=class_embeddings,
            training=training,
        )
        quantities = self.nsd.quantity(outputs, self.item_embedding(classes))  # [N, D]
        return {
            "logits": logits,
            "quantities": quantities,
            "time": self.time_head(encoding),
            "classes": classes,
            "token_weight": tf.gather_nd(batch["target_token_weight"], where),
            "target_quantities": tf.gather_nd(batch["target_quantities"], where),
            "target_time": tf.gather_nd(batch["target_days"], where) / self.config.time_scale_days,
        }

    def build_for(self, batch_size: int = 1) -> None:
        """Create every weight by running a dummy batch through each part."""
        c = self.config
        items = np.full((batch_size, 2, 2), 2, np.int32)
        batch = {
            "items": items,
            "features": np.zeros((batch_size, 2, NUM_FEATURES), np.float32),
            "user": np.zeros(batch_size, np.int32),
            "lengths": np.full(batch_size, 2, np.int32),
            "target_items": np.zeros((batch_size, 2, c.decode_steps), np.int32),
            "target_token_weight": np.ones((batch_size, 2, c.decode_steps), np.float32),
            "target_quantities": np.zeros((batch_size, 2, c.decode_steps), np.float32),
            "target_days": np.zeros((batch_size, 2), np.float32),
            "target_weight": np.ones((batch_size, 2), np.float32),
        }
        self(batch)
