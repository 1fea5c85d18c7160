"""Prometheus metrics of the model server (one CollectorRegistry per server, so tests stay apart)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServerMetrics"]

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """Requests and latency by method/model/signature/code, batch sizes, loaded versions."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "lens_model_server_requests",
            "gRPC requests answered, by method, model, signature and status code.",
            ["method", "model", "signature", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lens_model_server_request_latency_seconds",
            "Time from receiving a request to answering it, by method, model and signature.",
            ["method", "model", "signature"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "lens_model_server_batch_size",
            "Rows per executed server-side batch.",
            ["model", "signature"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.loaded_versions = Gauge(
            "lens_model_server_loaded_versions",
            "Number of AVAILABLE versions per model.",
            ["model"],
            registry=self.registry,
        )
        self.latest_version = Gauge(
            "lens_model_server_latest_version",
            "Highest AVAILABLE version per model (0 when none).",
            ["model"],
            registry=self.registry,
        )

    def observe_request(self, method: str, model: str, signature: str, code: str, seconds: float) -> None:
        self.requests.labels(method, model, signature, code).inc()
        self.latency.labels(method, model, signature).observe(seconds)

    def observe_batch(self, model: str, signature: str, rows: int) -> None:
        self.batch_size.labels(model, signature).observe(rows)

    def set_versions(self, model: str, versions: list[int]) -> None:
        self.loaded_versions.labels(model).set(len(versions))
        self.latest_version.labels(model).set(max(versions) if versions else 0)
