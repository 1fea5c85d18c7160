"""NextSessionDecoder (NSD, paper III.C): an autoregressive LSTM that writes the next basket as a
sequence of item classes ended by end-of-basket (class 0), plus a quantity per item; optionally with
a repeat (copy) path over the customer's own items (lens.model.repeat_path)."""

import keras

from lens.model.repeat_path import RepeatPath

__all__ = ["NextSessionDecoder"]


class NextSessionDecoder(keras.layers.Layer):
    """Decodes from a funnel encoding [N, H] with the shared item embedding.

    Step input: [embedding(previous token), context]; context [N, context_dim] is the funnel
    encoding projected once (cheaper than feeding the whole encoding at every step); the first
    previous token is 0 (the padding row of the item embedding doubles as start-of-basket).
    Initial LSTM states come from the encoding. Outputs logits over ``num_classes`` (output
    vocabulary; class 0 = end-of-basket), through a ``projection_dim`` bottleneck when set.
    Quantity head: log1p(units) of an item from [decoder output at its step, its embedding].

    With ``repeat_key_dim`` > 0 a RepeatPath (key size = item embedding size) mixes the generator
    with a distribution over the customer's history; ``call`` and ``step`` then need ``history``
    [N, C] and ``class_embeddings`` [C, E] and return the mixture's log-probabilities in place of
    logits (both are "scores whose softmax is p(next token)", so losses and decoding take either).
    """

    def __init__(
        self,
        units: tuple[int, ...],
        num_classes: int,
        context_dim: int = 64,
        projection_dim: int = 0,
        repeat_key_dim: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.units = tuple(units)
        self.num_classes = num_classes
        self.context_layer = keras.layers.Dense(context_dim, activation="tanh", name="nsd_context")
        self.projection = (
            keras.layers.Dense(projection_dim, name="nsd_projection") if projection_dim else None
        )
        self.state_layers = [
            keras.layers.Dense(2 * u, activation="tanh", name=f"nsd_init_{i}")
            for i, u in enumerate(self.units)
        ]
        self.lstms = [
            keras.layers.LSTM(u, return_sequences=True, name=f"nsd_lstm_{i}")
            for i, u in enumerate(self.units)
        ]
        for i, (init, lstm) in enumerate(zip(self.state_layers, self.lstms, strict=True)):
            # Attributes, not only lists: TensorFlow checkpoints track layers by attribute name.
            setattr(self, f"init_{i}", init)
            setattr(self, f"lstm_{i}", lstm)
        self.output_layer = keras.layers.Dense(num_classes, name="nsd_logits")
        self.quantity_hidden = keras.layers.Dense(32, activation="relu", name="quantity_hidden")
        self.quantity_output = keras.layers.Dense(1, name="quantity")
        self.repeat = (
            RepeatPath(num_classes, repeat_key_dim, name="repeat") if repeat_key_dim else None
        )

    def build(self, input_shape=None):
        # Sub-layers create their weights on first use.
        self.built = True

    def initial_states(self, encoding):
        """encoding [N, H] -> per layer [h [N, u], c [N, u]]."""
        states = []
        for layer, u in zip(self.state_layers, self.units, strict=True):
            hc = layer(encoding)
            states.append([hc[:, :u], hc[:, u:]])
        return states

    def call(self, encoding, token_embeddings, history=None, class_embeddings=None, training=False):
        """Teacher forcing. encoding [N, H], token_embeddings [N, D, E] (previous tokens)
        -> (scores [N, D, C], outputs [N, D, u_last])."""
        ops = keras.ops
        steps = ops.shape(token_embeddings)[1]
        context = ops.repeat(self.context_layer(encoding)[:, None, :], steps, axis=1)  # [N, D, X]
        x = ops.concatenate([token_embeddings, context], axis=-1)
        for lstm, state in zip(self.lstms, self.initial_states(encoding), strict=True):
            x = lstm(x, initial_state=state, training=training)
        return self.scores(x, history, class_embeddings), x

    def scores(self, outputs, history=None, class_embeddings=None):
        """outputs [..., u_last] -> generator logits, or mixture log-probabilities with the
        repeat path, [..., C]."""
        hidden = outputs if self.projection is None else self.projection(outputs)
        logits = self.output_layer(hidden)
        if self.repeat is None:
            return logits
        return self.repeat(logits, outputs, class_embeddings, history)

    def step(self, encoding, token_embedding, states, history=None, class_embeddings=None):
        """One decoding step. encoding [N, H], token_embedding [N, E], states as initial_states
        -> (scores [N, C], output [N, u_last], new states)."""
        ops = keras.ops
        x = ops.concatenate([token_embedding, self.context_layer(encoding)], axis=-1)
        new_states = []
        for lstm, state in zip(self.lstms, states, strict=True):
            x, state = lstm.cell(x, state)
            new_states.append(list(state))
        return self.scores(x, history, class_embeddings), x, new_states

    def quantity(self, outputs, item_embeddings):
        """outputs [..., u_last], item_embeddings [..., E] -> log1p(units) [...]."""
        ops = keras.ops
        hidden = self.quantity_hidden(ops.concatenate([outputs, item_embeddings], axis=-1))
        return ops.squeeze(self.quantity_output(hidden), axis=-1)
