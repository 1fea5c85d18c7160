"""Checkpoint tracking for the layer stacks the encoders keep in lists."""

__all__ = ["track_layers"]


def track_layers(owner, layers) -> None:
    """Expose ``layers[i]`` as ``owner.rnn_<i>``: TensorFlow checkpoints track sub-layers by
    attribute name, so weights held only in a list would not be saved under stable names."""
    for i, layer in enumerate(layers):
        setattr(owner, f"rnn_{i}", layer)
