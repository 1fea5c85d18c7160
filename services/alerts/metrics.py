"""Prometheus metrics of the alert subscriber (one CollectorRegistry per subscriber)."""

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["AlertMetrics", "serve_metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class AlertMetrics:
    """Alerts received / delivered / failed / deduped / dead-lettered, by type and sink, and
    delivery latency (sink time, retries included; and record append time -> delivered)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.received = Counter(
            "lens_alerts_received", "Alert records read, by type.", ["type"], registry=self.registry
        )
        self.delivered = Counter(
            "lens_alerts_delivered", "Alerts a sink took, by type and sink.", ["type", "sink"],
            registry=self.registry,
        )
        self.failed = Counter(
            "lens_alerts_delivery_failures",
            "Failed delivery attempts (each retry counts), by type and sink.",
            ["type", "sink"], registry=self.registry,
        )
        self.dead_lettered = Counter(
            "lens_alerts_dead_lettered",
            "Alerts sent to lens.dlq, by type, sink (or 'decode') and reason.",
            ["type", "sink", "reason"], registry=self.registry,
        )
        self.deduped = Counter(
            "lens_alerts_deduped", "Alerts skipped as already delivered, by type.", ["type"],
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "lens_alerts_delivery_seconds",
            "Time a sink took to accept an alert, retries and backoff included, by type and sink.",
            ["type", "sink"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.end_to_end_seconds = Histogram(
            "lens_alerts_end_to_end_seconds",
            "From the alert's append to Kafka to its delivery by every sink, by type.",
            ["type"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )


def serve_metrics(registry: CollectorRegistry, host: str, port: int):
    """Serve ``/metrics`` of ``registry`` on ``host:port`` in a daemon thread; returns the HTTP
    server (``server.server_port`` is the bound port, ``server.shutdown()`` stops it)."""
    from prometheus_client import start_http_server

    from lens.errors import ConfigError

    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host}:{port}: {exc}. Pick another --metrics-port."
        ) from exc
    return server
