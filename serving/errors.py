"""Errors of the model server and its client.

    LensError
    └── ServingError          a request or operation failed with a gRPC status ``code``
        ├── ModelServerError  (client side) the model server answered with a non-OK status
        └── CircuitOpenError  (client side) the circuit breaker is open: no call was made

``ServingError.code`` is a ``grpc.StatusCode``; the server answers a failed RPC with exactly that
code and ``str(error)`` as the details, so messages follow TensorFlow Serving's wording.
"""

import grpc

from lens.errors import LensError

__all__ = ["CircuitOpenError", "ModelServerError", "ServingError"]


class ServingError(LensError):
    """A serving failure that maps onto one gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def not_found(cls, message: str) -> "ServingError":
        return cls(grpc.StatusCode.NOT_FOUND, message)

    @classmethod
    def invalid_argument(cls, message: str) -> "ServingError":
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message)

    @classmethod
    def failed_precondition(cls, message: str) -> "ServingError":
        return cls(grpc.StatusCode.FAILED_PRECONDITION, message)

    @classmethod
    def unavailable(cls, message: str) -> "ServingError":
        return cls(grpc.StatusCode.UNAVAILABLE, message)


class ModelServerError(ServingError):
    """The model server answered a call with a non-OK status (after any retries)."""


class CircuitOpenError(ServingError):
    """The client's circuit breaker is open; the call was not sent. Retry after the cool-down."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, message)
