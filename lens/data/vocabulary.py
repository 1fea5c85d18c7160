"""Product id <-> integer id, for models that embed items.

Id 0 is padding, id 1 out-of-vocabulary (OOV); known items get 2, 3, ... by descending count
(ties by product id), so the ids do not depend on dict or file order. Build it from training funnels
only: an item first seen in an evaluation target must map to OOV, not to an id of its own.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from lens.data.basket import Funnels

__all__ = ["OOV_ID", "PAD_ID", "Vocabulary"]

PAD_ID = 0
OOV_ID = 1
_RESERVED = ("<pad>", "<oov>")


class Vocabulary:
    """A fixed mapping product id <-> int. ``len(vocabulary)`` counts the two reserved ids."""

    def __init__(self, items: Sequence[str], *, min_count: int = 1) -> None:
        """``items``: known product ids in id order (the first gets id 2); ``min_count``: the
        threshold they were chosen with (kept for ``to_dict``)."""
        self._items: tuple[str, ...] = tuple(items)
        self._ids = {item: index for index, item in enumerate(self._items, start=len(_RESERVED))}
        if len(self._ids) != len(self._items):
            raise ValueError("vocabulary items must be distinct")
        self.min_count = min_count

    @classmethod
    def build(cls, train: Funnels, *, min_count: int = 1) -> "Vocabulary":
        """Count in how many training baskets each item appears; items seen in fewer than
        ``min_count`` baskets stay out (they encode to OOV)."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        counts = Counter(item for funnel in train.values() for b in funnel for item in b.items)
        kept = [item for item, n in counts.items() if n >= min_count]
        kept.sort(key=lambda item: (-counts[item], item))
        return cls(kept, min_count=min_count)

    def __len__(self) -> int:
        return len(self._items) + len(_RESERVED)

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    @property
    def items(self) -> tuple[str, ...]:
        """Known product ids in id order (id 2 first)."""
        return self._items

    def id_of(self, item: str) -> int:
        """The id of ``item``; OOV_ID when it is not known."""
        return self._ids.get(item, OOV_ID)

    def encode(self, items: Iterable[str]) -> np.ndarray:
        """int32 [n]: the ids of ``items`` (unknown ones -> OOV_ID)."""
        return np.fromiter((self._ids.get(item, OOV_ID) for item in items), dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Product ids for ``ids``, skipping PAD_ID and OOV_ID (they name no product)."""
        reserved = len(_RESERVED)
        return [self._items[i - reserved] for i in map(int, ids) if i >= reserved]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form; ``Vocabulary.from_dict`` reads it back."""
        return {"min_count": self.min_count, "items": list(self._items)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Vocabulary":
        return cls(data["items"], min_count=int(data["min_count"]))
