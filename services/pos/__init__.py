"""The POS publisher: replays purchase history (or a live synthetic stream) onto pos.transactions,
and loads resupply plans onto inventory.resupplies."""

from services.pos.events import basket_events, baskets_in_time_order, event_key
from services.pos.publisher import PosPublisher, ReplayStats, parse_speed, replay
from services.pos.resupply import publish_resupplies, read_resupplies

__all__ = [
    "PosPublisher",
    "ReplayStats",
    "basket_events",
    "baskets_in_time_order",
    "event_key",
    "parse_speed",
    "publish_resupplies",
    "read_resupplies",
    "replay",
]
