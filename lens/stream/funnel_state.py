"""FunnelState: everything the funnel-state service keeps about one customer, as one table value.

    FunnelState
    ├── sessions         the last ``max_sessions`` closed sessions (SessionRecord),
    │                    oldest first
    ├── open_basket      the basket being scanned (OpenBasket) or None
    ├── closed_recent    (transaction_id, line numbers) of the last few closed baskets,
    │                    to tell a resent line (duplicate) from a late one
    ├── last_prediction  the newest Prediction made for the customer (LastPrediction) or None
    ├── stats            running totals (FunnelStats), all-time
    ├── cluster          behaviour cluster (Algorithm 1's fk), -1 = not assigned yet
    └── distances        dA of the latest scored sessions (Algorithm 1's smoothing)

The record holds plain Python values only; the sessionizer (``lens.stream.sessionizer``) changes
it. ``to_bytes``/``from_bytes`` give the table's changelog format: compact UTF-8 JSON of
``to_dict()`` (short keys, no whitespace, ``"v": 2`` format version). Event times are integer
microseconds since the epoch (UTC). Bytes per customer, measured by the unit tests with
16-character product ids: about 60 bytes + ~29 per item for each kept session (a 10-item session
is ~350 bytes), so a customer with 50 kept sessions of 10 items and a 10-item prediction with
its 20-item ranking is ~19 KB; ``max_sessions`` (default 50) caps the sessions, ``remember_closed`` (default 8) the
closed-transaction memory, and the open basket is one basket.
"""

import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lens import v1
from lens.data.basket import Basket
from lens.data.features import feature_row
from lens.errors import DataError
from lens.stream.event_time import (
    from_timestamp,
    to_datetime,
    to_timestamp,
    utc_date,
)

__all__ = [
    "FORMAT_VERSION",
    "RANKING_KEPT",
    "FunnelState",
    "FunnelStats",
    "LastPrediction",
    "OpenBasket",
    "SessionRecord",
    "expected_store",
]

FORMAT_VERSION = 2  # 2: the prediction's ranking and the recent dA values
RANKING_KEPT = 20  # ranked products Algorithm 1 compares a session with


def _session_features(
    items: tuple[tuple[str, float, float], ...], timestamp: int, gap_days: float
) -> dict[str, Any]:
    """The fields of a basket's SessionFeatures; calendar fields read the UTC date, like the
    batch features in ``lens.data.features`` (which read naive UTC timestamps)."""
    day = utc_date(timestamp)
    return {
        "days_since_previous": gap_days,
        "basket_size": len(items),
        "total_quantity": sum(q for _, q, _ in items),
        "total_amount": sum(a for _, _, a in items),
        "day_of_week": day.isoweekday(),
        "day_of_month": day.day,
        "month": day.month,
    }


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class SessionRecord:
    """A closed session as the state keeps it. ``items``: (product_id, quantity, amount) per
    distinct product, first-scanned order."""

    transaction_id: str
    store_id: str
    timestamp: int
    items: tuple[tuple[str, float, float], ...]
    session_index: int
    close_reason: int
    days_since_previous: float
    backfilled: bool = False

    @property
    def products(self) -> tuple[str, ...]:
        return tuple(p for p, _, _ in self.items)

    def to_session(self, customer_id: str) -> v1.Session:
        # nested messages as dicts: a message passed in is copied (2-3x the time per session)
        return v1.Session(
            customer_id=customer_id,
            store_id=self.store_id,
            transaction_id=self.transaction_id,
            timestamp=to_timestamp(self.timestamp),
            items=[{"product_id": p, "quantity": q, "amount": a} for p, q, a in self.items],
            features=_session_features(self.items, self.timestamp, self.days_since_previous),
            close_reason=self.close_reason,
            session_index=self.session_index,
            backfilled=self.backfilled,
        )

    @classmethod
    def from_session(cls, session: v1.Session) -> "SessionRecord":
        return cls(
            transaction_id=session.transaction_id,
            store_id=session.store_id,
            timestamp=from_timestamp(session.timestamp),
            items=tuple((i.product_id, i.quantity, i.amount) for i in session.items),
            session_index=session.session_index,
            close_reason=session.close_reason,
            days_since_previous=session.features.days_since_previous,
            backfilled=session.backfilled,
        )

    def to_basket(self, customer_id: str) -> Basket:
        """The batch form (``lens.data.basket.Basket``, naive UTC timestamp) the model reads.
        Built once per record and customer: every prediction of the customer reads their kept
        sessions as baskets (the demand rhythms of Algorithm 2)."""
        basket = self.__dict__.get("_basket")  # frozen: cached the way functools.cached_property does
        if basket is None or basket.customer_id != customer_id:
            basket = Basket(
                customer_id=customer_id,
                basket_id=self.transaction_id,
                store_id=self.store_id,
                timestamp=to_datetime(self.timestamp).replace(tzinfo=None),
                items=self.products,
                quantities=tuple(q for _, q, _ in self.items),
                amounts=tuple(a for _, _, a in self.items),
            )
            self.__dict__["_basket"] = basket
        return basket

    def feature_row(self, customer_id: str, previous: "SessionRecord | None") -> np.ndarray:
        """float32 [F]: the session's row of the model's session features after ``previous``
        (None: the funnel's first; ``lens.data.features.feature_row``). Kept for the last
        ``previous`` asked about: each prediction of the customer reads it again. Read-only."""
        after = None if previous is None else previous.timestamp
        cached = self.__dict__.get("_feature_row")
        if cached is None or cached[0] != after:
            row = feature_row(self.to_basket(customer_id),
                              None if previous is None else previous.to_basket(customer_id))
            row.flags.writeable = False
            cached = self.__dict__["_feature_row"] = (after, row)
        return cached[1]

    def to_list(self) -> list[Any]:
        return [
            self.transaction_id,
            self.store_id,
            self.timestamp,
            [list(i) for i in self.items],
            self.session_index,
            self.close_reason,
            self.days_since_previous,
            int(self.backfilled),
        ]

    @functools.cached_property
    def json(self) -> str:
        """``to_list()`` as compact JSON, encoded once: a kept session never changes, and the
        customer's state around it is written about twice per basket."""
        return _compact_json(self.to_list())

    @classmethod
    def from_list(cls, data: list[Any]) -> "SessionRecord":
        tx, store, ts, items, index, reason, gap, backfilled = data
        items = tuple((p, q, a) for p, q, a in items)
        return cls(tx, store, ts, items, index, reason, gap, bool(backfilled))


