"""SessionContentEncoder (SCE, paper III.B): a bidirectional LSTM over one basket's item embeddings."""

import keras

from lens.model.layer_tracking import track_layers

__all__ = ["SessionContentEncoder"]


class SessionContentEncoder(keras.layers.Layer):
    """[N, L, E] item embeddings of N baskets + item_mask [N, L] (True on items) -> [N, 2 * units[-1]] basket vectors.

    Stacked bidirectional LSTM layers; the last returns the final forward and backward states
    (padding skipped via the mask), not an average of the embeddings.
    """

    def __init__(self, units: tuple[int, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.layers_ = [
            keras.layers.Bidirectional(
                keras.layers.LSTM(u, return_sequences=i < len(self.units) - 1),
                name=f"sce_bilstm_{i}",
            )
            for i, u in enumerate(self.units)
        ]
        track_layers(self, self.layers_)

    @property
    def output_dim(self) -> int:
        return 2 * self.units[-1]

    def call(self, embedded, item_mask, training=False):
        x = embedded  # [N, L, E]
        for layer in self.layers_:
            x = layer(x, mask=item_mask, training=training)  # [N, L, 2u] ... then [N, 2u]
        return x
