"""Automatic canary rollback on the live hit rate of each model label.

Algorithm 1 already checks every prediction against the basket that follows it; the same check
counts *hits* per model label and version: a prediction hits when its basket shares at least one
product with the customer's next session (the paper's hit ratio). A label is judged by the
version it answers with now: moving a label to a new version starts its evidence from zero.
Customers hash evenly over the workers and, within each worker, over the canary share, so every
worker sees both labels and decides on its own: once the canary and the stable label each have
``min_checks`` checked predictions and the canary's hit rate is below the stable one's by more
than ``margin``, the worker routes every customer to the stable label, logs a warning and sets
``lens_funnel_canary_rolled_back`` to 1.

The counts live in memory: a restarted worker counts again from zero (and routes to the canary
until the evidence is back). Making the rollback permanent, or promoting the canary, is the
operator's move: ``LENS_MODEL_CANARY_SHARE=0`` or the labels in ``models.config``.
"""

import logging
from dataclasses import dataclass, field

from services.funnel.config import Canary
from services.funnel.metrics import FunnelMetrics

__all__ = ["CanaryGuard"]

log = logging.getLogger(__name__)


@dataclass
class CanaryGuard:
    canary: Canary
    stable_label: str
    metrics: FunnelMetrics | None = None
    # (label, version) -> [checked, hits]; a label judged by the version it answered with last,
    # so a label moved to another version starts from zero evidence
    checks: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    serving: dict[str, int] = field(default_factory=dict)  # label -> version it answers with
    rolled_back: bool = False

    def label_for(self, customer_id: str) -> str:
        """The model label this customer's next prediction asks for."""
        if not self.rolled_back and self.canary.in_canary(customer_id):
            return self.canary.label
        return self.stable_label

    def hit_rate(self, label: str) -> float | None:
        """The live hit rate of the version ``label`` answers with."""
        checked, hits = self._counts(label)
        return hits / checked if checked else None

    def _counts(self, label: str) -> list[int]:
        return self.checks.get((label, self.serving.get(label, -1)), [0, 0])

    def observe(self, label: str, version: int, hit: bool) -> None:
        """One prediction made by ``version`` under ``label``, checked against the next basket."""
        counts = self.checks.setdefault((label, version), [0, 0])
        counts[0] += 1
        counts[1] += hit
        self.serving[label] = version
        if self.rolled_back or label not in (self.canary.label, self.stable_label):
            return
        canary, stable = (self._counts(x) for x in (self.canary.label, self.stable_label))
        if min(canary[0], stable[0]) < self.canary.min_checks:
            return
        canary_rate, stable_rate = canary[1] / canary[0], stable[1] / stable[0]
        if canary_rate < stable_rate - self.canary.margin:
            self.rolled_back = True
            if self.metrics is not None:
                self.metrics.canary_rolled_back.set(1)
            log.warning(
                "canary %r (version %d) rolled back: hit rate %.3f over %d predictions vs %.3f "
                "over %d for %r (version %d, margin %.3f); every customer now asks for %r",
                self.canary.label, self.serving[self.canary.label], canary_rate, canary[0],
                stable_rate, stable[0], self.stable_label, self.serving[self.stable_label],
                self.canary.margin, self.stable_label,
            )