@dataclass
class OpenBasket:
    """The basket being scanned.

    ``items``: product_id -> [quantity, amount, first_time, first_line_no]; at close, products are
    ordered by (first_time, first_line_no) of their earliest line, so lines that arrive out of
    order still give first-scanned order. ``close_time``/``expected_lines`` are set by a
    BasketClosed that arrived while lines were still in flight (line_count > lines seen).
    """

    transaction_id: str
    store_id: str
    first_time: int
    last_time: int
    items: dict[str, list[float]] = field(default_factory=dict)
    line_nos: set[int] = field(default_factory=set)
    close_time: int | None = None
    expected_lines: int = 0

    @property
    def last_activity(self) -> int:
        """Event time the inactivity timeout counts from: the latest line or BasketClosed."""
        return self.last_time if self.close_time is None else max(self.last_time, self.close_time)

    def ordered_items(self) -> tuple[tuple[str, float, float], ...]:
        ranked = sorted(self.items.items(), key=lambda kv: (kv[1][2], kv[1][3]))
        return tuple((p, v[0], v[1]) for p, v in ranked)

    def to_list(self) -> list[Any]:
        return [
            self.transaction_id,
            self.store_id,
            self.first_time,
            self.last_time,
            [[p, *v] for p, v in self.items.items()],
            sorted(self.line_nos),
            self.close_time,
            self.expected_lines,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> "OpenBasket":
        tx, store, first, last, items, line_nos, close_time, expected = data
        by_product = {p: [q, a, t, n] for p, q, a, t, n in items}
        return cls(tx, store, first, last, by_product, set(line_nos), close_time, expected)


@dataclass(frozen=True)
class LastPrediction:
    """The newest prediction for the customer: what Algorithm 1 compares the next session with
    and what Algorithm 2 counts as demand. ``basket``: (product_id, score, quantity);
    ``ranking``: the products of the model's longer ranking (at most ``RANKING_KEPT``)."""

    prediction_id: str
    store_id: str
    as_of: int
    session_index: int
    basket: tuple[tuple[str, float, float], ...]
    days_to_next: float
    model_name: str
    model_version: int
    model_label: str = ""
    ranking: tuple[str, ...] = ()

    @property
    def products(self) -> tuple[str, ...]:
        return tuple(p for p, _, _ in self.basket)

    @property
    def model(self) -> v1.ModelRef:
        return v1.ModelRef(name=self.model_name, version=self.model_version, label=self.model_label)

    @classmethod
    def from_prediction(cls, prediction: v1.Prediction) -> "LastPrediction":
        return cls(
            prediction_id=prediction.prediction_id,
            store_id=prediction.store_id,
            as_of=from_timestamp(prediction.as_of),
            session_index=prediction.session_index,
            basket=tuple((i.product_id, i.score, i.quantity) for i in prediction.basket),
            days_to_next=prediction.days_to_next,
            model_name=prediction.model.name,
            model_version=prediction.model.version,
            model_label=prediction.model.label,
            ranking=tuple(i.product_id for i in prediction.ranking[:RANKING_KEPT]),
        )

    def to_prediction(self, customer_id: str) -> v1.Prediction:
        return v1.Prediction(
            prediction_id=self.prediction_id,
            customer_id=customer_id,
            store_id=self.store_id,
            as_of=to_timestamp(self.as_of),
            session_index=self.session_index,
            basket=[v1.PredictedItem(product_id=p, score=s, quantity=q) for p, s, q in self.basket],
            ranking=[v1.PredictedItem(product_id=p) for p in self.ranking],
            days_to_next=self.days_to_next,
            model=self.model,
        )

    def to_list(self) -> list[Any]:
        return [
            self.prediction_id,
            self.store_id,
            self.as_of,
            self.session_index,
            [list(i) for i in self.basket],
            self.days_to_next,
            self.model_name,
            self.model_version,
            self.model_label,
            list(self.ranking),
        ]

    @functools.cached_property
    def json(self) -> str:
        """``to_list()`` as compact JSON, encoded once: the prediction stays while the customer's
        state around it is written (a basket's lines and close), and it is most of the bytes
        that change."""
        return _compact_json(self.to_list())

    @classmethod
    def from_list(cls, data: list[Any]) -> "LastPrediction":
        pid, store, as_of, index, basket, days, name, version, label, ranking = data
        items = tuple((p, s, q) for p, s, q in basket)
        return cls(pid, store, as_of, index, items, days, name, version, label, tuple(ranking))


@dataclass
class FunnelStats:
    """All-time running totals. ``store_visits`` has one entry per store the customer visited
    (bounded by the number of stores). Line counters reconcile: ``lines_seen ==
    lines_in_sessions + duplicate_lines + late_lines + lines in the open basket``."""

    sessions: int = 0
    items: int = 0  # sum of basket sizes (distinct products per session)
    units: float = 0.0
    spend: float = 0.0
    last_session_time: int | None = None
    store_visits: dict[str, int] = field(default_factory=dict)
    lines_seen: int = 0
    lines_in_sessions: int = 0
    duplicate_lines: int = 0
    late_lines: int = 0
    ignored_closes: int = 0

    _FIELDS = (
        "sessions", "items", "units", "spend", "last_session_time", "store_visits",
        "lines_seen", "lines_in_sessions", "duplicate_lines", "late_lines", "ignored_closes",
    )

    def to_list(self) -> list[Any]:
        return [getattr(self, name) for name in self._FIELDS]

    @classmethod
    def from_list(cls, data: list[Any]) -> "FunnelStats":
        return cls(**dict(zip(cls._FIELDS, data, strict=True)))


def expected_store(sessions: Sequence[SessionRecord], default: str = "") -> str:
    """The store a customer is expected to visit next: the most frequent store among the kept
    recent sessions; ties go to the store visited most recently. ``default`` when there are none."""
    if not sessions:
        return default
    counts = Counter(s.store_id for s in sessions)
    last_seen = {s.store_id: i for i, s in enumerate(sessions)}
    return max(counts, key=lambda store: (counts[store], last_seen[store]))


@dataclass
class FunnelState:
    """One customer's record in the funnel-state table (see the module docstring)."""

    customer_id: str
    sessions: list[SessionRecord] = field(default_factory=list)
    open_basket: OpenBasket | None = None
    closed_recent: list[tuple[str, list[int]]] = field(default_factory=list)
    last_prediction: LastPrediction | None = None
    stats: FunnelStats = field(default_factory=FunnelStats)
    cluster: int = -1
    # dA of the customer's latest scored sessions, oldest first (AnomalyConfig.smoothing at most)
    distances: list[float] = field(default_factory=list)

    def add_session(self, record: SessionRecord, *, max_sessions: int) -> None:
        """Append a closed session, update the stats and drop the oldest beyond ``max_sessions``."""
        self.sessions.append(record)
        if len(self.sessions) > max_sessions:
            del self.sessions[: len(self.sessions) - max_sessions]
        s = self.stats
        s.sessions = max(s.sessions, record.session_index)
        s.items += len(record.items)
        s.units += sum(q for _, q, _ in record.items)
        s.spend += sum(a for _, _, a in record.items)
        last = s.last_session_time
        s.last_session_time = record.timestamp if last is None else max(last, record.timestamp)
        s.store_visits[record.store_id] = s.store_visits.get(record.store_id, 0) + 1

    def expected_store(self, default: str = "") -> str:
        """Most frequent store among the kept sessions, ties -> most recent (``expected_store``)."""
        return expected_store(self.sessions, default)

    def set_prediction(self, prediction: v1.Prediction) -> LastPrediction:
        self.last_prediction = LastPrediction.from_prediction(prediction)
        return self.last_prediction

    def snapshot(self) -> "FunnelState":
        """A copy that later changes to this state do not reach (records and the prediction are
        immutable, so they are shared): what the model is asked about while the worker goes on
        changing the customer's cached state."""
        basket = self.open_basket
        return dataclasses.replace(
            self,
            sessions=list(self.sessions),
            open_basket=None if basket is None else OpenBasket.from_list(basket.to_list()),
            closed_recent=[(tx, list(nos)) for tx, nos in self.closed_recent],
            stats=dataclasses.replace(self.stats, store_visits=dict(self.stats.store_visits)),
            distances=list(self.distances),
        )

    def baskets(self) -> list[Basket]:
        """The kept sessions as the model's input funnel, oldest first."""
        return [record.to_basket(self.customer_id) for record in self.sessions]

    # -- serialisation -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, the changelog format (times in microseconds since the epoch)::

            v  format version (1)
            c  customer id
            s  sessions: [tx, store, time, [[product, quantity, amount], ...], session_index,
               close_reason, days_since_previous, backfilled 0/1], oldest first
            o  open basket or null: [tx, store, first_time, last_time,
               [[product, quantity, amount, first_time, first_line_no], ...], [line_no, ...],
               close_time or null, expected_lines]
            x  closed_recent: [[tx, [line_no, ...]], ...], oldest first
            p  last prediction or null: [prediction_id, store, as_of, session_index,
               [[product, score, quantity], ...], days_to_next, model name, version, label,
               [ranked product, ...]]
            t  stats: [sessions, items, units, spend, last_session_time, {store: visits},
               lines_seen, lines_in_sessions, duplicate_lines, late_lines, ignored_closes]
            k  cluster (-1 = none)
            d  dA of the latest scored sessions, oldest first
        """
        prediction = self.last_prediction
        return {
            **self._changing_fields(),
            "p": None if prediction is None else prediction.to_list(),
            "s": [r.to_list() for r in self.sessions],
        }

    def _changing_fields(self) -> dict[str, Any]:
        """Every field but the prediction and the sessions, which keep their encoding."""
        return {
            "v": FORMAT_VERSION,
            "c": self.customer_id,
            "o": None if self.open_basket is None else self.open_basket.to_list(),
            "x": [[tx, list(nos)] for tx, nos in self.closed_recent],
            "t": self.stats.to_list(),
            "k": self.cluster,
            "d": self.distances,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FunnelState":
        if data.get("v") != FORMAT_VERSION:
            raise DataError(
                f"funnel state format {data.get('v')!r} is not {FORMAT_VERSION}; "
                "rebuild the table from the topic (reset the service's changelog)"
            )
        try:
            return cls(
                customer_id=data["c"],
                sessions=[SessionRecord.from_list(r) for r in data["s"]],
                open_basket=None if data["o"] is None else OpenBasket.from_list(data["o"]),
                closed_recent=[(tx, list(nos)) for tx, nos in data["x"]],
                last_prediction=None if data["p"] is None else LastPrediction.from_list(data["p"]),
                stats=FunnelStats.from_list(data["t"]),
                cluster=data["k"],
                distances=[float(d) for d in data["d"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"funnel state record is malformed ({exc!r}); rebuild the table"
            ) from exc

    def to_bytes(self) -> bytes:
        """``to_dict()`` as compact JSON, the sessions and the prediction from their own
        encodings (``SessionRecord.json``, ``LastPrediction.json``): they are most of the bytes
        and never change, and encoding them on every write was most of its cost."""
        rest = _compact_json(self._changing_fields())
        prediction = "null" if self.last_prediction is None else self.last_prediction.json
        sessions = ",".join(record.json for record in self.sessions)
        return f'{rest[:-1]},"p":{prediction},"s":[{sessions}]}}'.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "FunnelState":
        try:
            decoded = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{len(data)} bytes are not a funnel state record: {exc}") from exc
        if not isinstance(decoded, dict):
            raise DataError("funnel state record is not a JSON object; rebuild the table")
        return cls.from_dict(decoded)


