"""Record validation: the checks that decide whether a decoded event goes on or to ``lens.dlq``.

Every check returns ``None`` (valid) or ``(reason, detail)``: a ``v1.DeadLetterReason`` value and a
sentence saying exactly what is wrong, e.g. ``"quantity -3 must be > 0"``. Nothing here raises on
bad data; the service turns a non-None result into a ``v1.DeadLetter`` with the original bytes.

Future timestamps are judged against a *reference time* (``Validator``):

- live: the processing time the service passes as ``now`` (wall clock). Historical replays are
  never affected (their events are all in the past), so results stay replay-independent;
- without ``now`` (event-time-only replays, tests): the latest event time seen among events that
  passed every other check. Future-rejected events move it too, so a legitimate quiet period
  longer than ``max_future`` costs at most the first event after it instead of rejecting the rest
  of the stream; the price is that after a bogus far-future event the check is weaker until the
  stream catches up.
"""

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from lens import v1
from lens.stream.event_time import MICROS_PER_DAY, describe, from_datetime, from_timestamp

__all__ = [
    "Invalid",
    "ValidationConfig",
    "Validator",
    "validate_pos_event",
    "validate_prediction",
    "validate_resupply",
]

# (v1.DeadLetterReason value, human-readable detail)
Invalid = tuple[int, str]

_MISSING = v1.DeadLetterReason.DEAD_LETTER_REASON_MISSING_FIELD
_QUANTITY = v1.DeadLetterReason.DEAD_LETTER_REASON_INVALID_QUANTITY
_STORE = v1.DeadLetterReason.DEAD_LETTER_REASON_UNKNOWN_STORE
_TIME = v1.DeadLetterReason.DEAD_LETTER_REASON_INVALID_TIMESTAMP

_Y2K = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
_LAST_MICROS = from_datetime(dt.datetime.max.replace(tzinfo=dt.timezone.utc))


@dataclass(frozen=True)
class ValidationConfig:
    """What counts as a valid record.

    Attributes:
      max_quantity: units above this on one line (or one resupply cell) are absurd.
      max_amount: a line's sales value above this is absurd; None = no upper bound.
      known_stores: when set, a store id outside it (the empty default store included, unless
        listed) is rejected; None = accept every store.
      max_future: how far past the reference time an event time may lie; None = no check.
      earliest: event times before this are rejected (default 2000-01-01 UTC).
      max_basket_lines: lines one basket may hold; its further new lines are rejected (the
        funnel state is one table record, ~50 bytes per line, which Kafka refuses beyond 1 MB
        by default; the largest Ta-Feng basket has 112 products).
    """

    max_quantity: float = 10_000.0
    max_amount: float | None = 1_000_000.0
    known_stores: frozenset[str] | None = None
    max_future: dt.timedelta | None = dt.timedelta(days=1)
    earliest: dt.datetime = _Y2K
    max_basket_lines: int = 1000

    @property
    def earliest_micros(self) -> int:
        return from_datetime(self.earliest)

    @property
    def max_future_micros(self) -> int | None:
        if self.max_future is None:
            return None
        return int(self.max_future / dt.timedelta(microseconds=1))


def _fmt(value: float) -> str:
    """3 -> '3', 2.5 -> '2.5': numbers in details read like the input."""
    return f"{value:g}"


def _check_store(store_id: str, config: ValidationConfig) -> Invalid | None:
    if config.known_stores is not None and store_id not in config.known_stores:
        shown = repr(store_id) if store_id else "'' (the default store)"
        return _STORE, f"store {shown} is not a known store"
    return None


def _check_time(
    name: str, micros: int, config: ValidationConfig, reference: int | None
) -> Invalid | None:
    if micros < config.earliest_micros:
        return _TIME, f"{name} {describe(micros)} is before {describe(config.earliest_micros)}"
    limit = config.max_future_micros
    if reference is not None and limit is not None and micros > reference + limit:
        ahead = (micros - reference) / MICROS_PER_DAY
        allowed = limit / MICROS_PER_DAY
        return _TIME, (
            f"{name} {describe(micros)} is {ahead:.2f} days ahead of the reference time "
            f"{describe(reference)}; at most {allowed:g} day{'' if allowed == 1 else 's'} allowed"
        )
    return None


def _check_positive_quantity(name: str, value: float, config: ValidationConfig) -> Invalid | None:
    if not math.isfinite(value):
        return _QUANTITY, f"{name} {value} must be a finite number"
    if value <= 0:
        return _QUANTITY, f"{name} {_fmt(value)} must be > 0"
    if value > config.max_quantity:
        return _QUANTITY, f"{name} {_fmt(value)} exceeds the maximum of {_fmt(config.max_quantity)}"
    return None


def _check_line(
    line: v1.TransactionLine, config: ValidationConfig, reference: int | None
) -> Invalid | None:
    for name in ("transaction_id", "customer_id", "product_id"):
        if not getattr(line, name):
            return _MISSING, f"line {name} is empty"
    if line.line_no < 1:
        return _MISSING, "line line_no is 0; it must be >= 1"
    if not line.HasField("timestamp"):
        return _MISSING, "line timestamp is missing"
    problem = _check_positive_quantity("quantity", line.quantity, config)
    if problem:
        return problem
    if not math.isfinite(line.amount):
        return _QUANTITY, f"amount {line.amount} must be a finite number"
    if line.amount < 0:
        return _QUANTITY, f"amount {_fmt(line.amount)} must be >= 0"
    if config.max_amount is not None and line.amount > config.max_amount:
        limit = _fmt(config.max_amount)
        return _QUANTITY, f"amount {_fmt(line.amount)} exceeds the maximum of {limit}"
    return _check_store(line.store_id, config) or _check_time(
        "timestamp", from_timestamp(line.timestamp), config, reference
    )


