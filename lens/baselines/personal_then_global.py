"""Personal top-frequency, topped up with globally popular products."""

from lens.baselines._support import basket_size, next_basket, ranking_length
from lens.baselines.global_top import GlobalTop
from lens.baselines.personal_top import personal_ranking
from lens.baselines.recommender import NextBasket
from lens.data.basket import Funnels

__all__ = ["PersonalThenGlobal"]


class PersonalThenGlobal:
    """The customer's own products by frequency (as ``PersonalTop``), then the ``GlobalTop``
    ranking without the products already listed.

    ``scores``: a personal product scores its frequency (>= 1); a filler scores its training
    basket count divided by (number of training baskets + 1), so below 1 and below every personal
    product. ``basket`` is the top ``s`` of that ranking, ``s`` as in ``GlobalTop`` (median
    history basket size clipped to 1..10, the training median without history).
    """

    name = "personal-then-global"

    def __init__(self) -> None:
        self._global = GlobalTop()
        self._n_train_baskets = 0

    def fit(self, train: Funnels) -> "PersonalThenGlobal":
        self._global.fit(train)
        self._n_train_baskets = sum(len(baskets) for baskets in train.values())
        return self

    def predict(self, histories: Funnels, k: int) -> dict[str, NextBasket]:
        n = ranking_length(k)
        ranking, counts = self._global.ranking
        scale = 1.0 / (self._n_train_baskets + 1)
        out = {}
        for customer, baskets in histories.items():
            items, freqs = personal_ranking(baskets)
            items, scores = items[:n], [float(f) for f in freqs[:n]]
            seen = set(items)
            for item, count in zip(ranking, counts):
                if len(items) >= n:
                    break
                if item not in seen:
                    items.append(item)
                    scores.append(count * scale)
            if baskets:
                size = basket_size([len(b.items) for b in baskets])
            else:
                size = self._global.default_basket_size
            out[customer] = next_basket(items, scores, size)
        return out
