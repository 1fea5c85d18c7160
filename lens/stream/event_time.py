"""Event time as LENS's streaming code holds it: integer microseconds since the Unix epoch (UTC).

Integers make every comparison and every gap exact, so the same events give the same sessions,
alerts and bytes on any machine and at any replay speed. Calendar features read the UTC date.
"""

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = [
    "MICROS_PER_DAY",
    "MICROS_PER_SECOND",
    "as_utc",
    "from_datetime",
    "from_timestamp",
    "iso_date",
    "to_datetime",
    "to_timestamp",
    "utc_date",
]

MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_DAY = _EPOCH.date()


def from_timestamp(timestamp: Timestamp) -> int:
    """A protobuf Timestamp as microseconds since the epoch (sub-microsecond nanos dropped)."""
    return timestamp.seconds * MICROS_PER_SECOND + timestamp.nanos // 1000


def as_utc(value: dt.datetime) -> dt.datetime:
    """A naive datetime as UTC (history files and ``lens.data.basket.Basket`` hold naive times,
    which LENS reads as UTC); an aware one as it is."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def from_datetime(value: dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch."""
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


def to_timestamp(micros: int) -> Timestamp:
    seconds, rest = divmod(micros, MICROS_PER_SECOND)
    return Timestamp(seconds=seconds, nanos=rest * 1000)


def to_datetime(micros: int) -> dt.datetime:
    """Aware UTC datetime; raises OverflowError/ValueError outside years 1..9999."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def utc_date(micros: int) -> dt.date:
    """The UTC calendar date of an event time."""
    return _EPOCH_DAY + dt.timedelta(days=micros // MICROS_PER_DAY)


def iso_date(micros: int) -> str:
    return utc_date(micros).isoformat()


def describe(micros: int) -> str:
    """Human-readable form for error details; never raises."""
    try:
        return to_datetime(micros).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError):
        return f"{micros} us since the epoch"
