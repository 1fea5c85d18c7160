"""Event schemas of LENS (protobuf package ``lens.v1``).

The ``*_pb2`` modules are generated from ``protos/lens/v1/*.proto`` by ``make setup``
(``make protos``); they are not committed.
"""

try:
    from lens.v1.alert_pb2 import AnomalyAlert, SessionRef, StockoutAlert
    from lens.v1.dead_letter_pb2 import DeadLetter, DeadLetterReason
    from lens.v1.inventory_pb2 import Resupply
    from lens.v1.model_pb2 import ModelRef
    from lens.v1.pos_pb2 import BasketClosed, PosEvent, TransactionLine
    from lens.v1.prediction_pb2 import PredictedItem, Prediction
    from lens.v1.session_pb2 import CloseReason, Session, SessionFeatures, SessionItem
except ImportError as exc:  # pragma: no cover - only without generated code
    raise ImportError(
        "LENS event schemas are not generated yet: run `make setup` (or `make protos`)."
    ) from exc

__all__ = [
    "AnomalyAlert",
    "BasketClosed",
    "CloseReason",
    "DeadLetter",
    "DeadLetterReason",
    "ModelRef",
    "PosEvent",
    "PredictedItem",
    "Prediction",
    "Resupply",
    "Session",
    "SessionFeatures",
    "SessionItem",
    "SessionRef",
    "StockoutAlert",
    "TransactionLine",
]
