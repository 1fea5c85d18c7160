"""Alert subscribers: deliver anomaly and stock-out alerts to the console, JSONL files and signed
webhooks, at least once, deduplicated by alert id, with dead letters for what no sink takes."""

from services.alerts.alert import ALERT_TOPICS, Alert, alert_from_record
from services.alerts.dedupe import DeliveredIds
from services.alerts.metrics import AlertMetrics, serve_metrics
from services.alerts.sinks import (
    ConsoleSink,
    DeliveryError,
    JsonlSink,
    Sink,
    WebhookSink,
    parse_sink,
    sign,
    verify_signature,
)
from services.alerts.subscriber import AlertSubscriber, SubscriberConfig, state_path
from services.alerts.tail import tail_alerts

__all__ = [
    "ALERT_TOPICS",
    "Alert",
    "AlertMetrics",
    "AlertSubscriber",
    "ConsoleSink",
    "DeliveredIds",
    "DeliveryError",
    "JsonlSink",
    "Sink",
    "SubscriberConfig",
    "WebhookSink",
    "alert_from_record",
    "parse_sink",
    "serve_metrics",
    "sign",
    "state_path",
    "tail_alerts",
    "verify_signature",
]
