"""What every next-basket model offers ``lens eval`` and ``lens predict``: baselines and LENS alike."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from lens.data.basket import Funnels

__all__ = ["NextBasket", "Recommender"]


@dataclass(frozen=True)
class NextBasket:
    """A model's answer for one customer.

    ``items``/``scores``: a ranking, best first (at least 20 where the model can rank that many).
    ``basket``: the variable-size predicted basket, at most 10 items.
    ``quantities``: units per ``basket`` item, where the model predicts them (else empty).
    ``days_to_next``: predicted days until the next purchase, where the model predicts it.
    """

    items: Sequence[str]
    scores: Sequence[float]
    basket: Sequence[str]
    quantities: Sequence[float] = field(default_factory=tuple)
    days_to_next: float | None = None


@runtime_checkable
class Recommender(Protocol):
    """A next-basket model. ``fit`` sees only training funnels; ``predict`` sees each target
    customer's history (every basket before the target) and never the target itself."""

    name: str

    def fit(self, train: Funnels) -> "Recommender": ...

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]: ...
