"""Model serving: SavedModel export, the model repository, and a local server that speaks
TensorFlow Serving's gRPC API over the same files as the ``tensorflow/serving`` image."""
