"""Champion vs challenger: publish the challenger unless it is worse by more than a margin."""

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Decision", "decide"]


@dataclass(frozen=True)
class Decision:
    """``outcome``: published or rejected; ``reason``: one line saying why, with both values."""

    outcome: Literal["published", "rejected"]
    reason: str

    @property
    def publish(self) -> bool:
        return self.outcome == "published"


def decide(metric: str, challenger: float, champion: float, margin: float) -> Decision:
    """Publish when ``challenger >= champion - margin`` (higher is better: every metric of
    ``lens eval`` is). A NaN challenger is rejected; a NaN champion (it could not be scored) lets
    any scored challenger through."""
    if math.isnan(challenger):
        return Decision("rejected", f"challenger has no {metric} on the held-out baskets")
    if math.isnan(champion):
        return Decision("published", f"champion has no {metric}; challenger {challenger:.4f}")
    versus = f"challenger {metric} {challenger:.4f} vs champion {champion:.4f}, margin {margin:g}"
    if challenger >= champion - margin:
        return Decision("published", f"not worse by more than the margin: {versus}")
    return Decision("rejected", f"worse by {champion - challenger:.4f} > margin: {versus}")
