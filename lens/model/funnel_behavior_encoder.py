"""FunnelBehaviorEncoder (FBE, paper III.B): a recurrent encoder over a customer's sessions."""

import keras

from lens.model.layer_tracking import track_layers

__all__ = ["FunnelBehaviorEncoder"]


class FunnelBehaviorEncoder(keras.layers.Layer):
    """[B, S, I] session inputs (SCE vector, scaled features, user embedding) + lengths [B]
    -> [B, S, H] funnel encodings, where row ``p`` encodes the prefix of sessions 0..p.

    Bidirectional (paper): the final forward and backward states of the whole window, H = 2u; only
    row ``lengths - 1`` is filled (a backward pass sees the future, so shorter prefixes are
    separate examples). Unidirectional: every row ``p < lengths`` is the causal state after session
    ``p`` (H = u), so one pass encodes every prefix; its LSTM state can also be carried on from
    session to session.
    """

    def __init__(self, units: tuple[int, ...], bidirectional: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.bidirectional = bidirectional
        last = len(self.units) - 1
        if bidirectional:
            self.layers_ = [
                keras.layers.Bidirectional(
                    keras.layers.LSTM(u, return_sequences=i < last), name=f"fbe_bilstm_{i}"
                )
                for i, u in enumerate(self.units)
            ]
        else:
            self.layers_ = [
                keras.layers.LSTM(u, return_sequences=True, name=f"fbe_lstm_{i}")
                for i, u in enumerate(self.units)
            ]
        track_layers(self, self.layers_)

    @property
    def output_dim(self) -> int:
        return self.units[-1] * (2 if self.bidirectional else 1)

    def call(self, inputs, lengths, training=False):
        ops = keras.ops
        width = ops.shape(inputs)[1]
        mask = ops.arange(width)[None, :] < lengths[:, None]  # [B, S]
        x = inputs
        for layer in self.layers_:
            x = layer(x, mask=mask, training=training)
        if not self.bidirectional:
            return x * ops.cast(mask, x.dtype)[:, :, None]  # [B, S, u]
        last = ops.one_hot(lengths - 1, width, dtype=x.dtype)  # [B, S]
        return last[:, :, None] * x[:, None, :]  # [B, S, 2u]
