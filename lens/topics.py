"""Every Kafka topic LENS uses, defined once: name, value schema, key and partition count."""

from dataclasses import dataclass

from google.protobuf.message import Message

from lens import v1

__all__ = ["ALL_TOPICS", "Topic", "topic_by_name"]


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and the protobuf message its values carry."""

    name: str
    value_type: type[Message]
    key: str
    partitions: int


POS_TRANSACTIONS = Topic("pos.transactions", v1.PosEvent, "customer_id", 8)
INVENTORY_RESUPPLIES = Topic("inventory.resupplies", v1.Resupply, "store_id", 4)
SESSIONS = Topic("lens.sessions", v1.Session, "customer_id", 8)
PREDICTIONS = Topic("lens.predictions", v1.Prediction, "customer_id", 8)
ANOMALY_ALERTS = Topic("lens.alerts.anomaly", v1.AnomalyAlert, "customer_id", 4)
STOCKOUT_ALERTS = Topic("lens.alerts.stockout", v1.StockoutAlert, "store_id", 4)
DEAD_LETTERS = Topic("lens.dlq", v1.DeadLetter, "original key", 4)

ALL_TOPICS: tuple[Topic, ...] = (
    POS_TRANSACTIONS,
    INVENTORY_RESUPPLIES,
    SESSIONS,
    PREDICTIONS,
    ANOMALY_ALERTS,
    STOCKOUT_ALERTS,
    DEAD_LETTERS,
)


def topic_by_name(name: str) -> Topic:
    for topic in ALL_TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}; LENS topics are {[t.name for t in ALL_TOPICS]}")
