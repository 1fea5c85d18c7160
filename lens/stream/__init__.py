"""Streaming core of the funnel-state service: validation, sessionization and per-customer state.

Plain, deterministic Python on event time (no Kafka or Faust here): the service in ``services/``
decodes a record, calls ``Validator.check``, feeds valid events to ``Sessionizer`` with the
customer's ``FunnelState`` from its table, and publishes what comes back.
"""

from lens.stream.event_time import from_timestamp, to_timestamp
from lens.stream.funnel_state import (
    FunnelState,
    FunnelStats,
    LastPrediction,
    OpenBasket,
    SessionRecord,
    expected_store,
)
from lens.stream.sessionizer import Outcome, Sessionizer, SessionizerConfig, SessionizerTable, Step
from lens.stream.validation import (
    Invalid,
    ValidationConfig,
    Validator,
    validate_pos_event,
    validate_prediction,
    validate_resupply,
)

__all__ = [
    "FunnelState",
    "FunnelStats",
    "Invalid",
    "LastPrediction",
    "OpenBasket",
    "Outcome",
    "SessionRecord",
    "Sessionizer",
    "SessionizerConfig",
    "SessionizerTable",
    "Step",
    "ValidationConfig",
    "Validator",
    "expected_store",
    "from_timestamp",
    "to_timestamp",
    "validate_pos_event",
    "validate_prediction",
    "validate_resupply",
]
