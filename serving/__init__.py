"""Model serving: SavedModel export, the model repository, and a local server that speaks
TensorFlow Serving's gRPC API over the same files as the ``tensorflow/serving`` image.

Public surface (imported lazily, so ``import serving`` does not load TensorFlow):

- ``ModelServer``, ``ServerOptions`` — the ``lens serve`` process (``serving.server``)
- ``ModelServerClient`` with ``RetryPolicy``, ``CircuitBreakerPolicy``, ``CoalescingPolicy``,
  ``PredictResult`` — the asyncio client (``serving.client``)
- ``ServingError``, ``ModelServerError``, ``CircuitOpenError`` — errors (``serving.errors``)
"""

import importlib

__all__ = [
    "CircuitBreakerPolicy",
    "CircuitOpenError",
    "CoalescingPolicy",
    "ModelServer",
    "ModelServerClient",
    "ModelServerError",
    "PredictResult",
    "RetryPolicy",
    "ServerOptions",
    "ServingError",
]

_HOMES = {
    "CircuitBreakerPolicy": "serving.client",
    "CoalescingPolicy": "serving.client",
    "ModelServerClient": "serving.client",
    "PredictResult": "serving.client",
    "RetryPolicy": "serving.client",
    "CircuitOpenError": "serving.errors",
    "ModelServerError": "serving.errors",
    "ServingError": "serving.errors",
    "ModelServer": "serving.server",
    "ServerOptions": "serving.options",
}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'serving' has no attribute {name!r}")
