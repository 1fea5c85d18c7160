"""LensTask: the losses of the paper's objective (III.D) plus the two regression heads.

    basket   = mean over trained tokens of -log p(token | previous tokens, funnel)   (teacher forcing)
    quantity = mean over target items of (log1p units - predicted)^2
    time     = MAE or MSE of days / time_scale_days
    total    = basket + quantity_loss_weight * quantity + time_loss_weight * time

With the NSD's repeat path, p is the mixture g p_gen + (1 - g) p_repeat: the model returns its
log-probabilities (computed with logsumexp) as the logits, so the same softmax cross-entropy is its
NLL (the log-normalizer of normalized log-probabilities is 0).

In twin mode the time head sees a stop-gradient encoding (lens.model.lens_model), so the time loss
trains only the head: the regressor and the encoder-decoder are optimized separately.
"""

import tensorflow as tf

from lens.model.config import LensConfig

__all__ = ["LensTask"]


class LensTask:
    """Computes the loss dict from ``LensModel.call`` outputs."""

    def __init__(self, config: LensConfig) -> None:
        self.config = config

    def __call__(self, outputs: dict) -> dict:
        """-> {"loss", "basket", "quantity", "time"}: scalars."""
        weight = outputs["token_weight"]  # [N, D]
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=outputs["classes"], logits=outputs["logits"]
        )  # [N, D]
        basket = tf.reduce_sum(nll * weight) / tf.maximum(tf.reduce_sum(weight), 1.0)
        item_weight = weight * tf.cast(outputs["classes"] > 0, weight.dtype)
        quantity = tf.reduce_sum(
            tf.square(outputs["quantities"] - outputs["target_quantities"]) * item_weight
        ) / tf.maximum(tf.reduce_sum(item_weight), 1.0)
        error = outputs["time"] - outputs["target_time"]  # [N]
        per_target = tf.abs(error) if self.config.time_loss == "mae" else tf.square(error)
        time = tf.reduce_sum(per_target) / tf.maximum(tf.cast(tf.size(error), tf.float32), 1.0)
        total = (
            basket
            + self.config.quantity_loss_weight * quantity
            + self.config.time_loss_weight * time
        )
        return {"loss": total, "basket": basket, "quantity": quantity, "time": time}
