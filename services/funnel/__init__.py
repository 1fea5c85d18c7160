"""The funnel-state service: a Faust worker that sessionizes pos.transactions per customer, asks
the model server for predictions, and raises anomaly (Algorithm 1) and stock-out (Algorithm 2)
alerts. ``lens worker funnel`` runs it; ``services.funnel.app`` draws the topology.

Importing this package does not import Faust or gRPC; ``FunnelService`` loads Faust on access.
"""

from services.funnel.config import FunnelServiceConfig
from services.funnel.metrics import FunnelMetrics
from services.funnel.processor import FunnelProcessor, Output, PartitionMeta, Result
from services.funnel.stockout import StoreProcessor

__all__ = [
    "FunnelMetrics",
    "FunnelProcessor",
    "FunnelService",
    "FunnelServiceConfig",
    "Output",
    "PartitionMeta",
    "Result",
    "StoreProcessor",
]


def __getattr__(name: str):
    if name == "FunnelService":
        from services.funnel.app import FunnelService

        return FunnelService
    raise AttributeError(f"module 'services.funnel' has no attribute {name!r}")
