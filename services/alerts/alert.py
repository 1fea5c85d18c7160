"""An alert as the subscribers see it: its type, id, message, JSON form and one-line text."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from lens import v1
from lens.codec import decode
from lens.topics import ANOMALY_ALERTS, STOCKOUT_ALERTS

__all__ = ["ALERT_TOPICS", "Alert", "alert_from_record"]

# topic name -> (alert type label, message type)
ALERT_TOPICS: dict[str, tuple[str, type]] = {
    ANOMALY_ALERTS.name: ("anomaly", v1.AnomalyAlert),
    STOCKOUT_ALERTS.name: ("stockout", v1.StockoutAlert),
}


@dataclass(frozen=True)
class Alert:
    """One decoded alert. ``kind`` is "anomaly" or "stockout"; ``raw`` the record's value bytes."""

    kind: str
    message: v1.AnomalyAlert | v1.StockoutAlert
    raw: bytes

    @property
    def alert_id(self) -> str:
        return self.message.alert_id

    def to_dict(self) -> dict[str, Any]:
        """JSON object: ``type`` plus every field under its proto name; ids stay strings,
        timestamps RFC 3339, int64 as strings (protobuf's JSON mapping)."""
        body = MessageToDict(
            self.message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        return {"type": self.kind, **body}

    def line(self) -> str:
        """One readable line for a terminal."""
        m = self.message
        model = f"{m.model.name}/v{m.model.version}" if m.model.name else "model ?"
        if self.kind == "anomaly":
            return (
                f"ANOMALY  {_time(m.event_time)} customer {m.customer_id} cluster {m.cluster} "
                f"score {m.score:.2f} (threshold {m.threshold:.2f}) distance {m.distance:.2f} "
                f"predicted [{_items(m.predicted_items)}] observed [{_items(m.observed_items)}] "
                f"{model} id={m.alert_id}"
            )
        return (
            f"STOCKOUT {m.day} store {m.store_id} product {m.product_id} "
            f"demand {m.predicted_demand:.1f} vs resupply {m.resupply_quantity:.1f} "
            f"-> short {m.shortfall:.1f} (as of {_time(m.as_of)}) {model} id={m.alert_id}"
        )


def alert_from_record(topic: str, value: bytes | None) -> Alert:
    """Decode a record of an alert topic; DataError when the bytes are not the topic's type."""
    kind, message_type = ALERT_TOPICS[topic]
    return Alert(kind=kind, message=decode(message_type, value), raw=value or b"")


def _time(timestamp: Any) -> str:
    if not timestamp.seconds and not timestamp.nanos:
        return "-"
    return timestamp.ToDatetime(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _items(items: Any, shown: int = 5) -> str:
    items = list(items)
    text = " ".join(items[:shown])
    return text + (f" +{len(items) - shown}" if len(items) > shown else "")