def _check_close(
    close: v1.BasketClosed, config: ValidationConfig, reference: int | None
) -> Invalid | None:
    for name in ("transaction_id", "customer_id"):
        if not getattr(close, name):
            return _MISSING, f"basket_closed {name} is empty"
    if not close.HasField("timestamp"):
        return _MISSING, "basket_closed timestamp is missing"
    return _check_store(close.store_id, config) or _check_time(
        "timestamp", from_timestamp(close.timestamp), config, reference
    )


def validate_pos_event(
    event: v1.PosEvent,
    config: ValidationConfig = ValidationConfig(),
    *,
    reference_time: int | None = None,
) -> Invalid | None:
    """Check one ``pos.transactions`` value.

    Args:
      reference_time: event time (microseconds since the epoch) that future timestamps are judged
        against; None = skip the future check.
    """
    kind = event.WhichOneof("event")
    if kind == "line":
        return _check_line(event.line, config, reference_time)
    if kind == "basket_closed":
        return _check_close(event.basket_closed, config, reference_time)
    return _MISSING, "PosEvent has no event set (neither line nor basket_closed)"


def validate_resupply(
    resupply: v1.Resupply, config: ValidationConfig = ValidationConfig()
) -> Invalid | None:
    """Check one ``inventory.resupplies`` value. Plans are about the future by nature, so there is
    no future check; ``day`` must be an ISO date on or after ``config.earliest``."""
    for name in ("store_id", "product_id", "day"):
        if not getattr(resupply, name):
            return _MISSING, f"resupply {name} is empty"
    try:
        day = dt.date.fromisoformat(resupply.day)
        if len(resupply.day) != 10:
            raise ValueError(resupply.day)
    except ValueError:
        return _TIME, f"day {resupply.day!r} is not an ISO-8601 date (YYYY-MM-DD)"
    if day < config.earliest.date():
        return _TIME, f"day {resupply.day} is before {config.earliest.date().isoformat()}"
    quantity = resupply.quantity
    if not math.isfinite(quantity):
        return _QUANTITY, f"quantity {quantity} must be a finite number"
    if quantity < 0:
        return _QUANTITY, f"quantity {_fmt(quantity)} must be >= 0"
    if quantity > config.max_quantity:
        limit = _fmt(config.max_quantity)
        return _QUANTITY, f"quantity {_fmt(quantity)} exceeds the maximum of {limit}"
    return _check_store(resupply.store_id, config)


def validate_prediction(
    prediction: v1.Prediction, config: ValidationConfig = ValidationConfig()
) -> Invalid | None:
    """Check one ``lens.predictions`` value before it becomes state and stock-out demand. The
    worker applies only the predictions it made itself, but a broken model (NaN, inf) can make
    anything; nothing in it may stop the worker."""
    if not prediction.customer_id:
        return _MISSING, "prediction customer_id is empty"
    if not prediction.HasField("as_of"):
        return _MISSING, "prediction as_of is missing"
    as_of = from_timestamp(prediction.as_of)
    if not config.earliest_micros <= as_of <= _LAST_MICROS:
        return _TIME, (
            f"as_of {describe(as_of)} is outside {describe(config.earliest_micros)} .. "
            f"{describe(_LAST_MICROS)}"
        )
    days = prediction.days_to_next
    if not math.isfinite(days) or days < 0:
        return _QUANTITY, f"days_to_next {days} must be a finite number >= 0"
    for field_name in ("basket", "ranking"):
        for i, item in enumerate(getattr(prediction, field_name)):
            if not (math.isfinite(item.score) and math.isfinite(item.quantity)):
                return _QUANTITY, (
                    f"{field_name}[{i}] ({item.product_id!r}) score {item.score} and quantity "
                    f"{item.quantity} must be finite numbers"
                )
    return None


@dataclass
class Validator:
    """Stateful form for a stream: holds the event-time reference used when no ``now`` is given
    (see the module docstring).

    One per partition; ``to_dict``/``from_dict`` let the service keep it in a table so the
    reference survives a rebalance.
    """

    config: ValidationConfig = field(default_factory=ValidationConfig)
    latest_event_time: int | None = None  # microseconds; see the module docstring

    def check(self, event: v1.PosEvent, *, now: int | None = None) -> Invalid | None:
        """Validate ``event``; ``now`` = processing time in microseconds (None in replays)."""
        reference = now if now is not None else self.latest_event_time
        problem = validate_pos_event(event, self.config, reference_time=reference)
        only_future = (
            problem is not None
            and problem[0] == _TIME
            and validate_pos_event(event, self.config, reference_time=None) is None
        )
        if problem is None or only_future:
            micros = from_timestamp(getattr(event, event.WhichOneof("event")).timestamp)
            if self.latest_event_time is None or micros > self.latest_event_time:
                self.latest_event_time = micros
        return problem

    def to_dict(self) -> dict[str, Any]:
        return {"latest_event_time": self.latest_event_time}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], config: ValidationConfig = ValidationConfig()
    ) -> "Validator":
        return cls(config=config, latest_event_time=data.get("latest_event_time"))
