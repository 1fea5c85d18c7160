"""Global top-frequency: everyone gets the most popular products."""

from collections import Counter

from lens.baselines._support import basket_size, next_basket, ranking_length
from lens.baselines.recommender import NextBasket
from lens.data.basket import Funnels

__all__ = ["GlobalTop"]


class GlobalTop:
    """Ranks products by popularity: the number of training baskets that contain them.

    Ties go to the smaller product id. ``scores`` are those basket counts. ``basket`` is the top
    ``s`` products, where ``s`` is the customer's median history basket size (distinct items)
    rounded half up and clipped to 1..10; a customer without history gets the median over all
    training baskets instead.
    """

    name = "global-top"

    def __init__(self) -> None:
        self._ranking: list[str] = []
        self._counts: list[int] = []
        self._default_size = 1

    def fit(self, train: Funnels) -> "GlobalTop":
        counts: Counter[str] = Counter()
        sizes: list[int] = []
        for baskets in train.values():
            for basket in baskets:
                counts.update(set(basket.items))
                sizes.append(len(basket.items))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        self._ranking = [item for item, _ in ranked]
        self._counts = [count for _, count in ranked]
        self._default_size = basket_size(sizes)
        return self

    @property
    def ranking(self) -> tuple[list[str], list[int]]:
        """Every training product, most popular first, with its training basket count."""
        return self._ranking, self._counts

    @property
    def default_basket_size(self) -> int:
        """The basket size given to a customer without history (training median, 1..10)."""
        return self._default_size

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        n = ranking_length(k)
        items, scores = self._ranking[:n], self._counts[:n]
        out = {}
        for customer, baskets in histories.items():
            size = basket_size([len(b.items) for b in baskets]) if baskets else self._default_size
            out[customer] = next_basket(items, scores, size)
        return out
